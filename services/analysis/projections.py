"""Analysis's entity kind: one document per case review."""

from __future__ import annotations

from typing import Any

from schemas.reporting import CaseReviewState
from services.analysis.domain import apply_review
from services.common.fold import EntityKind

REVIEWS = "reviews"

REVIEW = EntityKind(
    name="case_review",
    collection=REVIEWS,
    reporting_type="reporting.case_review_changed",
    state_model=CaseReviewState,
    entity_id=lambda event: event.data.review_id,
    apply=apply_review,
)

KINDS: dict[str, EntityKind[Any]] = {"case_review.completed": REVIEW}
