"""Follow-up's read model for consultants: overdue milestones and cadence, now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException

from schemas.reporting import MeetingState, MilestoneState, PlanState
from schemas.rules import CADENCE_DAYS
from services.common.auth import case_data, responses
from services.common.paths import MunicipalityCode
from services.followup.domain import days_since_last_followup, overdue_milestones
from services.followup.projections import MEETINGS, MILESTONES, PLANS

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase


def router(db: AsyncDatabase[dict[str, Any]]) -> APIRouter:
    api = APIRouter(dependencies=[Depends(case_data)], responses=responses.CASE_DATA)

    async def states(collection: str, model: Any, code: str) -> list[Any]:
        cursor = db[collection].find({"municipality_code": code}, {"state": 1})
        return [model.model_validate(d["state"], strict=False) async for d in cursor]

    @api.get("/municipalities/{code}/plan/status")
    async def plan_status(code: MunicipalityCode) -> dict[str, Any]:
        """The latest adopted plan's overdue milestones and days since the last follow-up."""
        now = datetime.now(UTC)
        plans: list[PlanState] = [p for p in await states(PLANS, PlanState, code) if p.adopted_at <= now]
        if not plans:
            raise HTTPException(404, "no development plan adopted")
        plan = max(plans, key=lambda p: (p.adopted_at, p.plan_id))
        milestones: list[MilestoneState] = await states(MILESTONES, MilestoneState, code)
        meetings: list[MeetingState] = await states(MEETINGS, MeetingState, code)
        days = days_since_last_followup(plan, meetings, now)
        return {
            "municipality_code": code,
            "plan_id": plan.plan_id,
            "as_of": now.isoformat(),
            "days_since_last_followup": days,
            "cadence_ok": days <= CADENCE_DAYS,
            "overdue_milestones": [
                {"milestone_id": m.milestone_id, "title": m.title, "due_on": m.due_on.isoformat(),
                 "status": status.value}
                for m, status in overdue_milestones(plan, milestones, now)
            ],
        }

    return api
