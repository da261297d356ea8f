"""Intake's operational read model over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends

from schemas.reporting import NotificationState
from services.common.auth import case_data, responses
from services.common.paths import MunicipalityCode
from services.common.watermarks import stamp
from services.intake.domain import unassessed_overdue
from services.intake.projections import NOTIFICATIONS

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase


def router(db: AsyncDatabase[dict[str, Any]]) -> APIRouter:
    api = APIRouter(dependencies=[Depends(case_data)], responses=responses.CASE_DATA)

    @api.get("/municipalities/{code}/notifications/overdue")
    async def overdue(code: MunicipalityCode) -> dict[str, Any]:
        """Notifications unassessed 24 hours or more after receipt, now."""
        now = datetime.now(UTC)
        query = {"municipality_code": code, "assessed": False,
                 "received_at": {"$lte": stamp(now - timedelta(hours=24))}}
        cursor = db[NOTIFICATIONS].find(query, {"state": 1})
        states = [NotificationState.model_validate(d["state"], strict=False) async for d in cursor]
        late = unassessed_overdue(states, now)
        return {
            "municipality_code": code,
            "as_of": now.isoformat(),
            "count": len(late),
            "notifications": [
                {"notification_id": s.notification_id, "received_at": s.received_at.isoformat(),  # type: ignore[union-attr]  # set: see unassessed_overdue
                 "urgent": s.urgent, "hours_waiting": round((now - s.received_at).total_seconds() / 3600, 1)}  # type: ignore[operator]  # likewise
                for s in late
            ],
        }

    return api
