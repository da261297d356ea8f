"""Consumer-group offsets on the real broker: wait for a group to catch up, or rewind it."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.connections import KafkaConnection, as_connection
from services.common.kafka import commit_offsets
from taskforce.settle import OffsetWatch


async def _partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    await consumer.start()
    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]


async def lag(bootstrap: str | KafkaConnection, group: str, topics: list[str]) -> int:
    """Records of `topics` the group has not committed yet (true end offsets: the embedded
    broker under-reports them, see taskforce/settle.py)."""
    async with OffsetWatch(bootstrap) as watch:
        ends = await watch.end_offsets(tuple(topics))
        committed = await watch.admin.list_consumer_group_offsets(group, partitions=list(ends))
    return sum(max(end - max(committed[tp].offset if tp in committed else 0, 0), 0)
               for tp, end in ends.items())


async def wait_caught_up(bootstrap: str | KafkaConnection, group: str, topics: list[str],
                         timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (remaining := await lag(bootstrap, group, topics)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} still {remaining} records behind on {topics}")
        await asyncio.sleep(0.3)


async def rewind(bootstrap: str | KafkaConnection, group: str, topics: list[str]) -> None:
    """Commit offset 0 everywhere: the group will get every record again (a redelivery)."""
    consumer = AIOKafkaConsumer(**as_connection(bootstrap).client_args(), group_id=group,
                                enable_auto_commit=False)
    try:
        partitions = await _partitions(consumer, topics)
    finally:
        await consumer.stop()
    await commit_offsets(bootstrap, group, dict.fromkeys(partitions, 0))
