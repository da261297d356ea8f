"""Consumer-group offsets on the real broker: wait for a group to catch up, or rewind it."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka import commit_offsets


async def _partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    await consumer.start()
    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]


async def lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Records of `topics` the group has not committed yet."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = await _partitions(consumer, topics)
        ends = await consumer.end_offsets(partitions)
        total = 0
        for tp in partitions:
            committed = await consumer.committed(tp)
            total += ends[tp] - (committed or 0)
        return total
    finally:
        await consumer.stop()


async def wait_caught_up(bootstrap: str, group: str, topics: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (remaining := await lag(bootstrap, group, topics)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} still {remaining} records behind on {topics}")
        await asyncio.sleep(0.3)


async def rewind(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit offset 0 everywhere: the group will get every record again (a redelivery)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = await _partitions(consumer, topics)
    finally:
        await consumer.stop()
    await commit_offsets(bootstrap, group, dict.fromkeys(partitions, 0))
