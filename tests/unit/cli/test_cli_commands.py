"""The command line's pure parts: schema examples, the summaries table, tokens, feed checks, settling."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from rich.console import Console

from schemas import topics
from schemas.decode import Rejection, decode
from schemas.generate import JSONSCHEMA_DIR, event_types
from services.analysis.app import INPUT_TOPICS as ANALYSIS_INPUTS
from services.followup.app import INPUT_TOPICS as FOLLOWUP_INPUTS
from services.intake.app import INPUT_TOPICS as INTAKE_INPUTS
from services.reporting.app import INPUT_TOPICS as REPORTING_INPUTS
from taskforce import cli, publisher, settle
from taskforce.summaries_view import Api, ApiError, latest_summaries, resolve_token, summaries_table

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("event_type", list(event_types()))
def test_every_type_has_an_example_that_the_consumers_and_its_schema_accept(event_type: str) -> None:
    _model, topic, _version = event_types()[event_type]
    example = cli.example_event(event_type)
    decoded = decode(topic, json.dumps(example).encode())
    assert not isinstance(decoded, Rejection), decoded
    schema = json.loads(cli.schema_text(event_type))
    assert schema == json.loads((JSONSCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8"))
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(example)


def test_close_command_is_a_valid_final_summary_request() -> None:
    line = cli.close_command("480", "2022H1")
    event = decode(topics.COMMANDS, line.value)
    assert not isinstance(event, Rejection), event
    assert (line.topic, line.key, event.data.period, event.data.final, event.source) == (
        topics.COMMANDS, b"480", "2022H1", True, "taskforce.demo")


def test_settling_watches_every_services_own_input_topics() -> None:
    services = {"intake": tuple(INTAKE_INPUTS), "analysis": tuple(ANALYSIS_INPUTS),
                "followup": tuple(FOLLOWUP_INPUTS), "reporting": tuple(REPORTING_INPUTS)}
    assert services == settle.GROUP_INPUTS
    assert list(settle.GROUP_INPUTS)[-1] == "reporting"  # read after the services that feed it
    assert settle.group_id("intake", "t1.") == "t1.intake"


def test_a_timeout_names_who_is_behind() -> None:
    state = settle.Progress({"intake": 0, "analysis": 12, "followup": 0, "reporting": 3}, 40, 0.0)
    message = settle._timeout_message(state, 300, "")
    assert "analysis is 12 record(s) behind on taskforce.case-reviews" in message
    assert "reporting is 3 record(s) behind" in message and "intake" not in message
    assert "intake ✓" in settle.describe(state) and "analysis 12 behind" in settle.describe(state)


SUMMARY = cli.example_event("committee_summary.published")["data"]


def test_the_summaries_table_shows_the_committees_figures() -> None:
    rows = [{"municipality_code": "480", **SUMMARY},
            {"municipality_code": "480", **SUMMARY, "period": "2022H2", "status": "draft"}]
    console = Console(width=200, record=True)
    console.print(summaries_table(rows))
    text = console.export_text()
    first = next(line for line in text.splitlines() if "2022H1" in line)
    for shown in ("480 Nordfyns", "final", "2022-07-01", "80 %", "6.5", "2.5 3.0 2.2 3.3", "3/8", "no"):
        assert shown in first, shown
    assert text.count("480 Nordfyns") == 1  # the municipality is named once per group


def test_the_table_names_every_municipality_and_flags_an_unknown_code() -> None:
    rows = [{"municipality_code": code, **SUMMARY} for code in ("999", "400", "101")]
    console = Console(width=200, record=True)
    console.print(summaries_table(rows))
    text = console.export_text()
    assert "101 Københavns" in text and "400 Bornholms Regionskommune" in text
    assert "999 (not in DST's list)" in text
    assert text.index("101 ") < text.index("400 ") < text.index("999 ")


def _fake_api(monkeypatch: pytest.MonkeyPatch, asked: list[str]) -> Api:
    """An Api whose client answers from memory: 480 and 607 listed, one period each."""
    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        assert request.headers["authorization"] == "Bearer t"
        path = request.url.path
        if path == "/municipalities":
            return httpx.Response(200, json={"municipalities": [
                {"code": code, "name": "", "region": None, "known": True, "latest_period": "2022H1",
                 "status": "final", "revision": 0, "as_of": "2022-07-01T00:00:00+02:00"}
                for code in ("480", "607")]})
        code = path.split("/")[2]
        if path.endswith("/summaries"):
            return httpx.Response(200, json={"municipality_code": code, "periods": [
                {"period": "2022H1", "status": "final", "revision": 0, "as_of": SUMMARY["as_of"]}]})
        return httpx.Response(200, json={"municipality_code": code, **SUMMARY})

    def client(self: Api) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"},
                                 transport=httpx.MockTransport(answer))

    monkeypatch.setattr(Api, "client", client)
    return Api("http://reporting.test", "t")


async def test_without_codes_the_summaries_are_of_the_municipalities_the_api_lists(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    rows = await latest_summaries(_fake_api(monkeypatch, asked), None)
    assert asked[0] == "/municipalities"
    assert [r["municipality_code"] for r in rows] == ["480", "607"]
    asked.clear()
    rows = await latest_summaries(_fake_api(monkeypatch, asked), ["607"], "2022H1")
    assert "/municipalities" not in asked and [r["municipality_code"] for r in rows] == ["607"]


def test_the_token_comes_from_the_option_the_environment_or_the_tokens_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tmp_path / "tokens.json"
    monkeypatch.setenv("TASKFORCE_TOKENS_FILE", str(tokens))
    monkeypatch.delenv("TASKFORCE_TOKEN", raising=False)
    with pytest.raises(ApiError, match="no token"):
        resolve_token(None)
    assert not tokens.exists()  # reading never creates a tokens file
    tokens.write_text(json.dumps({"just-480": "480", "everything": "*"}))
    assert resolve_token(None) == "everything"
    monkeypatch.setenv("TASKFORCE_TOKEN", "from-env")
    assert resolve_token(None) == "from-env"
    assert resolve_token("given") == "given"


def test_feed_checks(tmp_path: Path) -> None:
    good = json.dumps(cli.example_event("notification.received"))
    feed = tmp_path / "feed.jsonl"
    feed.write_text(f"{good}\n{{bad\n\n{good}\n[]")
    assert publisher.count_lines(feed) == 5
    checked = publisher.check_files([feed])
    assert [r.line_no for r in checked.records] == [1, 4]
    assert [(r.error.line_no, r.error.reason) for r in checked.rejected] == [(2, "invalid_json"),
                                                                           (5, "invalid_event")]
    strict = publisher.check_files([feed], strict=True)
    assert strict.aborted and len(strict.rejected) == 1
    assert publisher.unsupported([feed, tmp_path / "feed.txt"]) == [
        f"{tmp_path / 'feed.txt'}: unsupported feed file suffix '.txt': use .jsonl, .ndjson or .csv"]
    assert checked.planned("p.") == {("p.taskforce.notifications", "notification.received"): 2}
