"""Analysis's read model for the Task Force: improvement between review phases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends

from schemas.reporting import CaseReviewState
from services.analysis.domain import rating_changes
from services.analysis.projections import REVIEWS
from services.common.auth import case_data, responses
from services.common.paths import MunicipalityCode

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase


def router(db: AsyncDatabase[dict[str, Any]]) -> APIRouter:
    api = APIRouter(dependencies=[Depends(case_data)], responses=responses.CASE_DATA)

    @api.get("/municipalities/{code}/reviews/changes")
    async def changes(code: MunicipalityCode) -> dict[str, Any]:
        """Mean change per dimension from baseline to follow-up for re-reviewed cases."""
        cursor = db[REVIEWS].find({"municipality_code": code}, {"state": 1})
        reviews = [CaseReviewState.model_validate(d["state"], strict=False) async for d in cursor]
        return {"municipality_code": code, "reviews": len(reviews), **rating_changes(reviews)}

    return api
