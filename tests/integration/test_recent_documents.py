"""The engine's memory of the documents it wrote last, against the real store: a batch that
touches them again needs no read, and a stale entry (another replica wrote the document
meanwhile) costs a collision and a re-read, never a lost update."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from schemas import topics
from services.common.metrics import ServiceMetrics
from services.common.projection import ProjectionEngine
from services.common.projection_store import MongoProjectionStore
from services.common.store import mongo_client
from services.followup.projections import KINDS
from tests.support.events import event
from tests.support.services import settings_for

pytestmark = pytest.mark.integration


def milestone(status: str, at: str) -> dict[str, Any]:
    return event("milestone.updated", at, {"plan_id": "p-1", "milestone_id": "m-1", "status": status})


def records(prefix: str, *events: dict[str, Any]) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord(f"{prefix}{topics.MILESTONES}", 0, n, 0, 0, b"480", json.dumps(e).encode(),
                           None, 3, 0, ()) for n, e in enumerate(events)]


def milestones_of(engine: ProjectionEngine) -> Any:
    """The engine's milestone documents, in the MongoDB it writes to."""
    store = engine.store
    assert isinstance(store, MongoProjectionStore)
    return store.db["milestones"]


@pytest.fixture
async def engines(stack: Any, prefix: str) -> AsyncIterator[tuple[ProjectionEngine, ProjectionEngine]]:
    """Two replicas of follow-up's engine on one database."""
    settings = settings_for("followup", stack, prefix)
    client = mongo_client(settings.mongodb_url)
    try:
        db = client[settings.database]
        yield (ProjectionEngine(settings, MongoProjectionStore(db), ServiceMetrics("followup"), KINDS),
               ProjectionEngine(settings, MongoProjectionStore(db), ServiceMetrics("followup"), KINDS))
    finally:
        await client.drop_database(settings.database)
        await client.close()


async def stored(engine: ProjectionEngine) -> dict[str, Any]:
    doc = await milestones_of(engine).find_one({"_id": "480:p-1/m-1"})
    assert doc is not None
    return doc


async def test_a_stale_memory_collides_and_rereads_instead_of_losing_an_update(
    engines: tuple[ProjectionEngine, ProjectionEngine], prefix: str,
) -> None:
    first, second = engines
    # three half-years, so the history keeps all three changes
    one, two, three = (milestone("in_progress", "2023-01-10T09:00:00+01:00"),
                       milestone("at_risk", "2023-08-10T09:00:00+02:00"),
                       milestone("achieved", "2024-03-10T09:00:00+01:00"))
    await first.apply_batch(records(prefix, one))
    assert first.recent["milestones/480:p-1/m-1"].version == 1
    await second.apply_batch(records(prefix, two))  # the other replica: version 2 in the store
    await first.apply_batch(records(prefix, three))  # remembers version 1: collides, re-reads

    doc = await stored(first)
    assert doc["version"] == 3
    assert sorted(doc["applied"]) == sorted(e["event_id"] for e in (one, two, three))
    assert [c["status"] for c in doc["state"]["history"]] == ["in_progress", "at_risk", "achieved"]
    assert first.recent["milestones/480:p-1/m-1"].version == 3


async def tamper(engine: ProjectionEngine) -> None:
    """Change the stored first status behind the engine's back, without a version bump (no
    real writer does this), so which copy a batch used shows in the history it writes next."""
    doc = await stored(engine)
    history = doc["state"]["history"]
    history[0]["status"] = "missed"
    await milestones_of(engine).update_one({"_id": doc["_id"]}, {"$set": {"state.history": history}})


async def test_a_remembered_document_is_taken_from_memory_until_forgotten(
    engines: tuple[ProjectionEngine, ProjectionEngine], prefix: str,
) -> None:
    engine, _ = engines
    await engine.apply_batch(records(prefix, milestone("in_progress", "2024-01-10T09:00:00+01:00")))
    await tamper(engine)
    out = await engine.apply_batch(records(prefix, milestone("at_risk", "2024-08-10T09:00:00+02:00")))
    history = json.loads(out[0].value)["data"]["state"]["history"]
    assert [c["status"] for c in history] == ["in_progress", "at_risk"]  # memory's copy
    await tamper(engine)
    engine.forget()
    out = await engine.apply_batch(records(prefix, milestone("achieved", "2025-03-10T09:00:00+01:00")))
    history = json.loads(out[0].value)["data"]["state"]["history"]
    assert [c["status"] for c in history] == ["missed", "at_risk", "achieved"]  # the store's copy
    assert (await stored(engine))["version"] == 3


async def test_memory_is_forgotten_after_a_failed_batch(
    engines: tuple[ProjectionEngine, ProjectionEngine], prefix: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, _ = engines
    await engine.apply_batch(records(prefix, milestone("in_progress", "2024-01-10T09:00:00+01:00")))
    assert engine.recent

    async def store_down(*_args: Any) -> list[Any]:
        raise ConnectionError("store went away")

    monkeypatch.setattr(engine, "_store", store_down)
    with pytest.raises(ConnectionError):
        await engine.apply_batch(records(prefix, milestone("achieved", "2024-02-10T09:00:00+01:00")))
    assert not engine.recent
