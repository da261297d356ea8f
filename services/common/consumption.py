"""A service's input while it runs: the subscriber, its batches' steps retried in place, and
what the service says of them (readiness, batch metrics, consumer lag).

Made from a `Service` when the service is served (`services.common.serving.build_app`). In
the service's style, batched consumption through a two-batch pipeline (the next batch is
prepared while the previous one is written, see `services.common.pipeline`), offsets
committed only after a batch's writes and publishes succeeded. `batched=False` is FastStream's
default one-in-flight subscriber instead (each record on its own, committed after its writes),
which the benchmark compares with (`bench/single.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage

from services.common.lag_watch import LagWatch
from services.common.pipeline import BatchPipeline
from services.common.store import TRANSIENT_ERRORS, store_answers

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from services.common.records import OutRecord
    from services.common.service import Service

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
#: How long a rebalance waits for the batches in flight to commit before letting go.
REBALANCE_DRAIN_S = 10.0


@dataclass(frozen=True, slots=True)
class Applied:
    """A batch whose writes have landed: the records it has to publish, and the time taken."""

    out: list[OutRecord]
    seconds: float


class Consumption:
    """Consumes the service's input topics with its steps, from construction on: the
    subscriber is made here, and starts with the broker."""

    def __init__(self, service: Service, batched: bool = True) -> None:
        self.service = service
        self.runtime = runtime = service.runtime
        self.settings = settings = runtime.settings
        self.metrics = runtime.metrics
        self.outage = False
        #: Consumer lag per owned partition, shown on /metrics.
        self.lag = LagWatch(runtime)
        #: The batches in flight (None: the one-in-flight style has no pipeline).
        self.pipeline: BatchPipeline | None = None
        common: dict[str, Any] = {"group_id": settings.group_id, "auto_offset_reset": "earliest"}
        if batched:
            self.pipeline = pipeline = BatchPipeline(
                service.steps.prepare, self.apply, self.deliver, lambda: runtime.consumer,
                traced_as=settings.service, group=settings.group_id)

            async def consume(message: KafkaMessage) -> None:
                await pipeline.submit(list(message.raw_message))

            runtime.subscribe(
                service.input_topics, consume, **common,
                batch=True,
                max_records=settings.batch_max_records,
                batch_timeout_ms=settings.batch_timeout_ms,
                fetch_max_wait_ms=settings.fetch_max_wait_ms,
                ack_policy=AckPolicy.MANUAL,
                parser=_tolerant_batch_parser,
                decoder=_raw_decoder,
                listener=_OnRebalance(pipeline, service.on_rebalance, self.lag.forget),
            )
        else:
            async def consume_one(message: KafkaMessage) -> None:
                await self.process([message.raw_message])

            runtime.subscribe(service.input_topics, consume_one, **common,
                              ack_policy=AckPolicy.NACK_ON_ERROR, decoder=_raw_decoder)

    async def process(self, records: list[ConsumerRecord]) -> None:
        """Every step of one batch, in sequence (the one-in-flight path; no commit here)."""
        prepared = await self.service.steps.prepare(records)
        await self.deliver(await self.apply(prepared, records), records)

    async def apply(self, prepared: Any, records: list[ConsumerRecord]) -> Applied:
        """Apply a prepared batch; retry in place until it succeeds. Returns what to publish.

        The batch is not given up on any error: an outage is waited out (not-ready
        meanwhile), and anything else (a bug, or the engine's version conflicts that would
        not settle) is logged and retried with backoff, so no later batch is committed past
        it. Bad input never gets here: it went to the dead-letter topic when prepared.
        """
        steps = self.service.steps
        started = time.perf_counter()
        out = await self._until_done(lambda: steps.apply(prepared), "applying", len(records))
        return Applied(out, time.perf_counter() - started)

    async def deliver(self, applied: Applied, records: list[ConsumerRecord]) -> None:
        """Publish a batch's records (retried in place like `apply`), then account for it."""
        started = time.perf_counter()
        await self._until_done(lambda: self.runtime.publish(applied.out), "publishing", len(records))
        seconds = applied.seconds + time.perf_counter() - started
        self.metrics.batch_size.labels(self.settings.service).observe(len(records))
        self.metrics.batch_seconds.labels(self.settings.service).observe(seconds)
        log.info("batch applied", extra={"records": len(records), "published": len(applied.out),
                                         "seconds": round(seconds, 4)})
        self.lag.observe(records)

    async def _until_done(self, step: Callable[[], Awaitable[Any]], doing: str, records: int) -> Any:
        delay = 0.1
        while True:
            try:
                result = await step()
            except TRANSIENT_ERRORS as exc:
                self._set_outage(True)
                self.metrics.store_retries.labels(self.settings.service).inc()
                log.warning(f"{doing} a batch failed on an outage; retrying",
                            extra={"error": type(exc).__name__, "retry_in_s": delay})
            except Exception:
                log.exception(f"{doing} a batch failed; retrying it",
                              extra={"records": records, "retry_in_s": delay})
            else:
                if self.outage:
                    self._set_outage(False)
                return result
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _set_outage(self, outage: bool) -> None:
        self.outage = outage
        self.metrics.ready.labels(self.settings.service).set(0 if outage else 1)

    async def is_ready(self) -> tuple[bool, dict[str, bool]]:
        checks = {
            "store": await store_answers(self.runtime.mongo, self.settings.database),
            "partitions_assigned": self.runtime.assigned(),
            "no_outage": not self.outage,
            "batches_flowing": self.pipeline is None or not self.pipeline.broken,
        }
        return all(checks.values()), checks


class _OnRebalance(ConsumerRebalanceListener):
    """Before partitions move, lets the batches in flight commit and drops their lag; then
    calls back (e.g. to drop caches of what this process owned)."""

    def __init__(self, pipeline: BatchPipeline, callback: Callable[[], None] | None,
                 forget_lag: Callable[[Iterable[TopicPartition]], None] | None = None) -> None:
        self.pipeline = pipeline
        self.callback = callback
        self.forget_lag = forget_lag

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if not await self.pipeline.drain(REBALANCE_DRAIN_S):
            log.warning("batches still in flight at a rebalance; their records may be redelivered")
        if self.forget_lag:
            self.forget_lag(revoked)
        if self.callback:
            self.callback()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if self.callback:
            self.callback()


async def _tolerant_batch_parser(
    records: tuple[ConsumerRecord, ...],
    original_parser: Callable[[tuple[ConsumerRecord, ...]], Awaitable[Any]],
) -> Any:
    """FastStream's batch parser decodes every header value as UTF-8, and one that is not
    fails the whole batch, for good: such values are replaced first (no service reads input
    headers; the records themselves still reach decoding and, if bad, the DLQ)."""
    if any(record.headers for record in records):
        records = tuple(_with_text_headers(record) for record in records)
    return await original_parser(records)


def _with_text_headers(record: ConsumerRecord) -> ConsumerRecord:
    try:
        for _key, value in record.headers:
            value.decode()
    except (UnicodeDecodeError, AttributeError):
        headers = tuple((key, bytes(value or b"").decode("utf-8", "replace").encode())
                        for key, value in record.headers)
        return dataclasses.replace(record, headers=headers)
    return record


async def _raw_decoder(message: Any) -> Any:
    """Leave bytes alone: validation is ours (schemas.decode), so a bad record reaches the DLQ."""
    return None
