"""The `case_reviews` figures, plus per-phase means and re-review changes for the report."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas import rules
from schemas.events import Phase
from schemas.periods import Period, bounds_micros, visible, visible_before
from schemas.reporting import CaseReviewState
from schemas.rules import DIMENSIONS
from schemas.summary import CaseReviewFigures, DimensionFigures, FindingCounts
from services.reporting.domain.rows import ReviewRow

MEETS_STANDARD = 3
"""A rating of 3 (adequate) or 4 (good) meets the standard."""


def completed_in(
    reviews: Iterable[CaseReviewState], period: Period, as_of: datetime,
) -> list[CaseReviewState]:
    """Reviews completed in the period and visible as of `as_of`."""
    return [r for r in reviews
            if period.contains(r.completed_at) and visible(r.completed_at, as_of, period)]


def _rating(review: CaseReviewState, dimension: str) -> int:
    return int(getattr(review.ratings, dimension))


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def mean_ratings(reviews: list[CaseReviewState]) -> dict[str, float | None]:
    return {d: _mean([float(_rating(r, d)) for r in reviews]) for d in DIMENSIONS}


def review_figures(
    reviews: Iterable[CaseReviewState], period: Period, as_of: datetime,
) -> CaseReviewFigures:
    """Figures over the reviews completed in the period (see `figures_of_rows`)."""
    return figures_of_rows(map(ReviewRow.of, reviews), period, as_of)


def figures_of_rows(rows: Iterable[ReviewRow], period: Period, as_of: datetime) -> CaseReviewFigures:
    """Figures over the reviews completed in the period and visible as of `as_of`."""
    start, _end = bounds_micros(period)
    top = visible_before(period, as_of)
    done = [r for r in rows if start <= r.completed < top]
    means = {d: _mean([float(r.ratings[i]) for r in done]) for i, d in enumerate(DIMENSIONS)}
    shares = {d: _mean([1.0 if r.ratings[i] >= MEETS_STANDARD else 0.0 for r in done])
              for i, d in enumerate(DIMENSIONS)}
    return CaseReviewFigures(
        completed=len(done),
        baseline=sum(1 for r in done if r.phase == Phase.BASELINE),
        follow_up=sum(1 for r in done if r.phase == Phase.FOLLOW_UP),
        mean_rating=DimensionFigures(**means),
        share_meeting_standard=DimensionFigures(**shares),
        legal_findings=FindingCounts(major=sum(r.major for r in done), minor=sum(r.minor for r in done)),
    )


def phase_means(
    reviews: Iterable[CaseReviewState], period: Period, as_of: datetime,
) -> dict[str, dict[str, float | None]]:
    """Mean rating per dimension of the period's reviews, for each phase separately."""
    done = completed_in(reviews, period, as_of)
    return {phase.value: mean_ratings([r for r in done if r.phase == phase]) for phase in Phase}


def rereview_changes(reviews: Iterable[CaseReviewState]) -> dict[str, float | None]:
    """The report's re-review change per dimension: `schemas.rules.rereview_changes`, the
    definition the analysis read model uses too (docs/domain.md, *Re-review change*)."""
    return rules.rereview_changes(reviews).mean_change
