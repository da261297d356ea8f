"""The `taskforce` command against the real servers: publish, schema, summaries and the demo's settling."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from schemas import topics
from schemas.decode import Rejection, decode
from schemas.periods import Period
from services.analysis.app import create as create_analysis
from services.followup.app import create as create_followup
from services.intake.app import create as create_intake
from services.reporting.app import create as create_reporting
from taskforce import demo, publisher
from taskforce.cli import app, run_demo
from taskforce.feed import CSV_COLUMNS
from taskforce.settle import OffsetWatch, wait_until_settled
from taskforce.summaries_view import Api
from tests.support.events import assessed, event, received
from tests.support.kafka import read_until
from tests.support.services import Running, running, settings_for

pytestmark = pytest.mark.integration

CPR_TEXT = "010190-1234"
CREATE = {"reporting": create_reporting, "intake": create_intake, "analysis": create_analysis,
          "followup": create_followup}


@contextlib.asynccontextmanager
async def services(stack: Any, prefix: str, tokens: Path, *names: str) -> AsyncIterator[dict[str, Running]]:
    """The named services in-process, started side by side (each waits for its partitions)."""
    async with contextlib.AsyncExitStack() as stack_of:
        contexts = [running(CREATE[name], settings_for(name, stack, prefix,
                                                       TASKFORCE_TOKENS_FILE=str(tokens)))
                    for name in names]
        started = await asyncio.gather(*(stack_of.enter_async_context(c) for c in contexts))
        yield dict(zip(names, started, strict=True))


async def invoke(*args: str) -> Result:
    """Run the real command line in a thread (it runs its own event loop) with wide output."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, list(args), env={"COLUMNS": "200"},
                                   catch_exceptions=False)


async def topic_size(bootstrap: str, topic: str) -> int:
    """Records on a topic (sum of its end offsets); 0 when it does not exist."""
    async with OffsetWatch(bootstrap) as watch:
        return sum((await watch.end_offsets((topic,))).values())


def jsonl(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
                    encoding="utf-8")
    return path


def three_valid() -> list[dict[str, Any]]:
    return [received("n1", "2022-03-01T10:00:00+01:00", municipality="480"),
            received("n2", "2022-03-01T11:00:00+01:00", municipality="607"),
            assessed("n1", "2022-03-01T12:00:00+01:00", municipality="480")]


async def test_publish_sends_every_valid_record_keyed_by_municipality(stack, prefix, tmp_path):
    events = three_valid()
    feed = jsonl(tmp_path / "feed.jsonl", events)
    result = await invoke("publish", str(feed), "--bootstrap-servers", stack.bootstrap_servers,
                          "--topic-prefix", prefix)
    assert result.exit_code == 0, result.output
    assert f"{prefix}taskforce.notifications" in result.output
    assert "notification.received" in result.output and "notification.assessed" in result.output

    records = await read_until(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS,
                               lambda rs: len(rs) >= 3, timeout=20)
    assert sorted((r.key, json.loads(r.value)["event_id"]) for r in records) == sorted(
        (e["municipality_code"].encode(), e["event_id"]) for e in events)
    # One municipality's events share a partition, in file order.
    by_480 = [json.loads(r.value)["event_type"] for r in sorted(records, key=lambda r: r.offset)
              if r.key == b"480"]
    assert by_480 == ["notification.received", "notification.assessed"]
    assert await topic_size(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS) == 3


async def test_bad_lines_are_reported_by_line_and_not_sent(stack, prefix, tmp_path):
    good = three_valid()
    cpr = received("n9", "2022-03-01T10:00:00+01:00")
    cpr["data"]["child_ref"] = CPR_TEXT
    naive = received("n8", "2022-03-01T10:00:00")
    feed = jsonl(tmp_path / "mixed.jsonl", [good[0], "{not json", json.dumps(cpr), good[1],
                                            json.dumps(naive), good[2]])
    result = await invoke("publish", str(feed), "--bootstrap-servers", stack.bootstrap_servers,
                          "--topic-prefix", prefix)
    assert result.exit_code == 1
    rejected = {(line, reason) for line, reason in
                ((row.split("│")[2].strip(), row.split("│")[3].strip())
                 for row in result.output.splitlines() if str(feed) in row and row.count("│") >= 4)}
    assert rejected == {("2", "invalid_json"), ("3", "cpr_number"), ("5", "invalid_event")}
    assert CPR_TEXT not in result.output and "n8" not in result.output  # never the line's content
    assert "3 rejected line(s) were not sent" in result.output
    assert await topic_size(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS) == 3


async def test_strict_stops_at_the_first_bad_line_and_sends_nothing(stack, prefix, tmp_path):
    good = three_valid()
    feed = jsonl(tmp_path / "strict.jsonl", [good[0], good[1], '{"event_type": "nope"}', good[2], "[]"])
    result = await invoke("publish", str(feed), "--strict", "--bootstrap-servers", stack.bootstrap_servers,
                          "--topic-prefix", prefix)
    assert result.exit_code == 1
    assert "unknown_event_type" in result.output and "nothing was sent" in result.output
    assert "invalid_event" not in result.output  # stopped at line 3: line 5 was never reported
    assert await topic_size(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS) == 0


async def test_dry_run_validates_only(stack, prefix, tmp_path):
    good = jsonl(tmp_path / "good.jsonl", three_valid())
    bad = jsonl(tmp_path / "bad.jsonl", [*three_valid(), "{"])
    common = ("--dry-run", "--bootstrap-servers", stack.bootstrap_servers, "--topic-prefix", prefix)
    ok = await invoke("publish", str(good), *common)
    assert ok.exit_code == 0, ok.output
    assert "Dry run: would send" in ok.output
    failed = await invoke("publish", str(bad), *common)
    assert failed.exit_code == 1
    assert "invalid_json" in failed.output
    assert await topic_size(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS) == 0


async def test_csv_feed_is_sent(stack, prefix, tmp_path):
    events = [
        event("application.submitted", "2021-11-10T10:00:00+01:00",
              {"application_id": "a-1", "reasons": ["rising_notifications"]}, municipality="330"),
        {**event("application.decided", "2021-12-17T10:00:00+01:00",
                 {"application_id": "a-1", "decision": "approved", "expected_start": "2022-02-01"},
                 municipality="330"), "correlation_id": "a-1"},
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow([json.dumps(e["data"]) if c == "data" else str(e.get(c, "")) for c in CSV_COLUMNS])
    feed = tmp_path / "applications.csv"
    feed.write_text(buffer.getvalue(), encoding="utf-8")

    result = await invoke("publish", str(feed), "--bootstrap-servers", stack.bootstrap_servers,
                          "--topic-prefix", prefix)
    assert result.exit_code == 0, result.output
    records = await read_until(stack.bootstrap_servers, prefix + topics.APPLICATIONS,
                               lambda rs: len(rs) >= 2, timeout=20)
    assert {r.key for r in records} == {b"330"}
    sent = sorted((json.loads(r.value) for r in records), key=lambda e: e["occurred_at"])
    assert [e["event_id"] for e in sent] == [e["event_id"] for e in events]
    assert sent[1]["correlation_id"] == "a-1" and "correlation_id" not in sent[0]


async def test_unreachable_broker_is_a_usage_error(tmp_path):
    feed = jsonl(tmp_path / "feed.jsonl", three_valid())
    result = await invoke("publish", str(feed), "--bootstrap-servers", "127.0.0.1:1")
    assert result.exit_code == 2
    assert "cannot reach Kafka at 127.0.0.1:1" in result.output


async def test_schema_prints_the_json_schema_and_a_valid_example():
    listing = await invoke("schema")
    assert listing.exit_code == 0
    assert "milestone.updated" in listing.output and "taskforce.milestones" in listing.output

    shown = await invoke("schema", "case_review.completed")
    assert shown.exit_code == 0
    schema_file = Path(topics.__file__).parent / "jsonschema" / "case_review.completed.json"
    assert json.loads(schema_file.read_text())["$id"] in shown.output
    assert '"legal_findings"' in shown.output and "Example event" in shown.output

    example = await invoke("schema", "case_review.completed", "--example")
    decoded = decode(topics.CASE_REVIEWS, example.output.strip().encode())
    assert not isinstance(decoded, Rejection), decoded

    unknown = await invoke("schema", "case.review")
    assert unknown.exit_code == 2


async def test_summaries_shows_the_reporting_services_table(stack, prefix, tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"all-token": "*", "slagelse-token": "330"}))
    feed = jsonl(tmp_path / "feed.jsonl", [
        received("n1", "2022-03-01T10:00:00+01:00"), assessed("n1", "2022-03-01T16:00:00+01:00"),
        received("n2", "2022-09-01T10:00:00+02:00"),
    ])
    async with services(stack, prefix, tokens, "reporting", "intake") as started:
        reporting = started["reporting"]
        await publisher.publish([feed], bootstrap=stack.bootstrap_servers, prefix=prefix,
                                console=Console(file=io.StringIO()))
        await wait_until_settled(stack.bootstrap_servers, prefix, quiet_s=0.5, timeout_s=30)
        api = ("--api", reporting.base_url)
        table = await invoke("summaries", "-m", "480", *api, "--token", "all-token")
        as_json = await invoke("summaries", "-m", "480", "--period", "2022H1", "--json", *api,
                               "--token", "all-token")
        refused = await invoke("summaries", "-m", "480", *api, "--token", "slagelse-token")
        unknown = await invoke("summaries", "-m", "480", *api, "--token", "nobody")
        # Without codes: the municipalities the token may read, from GET /municipalities.
        listed = await invoke("summaries", "--json", *api, "--token", "all-token")
        nothing = await invoke("summaries", *api, "--token", "slagelse-token")

    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert any("480 Nordfyns" in line and "2022H1" in line and "100 %" in line and "6.0" in line
               for line in lines), table.output
    assert any("2022H2" in line and "draft" in line for line in lines)
    rows = json.loads(as_json.output)
    assert [(r["municipality_code"], r["period"], r["notifications"]["received"]) for r in rows] == [
        ("480", "2022H1", 1)]
    assert refused.exit_code == 2 and "403" in refused.output
    assert unknown.exit_code == 2 and "401" in unknown.output
    assert listed.exit_code == 0, listed.output
    assert [(r["municipality_code"], r["period"]) for r in json.loads(listed.output)] == [
        ("480", "2022H1"), ("480", "2022H2")]
    assert nothing.exit_code == 0 and "No summaries yet." in nothing.output


async def test_demo_settles_and_closes_finished_courses(stack, prefix, tmp_path):
    """The demo's flow with the four services in-process: settle by offsets, close, settle again."""
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"all-token": "*"}))
    output = io.StringIO()
    async with services(stack, prefix, tokens, *CREATE) as started:
        result = await run_demo(seed=7, volume=0.05, out=tmp_path / "demo", reports_dir=tmp_path / "reports",
                                bootstrap=stack.bootstrap_servers, prefix=prefix,
                                api=Api(started["reporting"].base_url, "all-token"), timeout_s=120,
                                quiet_s=1.0, console=Console(file=output, width=200))

    codes = {p.code for p in demo.MUNICIPALITIES}
    summaries = result["summaries"]
    assert {s["municipality_code"] for s in summaries} == codes
    # Everything published was applied: the summaries count every notification of the scenario.
    events = demo.generate(7, volume=0.05)
    assert sum(s["notifications"]["received"] for s in summaries) == sum(
        e["event_type"] == "notification.received" for e in events)
    # Every period that ended before the scenario's end is closed, and none was revised: no
    # event of the scenario arrives late, and finalisation waits for every owning service (1.1).
    still_draft = [(s["municipality_code"], s["period"]) for s in summaries
                   if s["status"] == "draft" and Period.parse(s["period"]).end <= demo.SCENARIO_END]
    assert still_draft == []
    assert [(s["municipality_code"], s["period"]) for s in summaries if s["status"] == "revised"] == []
    assert result["closed"], "completed courses leave a draft half-year to close"
    assert {code for code, _ in result["closed"]} == {p.code for p in demo.MUNICIPALITIES if p.completed}
    assert sorted(path.name for path in result["reports"]) == sorted(
        f"{s['municipality_code']}-{s['period']}.html" for s in summaries)
    assert all(path.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
               for path in result["reports"])
    text = output.getvalue()
    assert "Published 2020H1 (" in text and "Closed: settled" in text  # one half-year at a time
    assert text.count(": settled") >= len({s["period"] for s in summaries})
