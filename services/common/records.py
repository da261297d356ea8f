"""Outgoing records and how a batch of them is published."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer


@dataclass(frozen=True, slots=True)
class OutRecord:
    topic: str
    key: bytes
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)


def producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    """The producer for a service's outgoing records: all replicas acknowledge, a little
    lingering batches records; no idempotence (exactly-once effects come from idempotent
    consumers, and the embedded broker does not support idempotent producers)."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, client_id=client_id, acks="all",
                            linger_ms=5, max_batch_size=256 * 1024, enable_idempotence=False)


async def publish_all(producer: AIOKafkaProducer, records: list[OutRecord]) -> None:
    """Send every record without waiting one by one, then wait until the broker has all.

    A plain aiokafka producer, not FastStream's per-message publish: the batch is the unit
    here, and the per-message middleware chain cost more than the rest of the handler.
    Raises if any send failed, so the caller's batch is retried and its offsets stay put.
    """
    if not records:
        return
    futures = [
        await producer.send(r.topic, r.value, key=r.key,
                            headers=[(k, v.encode()) for k, v in r.headers.items()] or None)
        for r in records
    ]
    await asyncio.gather(*futures)
