"""Entity documents stay bounded against the real store: a milestone updated 200,000 times
keeps one change per half-year and its last 1,000 event ids, and a redelivery, recent or
long past, leaves its state as it was."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import pytest
from aiokafka import ConsumerRecord

from schemas import topics
from services.common.fold import APPLIED_WINDOW
from services.common.metrics import ServiceMetrics
from services.common.projection import ProjectionEngine
from services.common.projection_store import MongoProjectionStore
from services.common.records import OutRecord
from services.common.store import mongo_client
from services.followup.projections import KINDS
from tests.support.events import event
from tests.support.services import settings_for

pytestmark = pytest.mark.integration

UPDATES = 200_000
BATCH = 2_000
STATUSES = ["not_started", "in_progress", "at_risk", "missed", "achieved"]


def batches(prefix: str) -> list[list[ConsumerRecord[bytes, bytes]]]:
    """The updates over three years (six half-years), as consumed batches."""
    start = datetime(2022, 1, 1, tzinfo=UTC)
    step = timedelta(days=3 * 365) / UPDATES
    values = [json.dumps(event("milestone.updated", (start + step * n).isoformat(),
                               {"plan_id": "p-1", "milestone_id": "m-1", "status": STATUSES[n % 5]})).encode()
              for n in range(UPDATES)]
    topic = f"{prefix}{topics.MILESTONES}"
    records = [ConsumerRecord(topic, 0, n, 0, 0, b"480", value, None, 3, len(value), ())
               for n, value in enumerate(values)]
    return [records[i:i + BATCH] for i in range(0, UPDATES, BATCH)]


def states(out: list[OutRecord]) -> list[OutRecord]:
    """The records that carry the milestone's state (not the service's progress alone)."""
    return [r for r in out if b'"reporting.milestone_changed"' in r.value]


def milestones_of(engine: ProjectionEngine) -> Any:
    """The engine's milestone documents, in the MongoDB it writes to."""
    store = engine.store
    assert isinstance(store, MongoProjectionStore)
    return store.db["milestones"]


@pytest.fixture
async def engine(stack: Any, prefix: str) -> AsyncIterator[ProjectionEngine]:
    settings = settings_for("followup", stack, prefix)
    client = mongo_client(settings.mongodb_url)
    try:
        yield ProjectionEngine(settings, MongoProjectionStore(client[settings.database]),
                               ServiceMetrics("followup"), KINDS)
    finally:
        await client.drop_database(settings.database)
        await client.close()


async def test_a_milestone_updated_200000_times_stays_small_and_idempotent(
    engine: ProjectionEngine, prefix: str,
) -> None:
    parts = batches(prefix)
    for part in parts:
        await engine.apply_batch(part)
    doc = await milestones_of(engine).find_one({"_id": "480:p-1/m-1"})
    assert doc is not None
    assert len(doc["applied"]) == APPLIED_WINDOW
    assert len(doc["state"]["history"]) == 6  # 2022H1 .. 2024H2
    assert doc["state"]["history"][-1]["status"] == STATUSES[(UPDATES - 1) % 5]
    assert len(bson.encode(doc)) < 64 * 1024
    version = doc["version"]

    engine.forget()  # read from the store, as after a restart
    # Recent (remembered ids: skipped), long past and in between (forgotten ids: applied again,
    # to no effect, since the fold is a join): the state is the same, only the version may grow.
    for part in (parts[-1], parts[0], parts[len(parts) // 2]):
        for record in states(await engine.apply_batch(part)):
            assert json.loads(record.value)["data"]["state"] == doc["state"]
    after = await milestones_of(engine).find_one({"_id": "480:p-1/m-1"})
    assert after is not None and after["state"] == doc["state"] and after["version"] >= version
    assert len(after["applied"]) == APPLIED_WINDOW
    skipped = engine.metrics.registry.get_sample_value("taskforce_duplicates_skipped_total",
                                                       {"service": "followup"})
    assert skipped == APPLIED_WINDOW  # the last batch's last 1,000 ids
