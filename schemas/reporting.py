"""Internal reporting events on `taskforce.reporting` (event-carried state transfer).

Each event carries the *whole new state* of one entity that changed in an owning service
(intake, analysis, follow-up), a per-entity `version` that only grows, and the emitting
service's watermark for the municipality. The reporting service keeps a replica of these
states and never lets an older version overwrite a newer one, so replaying or reordering
reporting events changes nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.common import EnvelopeFields, Frozen, Identifier, Timestamp
from schemas.events import (
    Decision,
    MilestoneStatus,
    Outcome,
    Phase,
    Ratings,
    Reason,
    Reporter,
)

REPORTING_SCHEMA_VERSION = 1


class ApplicationFacts(Frozen):
    application_id: Identifier
    submitted_at: Timestamp | None = None
    reasons: list[Reason] = Field(default_factory=list)
    decided_at: Timestamp | None = None
    decision: Decision | None = None
    expected_start: date | None = None


class CourseFacts(Frozen):
    course_id: Identifier
    application_id: Identifier | None = None
    started_at: Timestamp | None = None
    planned_end: date | None = None
    completed_at: Timestamp | None = None


class CourseState(Frozen):
    """A municipality's applications and courses, as far as events have told."""

    applications: list[ApplicationFacts] = Field(default_factory=list)
    courses: list[CourseFacts] = Field(default_factory=list)


class NotificationState(Frozen):
    """One notification: its receipt and its (first) assessment; either may be unknown."""

    notification_id: Identifier
    received_at: Timestamp | None = None
    urgent: bool | None = None
    reporter: Reporter | None = None
    assessed_at: Timestamp | None = None
    outcome: Outcome | None = None


class FindingCounts(Frozen):
    major: int = Field(ge=0)
    minor: int = Field(ge=0)


class CaseReviewState(Frozen):
    review_id: Identifier
    course_id: Identifier
    case_ref: Identifier
    phase: Phase
    ratings: Ratings
    legal_findings: FindingCounts
    completed_at: Timestamp


class PlannedMilestone(Frozen):
    milestone_id: Identifier
    goal_id: Identifier
    title: str
    due_on: date


class PlanState(Frozen):
    plan_id: Identifier
    course_id: Identifier
    adopted_at: Timestamp
    adopted_on: date = Field(description="Local (Europe/Copenhagen) date of adoption.")
    milestones: list[PlannedMilestone]


class StatusChange(Frozen):
    status: MilestoneStatus
    effective_at: Timestamp
    event_id: str = Field(description="Tie-breaker between changes at the same instant.")


class MilestoneState(Frozen):
    """A milestone's whole status history, sorted by (effective_at, event_id)."""

    plan_id: Identifier
    milestone_id: Identifier
    history: list[StatusChange] = Field(min_length=1)


class MeetingState(Frozen):
    meeting_id: Identifier = Field(description="The event id of the meeting event.")
    plan_id: Identifier
    held_at: Timestamp
    held_on: date = Field(description="Local (Europe/Copenhagen) date of the meeting.")
    cases_rereviewed: int = Field(ge=0)


class ReportingData(Frozen):
    entity_id: Identifier = Field(description="The entity's id within the municipality.")
    version: int = Field(ge=0, description="Grows with every change of the entity.")
    watermark: Timestamp = Field(
        description="Greatest occurred_at of a valid input event the emitting service has "
        "seen for the municipality.")


class CourseChangedData(ReportingData):
    state: CourseState


class NotificationChangedData(ReportingData):
    state: NotificationState


class CaseReviewChangedData(ReportingData):
    state: CaseReviewState


class PlanChangedData(ReportingData):
    state: PlanState


class MilestoneChangedData(ReportingData):
    state: MilestoneState


class MeetingChangedData(ReportingData):
    state: MeetingState


class CourseChanged(EnvelopeFields):
    event_type: Literal["reporting.course_changed"]
    data: CourseChangedData


class NotificationChanged(EnvelopeFields):
    event_type: Literal["reporting.notification_changed"]
    data: NotificationChangedData


class CaseReviewChanged(EnvelopeFields):
    event_type: Literal["reporting.case_review_changed"]
    data: CaseReviewChangedData


class PlanChanged(EnvelopeFields):
    event_type: Literal["reporting.plan_changed"]
    data: PlanChangedData


class MilestoneChanged(EnvelopeFields):
    event_type: Literal["reporting.milestone_changed"]
    data: MilestoneChangedData


class MeetingChanged(EnvelopeFields):
    event_type: Literal["reporting.meeting_changed"]
    data: MeetingChangedData


ReportingEvent = Annotated[
    CourseChanged | NotificationChanged | CaseReviewChanged | PlanChanged
    | MilestoneChanged | MeetingChanged,
    Field(discriminator="event_type"),
]

REPORTING_TYPES: dict[str, type[EnvelopeFields]] = {
    "reporting.course_changed": CourseChanged,
    "reporting.notification_changed": NotificationChanged,
    "reporting.case_review_changed": CaseReviewChanged,
    "reporting.plan_changed": PlanChanged,
    "reporting.milestone_changed": MilestoneChanged,
    "reporting.meeting_changed": MeetingChanged,
}

REPORTING_ADAPTER: TypeAdapter[ReportingEvent] = TypeAdapter(ReportingEvent)
