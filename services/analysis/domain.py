"""Pure rules for case reviews: a review's state and the change between review phases."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.events import CaseReviewCompleted, Severity
from schemas.reporting import CaseReviewState, FindingCounts
from schemas.rules import latest_wins, rereview_changes

_MAJOR, _MINOR = Severity.MAJOR, Severity.MINOR


def review_state(event: CaseReviewCompleted) -> CaseReviewState:
    data = event.data
    major = minor = 0
    for finding in data.legal_findings:
        if finding.severity is _MAJOR:
            major += 1
        elif finding.severity is _MINOR:
            minor += 1
    return CaseReviewState(
        review_id=data.review_id,
        course_id=data.course_id,
        case_ref=data.case_ref,
        phase=data.phase,
        ratings=data.ratings,
        legal_findings=FindingCounts(major=major, minor=minor),
        completed_at=event.occurred_at,
    )


def apply_review(state: CaseReviewState | None, event: CaseReviewCompleted) -> CaseReviewState:
    """A review re-sent under the same id is a correction: the latest (by occurred_at) wins,
    ties broken by the review's content (`schemas.rules.latest_wins`)."""
    return latest_wins(state, None if state is None else state.completed_at, event.occurred_at,
                       lambda: review_state(event))


def rating_changes(reviews: Iterable[CaseReviewState]) -> dict[str, object]:
    """The read model's re-review change: `schemas.rules.rereview_changes`, the definition the
    committee report uses too (docs/domain.md, *Re-review change*)."""
    changes = rereview_changes(reviews)
    return {"cases_rereviewed": changes.cases, "mean_change": changes.mean_change}
