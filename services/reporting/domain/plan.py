"""The `development_plan` figures: milestone statuses and follow-up meeting cadence."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from itertools import pairwise
from operator import itemgetter

from schemas.events import MilestoneStatus
from schemas.periods import Period, local_date, micros, utc, visible, visible_before
from schemas.reporting import MeetingState, MilestoneState, PlanState, StatusChange
from schemas.rules import CADENCE_DAYS
from schemas.summary import DevelopmentPlanFigures
from services.reporting.domain.rows import MeetingDay, meeting_days

NO_PLAN = DevelopmentPlanFigures(
    milestones_total=0, achieved=0, in_progress=0, at_risk=0, missed=0, not_started=0,
    overdue=0, meetings_held=0, longest_gap_days=None, cadence_ok=None)


def current_plan(plans: Iterable[PlanState], period: Period, as_of: datetime) -> PlanState | None:
    """The latest plan adopted as of `as_of` (ties broken by plan id)."""
    adopted = [p for p in plans if visible(p.adopted_at, as_of, period)]
    return max(adopted, key=_adoption, default=None)


def plans_that_count(plans: Iterable[PlanState]) -> dict[str, PlanState]:
    """Per half-year (by adoption), the plan adopted last in it (ties by plan id): the only
    plans `current_plan` can ever pick, as of a period's end (the last adoption before it)
    or as of a watermark no adoption is after. So memory need keep no others."""
    winners: dict[str, PlanState] = {}
    for plan in plans:
        name = Period.of(plan.adopted_at).name
        known = winners.get(name)
        if known is None or _adoption(plan) > _adoption(known):
            winners[name] = plan
    return winners


def _adoption(plan: PlanState) -> tuple[datetime, str]:
    return utc(plan.adopted_at), plan.plan_id


def milestone_status(
    history: Iterable[StatusChange], period: Period, as_of: datetime,
) -> MilestoneStatus:
    """The latest visible status by (effective_at, event_id): an older update never wins."""
    return _status_before(history, visible_before(period, as_of))


#: A status change's order: (instant, event id); the first of equals wins, as `max` keeps it.
_WHEN = itemgetter(0, 1)


def _status_before(history: Iterable[StatusChange], before: int) -> MilestoneStatus:
    """`milestone_status` with its visibility as a bound in `micros` (`visible_before`)."""
    seen = [(at, c.event_id, c.status) for c in history if (at := micros(c.effective_at)) < before]
    return max(seen, key=_WHEN)[2] if seen else MilestoneStatus.NOT_STARTED


def longest_gap_days(dates: Iterable[date], period: Period) -> int:
    """Longest span between consecutive sorted dates among spans [a, b] that overlap the
    period (a before its end date, b after its start date); 0 when none does."""
    ordered = sorted(dates)
    spans = [(b - a).days for a, b in pairwise(ordered)
             if a < period.end_date and b > period.start_date]
    return max(spans, default=0)


def cadence_gap(
    adopted_on: date,
    held: Iterable[date],
    today: date,
    period: Period,
    completed_on: date | None = None,
) -> int | None:
    """`longest_gap_days` over {adoption, the meetings, `today`} (the local date of as_of).

    The cadence ends with the course (1.1): with `completed_on`, the local date of a
    completion at or before as_of, the list ends at that date instead of `today` and every
    date after it is left out (meetings after it, and an adoption after it, which leaves no
    span: 0); a period whose first day is after that date has no figure (None).
    """
    end = today
    if completed_on is not None:
        if period.start_date > completed_on:
            return None
        end = min(completed_on, today)
    return longest_gap_days([*(d for d in (adopted_on, *held) if d <= end), end], period)


def plan_figures(
    plans: Iterable[PlanState],
    milestones: Iterable[MilestoneState],
    meetings: Iterable[MeetingState | MeetingDay],
    period: Period,
    as_of: datetime,
    completed_at: datetime | None = None,
) -> DevelopmentPlanFigures:
    """The figures of the latest plan adopted as of `as_of`.

    `completed_at` is when the course the summary reports completed, if known; once it is
    at or before `as_of` the meeting cadence ends with it (see `cadence_gap`).
    """
    plan = current_plan(plans, period, as_of)
    if plan is None:
        return NO_PLAN
    today, before = local_date(as_of), visible_before(period, as_of)
    histories: dict[str, list[StatusChange]] = {}
    for state in milestones:
        if state.plan_id == plan.plan_id:
            histories.setdefault(state.milestone_id, []).extend(state.history)
    statuses = [(m, _status_before(histories.get(m.milestone_id, ()), before)) for m in plan.milestones]
    counts = Counter(status for _, status in statuses)
    overdue = sum(1 for m, status in statuses
                  if status != MilestoneStatus.ACHIEVED and m.due_on < today)
    # A day of meetings counts when its last meeting is visible. Exact as the service runs:
    # as_of is a period end (a day before it is wholly before it) or the watermark, which no
    # meeting the replica holds is after.
    held = [day for day in meeting_days(meetings).values()
            if day.plan_id == plan.plan_id and micros(day.last_at) < before]
    completed_on = (local_date(completed_at) if completed_at is not None
                    and micros(completed_at) < before else None)
    gap = cadence_gap(plan.adopted_on, [day.held_on for day in held], today, period, completed_on)
    return DevelopmentPlanFigures(
        milestones_total=len(plan.milestones),
        achieved=counts[MilestoneStatus.ACHIEVED],
        in_progress=counts[MilestoneStatus.IN_PROGRESS],
        at_risk=counts[MilestoneStatus.AT_RISK],
        missed=counts[MilestoneStatus.MISSED],
        not_started=counts[MilestoneStatus.NOT_STARTED],
        overdue=overdue,
        meetings_held=sum(day.count for day in held if period.start_date <= day.held_on < period.end_date),
        longest_gap_days=gap,
        cadence_ok=None if gap is None else gap <= CADENCE_DAYS,
    )
