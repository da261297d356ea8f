"""Outgoing records and how a batch of them is published."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker


@dataclass(frozen=True, slots=True)
class OutRecord:
    topic: str
    key: bytes
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)


async def publish_all(broker: KafkaBroker, records: list[OutRecord]) -> None:
    """Send every record without waiting one by one, then wait until the broker has all.

    Raises if any send failed, so the caller's batch is retried and its offsets stay put.
    """
    if not records:
        return
    futures = [
        await broker.publish(r.value, r.topic, key=r.key, headers=r.headers, no_confirm=True)
        for r in records
    ]
    await asyncio.gather(*futures)
