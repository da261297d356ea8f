"""Two batches in flight, overlapping where the order of effects allows.

A batch takes three steps:

1. `prepare(records)`: CPU only (decode, validate, group; dead letters built). It starts as
   soon as the batch is fetched, while the previous batch is still being applied.
2. `apply(prepared, records)`: the store writes; returns the records to publish. One batch
   at a time, in the order fetched: a batch's reads must see the previous batch's writes.
3. `deliver(out, records)`: publish those records, then commit the batch's offsets. Also one
   batch at a time, in order; the next batch's `apply` runs meanwhile (its reads need only
   this batch's writes, which have landed).

The consumer's handler (`submit`) returns once the *previous* batch has committed, so at
most two batches are in flight. Each batch commits explicit offsets (one past its own last
record per partition), never the consumer's position: the fetcher may be a batch ahead,
and a commit must not cover records whose writes have not landed. Since batches commit in
order, an offset committed is always one past records already written and published.

The steps do not give up (they retry in place, see `Consumption`), so a batch is never skipped
and nothing needs rewinding. Should a step fail all the same, no later batch commits: the
pipeline is marked broken (the service reports not ready) and everything after the last
commit is redelivered when the process restarts. A commit that fails because the partition
has moved to another member is dropped: the new owner redelivers those records, and
applying them again has no effect (event ids are recorded with the writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from services.common import tracing

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, ConsumerRecord

log = logging.getLogger(__name__)

Prepare = Callable[[list["ConsumerRecord"]], Awaitable[Any]]
Apply = Callable[[Any, list["ConsumerRecord"]], Awaitable[Any]]
Deliver = Callable[[Any, list["ConsumerRecord"]], Awaitable[None]]


def next_offsets(records: list[ConsumerRecord]) -> dict[TopicPartition, int]:
    """Per partition, the offset after the batch's last record: what its commit says.

    (Keyed by plain tuples while scanning: a `TopicPartition` is built in Python, once per
    partition rather than once per record.)
    """
    ends: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        if record.offset >= ends.get(key, -1):
            ends[key] = record.offset + 1
    return {TopicPartition(*key): end for key, end in ends.items()}


async def commit_batch(consumer: AIOKafkaConsumer | None, offsets: dict[TopicPartition, int]) -> bool:
    """Commit `offsets` for the partitions this member still owns; False when nothing was.

    aiokafka retries retriable commit errors itself. What remains mostly means the
    partitions moved (a rebalance): their records are redelivered to the new owner, where
    they change nothing. Either way the commit is dropped, not retried: the next batch's
    commit covers these records too, and at worst they are applied again, to no effect.
    """
    if consumer is None:
        return False
    owned = consumer.assignment()
    mine = {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items() if tp in owned}
    if not mine:
        return False
    try:
        await consumer.commit(mine)
    except (KafkaError, IllegalStateError) as exc:
        log.warning("offset commit dropped; a later commit or a redelivery covers it",
                    extra={"error": type(exc).__name__})
        return False
    return True


class _InFlight:
    """A submitted batch: its task, and whether its writes have landed."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None]
        #: Set once the batch's writes have landed, or the batch has ended without them.
        self.applied = asyncio.Event()
        self.written = False


class PipelineBroken(RuntimeError):
    """Raised by a batch whose predecessor failed: committing it would skip records."""


class BatchPipeline:
    """Runs a batch's steps alongside the previous batch's later steps; commits in order."""

    def __init__(self, prepare: Prepare, apply: Apply, deliver: Deliver,
                 consumer: Callable[[], AIOKafkaConsumer | None], traced_as: str = "",
                 group: str | None = None) -> None:
        self.prepare = prepare
        #: The service and consumer group named on the batch's trace spans (`tracing.batch`).
        self.traced_as = traced_as
        self.group = group
        self.apply = apply
        self.deliver = deliver
        self.consumer = consumer
        #: Set at shutdown: a batch submitted from then on is finished before `submit` returns.
        self.closing = False
        #: A batch failed for good: nothing after it may be committed.
        self.broken = False
        self._last: _InFlight | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def submit(self, records: list[ConsumerRecord]) -> None:
        """Start the batch; return when the batch before it has committed."""
        previous = self._last
        current = _InFlight()
        current.task = asyncio.create_task(self._run(records, previous, current))
        self._last = current
        self._in_flight.add(current.task)
        current.task.add_done_callback(self._done)
        current.task.add_done_callback(lambda _task: current.applied.set())
        if previous is not None:
            await asyncio.wait({previous.task})
        if self.closing:
            await asyncio.wait({current.task})

    async def _run(self, records: list[ConsumerRecord], previous: _InFlight | None,
                   current: _InFlight) -> None:
        with tracing.batch(records, self.traced_as, self.group):
            with tracing.step("decode"):
                prepared = await self.prepare(records)
            if previous is not None:
                await previous.applied.wait()  # applied in order: reads see the previous writes
                self._check(previous, ended=False)
            with tracing.step("store"):
                out = await self.apply(prepared, records)
            current.written = True
            current.applied.set()
            if previous is not None:
                await asyncio.wait({previous.task})  # published and committed in order
                self._check(previous, ended=True)
            with tracing.step("produce"):
                await self.deliver(out, records)
            with tracing.step("commit"):
                await commit_batch(self.consumer(), next_offsets(records))

    def _check(self, previous: _InFlight, *, ended: bool) -> None:
        """Raise when the previous batch failed: going on would commit past its records."""
        task = previous.task
        failed = task.done() and (task.cancelled() or task.exception() is not None)
        if self.broken or failed or not previous.written or (ended and not task.done()):
            raise PipelineBroken("an earlier batch failed; not committing past it")

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if task.cancelled():
            self.broken = True
            return
        error = task.exception()
        if error is not None:
            self.broken = True
            if not isinstance(error, PipelineBroken):
                log.error("batch failed for good; no later batch is committed", exc_info=error)

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until every submitted batch has committed; False if `timeout_s` ran out."""
        last = self._last
        if last is None or last.task.done():
            return True
        done, _pending = await asyncio.wait({last.task}, timeout=timeout_s)
        return bool(done)

    async def abandon(self) -> None:
        """Stop the batch in flight (shutdown after the grace period): it is redelivered."""
        for task in list(self._in_flight):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
