"""Publishing to and reading from the real broker in tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from services.common.connections import KafkaConnection, as_connection


async def produce(bootstrap: str | KafkaConnection, topic: str, values: Iterable[bytes | dict[str, Any]],
                  key: Callable[[bytes | dict[str, Any]], bytes | None] | None = None) -> int:
    """Send values (dicts are JSON-encoded; key = municipality code unless given)."""
    producer = AIOKafkaProducer(**as_connection(bootstrap).client_args(), linger_ms=5,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        futures = []
        for value in values:
            if isinstance(value, dict):
                record_key = key(value) if key else value.get("municipality_code", "").encode()
                raw = json.dumps(value).encode()
            else:
                record_key = key(value) if key else None
                raw = value
            futures.append(await producer.send(topic, raw, key=record_key))
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


async def read_until(bootstrap: str | KafkaConnection, topic: str,
                     done: Callable[[list[ConsumerRecord]], bool],
                     timeout: float = 30.0) -> list[ConsumerRecord]:
    """Read `topic` from the beginning until `done(records)` holds; fail after `timeout`."""
    consumer = AIOKafkaConsumer(topic, **as_connection(bootstrap).client_args(), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(records):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: condition not met after {len(records)} records")
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


def decoded(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]
