"""The composition root every service shares: Kafka subscriber, Mongo client, HTTP app.

A service supplies its input topics, its batch steps (`prepare`: decode and group, CPU
only; `apply`: persist, returning the records to publish) and its own HTTP routes. The
runtime does the rest: batched consumption in a two-batch pipeline (the next batch is
prepared while the previous one is written, see `services.common.pipeline`) with offsets
committed only after a batch's writes and publishes succeeded, retry with backoff through a
broker or store outage (not-ready meanwhile), `/healthz`, `/readyz`, `/metrics`, JSON logs
and graceful shutdown on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uvicorn
from aiokafka import ConsumerRebalanceListener, TopicPartition
from fastapi import APIRouter, FastAPI, Response
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common import tracing
from services.common.auth import Access, responses
from services.common.collector import settle_garbage_collector
from services.common.connections import kafka_connection, wait_for_servers
from services.common.dlq import unpublishable
from services.common.kafka import ensure_topics
from services.common.lag import Lag, LagGauges, LagTracker, Partition
from services.common.logs import configure_logging
from services.common.metrics import ServiceMetrics
from services.common.pipeline import BatchPipeline
from services.common.projection import ProjectionEngine
from services.common.records import OutRecord, producer, publish_all
from services.common.store import TRANSIENT_ERRORS, mongo_client, store_answers

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer, ConsumerRecord
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.settings import Settings

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
SHUTDOWN_GRACE_S = 20.0
#: How long a rebalance waits for the batches in flight to commit before letting go.
REBALANCE_DRAIN_S = 10.0
#: How long a lag refresh waits for the broker's end or committed offsets before using the
#: last fetch's high watermarks instead.
LAG_ASK_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Applied:
    """A batch whose writes have landed: the records it has to publish, and the time taken."""

    out: list[OutRecord]
    seconds: float


@dataclass(frozen=True)
class BatchSteps:
    """How a service applies a batch, in two steps the pipeline can overlap.

    `prepare` is CPU only (no I/O, no shared state): it may run while the previous batch is
    still being applied. `apply` writes and returns the records to publish; it may be called
    again with the same prepared batch after a failure, so it must be idempotent.
    """

    prepare: Callable[[list[ConsumerRecord]], Awaitable[Any]]
    apply: Callable[[Any], Awaitable[list[OutRecord]]]

    async def __call__(self, records: list[ConsumerRecord]) -> list[OutRecord]:
        """Both steps in sequence, for a rebuild's replay."""
        return await self.apply(await self.prepare(records))


@dataclass
class Runtime:
    """What a running service holds; built once by `build_runtime`."""

    settings: Settings
    metrics: ServiceMetrics
    mongo: AsyncMongoClient[dict[str, Any]]
    db: AsyncDatabase[dict[str, Any]]
    broker: KafkaBroker
    input_topics: list[str]
    steps: BatchSteps | None = None
    pipeline: BatchPipeline | None = None
    startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Hooks around a rebuild's replay (the reporting service holds back summaries meanwhile).
    before_replay: Callable[[], None] | None = None
    after_replay: Callable[[], Awaitable[None]] | None = None
    outage: bool = False
    subscriber: Any = None
    #: Consumer lag per owned partition (services.common.lag), shown on /metrics.
    lag: LagTracker = field(default_factory=LagTracker)
    _producer: AIOKafkaProducer | None = None
    _lag_gauges: LagGauges | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "start_producer() first"
        return self._producer

    async def start_producer(self) -> None:
        """Made here, not at build time: aiokafka objects need the running event loop."""
        if self._producer is None:
            out = producer(kafka_connection(self.settings), f"taskforce-{self.settings.service}",
                           self.settings.producer_max_request_bytes)
            await out.start()
            self._producer = out

    async def stop_producer(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, records: list[OutRecord]) -> None:
        """Publish records; one the broker refuses for good goes to the DLQ instead (counted,
        logged without its content), and the rest are published all the same."""
        await publish_all(self.producer, records, self._refused)

    def _refused(self, record: OutRecord, reason: str, error: BaseException) -> OutRecord:
        self.metrics.unpublishable.labels(self.settings.service, reason).inc()
        log.error("an output record was refused for good; sent to the DLQ instead",
                  extra={"reason": reason, "error": type(error).__name__,
                         "topic": self.settings.unprefixed(record.topic), "bytes": len(record.value)})
        return unpublishable(record, reason, error, self.settings)

    async def process(self, records: list[ConsumerRecord]) -> None:
        """Every step of one batch, in sequence (the one-in-flight path; no commit here)."""
        assert self.steps is not None
        prepared = await self.steps.prepare(records)
        await self.deliver(await self.apply(prepared, records), records)

    async def apply(self, prepared: Any, records: list[ConsumerRecord]) -> Applied:
        """Apply a prepared batch; retry in place until it succeeds. Returns what to publish.

        The batch is not given up on any error: an outage is waited out (not-ready
        meanwhile), and anything else (a bug, or the engine's version conflicts that would
        not settle) is logged and retried with backoff, so no later batch is committed past
        it. Bad input never gets here: it went to the dead-letter topic when prepared.
        """
        assert self.steps is not None
        steps = self.steps
        started = time.perf_counter()
        out = await self._until_done(lambda: steps.apply(prepared), "applying", len(records))
        return Applied(out, time.perf_counter() - started)

    async def deliver(self, applied: Applied, records: list[ConsumerRecord]) -> None:
        """Publish a batch's records (retried in place like `apply`), then account for it."""
        started = time.perf_counter()
        await self._until_done(lambda: self.publish(applied.out), "publishing", len(records))
        seconds = applied.seconds + time.perf_counter() - started
        self.metrics.batch_size.labels(self.settings.service).observe(len(records))
        self.metrics.batch_seconds.labels(self.settings.service).observe(seconds)
        log.info("batch applied", extra={"records": len(records), "published": len(applied.out),
                                         "seconds": round(seconds, 4)})
        self._observe_lag(records)

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

    @property
    def lag_gauges(self) -> LagGauges:
        if self._lag_gauges is None:
            self._lag_gauges = LagGauges(self.metrics.lag, self.metrics.lag_seconds,
                                         self.settings.service, self.settings.unprefixed)
        return self._lag_gauges

    def _observe_lag(self, records: list[ConsumerRecord]) -> None:
        """After a batch is published: its partitions' lag, by the high watermark of the
        consumer's last fetch (no broker round trip)."""
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is None:
            return
        owned = consumer.assignment()
        now = time.time()
        lags: dict[Partition, Lag] = {}
        for partition in self.lag.consumed(records):
            where = TopicPartition(*partition)
            if where not in owned:
                continue
            polled = consumer.last_poll_timestamp(where)
            lag = self.lag.lag(partition, consumer.highwater(where),
                               polled / 1000 if polled else now, now)
            if lag is not None:
                lags[partition] = lag
        self.lag_gauges.show(lags)

    async def refresh_lag(self) -> None:
        """Every owned partition's lag, by the broker's end offsets (one request) or the last
        fetch's high watermark, whichever is further: the gauges stay current while nothing
        is consumed (a stuck batch, an idle topic). Partitions not owned lose their samples."""
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is None:
            return
        owned = set(consumer.assignment())
        self._retain_lag(owned)
        if not owned:
            return
        asked = time.time()
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(sorted(owned)), LAG_ASK_TIMEOUT_S)
        except Exception as exc:  # an outage: the high watermarks are all there is
            log.debug("end offsets not available for lag", extra={"error": type(exc).__name__})
            ends = {}
        await self._start_lag(consumer, [tp for tp in owned if not self.lag.knows((tp.topic, tp.partition))])
        owned = set(consumer.assignment())  # it may have moved meanwhile
        self._retain_lag(owned)
        now = time.time()
        lags: dict[Partition, Lag] = {}
        for where in owned:
            end, polled = consumer.highwater(where), consumer.last_poll_timestamp(where)
            seen = polled / 1000 if polled else now
            reported = ends.get(where)
            if reported is not None and (end is None or reported > end):
                end, seen = reported, asked
            lag = self.lag.lag((where.topic, where.partition), end, seen, now)
            if lag is not None:
                lags[(where.topic, where.partition)] = lag
        self.lag_gauges.show(lags)

    async def _start_lag(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Where partitions this process has consumed nothing from yet stand: their committed
        offsets, or the log start where the group has committed nothing."""
        uncommitted = []
        for where in partitions:
            try:
                committed = await asyncio.wait_for(consumer.committed(where), LAG_ASK_TIMEOUT_S)
            except Exception as exc:
                log.debug("committed offset not available for lag", extra={"error": type(exc).__name__})
                return
            if committed is None:
                uncommitted.append(where)
            else:
                self.lag.start((where.topic, where.partition), committed)
        if uncommitted:
            try:
                starts = await asyncio.wait_for(consumer.beginning_offsets(uncommitted), LAG_ASK_TIMEOUT_S)
            except Exception as exc:
                log.debug("log start not available for lag", extra={"error": type(exc).__name__})
                return
            for where, start in starts.items():
                self.lag.start((where.topic, where.partition), start)

    def _retain_lag(self, owned: Iterable[TopicPartition]) -> None:
        mine = {(tp.topic, tp.partition) for tp in owned}
        self.lag.retain(mine)
        self.lag_gauges.retain(mine)

    def forget_lag(self, given_up: Iterable[TopicPartition]) -> None:
        """Drop the lag of partitions given up in a rebalance (their new owner reports it)."""
        gone = [(tp.topic, tp.partition) for tp in given_up]
        self.lag.forget(gone)
        self.lag_gauges.forget(gone)

    async def watch_lag(self, every_s: float) -> None:
        """`refresh_lag` every `every_s` seconds, until cancelled."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.refresh_lag()
            except Exception:
                log.warning("measuring consumer lag failed; trying again later", exc_info=True)

    def waiting_after(self, ends: Mapping[TopicPartition, int]) -> set[TopicPartition]:
        """The partitions on which records wait after `ends` (per partition, the offset after a
        batch's last record: `pipeline.next_offsets`), by the high watermark of the consumer's
        last fetch.

        That watermark only grows, so a stale one can miss records but never invents any: a
        partition named here does have records after the batch.
        """
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is None:
            return set()
        owned = consumer.assignment()
        return {where for where, end in ends.items()
                if where in owned and (consumer.highwater(where) or 0) > end}

    def assigned(self) -> bool:
        consumer = getattr(self.subscriber, "consumer", None)
        return bool(consumer is not None and consumer.assignment())

    def assigned_partitions(self) -> set[tuple[str, int]] | None:
        """The partitions this process consumes now, as (topic, number); None when it has no
        consumer (tests and tools that apply batches by hand own everything they apply)."""
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is None:
            return None
        return {(tp.topic, tp.partition) for tp in consumer.assignment()}

    async def behind_on(self, topic: str, partition: int, handed: int | None) -> bool:
        """Whether records wait on a partition this process consumes past `handed` (the offset
        after the last record it applied from there; None: not known, then its position), by
        the high watermark of the consumer's last fetch. False for a partition it does not
        consume, or without a consumer."""
        consumer = getattr(self.subscriber, "consumer", None)
        where = TopicPartition(topic, partition)
        if consumer is None or where not in consumer.assignment():
            return False
        high = consumer.highwater(where)
        if high is None:
            return True
        return high > (handed if handed is not None else await consumer.position(where))

    async def end_offsets(self, topic: str) -> dict[int, int] | None:
        """Per partition, the end offset the broker reports now for a topic (its full name),
        which need not be one this process consumes; None without a consumer."""
        ends = await self.end_offsets_of([topic])
        return None if ends is None else ends[topic]

    async def end_offsets_of(self, names: list[str]) -> dict[str, dict[int, int]] | None:
        """`end_offsets` for several topics, asked of the broker in one request; None without
        a consumer.

        Some brokers, the embedded one among them, report the first offset of the last record
        batch plus one: a bound below the true end, but past every record before that batch.
        """
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is None:
            return None
        wanted = [TopicPartition(topic, p) for topic in names
                  for p in sorted(await self.producer.partitions_for(topic))]
        ends: dict[str, dict[int, int]] = {topic: {} for topic in names}
        for tp, end in (await consumer.end_offsets(wanted)).items():
            ends[tp.topic][tp.partition] = end
        return ends

    async def is_ready(self) -> tuple[bool, dict[str, bool]]:
        checks = {
            "store": await store_answers(self.mongo, self.settings.database),
            "partitions_assigned": self.assigned(),
            "no_outage": not self.outage,
            "batches_flowing": self.pipeline is None or not self.pipeline.broken,
        }
        return all(checks.values()), checks


def build_runtime(settings: Settings, input_topics: list[str]) -> Runtime:
    """Clients and broker for a service; the subscriber is attached by `attach_consumer`."""
    metrics = ServiceMetrics(settings.service)
    mongo = mongo_client(settings.mongodb_url)
    kafka = kafka_connection(settings)  # TLS and SASL too (services.common.connections)
    broker = KafkaBroker(
        kafka.bootstrap_servers,
        security=kafka.security(),
        middlewares=[KafkaPrometheusMiddleware(registry=metrics.registry, app_name=settings.service)],
        graceful_timeout=SHUTDOWN_GRACE_S,
        logger=None,
        client_id=f"taskforce-{settings.service}",
    )
    return Runtime(settings, metrics, mongo, mongo[settings.database], broker,
                   [settings.topic(t) for t in input_topics])


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


def attach_consumer(runtime: Runtime, steps: BatchSteps,
                    on_rebalance: Callable[[], None] | None = None) -> None:
    """Subscribe the steps to the input topics: one consumer group, batches, offsets
    committed by the pipeline (explicitly, in order), not by FastStream."""
    runtime.steps = steps
    settings = runtime.settings
    runtime.pipeline = pipeline = BatchPipeline(
        steps.prepare, runtime.apply, runtime.deliver, lambda: getattr(runtime.subscriber, "consumer", None),
        traced_as=settings.service, group=settings.group_id)

    async def consume(message: KafkaMessage) -> None:
        await pipeline.submit(list(message.raw_message))

    runtime.subscriber = subscriber = runtime.broker.subscriber(
        *runtime.input_topics,
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        parser=_tolerant_batch_parser,
        decoder=_raw_batch_decoder,
        listener=_OnRebalance(pipeline, on_rebalance, runtime.forget_lag),
    )
    subscriber(consume)


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


async def _raw_batch_decoder(message: Any) -> Any:
    """Leave bytes alone: validation is ours (schemas.decode), so a bad record reaches the DLQ."""
    return None


def build_app(runtime: Runtime, routers: list[APIRouter], access: Access | None = None) -> FastAPI:
    """The service's HTTP app; its lifespan starts and stops the consumer and clients.

    Open: `/healthz`, `/readyz`, `/metrics`. The routers' case-data routes depend on
    `services.common.auth.case_data`; `access` (default: bearer tokens, from the settings)
    guards them and writes the audit trail.
    """
    access = access or Access.build(runtime.settings, runtime.metrics.registry)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settings = runtime.settings
        kafka = kafka_connection(settings)
        # A connection setting that cannot work (an untrusted certificate, a plaintext client at
        # a TLS port, refused credentials) is logged once, naming it; the service waits, not ready.
        await wait_for_servers(kafka, runtime.mongo, settings.mongodb_url, service=settings.service)
        await ensure_topics(kafka, settings.topic_prefix, check=False)
        for step in runtime.startup:
            await _until_it_works(step, runtime)
        await _until_it_works(runtime.start_producer, runtime)
        await _until_it_works(lambda: access.start(runtime), runtime)
        await runtime.broker.start()
        settle_garbage_collector()
        runtime.metrics.ready.labels(settings.service).set(1)
        lag_watch = asyncio.create_task(runtime.watch_lag(settings.lag_refresh_s))
        log.info("service started", extra={"group": settings.group_id, "topics": runtime.input_topics})
        try:
            yield
        finally:
            lag_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_watch
            log.info("shutting down: finishing the batches in flight")
            await _drain(runtime)
            await runtime.broker.stop()
            if runtime.pipeline is not None:
                await runtime.pipeline.abandon()  # only what outlived the grace period is left
            await access.stop()
            await runtime.stop_producer()
            await runtime.mongo.close()
            log.info("stopped")

    app = FastAPI(title=f"taskforce {runtime.settings.service}", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", responses=responses.READINESS)
    async def readyz(response: Response) -> dict[str, Any]:
        ready, checks = await runtime.is_ready()
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": checks}

    @app.get("/metrics", response_class=Response, responses=responses.PROMETHEUS)
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    access.install(app)
    return app


async def _drain(runtime: Runtime) -> None:
    """Let the batches in flight commit; from now on a new batch is finished when handed over."""
    pipeline = runtime.pipeline
    if pipeline is None:
        return
    pipeline.closing = True
    if not await pipeline.drain(SHUTDOWN_GRACE_S):
        log.warning("batches still in flight after the grace period; they will be redelivered")
        await pipeline.abandon()


async def _until_it_works(step: Callable[[], Awaitable[None]], runtime: Runtime) -> None:
    delay = 0.2
    while True:
        try:
            await step()
            return
        except TRANSIENT_ERRORS as exc:
            log.warning("startup step failed; retrying", extra={"error": type(exc).__name__})
            runtime.metrics.store_retries.labels(runtime.settings.service).inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM once it has shut down, so the process would die *by* the
    signal. A graceful stop is a normal end here: exit 0, which orchestrators read as clean."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(app: FastAPI, settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully (finish and commit the batch)."""
    configure_logging(settings.service, settings.log_level, settings.log_file)
    config = uvicorn.Config(app, host=settings.http_host, port=settings.port, log_config=None,
                            access_log=False, timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S))
    with tracing.exporting(settings.service):  # the last spans exported before the process ends
        _Server(config).run()


def projection_service(
    settings: Settings,
    input_topics: list[str],
    kinds: dict[str, Any],
    router: Callable[[AsyncDatabase[dict[str, Any]]], APIRouter],
) -> tuple[FastAPI, Runtime]:
    """An owning service: the projection engine on the runtime, plus its read-model routes."""
    runtime = build_runtime(settings, input_topics)
    engine = ProjectionEngine(settings, runtime.db, runtime.metrics, kinds)
    engine.waiting_after = runtime.waiting_after
    runtime.startup.append(engine.setup)
    attach_consumer(runtime, BatchSteps(engine.prepare, engine.apply), on_rebalance=engine.forget)
    return build_app(runtime, [router(runtime.db)]), runtime
