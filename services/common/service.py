"""A service, as its composition root wires it: what `serve` runs and `rebuild` replays.

Each service's `app.py` has `compose(settings) -> Service`: the clients (`Runtime`), the
processor over them, its batch steps, what runs at start-up and around a replay, and the
HTTP routes, all passed in at construction. Nothing is filled in later: running the service
(`services.common.serving.build_app`) and rebuilding its projections
(`services.common.rebuild`) read the same description, and a rebuild builds no HTTP app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common.projection import ProjectionEngine
from services.common.projection_store import MongoProjectionStore
from services.common.runtime import Runtime, build_runtime

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord
    from fastapi import APIRouter, Request, Response
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.auth import Access
    from services.common.records import OutRecord
    from services.common.settings import Settings

Step = Callable[[], Awaitable[None]]
#: An HTTP middleware function (FastAPI's `app.middleware("http")`).
Middleware = Callable[["Request", Callable[["Request"], Awaitable["Response"]]], Awaitable["Response"]]


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


@dataclass(frozen=True)
class Service:
    """One service's parts, wired by its `compose`."""

    runtime: Runtime
    #: The topics it consumes (full names: with the tenant prefix).
    input_topics: tuple[str, ...]
    steps: BatchSteps
    #: Run before consuming, retried through an outage (indexes); a rebuild runs them after
    #: dropping the projections.
    startup: tuple[Step, ...] = ()
    #: Called when partitions move, before and after (drop the caches of what it owned).
    on_rebalance: Callable[[], None] | None = None
    #: Around a rebuild's replay (the reporting service holds back summaries meanwhile).
    before_replay: Callable[[], None] | None = None
    after_replay: Step | None = None
    #: The HTTP side: the routes, who may use them (None: bearer tokens, from the settings)
    #: and the service's own middleware (outermost last).
    routers: tuple[APIRouter, ...] = ()
    access: Access | None = None
    middleware: tuple[Middleware, ...] = ()


def projection_service(
    settings: Settings,
    input_topics: list[str],
    kinds: dict[str, Any],
    router: Callable[[AsyncDatabase[dict[str, Any]]], APIRouter],
) -> Service:
    """An owning service: the projection engine over the clients, plus its read-model routes."""
    runtime = build_runtime(settings)
    engine = ProjectionEngine(settings, MongoProjectionStore(runtime.db), runtime.metrics, kinds,
                              waiting_after=runtime.waiting_after)
    return Service(
        runtime, tuple(settings.topic(t) for t in input_topics), BatchSteps(engine.prepare, engine.apply),
        startup=(engine.setup,),
        on_rebalance=engine.forget,
        routers=(router(runtime.db),),
    )
