"""Pure rules for case reviews: a review's state and the change between review phases."""

from __future__ import annotations

from collections.abc import Iterable
from statistics import mean

from schemas.events import CaseReviewCompleted, Phase, Severity
from schemas.reporting import CaseReviewState

DIMENSIONS: tuple[str, ...] = ("assessment", "intervention", "follow_up", "involvement")
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
        legal_findings={"major": major, "minor": minor},  # validated into FindingCounts
        completed_at=event.occurred_at,
    )


def apply_review(state: CaseReviewState | None, event: CaseReviewCompleted) -> CaseReviewState:
    """A review re-sent under the same id is a correction: the latest (by occurred_at) wins.

    Ties are broken by the review's content, so the result never depends on arrival order.
    """
    if state is None:
        return review_state(event)
    # (completed_at, JSON) > (completed_at, JSON), the JSON only spelled on a tie
    if event.occurred_at != state.completed_at:
        return review_state(event) if event.occurred_at > state.completed_at else state
    new = review_state(event)
    return new if new.model_dump_json() > state.model_dump_json() else state


def rating_changes(reviews: Iterable[CaseReviewState]) -> dict[str, object]:
    """Per dimension, the mean change from a case's baseline to its latest follow-up review.

    Only cases reviewed in both phases count: that is the improvement the Task Force's
    re-reviews measure. Baseline = the case's earliest baseline review.
    """
    baseline: dict[str, CaseReviewState] = {}
    latest: dict[str, CaseReviewState] = {}
    for review in reviews:
        key = review.case_ref
        order = (review.completed_at, review.review_id)  # ties broken by id, not input order
        if review.phase is Phase.BASELINE:
            if key not in baseline or order < (baseline[key].completed_at, baseline[key].review_id):
                baseline[key] = review
        elif key not in latest or order > (latest[key].completed_at, latest[key].review_id):
            latest[key] = review
    cases = sorted(set(baseline) & set(latest))
    changes: dict[str, float | None] = {}
    for dimension in DIMENSIONS:
        deltas = [getattr(latest[c].ratings, dimension) - getattr(baseline[c].ratings, dimension)
                  for c in cases]
        changes[dimension] = round(mean(deltas), 2) if deltas else None
    return {"cases_rereviewed": len(cases), "mean_change": changes}
