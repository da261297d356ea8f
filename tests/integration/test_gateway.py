"""The ingestion gateway against the real broker: scopes, hostile bodies, outages, end to end.

The gateway runs in-process (its real HTTP server and producer); what it accepted is read
back from the topics, and in the end-to-end test the intake and reporting services turn it
into a committee summary.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from typing import Any

import pytest

from schemas import topics
from services.gateway.app import create as create_gateway
from services.gateway.config import GatewayConfig
from services.gateway.examples import event_types, example_event
from services.gateway.items import to_cloudevent
from services.intake.app import create as create_intake
from services.reporting.app import create as create_reporting
from taskforce import servers
from tests.support.events import approved_course, assessed, received
from tests.support.kafka import decoded, read_until
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration

CPR = "0101901234"
MARKER = "HOSTILE-VALUE-7f3a"
T480 = {"Authorization": "Bearer token-480"}
TALL = {"Authorization": "Bearer token-all"}


def fresh(event_type: str = "notification.received", **changes: Any) -> dict[str, Any]:
    return {**example_event(event_type), "event_id": str(uuid.uuid4()), **changes}


@pytest.fixture
def tokens(tmp_path: Any) -> str:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"token-480": "480", "token-849": "849", "token-all": "*"}))
    return str(path)


async def post(http: Any, body: bytes, media: str) -> Any:
    return await http.post("/v1/events", content=body, headers={"Content-Type": media})


def gateway(stack: Any, prefix: str, tokens: str, **config: Any) -> Any:
    settings = settings_for("gateway", stack, prefix, TASKFORCE_TOKENS_FILE=tokens)
    return running(lambda s: create_gateway(s, GatewayConfig(**config)), settings)


async def test_a_token_of_480_cannot_write_849s_events(stack, prefix, tokens):
    mine, theirs = fresh(), fresh(municipality_code="849")
    async with gateway(stack, prefix, tokens) as gw, gw.client(headers=T480) as http:
        answer = await http.post("/v1/events", json=[mine, theirs])
        only_theirs = await http.post("/v1/events", json=[theirs])
        async with gw.client() as anonymous:
            assert (await anonymous.post("/v1/events", json=[mine])).status_code == 401
    assert answer.status_code == 207
    items = answer.json()["items"]
    assert items[0] == {"index": 0, "event_id": mine["event_id"], "status": "accepted",
                        "topic": topics.NOTIFICATIONS}
    assert items[1]["status"] == "rejected" and items[1]["reason"] == "not_in_scope"
    assert only_theirs.status_code == 422
    records = await read_until(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, lambda r: len(r) >= 1)
    await asyncio.sleep(0.5)
    records = await read_until(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, lambda r: len(r) >= 1)
    assert [json.loads(r.value)["event_id"] for r in records] == [mine["event_id"]]
    assert records[0].key == b"480"
    audit = await read_until(stack.bootstrap_servers, prefix + topics.AUDIT,
                             lambda r: sum(json.loads(x.value)["data"]["action"] == "write" for x in r) >= 3)
    writes = [(a["municipality_code"], a["data"]["outcome"], a["data"]["reason"])
              for a in decoded(audit) if a["data"]["action"] == "write"]
    assert ("480", 200, None) in writes and ("849", 403, "not_in_scope") in writes


async def test_hostile_items_get_per_item_answers_and_never_a_500(stack, prefix, tokens):
    good = fresh()
    deep = "[" * 20_000 + "]" * 20_000
    wrong_types = fresh(schema_version="1", municipality_code=480, data={"urgent": MARKER})
    with_cpr = fresh(data={**good["data"], "child_ref": f"{MARKER} {CPR}"})
    huge = fresh(source=MARKER * 30_000)
    parts = [json.dumps(e) for e in (good, wrong_types, with_cpr, huge)]
    parts += [deep, "{not json " + MARKER + "}", '"' + MARKER + '"', "null", "1" + "9" * 9000,
              json.dumps({"event_type": "summary.requested"})]
    array = ("[" + ",".join(parts) + "]").encode()
    lines = b"\n".join([json.dumps(fresh()).encode(), b"not json " + MARKER.encode(), b"\xff\xfe\xfd",
                        deep.encode(), json.dumps(with_cpr).encode(), b"{" * 100])
    async with gateway(stack, prefix, tokens) as gw, gw.client(headers=TALL) as http:
        by_array = await post(http, array, "application/json")
        by_lines = await post(http, lines, "application/x-ndjson")
        batch = [to_cloudevent(fresh()), {"specversion": "1.0"}, {**to_cloudevent(fresh()), "x": MARKER}]
        cloud = await post(http, json.dumps(batch).encode(), "application/cloudevents-batch+json")
        not_array = await post(http, b'{"a": 1}', "application/json")
        unsupported = await post(http, b"x", "text/plain")
        too_many = await http.post("/v1/events", json=[good] * 1001)
        too_big = await post(http, b"[" + b" " * (1024 * 1024) + b"]", "application/json")
        metrics = (await http.get("/metrics")).text
    for answer in (by_array, by_lines, cloud, not_array, unsupported, too_many, too_big):
        assert answer.status_code != 500
        assert MARKER not in answer.text and CPR not in answer.text
    assert by_array.status_code == 207
    reasons = [item.get("reason") for item in by_array.json()["items"]]
    assert reasons == [None, "invalid_event", "cpr_number", "invalid_event", "invalid_json", "invalid_json",
                       "invalid_event", "invalid_event", "invalid_json", "unknown_event_type"]
    assert "municipality_code" in ",".join(by_array.json()["items"][1]["fields"])
    assert by_lines.status_code == 207
    assert [(i["line"], i.get("reason")) for i in by_lines.json()["items"]] == [
        (1, None), (2, "invalid_json"), (3, "invalid_encoding"), (4, "invalid_json"), (5, "cpr_number"),
        (6, "invalid_json")]
    assert cloud.status_code == 207
    assert [i.get("reason") for i in cloud.json()["items"]] == [
        None, "unknown_event_type", "invalid_cloudevent"]
    assert (not_array.status_code, unsupported.status_code, too_many.status_code, too_big.status_code) == (
        400, 415, 413, 413)
    assert 'taskforce_gateway_events_total{outcome="rejected",reason="cpr_number"} 2.0' in metrics


async def test_rate_limit_answers_429_with_retry_after(stack, prefix, tokens):
    config = {"TASKFORCE_GATEWAY_RATE_EVENTS_PER_S": 1, "TASKFORCE_GATEWAY_RATE_BURST_EVENTS": 3}
    async with gateway(stack, prefix, tokens, **config) as gw, gw.client(headers=T480) as http:
        first = await http.post("/v1/events", json=[fresh(), fresh(), fresh()])
        second = await http.post("/v1/events", json=[fresh()])
        other = await http.post("/v1/events", json=[fresh()], headers=TALL)
    assert first.status_code == 200
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
    assert other.status_code == 200


async def test_openapi_has_an_example_for_every_event_type(stack, prefix, tokens):
    async with gateway(stack, prefix, tokens) as gw, gw.client() as http:
        document = (await http.get("/openapi.json")).json()
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    for media in ("application/json", "application/x-ndjson", "application/cloudevents+json",
                  "application/cloudevents-batch+json"):
        assert set(body[media]["examples"]) == set(event_types())
    answers = document["paths"]["/v1/events"]["post"]["responses"]
    assert {"200", "207", "413", "422", "429", "503"} <= set(answers)


async def test_broker_down_means_503_and_nothing_lost_once_it_is_back(prefix, tokens, tmp_path):
    broker = servers.start_kafka(servers.free_port(), tmp_path / "tansu.log")
    own = type("Stack", (), {"bootstrap_servers": broker.address, "mongodb_url": "mongodb://127.0.0.1:1"})()
    config = {"TASKFORCE_GATEWAY_PROBE_EVERY_S": 0.2, "TASKFORCE_GATEWAY_PROBE_TIMEOUT_S": 0.5,
              "TASKFORCE_GATEWAY_DEADLINE_S": 2}
    before, during, after = fresh(), fresh(), fresh()
    try:
        async with gateway(own, prefix, tokens, **config) as gw, gw.client(headers=T480) as http:
            assert (await http.post("/v1/events", json=[before])).status_code == 200
            os.kill(broker.process.pid, signal.SIGSTOP)
            try:
                for _ in range(100):
                    if (await http.get("/readyz")).status_code == 503:
                        break
                    await asyncio.sleep(0.1)
                ready = await http.get("/readyz")
                refused = await http.post("/v1/events", json=[during])
            finally:
                os.kill(broker.process.pid, signal.SIGCONT)
            for _ in range(100):
                if (await http.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            resent = await http.post("/v1/events", json=[during, after])
        assert ready.status_code == 503 and ready.json()["checks"]["broker_answers"] is False
        assert refused.status_code == 503 and "Retry-After" in refused.headers
        assert resent.status_code == 200, resent.text
        wanted = {before["event_id"], during["event_id"], after["event_id"]}
        records = await read_until(broker.address, prefix + topics.NOTIFICATIONS,
                                   lambda r: wanted <= {json.loads(x.value)["event_id"] for x in r})
        assert {json.loads(x.value)["event_id"] for x in records} == wanted
    finally:
        broker.stop()


async def test_events_through_the_gateway_become_a_committee_summary(stack, prefix, tokens):
    events = [*approved_course(), received("n1", "2022-03-01T10:00:00+01:00"),
              assessed("n1", "2022-03-01T16:00:00+01:00"), received("n2", "2022-04-01T10:00:00+02:00")]
    lines = b"\n".join(json.dumps(e).encode() for e in events)
    reporting_settings = settings_for("reporting", stack, prefix, TASKFORCE_TOKENS_FILE=tokens)
    async with (running(create_reporting, reporting_settings),
                running(create_intake, settings_for("intake", stack, prefix)),
                gateway(stack, prefix, tokens) as gw, gw.client(headers=T480) as http):
        answer = await post(http, lines, "application/x-ndjson")
        assert answer.status_code == 200, answer.text
        again = await post(http, lines, "application/x-ndjson")
        assert again.status_code == 200  # re-posting is accepted; the consumers drop the duplicates

        def settled(records: list[Any]) -> bool:
            return any(s["data"]["period"] == "2022H1" and s["data"]["notifications"]["received"] == 2
                       for s in decoded(records))

        records = await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, settled, timeout=60)
    h1 = [s["data"] for s in decoded(records) if s["data"]["period"] == "2022H1"][-1]
    assert h1["notifications"]["received"] == 2 and h1["notifications"]["assessed"] == 1


async def test_taskforce_publish_through_the_gateway_reports_refused_lines(stack, prefix, tokens, tmp_path):
    from typer.testing import CliRunner

    from taskforce.cli import app

    feed = tmp_path / "feed.jsonl"
    mine, theirs = fresh(), fresh(municipality_code="849")
    feed.write_text("\n".join([json.dumps(mine), "not json", json.dumps(theirs)]) + "\n")
    async with gateway(stack, prefix, tokens) as gw:
        result = await asyncio.to_thread(CliRunner().invoke, app, [
            "publish", str(feed), "--gateway", gw.base_url, "--token", "token-480"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "not_in_scope" in result.output and "invalid_json" in result.output
    assert "notification.received" in result.output
    records = await read_until(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, lambda r: len(r) >= 1)
    assert [json.loads(r.value)["event_id"] for r in records] == [mine["event_id"]]
