"""Follow-up's entity kinds: plans, milestones (with histories) and meetings."""

from __future__ import annotations

from typing import Any

from schemas.reporting import MeetingState, MilestoneState, PlanState
from services.common.fold import EntityKind
from services.followup.domain import apply_meeting, apply_milestone, apply_milestones, apply_plan

PLANS = "plans"
MILESTONES = "milestones"
MEETINGS = "meetings"

PLAN = EntityKind(
    name="plan", collection=PLANS, reporting_type="reporting.plan_changed", state_model=PlanState,
    entity_id=lambda event: event.data.plan_id, apply=apply_plan)
MILESTONE = EntityKind(
    name="milestone", collection=MILESTONES, reporting_type="reporting.milestone_changed",
    state_model=MilestoneState,
    entity_id=lambda event: f"{event.data.plan_id}/{event.data.milestone_id}", apply=apply_milestone,
    apply_all=apply_milestones)
MEETING = EntityKind(
    name="meeting", collection=MEETINGS, reporting_type="reporting.meeting_changed",
    state_model=MeetingState, entity_id=lambda event: event.event_key, apply=apply_meeting)

KINDS: dict[str, EntityKind[Any]] = {
    "development_plan.adopted": PLAN,
    "milestone.updated": MILESTONE,
    "followup.meeting_held": MEETING,
}
