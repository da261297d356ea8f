"""Pure rules for development plans, milestone histories and follow-up meetings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from operator import attrgetter
from zoneinfo import ZoneInfo

from schemas.events import (
    DevelopmentPlanAdopted,
    FollowupMeetingHeld,
    MilestoneStatus,
    MilestoneUpdated,
)
from schemas.reporting import MeetingState, MilestoneState, PlannedMilestone, PlanState, StatusChange

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
#: The Task Force follows up every 6 weeks; a longer gap breaks the cadence.
MAX_GAP_DAYS = 42


def local_date(instant: datetime) -> date:
    return instant.astimezone(COPENHAGEN).date()


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
    """A plan adopted again under the same id is a revision: the latest adoption wins."""
    if state is None:
        return plan_state(event)
    # (adopted_at, JSON) > (adopted_at, JSON), the JSON only spelled on a tie
    if event.occurred_at != state.adopted_at:
        return plan_state(event) if event.occurred_at > state.adopted_at else state
    new = plan_state(event)
    return new if new.model_dump_json() > state.model_dump_json() else state


#: A change's place in a history: (effective_at, event_id).
_change_key = attrgetter("effective_at", "event_id")


def apply_milestone(state: MilestoneState | None, event: MilestoneUpdated) -> MilestoneState:
    """Keep every update in the history, sorted by when it took effect.

    An older update never overwrites a newer status (the current status is the last entry),
    but stays in the history so the status at any past instant can be answered.
    """
    return apply_milestones(state, (event,))


def apply_milestones(state: MilestoneState | None, events: Sequence[MilestoneUpdated]) -> MilestoneState:
    """`apply_milestone` for each of `events` (at least one) in turn, with the state built once.

    A batch often carries several updates of one milestone; building (and validating) the
    whole history once instead of once per update is the same state for less work.
    """
    changes = {} if state is None else {change.event_id: change for change in state.history}
    for event in events:
        changes[event.event_key] = StatusChange(status=event.data.status, effective_at=event.occurred_at,
                                                event_id=event.event_key)
    last = events[-1].data
    return MilestoneState(plan_id=last.plan_id, milestone_id=last.milestone_id,
                          history=sorted(changes.values(), key=_change_key))


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
