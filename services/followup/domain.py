"""Pure rules for development plans, milestone histories and follow-up meetings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import attrgetter

from schemas.events import (
    DevelopmentPlanAdopted,
    FollowupMeetingHeld,
    MilestoneStatus,
    MilestoneUpdated,
)
from schemas.periods import Period, local_date
from schemas.reporting import MeetingState, MilestoneState, PlannedMilestone, PlanState, StatusChange
from schemas.rules import latest_wins


def plan_state(event: DevelopmentPlanAdopted) -> PlanState:
    milestones = [
        PlannedMilestone(milestone_id=m.milestone_id, goal_id=goal.goal_id, title=m.title, due_on=m.due_on)
        for goal in event.data.goals
        for m in goal.milestones
    ]
    return PlanState(plan_id=event.data.plan_id, course_id=event.data.course_id,
                     adopted_at=event.occurred_at, adopted_on=local_date(event.occurred_at),
                     milestones=milestones)


def apply_plan(state: PlanState | None, event: DevelopmentPlanAdopted) -> PlanState:
    """A plan adopted again under the same id is a revision: the latest adoption wins, ties
    broken by the plan's content (`schemas.rules.latest_wins`)."""
    return latest_wins(state, None if state is None else state.adopted_at, event.occurred_at,
                       lambda: plan_state(event))


#: A change's place in a history: (effective_at, event_id).
_change_key = attrgetter("effective_at", "event_id")


def half_year(instant: datetime) -> tuple[int, int]:
    """The half-year (Europe/Copenhagen) an instant falls in: (year, 1 or 2) of `Period.of`."""
    period = Period.of(instant)
    return period.year, period.half


def apply_milestone(state: MilestoneState | None, event: MilestoneUpdated) -> MilestoneState:
    """Fold one update into the milestone's history. See `apply_milestones`."""
    return apply_milestones(state, (event,))


def apply_milestones(state: MilestoneState | None, events: Sequence[MilestoneUpdated]) -> MilestoneState:
    """Fold updates (at least one) into the history: per half-year, the last change in it.

    An older update never overwrites a newer status. The history keeps, for each half-year
    in which the milestone changed, only its last change by (effective_at, event_id): that
    answers every question a summary asks, the status at a period's end (the last change
    before it) and the status now (the last of all), and it bounds the history by the
    half-years a milestone lives through, however often it is updated. A status at an instant
    inside a half-year, before its last change, is not kept: nothing asks for it.

    The fold is a join (a maximum per half-year): the same updates in any order, with
    repeats or cut into any batches, give the same state, so a redelivered update has no
    effect even when its id is no longer remembered.
    """
    last: dict[tuple[int, int], StatusChange] = {} if state is None else {
        half_year(change.effective_at): change for change in state.history}
    for event in events:
        change = StatusChange(status=event.data.status, effective_at=event.occurred_at,
                              event_id=event.event_key)
        period = half_year(change.effective_at)
        kept = last.get(period)
        if kept is None or _later(change, kept):
            last[period] = change
    data = events[-1].data
    return MilestoneState(plan_id=data.plan_id, milestone_id=data.milestone_id,
                          history=sorted(last.values(), key=_change_key))


def _later(change: StatusChange, than: StatusChange) -> bool:
    """Whether `change` comes after `than`: by instant, then event id, then the spelling of
    the instant (one instant written with two offsets still has one winner)."""
    if change.effective_at != than.effective_at:
        return change.effective_at > than.effective_at
    if change.event_id != than.event_id:
        return change.event_id > than.event_id
    return change.effective_at.isoformat() > than.effective_at.isoformat()


def status_at(state: MilestoneState | None, instant: datetime) -> MilestoneStatus:
    """The milestone's status at `instant` (updates at or before it); not_started before any."""
    status = MilestoneStatus.NOT_STARTED
    if state is not None:
        for change in state.history:
            if change.effective_at > instant:
                break
            status = change.status
    return status


def apply_meeting(state: MeetingState | None, event: FollowupMeetingHeld) -> MeetingState:
    """A meeting is its own entity (keyed by event id); its date is the local date."""
    return MeetingState(meeting_id=event.event_key, plan_id=event.data.plan_id,
                        held_at=event.occurred_at, held_on=local_date(event.occurred_at),
                        cases_rereviewed=event.data.cases_rereviewed)


def overdue_milestones(plan: PlanState, milestones: Iterable[MilestoneState], now: datetime
                       ) -> list[tuple[PlannedMilestone, MilestoneStatus]]:
    """Milestones of `plan` not achieved by `now` whose due date lies before today."""
    today = local_date(now)
    by_id = {m.milestone_id: m for m in milestones if m.plan_id == plan.plan_id}
    late = []
    for planned in plan.milestones:
        status = status_at(by_id.get(planned.milestone_id), now)
        if status is not MilestoneStatus.ACHIEVED and planned.due_on < today:
            late.append((planned, status))
    return sorted(late, key=lambda item: (item[0].due_on, item[0].milestone_id))


def days_since_last_followup(plan: PlanState, meetings: Iterable[MeetingState], now: datetime) -> int:
    """Days from the last meeting of the plan (or its adoption) to today."""
    dates = [m.held_on for m in meetings if m.plan_id == plan.plan_id and m.held_at <= now]
    last = max([plan.adopted_on, *dates])
    return (local_date(now) - last).days
