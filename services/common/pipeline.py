"""Two batches in flight: the next one is decoded while the previous one is written.

A batch takes two steps:

1. `prepare(records)`: CPU only (decode, validate, group; dead letters built). It starts as
   soon as the batch is fetched, while the previous batch is still being written.
2. `finish(prepared, records)`: store writes and publishes, then the batch's offsets are
   committed. Batches take this step one at a time, in the order they were fetched.

The consumer's handler (`submit`) returns once the *previous* batch has finished, so at most
two batches are in flight. Each batch commits explicit offsets (one past its own last
record per partition), never the consumer's position: the fetcher may be a batch ahead,
and a commit must not cover records whose writes have not landed. Since batches finish in
order, an offset committed is always one past records already written and published.

`prepare` and `finish` do not give up (they retry in place, see `Runtime`), so a batch is
never skipped and nothing needs rewinding. Should a step fail all the same, no later batch
commits: the pipeline is marked broken (the service reports not ready) and everything
after the last commit is redelivered when the process restarts. A commit that fails because
the partition has moved to another member is dropped: the new owner redelivers those
records, and applying them again has no effect (event ids are recorded with the writes).
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

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, ConsumerRecord

log = logging.getLogger(__name__)

Prepare = Callable[[list["ConsumerRecord"]], Awaitable[Any]]
Finish = Callable[[Any, list["ConsumerRecord"]], Awaitable[None]]


def next_offsets(records: list[ConsumerRecord]) -> dict[TopicPartition, int]:
    """Per partition, the offset after the batch's last record: what its commit says."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        if record.offset >= offsets.get(tp, -1):
            offsets[tp] = record.offset + 1
    return offsets


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


class PipelineBroken(RuntimeError):
    """Raised by a batch whose predecessor failed: committing it would skip records."""


class BatchPipeline:
    """Runs `prepare` of a batch alongside `finish` of the one before; finishes in order."""

    def __init__(self, prepare: Prepare, finish: Finish,
                 consumer: Callable[[], AIOKafkaConsumer | None]) -> None:
        self.prepare = prepare
        self.finish = finish
        self.consumer = consumer
        #: Set at shutdown: a batch submitted from then on is finished before `submit` returns.
        self.closing = False
        #: A batch failed for good: nothing after it may be committed.
        self.broken = False
        self._last: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def submit(self, records: list[ConsumerRecord]) -> None:
        """Start the batch; return when the batch before it has committed."""
        previous = self._last
        self._last = current = asyncio.create_task(self._run(records, previous))
        self._in_flight.add(current)
        current.add_done_callback(self._done)
        if previous is not None:
            await asyncio.wait({previous})
        if self.closing:
            await asyncio.wait({current})

    async def _run(self, records: list[ConsumerRecord], previous: asyncio.Task[None] | None) -> None:
        prepared = await self.prepare(records)
        if previous is not None:
            await asyncio.wait({previous})  # batches are written, published and committed in order
        if self.broken or (previous is not None and (previous.cancelled() or previous.exception())):
            raise PipelineBroken("an earlier batch failed; not committing past it")
        await self.finish(prepared, records)
        await commit_batch(self.consumer(), next_offsets(records))

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
        if last is None or last.done():
            return True
        done, _pending = await asyncio.wait({last}, timeout=timeout_s)
        return bool(done)

    async def abandon(self) -> None:
        """Stop the batch in flight (shutdown after the grace period): it is redelivered."""
        for task in list(self._in_flight):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
