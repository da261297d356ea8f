"""The DLQ guard against the real servers: bad records go to the DLQ, good ones are applied."""

from __future__ import annotations

import json

import pytest

from schemas import topics
from services.intake.app import create
from tests.support.events import assessed, received
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration


async def test_four_bad_records_reach_the_dlq_and_the_good_ones_are_applied(stack, prefix):
    naive = received("n-naive", "2022-03-01T10:00:00")
    cpr = received("n-cpr", "2022-03-01T10:00:00+01:00")
    cpr["data"]["child_ref"] = "barn 010190-1234"
    unknown = received("n-x", "2022-03-01T10:00:00+01:00") | {"event_type": "notification.deleted"}
    values = [
        json.dumps(received("n1", "2022-03-01T10:00:00+01:00")).encode(),
        b'{"event_id": "oops", ',
        json.dumps(unknown).encode(),
        json.dumps(assessed("n1", "2022-03-01T11:00:00+01:00")).encode(),
        json.dumps(naive).encode(),
        json.dumps(cpr).encode(),
        json.dumps(received("n2", "2022-03-02T10:00:00+01:00")).encode(),
    ]
    async with running(create, settings_for("intake", stack, prefix)):
        await produce(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, values, key=lambda _v: b"480")
        dlq = await read_until(stack.bootstrap_servers, prefix + topics.DLQ, lambda rs: len(rs) >= 4)
        wanted = {("n1", 2), ("n2", 1)}
        states = await read_until(
            stack.bootstrap_servers, prefix + topics.REPORTING,
            lambda rs: {(d["data"]["entity_id"], d["data"]["version"]) for d in decoded(rs)} >= wanted)

    headers = [{k: v.decode() for k, v in record.headers} for record in dlq]
    assert sorted(h["reason"] for h in headers) == ["cpr_number", "invalid_event", "invalid_json",
                                                    "unknown_event_type"]
    by_reason = {h["reason"]: (h, record) for h, record in zip(headers, dlq, strict=True)}
    assert "occurred_at" in by_reason["invalid_event"][0]["reason_detail"]
    assert {h["original_topic"] for h in headers} == {topics.NOTIFICATIONS}
    assert len({h["original_partition"] for h in headers}) == 1  # one key, one partition
    assert sorted(int(h["original_offset"]) for h in headers) == [1, 2, 4, 5]
    assert b"010190-1234" not in by_reason["cpr_number"][1].value
    assert b"XXXXXX-XXXX" in by_reason["cpr_number"][1].value
    entities = {d["data"]["entity_id"] for d in decoded(states)}
    assert entities == {"n1", "n2"}  # nothing of the rejected records was applied
