"""The reporting replica's memory of a half-year's rows against the real store: a state that
moves to another half-year leaves the old one, a stale write changes nothing, and what memory
holds is what a fresh process reads back from the store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.periods import Period
from schemas.reporting import NotificationState
from services.reporting.domain.rows import NotificationRow
from services.reporting.replica import KINDS, Replica

pytestmark = pytest.mark.integration

NOTIFICATION = KINDS["reporting.notification_changed"]
H1, H2 = Period(2024, 1), Period(2024, 2)


def notification(entity: str, version: int, received: str | None, assessed: str | None
                 ) -> tuple[dict[str, Any], NotificationRow]:
    """The replica document of a notification state, as the processor builds it."""
    state = NotificationState.model_validate_json(json.dumps(
        {"notification_id": entity, "received_at": received, "assessed_at": assessed, "urgent": False}))
    row = NotificationRow.of(state)
    period = Period.of(state.received_at or state.assessed_at).name  # type: ignore[arg-type]
    doc = {"_id": f"480:{entity}", "municipality_code": "480", "version": version, "period": period,
           **NOTIFICATION.body(state, row)}
    return doc, row


async def write(replica: Replica, *written: tuple[dict[str, Any], NotificationRow]) -> None:
    await replica.add_periods({"480": {doc["period"] for doc, _ in written}})
    await replica.upsert_states(NOTIFICATION, [doc for doc, _ in written],
                                {doc["_id"]: row for doc, row in written})


async def rows(replica: Replica, period: Period) -> set[NotificationRow]:
    return set((await replica.summary_inputs("480", period)).notifications)  # type: ignore[arg-type]


async def test_a_notification_that_moves_to_another_half_year_leaves_the_old_one(
    scratch_database: Any,
) -> None:
    replica = Replica(scratch_database)
    await replica.setup()
    # Known first by its assessment (June), then by its receipt (July): another half-year.
    early = notification("n-1", 1, None, "2024-06-30T20:00:00+00:00")
    other = notification("n-2", 1, "2024-03-01T09:00:00+01:00", None)
    await write(replica, early, other)
    assert await rows(replica, H1) == {early[1], other[1]}
    assert await rows(replica, H2) == set()

    moved = notification("n-1", 2, "2024-07-01T08:00:00+02:00", "2024-07-02T09:00:00+02:00")
    stale = notification("n-2", 1, "2024-08-01T09:00:00+02:00", None)  # not newer: ignored
    await write(replica, moved, stale)
    assert await rows(replica, H1) == {other[1]}
    assert await rows(replica, H2) == {moved[1]}

    fresh = Replica(scratch_database)  # another process: everything read from the store
    assert await rows(fresh, H1) == await rows(replica, H1)
    assert await rows(fresh, H2) == await rows(replica, H2)
