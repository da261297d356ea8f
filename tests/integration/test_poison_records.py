"""Poison records against the real broker and store: each one reaches the DLQ with its
reason, holding no CPR-like number and fitting under the broker's limit, and the service
goes on with the records after it, without a restart. An output the broker refuses for
good goes to the DLQ in its place, and the rest of the batch is published."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from schemas import topics
from schemas.cpr import CPR_PATTERN, mask_cpr
from services.common.records import OutRecord
from services.intake.app import create
from tests.support.events import received
from tests.support.kafka import decoded, read_until
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration

_CPR = re.compile(CPR_PATTERN.pattern.encode())


def _poison() -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]], str]]:
    """(key, value, headers, the DLQ reason wanted) for each poison record."""
    deep = b'{"a":' * 600 + b'"\\u0030101901234"' + b"}" * 600  # 4 KB, nested 600 deep
    long_child = received("n-long", "2022-03-01T10:00:00+01:00")
    long_child["data"]["child_ref"] = "x" * 201
    spelled = received("n-spelled", "2022-03-01T10:00:00+01:00")
    spelled["data"]["child_ref"] = "barn_０１０１９０ 1234"
    big = received("n-big", "2022-03-01T10:00:00+01:00")
    big["data"]["child_ref"] = "0101901234 " + "y" * 300_000
    return [
        (b"480", deep, [], "invalid_json"),
        (b"480", None, [], "invalid_json"),  # a tombstone
        (b"480", b"\xff\xfe 0101901234 \x00" * 50, [("h", b"\x00\xff" * 100)], "invalid_encoding"),
        (b"480" + b"\x00" * 5000 + b"0101901234", json.dumps(long_child).encode(), [], "invalid_event"),
        (b"480", json.dumps(spelled, ensure_ascii=False).encode(), [], "cpr_number"),
        (b"480", json.dumps(big).encode(), [], "invalid_event"),
    ]


def _notification(nid: str, at: str) -> bytes:
    return json.dumps(received(nid, at)).encode()


def _entities(records: list[ConsumerRecord]) -> set[str]:
    return {d["data"]["entity_id"] for d in decoded(records) if "entity_id" in d["data"]}


async def test_poison_records_reach_the_dlq_and_the_service_goes_on(stack, prefix):
    poison = _poison()
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers, max_request_size=4 * 1024 * 1024)
    topic = prefix + topics.NOTIFICATIONS
    async with running(create, settings_for("intake", stack, prefix)):
        await producer.start()
        try:
            await (await producer.send(topic, _notification("n1", "2022-03-01T10:00:00+01:00"), key=b"480"))
            for key, value, headers, _ in poison:
                await (await producer.send(topic, value, key=key, headers=headers or None))
            await (await producer.send(topic, _notification("n2", "2022-03-02T10:00:00+01:00"), key=b"480"))
        finally:
            await producer.stop()
        dlq = await read_until(stack.bootstrap_servers, prefix + topics.DLQ,
                               lambda rs: len(rs) >= len(poison))
        states = await read_until(stack.bootstrap_servers, prefix + topics.REPORTING,
                                  lambda rs: _entities(rs) >= {"n1", "n2"})

    reasons = sorted(dict(r.headers)["reason"].decode() for r in dlq)
    assert reasons == sorted(wanted for *_, wanted in poison)  # the odd key lands on another partition
    for record in dlq:
        for part in (record.value or b"", record.key or b"", *(v for _, v in record.headers)):
            assert not _CPR.search(part) and mask_cpr(part) == part
        assert len(record.value) <= 256 * 1024 and len(record.key) <= 1024
    truncated = [dict(r.headers) for r in dlq if "value_truncated_from" in dict(r.headers)]
    assert [int(h["value_truncated_from"]) for h in truncated] == [len(poison[-1][1])]
    assert _entities(states) == {"n1", "n2"}


async def test_an_output_the_broker_refuses_goes_to_the_dlq_and_the_rest_is_published(stack, prefix):
    settings = settings_for("intake", stack, prefix)
    reporting = settings.topic(topics.REPORTING)
    too_large = OutRecord(reporting, b"480", b"z" * (2 * 1024 * 1024))  # over the producer's 1 MiB
    fine = OutRecord(reporting, b"480", b'{"fine": true}')
    async with running(create, settings) as service:
        await asyncio.wait_for(service.runtime.publish([too_large, fine]), timeout=30)
        dlq = await read_until(stack.bootstrap_servers, prefix + topics.DLQ, lambda rs: len(rs) >= 1)
        out = await read_until(stack.bootstrap_servers, reporting, lambda rs: len(rs) >= 1)
        refused = service.runtime.metrics.registry.get_sample_value(
            "taskforce_unpublishable_records_total", {"service": "intake", "reason": "output_too_large"})
    headers = {k: v.decode() for k, v in dlq[0].headers}
    assert headers["reason"] == "output_too_large"
    assert headers["original_topic"] == topics.REPORTING
    assert headers["original_size"] == str(len(too_large.value))
    assert int(headers["value_truncated_from"]) == len(too_large.value) and len(dlq[0].value) == 256 * 1024
    assert [r.value for r in out] == [fine.value]
    assert refused == 1
