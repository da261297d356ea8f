"""The batch pipeline: the next batch is prepared while the previous one finishes; batches
finish and commit in order, with explicit offsets; a failed batch stops later commits.

The commit target here is a recording stand-in for aiokafka's consumer (this tests the
ordering logic only; the services' integration and fault suites run it on a real broker).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata
from hypothesis import given
from hypothesis import strategies as st

from services.common.pipeline import BatchPipeline, commit_batch, next_offsets

pytestmark = pytest.mark.unit

TP = TopicPartition("t", 0)
OTHER = TopicPartition("t", 1)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int


@dataclass
class RecordingConsumer:
    owned: set[TopicPartition] = field(default_factory=lambda: {TP, OTHER})
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    refuse: bool = False

    def assignment(self) -> set[TopicPartition]:
        return self.owned

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        await asyncio.sleep(0)
        if self.refuse:
            raise CommitFailedError("rebalanced")
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})


def batch(start: int, size: int, partition: int = 0) -> list[Record]:
    return [Record("t", partition, offset) for offset in range(start, start + size)]


@dataclass
class Steps:
    """Records what happens when; `apply` and `deliver` take a while, so overlaps show."""

    log: list[str] = field(default_factory=list)
    fail_apply_of: int | None = None

    async def prepare(self, records: list[Record]) -> int:
        self.log.append(f"prepare {records[0].offset}")
        await asyncio.sleep(0)
        return records[0].offset

    async def apply(self, first: int, records: list[Record]) -> int:
        self.log.append(f"apply {first} start")
        await asyncio.sleep(0.01)
        if first == self.fail_apply_of:
            raise RuntimeError("boom")
        self.log.append(f"apply {first} end")
        return first

    async def deliver(self, first: int, records: list[Record]) -> None:
        self.log.append(f"deliver {first} start")
        await asyncio.sleep(0.01)
        self.log.append(f"deliver {first} end")

    def pipeline(self, consumer: RecordingConsumer) -> BatchPipeline:
        return BatchPipeline(self.prepare, self.apply, self.deliver, lambda: consumer)  # type: ignore[arg-type,return-value]


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1000)), min_size=1, max_size=30))
def test_next_offsets_is_one_past_each_partitions_last_record(pairs: list[tuple[int, int]]) -> None:
    records = [Record("t", partition, offset) for partition, offset in pairs]
    expected = {TopicPartition("t", p): max(o for q, o in pairs if q == p) + 1 for p, _ in pairs}
    assert next_offsets(records) == expected  # type: ignore[arg-type]


async def test_steps_overlap_only_where_the_order_of_effects_allows() -> None:
    steps, consumer = Steps(), RecordingConsumer()
    pipeline = steps.pipeline(consumer)
    await pipeline.submit(batch(0, 10))  # type: ignore[arg-type]
    await pipeline.submit(batch(10, 10))  # type: ignore[arg-type]
    assert await pipeline.drain(5)
    log = steps.log
    assert log.index("prepare 10") < log.index("apply 0 end")  # decoding overlaps the writes
    assert log.index("apply 0 end") < log.index("apply 10 start")  # writes in order
    assert log.index("apply 10 start") < log.index("deliver 0 end")  # writes overlap publishing
    assert log.index("deliver 0 end") < log.index("deliver 10 start")  # published in order
    assert consumer.commits == [{TP: 10}, {TP: 20}]


async def test_submit_returns_only_once_the_previous_batch_has_committed() -> None:
    steps, consumer = Steps(), RecordingConsumer()
    pipeline = steps.pipeline(consumer)
    await pipeline.submit(batch(0, 5))  # type: ignore[arg-type]
    assert consumer.commits == []  # the first batch is still in flight
    await pipeline.submit(batch(5, 5))  # type: ignore[arg-type]
    assert consumer.commits == [{TP: 5}]  # at most two batches in flight
    pipeline.closing = True
    await pipeline.submit(batch(10, 5))  # type: ignore[arg-type]
    assert consumer.commits == [{TP: 5}, {TP: 10}, {TP: 15}]  # closing: finished when handed over


async def test_a_failed_batch_stops_every_later_commit() -> None:
    steps, consumer = Steps(fail_apply_of=10), RecordingConsumer()
    pipeline = steps.pipeline(consumer)
    for start in (0, 10, 20, 30):
        await pipeline.submit(batch(start, 10))  # type: ignore[arg-type]
    await pipeline.drain(5)
    assert pipeline.broken
    assert consumer.commits == [{TP: 10}]
    assert "apply 20 start" not in steps.log  # nothing after the failure was applied either


async def test_a_commit_only_covers_partitions_still_owned_and_a_refused_one_is_dropped() -> None:
    consumer = RecordingConsumer(owned={OTHER})
    offsets = next_offsets([*batch(0, 3), *batch(7, 2, partition=1)])  # type: ignore[arg-type]
    assert await commit_batch(consumer, offsets)  # type: ignore[arg-type]
    assert consumer.commits == [{OTHER: 9}]
    consumer.refuse = True
    assert not await commit_batch(consumer, offsets)  # type: ignore[arg-type]
    assert not await commit_batch(None, offsets)


async def test_abandon_cancels_what_is_in_flight_and_nothing_commits_after() -> None:
    started = asyncio.Event()

    async def prepare(records: list[Any]) -> None:
        return None

    async def apply_forever(_prepared: Any, _records: list[Any]) -> None:
        started.set()
        await asyncio.sleep(3600)

    async def deliver(_out: Any, _records: list[Any]) -> None:
        return None

    consumer = RecordingConsumer()
    pipeline = BatchPipeline(prepare, apply_forever, deliver, lambda: consumer)  # type: ignore[arg-type,return-value]
    await pipeline.submit(batch(0, 3))  # type: ignore[arg-type]
    await started.wait()
    assert not await pipeline.drain(0.01)
    await pipeline.abandon()
    assert pipeline.broken
    assert consumer.commits == []


async def test_concurrent_writes_let_each_other_finish_then_fail_with_the_error_itself() -> None:
    from pymongo.errors import AutoReconnect

    from services.common.projection import _all_of

    finished = asyncio.Event()

    async def outage() -> None:
        await asyncio.sleep(0)
        raise AutoReconnect("store went away")

    async def slower_write() -> None:
        await asyncio.sleep(0.05)  # still running when the other step fails: not cancelled
        finished.set()

    # Unwrapped (not an exception group), so the runtime still tells an outage from a bug.
    with pytest.raises(AutoReconnect):
        await _all_of(outage(), slower_write())
    assert finished.is_set()
    assert await _all_of(asyncio.sleep(0, "a"), asyncio.sleep(0, "b")) == ["a", "b"]
