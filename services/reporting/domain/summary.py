"""A municipality's summary for one period, composed from the figure modules."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol, TypeVar

from schemas import periods
from schemas.periods import Period
from schemas.reporting import (
    CaseReviewState,
    CourseState,
    MeetingState,
    MilestoneState,
    NotificationState,
    PlanState,
)
from schemas.summary import SummaryData, SummaryStatus
from services.reporting.domain import notifications, reviews
from services.reporting.domain.course import completion, course_figures
from services.reporting.domain.highlights import highlights
from services.reporting.domain.plan import plan_figures
from services.reporting.domain.rows import MeetingDay, NotificationRow, ReviewRow
from services.reporting.domain.tallies import NotificationTally, ReviewTally

FiguresT = TypeVar("FiguresT")
FiguresT_co = TypeVar("FiguresT_co", covariant=True)


@dataclass(frozen=True)
class MunicipalityInputs:
    """The reporting replica's current states for one municipality."""

    course: CourseState | None = None
    notifications: Sequence[NotificationState] = ()
    reviews: Sequence[CaseReviewState] = ()
    plans: Sequence[PlanState] = ()
    milestones: Sequence[MilestoneState] = ()
    meetings: Sequence[MeetingState] = ()


@dataclass(frozen=True)
class SummaryInputs:
    """What a period's summary is computed from: the small states in full, the voluminous
    ones as rows (only the period's are needed; others are ignored)."""

    course: CourseState | None = None
    notifications: Iterable[NotificationRow] = ()
    reviews: Iterable[ReviewRow] = ()
    plans: Sequence[PlanState] = ()
    milestones: Sequence[MilestoneState] = ()
    meetings: Sequence[MeetingState | MeetingDay] = ()
    #: The period's figures kept row by row, when the caller has them: the rows are then
    #: scanned only when a tally defers (`services.reporting.domain.tallies`).
    notification_tally: NotificationTally | None = None
    review_tally: ReviewTally | None = None

    @classmethod
    def of(cls, inputs: MunicipalityInputs) -> SummaryInputs:
        return cls(
            course=inputs.course,
            notifications=[NotificationRow.of(n) for n in inputs.notifications],
            reviews=[ReviewRow.of(r) for r in inputs.reviews],
            plans=inputs.plans, milestones=inputs.milestones, meetings=inputs.meetings,
        )


def compute_summary(
    inputs: MunicipalityInputs,
    period: Period,
    watermark: datetime,
    status: SummaryStatus,
    revision: int,
    previous: SummaryData | None = None,
) -> SummaryData:
    """The period's summary as of min(period end, watermark).

    `previous` is the previous period's summary, if any, for the highlights.
    """
    return summary_of(SummaryInputs.of(inputs), period, watermark, status, revision, previous)


def summary_of(
    inputs: SummaryInputs,
    period: Period,
    watermark: datetime,
    status: SummaryStatus,
    revision: int,
    previous: SummaryData | None = None,
) -> SummaryData:
    """`compute_summary` over rows: what the reporting service runs on every batch."""
    as_of = periods.as_of(period, watermark)
    data = SummaryData(
        period=period.name,
        status=SummaryStatus(status),
        revision=revision,
        as_of=as_of,
        course=course_figures(inputs.course, as_of, period),
        notifications=_tallied_or_scanned(inputs.notification_tally,
                                          partial(notifications.figures_of_rows, inputs.notifications),
                                          period, as_of),
        case_reviews=_tallied_or_scanned(inputs.review_tally,
                                         partial(reviews.figures_of_rows, inputs.reviews),
                                         period, as_of),
        development_plan=plan_figures(inputs.plans, inputs.milestones, inputs.meetings,
                                      period, as_of,
                                      completion(inputs.course, as_of, period)),
        highlights=[],
    )
    return data.model_copy(update={"highlights": highlights(data, previous)})


class _Tally(Protocol[FiguresT_co]):
    def figures(self, period: Period, as_of: datetime, /) -> FiguresT_co | None: ...


def _tallied_or_scanned(tally: _Tally[FiguresT] | None, scan: Callable[[Period, datetime], FiguresT],
                        period: Period, as_of: datetime) -> FiguresT:
    """The tally's figures, unless there is none or it defers to a scan of the rows."""
    tallied = None if tally is None else tally.figures(period, as_of)
    return tallied if tallied is not None else scan(period, as_of)


def event_instants(inputs: MunicipalityInputs) -> list[datetime]:
    """Every occurred_at the states record, each placing an event in a period."""
    instants: list[datetime | None] = []
    if inputs.course is not None:
        for application in inputs.course.applications:
            instants += [application.submitted_at, application.decided_at]
        for course in inputs.course.courses:
            instants += [course.started_at, course.completed_at]
    for n in inputs.notifications:
        # A notification belongs to its receipt's period; the assessment's only while
        # the receipt is unknown.
        instants.append(n.received_at if n.received_at is not None else n.assessed_at)
    instants += [r.completed_at for r in inputs.reviews]
    instants += [p.adopted_at for p in inputs.plans]
    instants += [c.effective_at for m in inputs.milestones for c in m.history]
    instants += [m.held_at for m in inputs.meetings]
    return [t for t in instants if t is not None]


def periods_with_events(
    inputs: MunicipalityInputs, extra_periods: Iterable[str] = (),
) -> set[Period]:
    """Every period that contains an event, plus the named extra periods."""
    found = {Period.of(t) for t in event_instants(inputs)}
    return found | {Period.parse(name) for name in extra_periods}


def figures_key(data: SummaryData) -> str:
    """A stable hash of everything published except status, revision and as_of.

    Two summaries with the same key show the same figures (and highlights), so nothing
    new would be published.
    Spelled in base32 (letters and the digits 2-7), never in hex: a hex digest can hold ten
    digits that read as a CPR-like number, and none may be stored (EVENTS.md 1.1).
    """
    figures = data.model_dump(mode="json", exclude={"status", "revision", "as_of"})
    canonical = json.dumps(figures, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()


def same_figures(stored_key: str, key: str) -> bool:
    """Whether a stored summary's key is `key`, in today's spelling or the hex of earlier
    versions (so an upgrade republishes nothing whose figures did not change)."""
    if stored_key == key:
        return True
    padded = key.upper() + "=" * (-len(key) % 8)
    return stored_key == base64.b32decode(padded).hex()
