"""The composition root every service shares: Kafka subscriber, Mongo client, HTTP app.

A service supplies its input topics, a batch handler (decode, apply, persist; returns the
records to publish) and its own HTTP routes. The runtime does the rest: batched
consumption with offsets committed only after the handler's writes and publishes succeeded,
retry with backoff through a broker or store outage (not-ready meanwhile), `/healthz`,
`/readyz`, `/metrics`, JSON logs and graceful shutdown on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uvicorn
from aiokafka import ConsumerRebalanceListener
from fastapi import APIRouter, FastAPI, Response
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.collector import settle_garbage_collector
from services.common.kafka import ensure_topics
from services.common.logs import configure_logging
from services.common.metrics import ServiceMetrics
from services.common.projection import ProjectionEngine
from services.common.records import OutRecord, producer, publish_all
from services.common.store import TRANSIENT_ERRORS, mongo_client, store_answers

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer, ConsumerRecord
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.settings import Settings

log = logging.getLogger(__name__)

BatchHandler = Callable[[list["ConsumerRecord"]], Awaitable[list[OutRecord]]]
MAX_BACKOFF_S = 5.0
SHUTDOWN_GRACE_S = 20.0


@dataclass
class Runtime:
    """What a running service holds; built once by `build_runtime`."""

    settings: Settings
    metrics: ServiceMetrics
    mongo: AsyncMongoClient[dict[str, Any]]
    db: AsyncDatabase[dict[str, Any]]
    broker: KafkaBroker
    input_topics: list[str]
    handler: BatchHandler | None = None
    startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Hooks around a rebuild's replay (the reporting service holds back summaries meanwhile).
    before_replay: Callable[[], None] | None = None
    after_replay: Callable[[], Awaitable[None]] | None = None
    outage: bool = False
    batches: int = 0
    subscriber: Any = None
    _producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "start_producer() first"
        return self._producer

    async def start_producer(self) -> None:
        """Made here, not at build time: aiokafka objects need the running event loop."""
        if self._producer is None:
            out = producer(self.settings.kafka_bootstrap_servers, f"taskforce-{self.settings.service}")
            await out.start()
            self._producer = out

    async def stop_producer(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def process(self, records: list[ConsumerRecord]) -> None:
        """Apply one batch; retry the whole (idempotent) batch until it succeeds."""
        assert self.handler is not None
        started = time.perf_counter()
        delay = 0.1
        while True:
            try:
                out = await self.handler(records)
                await publish_all(self.producer, out)
                break
            except TRANSIENT_ERRORS as exc:
                self._set_outage(True)
                self.metrics.store_retries.labels(self.settings.service).inc()
                log.warning("batch failed on an outage; retrying",
                            extra={"error": type(exc).__name__, "retry_in_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
            except Exception:
                # A bug, not bad input (that goes to the DLQ): log it; the batch is rewound.
                log.exception("batch failed; it will be redelivered", extra={"records": len(records)})
                raise
        self._set_outage(False)
        elapsed = time.perf_counter() - started
        self.batches += 1
        self.metrics.batch_size.labels(self.settings.service).observe(len(records))
        self.metrics.batch_seconds.labels(self.settings.service).observe(elapsed)
        log.info("batch applied", extra={"records": len(records), "published": len(out),
                                         "seconds": round(elapsed, 4)})
        await self._observe_lag()

    def _set_outage(self, outage: bool) -> None:
        self.outage = outage
        self.metrics.ready.labels(self.settings.service).set(0 if outage else 1)

    async def _observe_lag(self) -> None:
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is None:
            return
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            with contextlib.suppress(Exception):
                position = await consumer.position(tp)
                self.metrics.lag.labels(
                    self.settings.service, self.settings.unprefixed(tp.topic), str(tp.partition)
                ).set(max(highwater - position, 0))

    def assigned(self) -> bool:
        consumer = getattr(self.subscriber, "consumer", None)
        return bool(consumer is not None and consumer.assignment())

    async def is_ready(self) -> tuple[bool, dict[str, bool]]:
        checks = {
            "store": await store_answers(self.mongo, self.settings.database),
            "partitions_assigned": self.assigned(),
            "no_outage": not self.outage,
        }
        return all(checks.values()), checks


def build_runtime(settings: Settings, input_topics: list[str]) -> Runtime:
    """Clients and broker for a service; the subscriber is attached by `attach_consumer`."""
    metrics = ServiceMetrics(settings.service)
    mongo = mongo_client(settings.mongodb_url)
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        middlewares=[KafkaPrometheusMiddleware(registry=metrics.registry, app_name=settings.service)],
        graceful_timeout=SHUTDOWN_GRACE_S,
        logger=None,
        client_id=f"taskforce-{settings.service}",
    )
    return Runtime(settings, metrics, mongo, mongo[settings.database], broker,
                   [settings.topic(t) for t in input_topics])


class _OnRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Calls back whenever partitions move, e.g. to drop caches of what this process owned."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.callback()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.callback()


def attach_consumer(runtime: Runtime, handler: BatchHandler,
                    on_rebalance: Callable[[], None] | None = None) -> None:
    """Subscribe the handler to the input topics: one consumer group, batches, manual acks."""
    runtime.handler = handler
    settings = runtime.settings

    async def consume(message: KafkaMessage) -> None:
        await runtime.process(list(message.raw_message))

    runtime.subscriber = subscriber = runtime.broker.subscriber(
        *runtime.input_topics,
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_raw_batch_decoder,
        listener=_OnRebalance(on_rebalance) if on_rebalance else None,
    )
    subscriber(consume)


async def _raw_batch_decoder(message: Any) -> Any:
    """Leave bytes alone: validation is ours (schemas.decode), so a bad record reaches the DLQ."""
    return None


def build_app(runtime: Runtime, routers: list[APIRouter]) -> FastAPI:
    """The service's HTTP app; its lifespan starts and stops the consumer and clients."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settings = runtime.settings
        await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_prefix)
        for step in runtime.startup:
            await _until_it_works(step, runtime)
        await _until_it_works(runtime.start_producer, runtime)
        await runtime.broker.start()
        settle_garbage_collector()
        runtime.metrics.ready.labels(settings.service).set(1)
        log.info("service started", extra={"group": settings.group_id, "topics": runtime.input_topics})
        try:
            yield
        finally:
            log.info("shutting down: finishing the current batch")
            await runtime.broker.stop()
            await runtime.stop_producer()
            await runtime.mongo.close()
            log.info("stopped")

    app = FastAPI(title=f"taskforce {runtime.settings.service}", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        ready, checks = await runtime.is_ready()
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": checks}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


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
    runtime.startup.append(engine.setup)
    attach_consumer(runtime, engine.apply_batch)
    return build_app(runtime, [router(runtime.db)]), runtime
