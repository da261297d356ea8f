"""A service served: its consumption and its HTTP app, started and stopped together.

`build_app(service)` gives the FastAPI app whose lifespan waits for the broker and the
store, runs the service's start-up steps, starts the producer, the audit trail and the
consumer, and at SIGTERM lets the batches in flight commit before closing the clients.
Open: `/healthz`, `/readyz`, `/metrics`; JSON logs. `serve` runs it under uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common import tracing
from services.common.auth import Access, responses
from services.common.collector import settle_garbage_collector
from services.common.connections import kafka_connection, wait_for_servers
from services.common.consumption import MAX_BACKOFF_S, Consumption
from services.common.kafka import ensure_topics
from services.common.logs import configure_logging
from services.common.runtime import SHUTDOWN_GRACE_S
from services.common.store import TRANSIENT_ERRORS

if TYPE_CHECKING:
    from services.common.pipeline import BatchPipeline
    from services.common.runtime import Runtime
    from services.common.service import Service
    from services.common.settings import Settings

log = logging.getLogger(__name__)


def build_app(service: Service, batched: bool = True) -> FastAPI:
    """The service's HTTP app, consuming its input (`Consumption`, in the style `batched`
    says) while it runs.

    The routers' case-data routes depend on `services.common.auth.case_data`; the service's
    `access` (default: bearer tokens, from the settings) guards them and writes the audit trail.
    """
    runtime, settings = service.runtime, service.runtime.settings
    consumption = Consumption(service, batched)
    access = service.access or Access.build(settings, runtime.metrics.registry)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        kafka = kafka_connection(settings)
        # A connection setting that cannot work (an untrusted certificate, a plaintext client at
        # a TLS port, refused credentials) is logged once, naming it; the service waits, not ready.
        await wait_for_servers(kafka, runtime.mongo, settings.mongodb_url, service=settings.service)
        await ensure_topics(kafka, settings.topic_prefix, check=False)
        for step in service.startup:
            await _until_it_works(step, runtime)
        await _until_it_works(runtime.start_producer, runtime)
        await _until_it_works(lambda: access.start(runtime), runtime)
        await runtime.broker.start()
        settle_garbage_collector()
        runtime.metrics.ready.labels(settings.service).set(1)
        lag_watch = asyncio.create_task(consumption.lag.watch(settings.lag_refresh_s))
        log.info("service started", extra={"group": settings.group_id, "topics": list(service.input_topics)})
        try:
            yield
        finally:
            lag_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_watch
            log.info("shutting down: finishing the batches in flight")
            await _drain(consumption.pipeline)
            await runtime.broker.stop()
            if consumption.pipeline is not None:
                await consumption.pipeline.abandon()  # only what outlived the grace period is left
            await access.stop()
            await runtime.stop_producer()
            await runtime.mongo.close()
            log.info("stopped")

    app = FastAPI(title=f"taskforce {settings.service}", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", responses=responses.READINESS)
    async def readyz(response: Response) -> dict[str, Any]:
        ready, checks = await consumption.is_ready()
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": checks}

    @app.get("/metrics", response_class=Response, responses=responses.PROMETHEUS)
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in service.routers:
        app.include_router(router)
    access.install(app)
    for middleware in service.middleware:
        app.middleware("http")(middleware)
    return app


async def _drain(pipeline: BatchPipeline | None) -> None:
    """Let the batches in flight commit; from now on a new batch is finished when handed over."""
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
