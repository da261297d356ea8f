"""Internal reporting events on `taskforce.reporting` (event-carried state transfer).

Each event carries the *whole new state* of one entity that changed in an owning service
(intake, analysis, follow-up), a per-entity `version` that only grows, and the emitting
service's watermark for the municipality. The reporting service keeps a replica of these
states and never lets an older version overwrite a newer one, so replaying or reordering
reporting events changes nothing.

Since contract 1.1 each event may also say how far its service is with the municipality's
events on the entity's input topic (`progress`), and `reporting.progress` says so alone when
nothing changed: finalisation waits for every owning service (docs/contract.md). Both are
additions a reader of version 1 without them simply does not get: an event without
`progress` is read as before.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

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
    """A milestone's status history: for each half-year (Europe/Copenhagen) in which it
    changed, the last change in it, sorted by (effective_at, event_id). That gives the status
    at every period's end and now, and stays small however often the milestone is updated."""

    plan_id: Identifier
    milestone_id: Identifier
    history: list[StatusChange] = Field(min_length=1)


class MeetingState(Frozen):
    meeting_id: Identifier = Field(description="The event id of the meeting event.")
    plan_id: Identifier
    held_at: Timestamp
    held_on: date = Field(description="Local (Europe/Copenhagen) date of the meeting.")
    cases_rereviewed: int = Field(ge=0)


InputTopic = Literal["taskforce.applications", "taskforce.notifications", "taskforce.case-reviews",
                     "taskforce.milestones"]


class StreamProgress(Frozen):
    """How far the emitting service is with one municipality's events on one of its input
    topics, as of this record (in the order of the municipality's reporting partition)."""

    topic: InputTopic = Field(description="The input topic (without any deployment prefix).")
    through: Timestamp = Field(
        description="The municipality's events on the topic up to this instant have had their "
        "states published by this record (the topic taken in its order, which is time order but "
        "for late events).")
    caught_up: bool = Field(
        description="After this record the service had nothing left for the municipality on the "
        "topic: no more states of the same batch, and no records waiting on the municipality's "
        "partition of the topic.")
    partition: int = Field(ge=0, description="The municipality's partition of the topic.")
    offset: int = Field(
        ge=0, description="The service had applied every record of the partition before this offset "
        "(and published their states) by this record. The reporting service compares it with the "
        "partition's end offset when it decides, so a `caught_up` said before new records arrived "
        "does not count.")


class ReportingData(Frozen):
    entity_id: Identifier = Field(description="The entity's id within the municipality.")
    version: int = Field(ge=0, description="Grows with every change of the entity.")
    watermark: Timestamp = Field(
        description="Greatest occurred_at of a valid input event the emitting service has "
        "seen for the municipality.")
    progress: StreamProgress | None = Field(
        default=None,
        description="(1.1) The service's progress on the entity's input topic for the "
        "municipality, as of this record; absent from older producers.")


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


class ProgressReported(EnvelopeFields):
    """(1.1) An owning service's progress on one municipality's events on one input topic, when
    no state changed to carry it: the service caught up with a partition after having said it
    was behind, or took a partition over (restart, rebalance) and says where it stands."""

    event_type: Literal["reporting.progress"]
    data: StreamProgress
