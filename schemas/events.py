"""The public input events of contract v1: ten event types on four topics.

Which type travels on which topic, and a valid example of each, is `schemas.catalogue`.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from schemas.common import MAX_LIST_ITEMS, EnvelopeFields, Frozen, Identifier, Text


class Reason(StrEnum):
    RISING_CASELOAD = "rising_caseload"
    RISING_NOTIFICATIONS = "rising_notifications"
    QUALITY_CONCERNS = "quality_concerns"
    COMPETENCE_GAP = "competence_gap"
    OTHER = "other"


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class Reporter(StrEnum):
    SCHOOL = "school"
    DAYCARE = "daycare"
    HEALTH = "health"
    POLICE = "police"
    SOCIAL_SERVICES = "social_services"
    FAMILY = "family"
    ANONYMOUS = "anonymous"
    OTHER = "other"


class Outcome(StrEnum):
    NO_ACTION = "no_action"
    ADVICE_AND_GUIDANCE = "advice_and_guidance"
    CHILD_INVESTIGATION_OPENED = "child_investigation_opened"
    IMMEDIATE_MEASURE = "immediate_measure"
    REFERRED_ELSEWHERE = "referred_elsewhere"


class Phase(StrEnum):
    BASELINE = "baseline"
    FOLLOW_UP = "follow_up"


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"


class MilestoneStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    ACHIEVED = "achieved"
    AT_RISK = "at_risk"
    MISSED = "missed"


# --- taskforce.applications -------------------------------------------------------------


class ApplicationSubmittedData(Frozen):
    application_id: Identifier = Field(description="The application's id.")
    reasons: list[Reason] = Field(min_length=1, max_length=MAX_LIST_ITEMS,
                                  description="Why the municipality applies.")


class ApplicationDecidedData(Frozen):
    application_id: Identifier = Field(description="The application decided on.")
    decision: Decision = Field(description="Socialstyrelsen's decision.")
    expected_start: date = Field(description="The agreed start date of the course.")


class CourseStartedData(Frozen):
    course_id: Identifier = Field(description="The course's id.")
    application_id: Identifier = Field(description="The approved application it follows.")
    planned_end: date = Field(description="The planned last day of the course.")


class CourseCompletedData(Frozen):
    course_id: Identifier = Field(description="The course that ended.")


class ApplicationSubmitted(EnvelopeFields):
    """The municipality has applied for a Task Force course."""

    event_type: Literal["application.submitted"]
    data: ApplicationSubmittedData


class ApplicationDecided(EnvelopeFields):
    """Socialstyrelsen approved or rejected an application."""

    event_type: Literal["application.decided"]
    data: ApplicationDecidedData


class CourseStarted(EnvelopeFields):
    """A course began; `occurred_at` is its start."""

    event_type: Literal["course.started"]
    data: CourseStartedData


class CourseCompleted(EnvelopeFields):
    """A course ended; `occurred_at` is its end."""

    event_type: Literal["course.completed"]
    data: CourseCompletedData


# --- taskforce.notifications ------------------------------------------------------------


class NotificationReceivedData(Frozen):
    notification_id: Identifier = Field(description="The notification's id.")
    child_ref: Identifier = Field(description="Pseudonymous reference to the child; never a CPR.")
    reporter: Reporter = Field(description="Who notified the municipality.")
    urgent: bool = Field(description="Marked urgent on receipt.")


class NotificationAssessedData(Frozen):
    notification_id: Identifier = Field(description="The notification assessed.")
    outcome: Outcome = Field(description="The outcome of the assessment.")


class NotificationReceived(EnvelopeFields):
    """A notification of concern (underretning) was received; `occurred_at` is receipt."""

    event_type: Literal["notification.received"]
    data: NotificationReceivedData


class NotificationAssessed(EnvelopeFields):
    """A notification was assessed; `occurred_at` is the moment of assessment."""

    event_type: Literal["notification.assessed"]
    data: NotificationAssessedData


# --- taskforce.case-reviews -------------------------------------------------------------

Rating = Annotated[int, Field(ge=1, le=4)]


class Ratings(Frozen):
    """1 inadequate, 2 partly adequate, 3 adequate, 4 good; 3 or 4 meets the standard."""

    assessment: Rating = Field(description="Professional assessment of the child.")
    intervention: Rating = Field(description="Choice of intervention.")
    follow_up: Rating = Field(description="Follow-up on the intervention.")
    involvement: Rating = Field(description="Involvement of the child and parents.")


class LegalFinding(Frozen):
    code: Identifier = Field(description="Ankestyrelsen's code for the finding.")
    severity: Severity = Field(description="minor or major.")


class CaseReviewCompletedData(Frozen):
    review_id: Identifier = Field(description="The review's id.")
    course_id: Identifier = Field(description="The course the review belongs to.")
    case_ref: Identifier = Field(description="Pseudonymous reference to the case; never a CPR.")
    phase: Phase = Field(description="baseline (analysis) or follow_up.")
    ratings: Ratings = Field(description="One rating 1-4 per dimension.")
    legal_findings: list[LegalFinding] = Field(max_length=MAX_LIST_ITEMS,
                                  description="Legal findings; may be empty.")


class CaseReviewCompleted(EnvelopeFields):
    """The Task Force completed the review of one case."""

    event_type: Literal["case_review.completed"]
    data: CaseReviewCompletedData


# --- taskforce.milestones ---------------------------------------------------------------


class Milestone(Frozen):
    milestone_id: Identifier = Field(description="The milestone's id.")
    title: Text = Field(description="What is to be reached.")
    due_on: date = Field(description="The date it is due.")


class Goal(Frozen):
    goal_id: Identifier = Field(description="The goal's id.")
    title: Text = Field(description="The goal.")
    milestones: list[Milestone] = Field(max_length=MAX_LIST_ITEMS,
                                  description="Dated milestones towards the goal.")


class DevelopmentPlanAdoptedData(Frozen):
    plan_id: Identifier = Field(description="The plan's id.")
    course_id: Identifier = Field(description="The course the plan belongs to.")
    goals: list[Goal] = Field(min_length=1, max_length=MAX_LIST_ITEMS,
                                  description="Goals with their milestones.")

    @model_validator(mode="after")
    def _has_a_milestone(self) -> DevelopmentPlanAdoptedData:
        if not any(goal.milestones for goal in self.goals):
            raise ValueError("a development plan needs at least one milestone")
        ids = [m.milestone_id for goal in self.goals for m in goal.milestones]
        if len(ids) != len(set(ids)):
            raise ValueError("milestone ids must be unique within a plan")
        return self


class MilestoneUpdatedData(Frozen):
    plan_id: Identifier = Field(description="The plan the milestone belongs to.")
    milestone_id: Identifier = Field(description="The milestone updated.")
    status: MilestoneStatus = Field(description="Its status from `occurred_at` on.")


class FollowupMeetingHeldData(Frozen):
    plan_id: Identifier = Field(description="The plan followed up on.")
    cases_rereviewed: int = Field(ge=0, le=100_000, description="Cases re-reviewed at the meeting.")


class DevelopmentPlanAdopted(EnvelopeFields):
    """The municipality adopted its development plan (udviklingsplan)."""

    event_type: Literal["development_plan.adopted"]
    data: DevelopmentPlanAdoptedData


class MilestoneUpdated(EnvelopeFields):
    """A milestone's status changed; an older update never overwrites a newer one."""

    event_type: Literal["milestone.updated"]
    data: MilestoneUpdatedData


class FollowupMeetingHeld(EnvelopeFields):
    """A 6-weekly follow-up meeting was held; its date is the local date of `occurred_at`."""

    event_type: Literal["followup.meeting_held"]
    data: FollowupMeetingHeldData


def __getattr__(name: str) -> Any:
    """`INPUT_TYPES` (every public input type with its model and topic), a view of
    `schemas.catalogue`: looked up on first use, since the catalogue imports this module."""
    if name == "INPUT_TYPES":
        from schemas.catalogue import INPUT_TYPES

        return INPUT_TYPES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
