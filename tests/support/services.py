"""Run a service in-process (its real HTTP server, consumer and clients) for a test."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import uvicorn

from services.common.runtime import Runtime, build_runtime
from services.common.settings import Settings, load_settings
from taskforce.servers import free_port


@dataclass
class Running:
    runtime: Runtime
    base_url: str

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10, **kwargs)


def settings_for(service: str, stack: Any, prefix: str, **overrides: Any) -> Settings:
    return load_settings(
        service,
        KAFKA_BOOTSTRAP_SERVERS=stack.bootstrap_servers,
        MONGODB_URL=stack.mongodb_url,
        TASKFORCE_TOPIC_PREFIX=prefix,
        TASKFORCE_HTTP_PORT=free_port(),
        **overrides,
    )


@contextlib.asynccontextmanager
async def running(create: Callable[[Settings], tuple[Any, Runtime]], settings: Settings,
                  ready_timeout: float = 30.0) -> AsyncIterator[Running]:
    app, runtime = create(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None,
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    base_url = f"http://127.0.0.1:{settings.port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
            deadline = asyncio.get_running_loop().time() + ready_timeout
            while True:
                if task.done():
                    task.result()
                    raise RuntimeError("service stopped during startup")
                last = None
                with contextlib.suppress(httpx.HTTPError):
                    last = await client.get("/readyz")
                    if last.status_code == 200:
                        break
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{settings.service} not ready within {ready_timeout} s: "
                                       f"{last.text if last is not None else 'no answer'}")
                await asyncio.sleep(0.1)
        yield Running(runtime, base_url)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


@contextlib.asynccontextmanager
async def runtime_consuming_with(settings: Settings, consumer: Any,
                                 producer: Any = None) -> AsyncIterator[Runtime]:
    """A service's runtime (`build_runtime`) whose consumer is `consumer` (and producer
    `producer`), for asking it the consumer's questions without serving a service."""
    built = build_runtime(settings)
    try:
        yield dataclasses.replace(built, subscriber=SimpleNamespace(consumer=consumer), _producer=producer)
    finally:
        await built.mongo.close()
