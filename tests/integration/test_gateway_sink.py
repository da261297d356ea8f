"""The gateway's producer against the real broker: a request's records go as batches per
partition, on the partitions `send()` would choose, in request order, each acknowledged."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer

from schemas import topics
from services.common.connections import as_connection
from services.common.kafka import ensure_topics
from services.gateway.config import GatewayConfig
from services.gateway.sink import MAX_BATCH_BYTES, Sink
from tests.support.kafka import read_until

pytestmark = pytest.mark.integration

CODES = (b"480", b"849", b"330", b"482", b"607", b"101")


async def started_sink(bootstrap: str, prefix: str) -> Sink:
    await ensure_topics(bootstrap, prefix)
    sink = Sink(as_connection(bootstrap), prefix, GatewayConfig(), "test-gateway-sink")
    sink.producer = await sink._start_producer()
    return sink


async def test_records_land_where_send_would_put_them_in_request_order(stack, prefix):
    # More than one batch's worth on one partition (480), a few records on the others, two topics.
    padding = "x" * 900
    big = [(topics.NOTIFICATIONS, b"480", json.dumps({"n": i, "pad": padding}).encode())
           for i in range(MAX_BATCH_BYTES // 900 + 200)]
    small = [(topic, code, json.dumps({"n": i, "code": code.decode()}).encode())
             for i, (topic, code) in enumerate((t, c) for c in CODES for t in (topics.NOTIFICATIONS,
                                                                                topics.APPLICATIONS))]
    records = big[:10] + small + big[10:]
    sink = await started_sink(stack.bootstrap_servers, prefix)
    try:
        acked = await sink.produce(records, 30)
    finally:
        await sink.stop()
    assert acked == [True] * len(records)
    assert not sink.unacknowledged

    # Where a plain producer's send() puts each key (the consumers' ordering relies on it), on
    # topics made as the gateway's are.
    await ensure_topics(stack.bootstrap_servers, f"{prefix}check.")
    expected: dict[tuple[str, bytes], int] = {}
    producer = AIOKafkaProducer(**as_connection(stack.bootstrap_servers).client_args(), acks="all")
    await producer.start()
    try:
        for topic in (topics.NOTIFICATIONS, topics.APPLICATIONS):
            for code in CODES:
                metadata = await producer.send_and_wait(f"{prefix}check.{topic}", b"{}", key=code)
                expected[(topic, code)] = metadata.partition
    finally:
        await producer.stop()

    for topic in (topics.NOTIFICATIONS, topics.APPLICATIONS):
        sent = [(key, value) for t, key, value in records if t == topic]
        count = len(sent)
        found = await read_until(stack.bootstrap_servers, prefix + topic,
                                 lambda r, count=count: len(r) >= count)
        assert sorted((r.key, r.value) for r in found) == sorted(sent)
        for record in found:
            assert record.partition == expected[(topic, record.key)], record.key
        for code in CODES:  # request order within each key's partition
            assert [r.value for r in sorted(found, key=lambda r: r.offset) if r.key == code] == [
                value for key, value in sent if key == code]
