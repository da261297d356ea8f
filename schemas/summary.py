"""The output event `committee_summary.published` on `taskforce.summaries`."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.common import EnvelopeFields, Frozen, Timestamp


class SummaryStatus(StrEnum):
    DRAFT = "draft"
    FINAL = "final"
    REVISED = "revised"


class CourseStatus(StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    REJECTED = "rejected"
    RUNNING = "running"
    COMPLETED = "completed"
    NONE = "none"


class CourseFigures(Frozen):
    status: CourseStatus = Field(description="The course's state as of `as_of`.")
    course_id: str | None = Field(description="The course, once started.")
    started_on: date | None = Field(description="Local date of `course.started`.")
    planned_end: date | None = Field(description="Planned end date.")
    month_of_course: int | None = Field(
        description="Month of the course that `as_of` falls in (first month = 1); "
        "the month it completed in after completion; null when not started.")


class NotificationFigures(Frozen):
    received: int = Field(ge=0, description="Notifications received in the period.")
    assessed: int = Field(ge=0, description="Of those, assessed (whenever).")
    assessed_within_24h: int = Field(ge=0, description="Assessed at most 86,400 s after receipt.")
    share_within_24h: float = Field(description="assessed_within_24h / received, 0 when none.")
    median_hours_to_assessment: float | None = Field(
        description="Median hours from receipt to assessment over the assessed ones.")
    overdue_unassessed: int = Field(ge=0, description="Unassessed with receipt + 24 h <= as_of.")
    urgent_received: int = Field(ge=0, description="Received ones marked urgent.")


class DimensionFigures(Frozen):
    assessment: float | None
    intervention: float | None
    follow_up: float | None
    involvement: float | None


class FindingCounts(Frozen):
    major: int = Field(ge=0)
    minor: int = Field(ge=0)


class CaseReviewFigures(Frozen):
    completed: int = Field(ge=0, description="Reviews completed in the period.")
    baseline: int = Field(ge=0)
    follow_up: int = Field(ge=0)
    mean_rating: DimensionFigures = Field(description="Mean rating per dimension, 2 decimals.")
    share_meeting_standard: DimensionFigures = Field(
        description="Share of reviews rated 3 or 4 per dimension, 2 decimals.")
    legal_findings: FindingCounts


class DevelopmentPlanFigures(Frozen):
    milestones_total: int = Field(ge=0)
    achieved: int = Field(ge=0)
    in_progress: int = Field(ge=0)
    at_risk: int = Field(ge=0)
    missed: int = Field(ge=0)
    not_started: int = Field(ge=0)
    overdue: int = Field(ge=0, description="Not achieved and due before the local date of as_of.")
    meetings_held: int = Field(ge=0, description="Follow-up meetings dated in the period.")
    longest_gap_days: int | None = Field(description="Longest gap between follow-ups, in days.")
    cadence_ok: bool | None = Field(description="longest_gap_days <= 42.")


class SummaryData(Frozen):
    period: str = Field(pattern=r"^[0-9]{4}H[12]$", examples=["2022H1"])
    status: SummaryStatus
    revision: int = Field(ge=0)
    as_of: Timestamp
    course: CourseFigures
    notifications: NotificationFigures
    case_reviews: CaseReviewFigures
    development_plan: DevelopmentPlanFigures
    highlights: list[str] = Field(description="Short Danish sentences for the committee.")


class CommitteeSummaryPublished(EnvelopeFields):
    """A municipality's half-yearly summary: draft, final or revised."""

    event_type: Literal["committee_summary.published"]
    data: SummaryData
