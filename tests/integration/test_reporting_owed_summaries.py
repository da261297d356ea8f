"""Summaries owed while the consumer is behind, against the real broker and store.

While records wait on a municipality's partition its summaries are not recomputed after every
batch; once the partition is caught up they are, and they are the summaries a processor that
never waits publishes. What is owed survives a crash: another process that gets the partition
takes it over, and only for its own partitions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from schemas import topics
from services.common.kafka import ensure_topics
from services.common.runtime import Runtime
from services.common.settings import Settings
from services.reporting.app import compose
from services.reporting.processor import SummaryProcessor
from services.reporting.replica import OWED
from tests.support.kafka import produce
from tests.support.services import runtime_consuming_with, settings_for

pytestmark = pytest.mark.integration

def changed(code: str, number: int, received_at: str, version: int = 1) -> bytes:
    """A notification's state as intake publishes it, with intake's watermark."""
    entity = f"n{code}-{number}"
    return json.dumps({
        "event_id": str(uuid.uuid4()), "event_type": "reporting.notification_changed", "schema_version": 1,
        "occurred_at": received_at, "municipality_code": code, "source": "taskforce.intake",
        "data": {"entity_id": entity, "version": version, "watermark": received_at,
                 "state": {"notification_id": entity, "received_at": received_at, "urgent": number % 2 == 0,
                           "reporter": "school"}},
    }).encode()


class Partition:
    """Records of one partition of the reporting topic, with growing offsets."""

    def __init__(self, settings: Settings, number: int) -> None:
        self.topic = settings.topic(topics.REPORTING)
        self.number = number
        self.offset = 0

    def records(self, *values: tuple[str, bytes]) -> list[ConsumerRecord[bytes, bytes]]:
        out = []
        for code, value in values:
            out.append(ConsumerRecord(self.topic, self.number, self.offset, 0, 0, code.encode(), value,
                                      None, len(code), len(value), ()))
            self.offset += 1
        return out

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.number)


async def apply(processor: SummaryProcessor, records: list[ConsumerRecord[bytes, bytes]],
                waiting: set[tuple[str, int]]) -> None:
    """Apply a batch as the consumer would, with `waiting`: the partitions on which the broker
    holds more records after it (what `Runtime.waiting_after` reads from the consumer)."""
    decoded = await processor.prepare(records)
    decoded.waiting = waiting
    await processor.apply(decoded)


@pytest.fixture
async def processors(stack: Any, prefix: str) -> AsyncIterator[Callable[[str], Awaitable[SummaryProcessor]]]:
    """Starts reporting processors, each as a fresh process has it (own memory), on the topics
    and database of `prefix` + a name."""
    runtimes: list[Runtime] = []

    async def started(name: str) -> SummaryProcessor:
        settings = settings_for("reporting", stack, prefix + name)
        await ensure_topics(stack.bootstrap_servers, settings.topic_prefix)
        service = compose(settings)
        runtime = service.runtime
        runtimes.append(runtime)
        await runtime.start_producer()
        processor: SummaryProcessor = service.steps.apply.__self__  # type: ignore[attr-defined]
        await processor.setup()
        return processor

    try:
        yield started
    finally:
        for runtime in runtimes:
            await runtime.stop_producer()
            await runtime.mongo.drop_database(runtime.settings.database)
            await runtime.mongo.close()


async def summaries(processor: SummaryProcessor, code: str) -> dict[str, dict[str, Any]]:
    return {period: stored.data for period, stored in (await processor.replica.summaries(code)).items()}


async def notes(processor: SummaryProcessor) -> dict[str, tuple[str, int]]:
    return {d["_id"]: (d["topic"], d["partition"]) async for d in processor.replica.db[OWED].find()}


async def test_summaries_wait_for_the_partition_to_catch_up_and_equal_those_never_held_back(
    processors: Any,
) -> None:
    behind: SummaryProcessor = await processors("behind.")
    reference: SummaryProcessor = await processors("reference.")
    first = {0: [("480", changed("480", n, f"2024-03-0{n}T09:00:00+01:00")) for n in range(1, 4)],
             1: [("101", changed("101", 1, "2024-02-01T09:00:00+01:00"))]}
    second = {0: [("480", changed("480", 4, "2024-05-01T09:00:00+02:00")),
                  ("480", changed("480", 5, "2024-08-01T09:00:00+02:00")),
                  ("480", changed("480", 1, "2024-03-01T09:00:00+01:00", version=2))]}

    p0, p1 = Partition(behind.settings, 0), Partition(behind.settings, 1)
    await apply(behind, p0.records(*first[0]) + p1.records(*first[1]), waiting={p0.key, p1.key})
    assert await summaries(behind, "480") == {} and await summaries(behind, "101") == {}
    assert await notes(behind) == {"480": p0.key, "101": p1.key}  # stored before the commit

    await apply(behind, p0.records(*second[0]), waiting=set())  # P0 caught up; P1's records to come
    assert set(await summaries(behind, "480")) == {"2024H1", "2024H2"}
    assert await summaries(behind, "101") == {}
    assert await notes(behind) == {"101": p1.key}

    r0, r1 = Partition(reference.settings, 0), Partition(reference.settings, 1)
    for records in (r0.records(*first[0]), r1.records(*first[1]), r0.records(*second[0])):
        await apply(reference, records, waiting=set())
    assert await summaries(behind, "480") == await summaries(reference, "480")
    assert (await summaries(behind, "480"))["2024H1"]["notifications"]["received"] == 4


async def test_a_new_process_takes_over_what_was_owed_on_its_own_partitions_only(processors: Any) -> None:
    crashed: SummaryProcessor = await processors("shared.")
    p0, p1 = Partition(crashed.settings, 0), Partition(crashed.settings, 1)
    owed = p1.records(("101", changed("101", 1, "2024-02-01T09:00:00+01:00")))
    await apply(crashed, owed, waiting={p1.key})
    assert await notes(crashed) == {"101": p1.key}

    # Another process (or this one restarted): its memory is empty, the note is in the store.
    successor: SummaryProcessor = await processors("shared.")
    await apply(successor, p0.records(("480", changed("480", 1, "2024-03-01T09:00:00+01:00"))), waiting=set())
    assert set(await summaries(successor, "480")) == {"2024H1"}
    assert await summaries(successor, "101") == {}  # 101 lives on P1, not in this batch
    assert await notes(successor) == {"101": p1.key}

    # The next batch from P1 holds only another municipality: 101's summaries are still made.
    await apply(successor, p1.records(("102", changed("102", 1, "2024-04-01T09:00:00+02:00"))), waiting=set())
    assert set(await summaries(successor, "101")) == {"2024H1"}
    assert set(await summaries(successor, "102")) == {"2024H1"}
    assert await notes(successor) == {}


async def test_the_consumer_names_the_partitions_with_records_after_a_batch(stack: Any, prefix: str) -> None:
    topic = f"{prefix}waiting"
    await produce(stack.bootstrap_servers, topic, [b"one", b"two", b"three"], key=lambda _v: b"k")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        records: list[ConsumerRecord[bytes, bytes]] = []
        while len(records) < 3:
            for part in (await consumer.getmany(timeout_ms=500, max_records=1)).values():
                records.extend(part)
        async with runtime_consuming_with(settings_for("reporting", stack, prefix), consumer) as runtime:
            where = TopicPartition(topic, records[0].partition)
            assert runtime.waiting_after({where: records[0].offset + 1}) == {where}
            assert runtime.waiting_after({where: records[2].offset + 1}) == set()
            not_assigned = TopicPartition(topic, 99)
            assert runtime.waiting_after({not_assigned: 0}) == set()  # nothing known
        assert where in consumer.assignment()
    finally:
        await consumer.stop()
