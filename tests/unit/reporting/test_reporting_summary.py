"""Composing a summary, the periods that get one, and the figures key."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import pytest

from schemas.cpr import CPR_PATTERN
from schemas.events import MilestoneStatus, Phase, Ratings
from schemas.periods import LOCAL_TZ, Period
from schemas.reporting import (
    ApplicationFacts,
    CaseReviewState,
    CourseFacts,
    CourseState,
    FindingCounts,
    MeetingState,
    MilestoneState,
    NotificationState,
    PlannedMilestone,
    PlanState,
    StatusChange,
)
from schemas.summary import CourseStatus, SummaryStatus
from services.reporting.domain.summary import (
    MunicipalityInputs,
    compute_summary,
    figures_key,
    periods_with_events,
    same_figures,
)

pytestmark = pytest.mark.unit

H1 = Period(2022, 1)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


INPUTS = MunicipalityInputs(
    course=CourseState(
        applications=[ApplicationFacts(application_id="a-1", submitted_at=local(2021, 9, 1, 10))],
        courses=[CourseFacts(course_id="c-1", application_id="a-1",
                             started_at=local(2022, 2, 1, 9), planned_end=date(2022, 12, 31))],
    ),
    notifications=[
        NotificationState(notification_id="n-1", received_at=local(2022, 3, 1, 10), urgent=True,
                          assessed_at=local(2022, 3, 1, 16)),
        NotificationState(notification_id="n-2", assessed_at=local(2020, 12, 1, 10)),
    ],
    reviews=[CaseReviewState(
        review_id="r-1", course_id="c-1", case_ref="k-1", phase=Phase.BASELINE,
        ratings=Ratings(assessment=3, intervention=2, follow_up=4, involvement=1),
        legal_findings=FindingCounts(major=1, minor=0), completed_at=local(2022, 4, 1, 10))],
    plans=[PlanState(plan_id="p-1", course_id="c-1", adopted_at=local(2022, 3, 1, 12),
                     adopted_on=date(2022, 3, 1),
                     milestones=[PlannedMilestone(milestone_id="m-1", goal_id="g-1", title="x",
                                                  due_on=date(2022, 9, 1))])],
    milestones=[MilestoneState(plan_id="p-1", milestone_id="m-1", history=[
        StatusChange(status=MilestoneStatus.ACHIEVED, effective_at=local(2023, 2, 1, 9),
                     event_id="e-1")])],
    meetings=[MeetingState(meeting_id="mt-1", plan_id="p-1", held_at=local(2022, 4, 5, 10),
                           held_on=date(2022, 4, 5), cases_rereviewed=1)],
)


def test_compute_summary_composes_the_figures() -> None:
    data = compute_summary(INPUTS, H1, datetime(2022, 8, 1, tzinfo=UTC), SummaryStatus.DRAFT, 0)
    dumped = data.model_dump(mode="json")
    assert dumped["period"] == "2022H1"
    assert dumped["as_of"] == "2022-07-01T00:00:00+02:00"
    assert (data.status, data.revision) == (SummaryStatus.DRAFT, 0)
    assert data.course.status is CourseStatus.RUNNING
    assert data.course.month_of_course == 6
    assert (data.notifications.received, data.notifications.median_hours_to_assessment) == (1, 6.0)
    assert data.case_reviews.mean_rating.follow_up == 4.0
    assert data.development_plan.not_started == 1
    # 1 Mar -> 5 Apr -> 1 Jul: 35 and 87 days
    assert data.development_plan.longest_gap_days == 87
    assert data.highlights[0] == "Der gik 87 dage mellem to opfølgningsmøder; målet er højst 42."


def test_compute_summary_as_of_the_watermark_and_with_a_previous_period() -> None:
    previous = compute_summary(MunicipalityInputs(), H1.previous(), local(2022, 8, 1),
                               SummaryStatus.FINAL, 0)
    data = compute_summary(INPUTS, H1, local(2022, 3, 1, 12), SummaryStatus.REVISED, 2, previous)
    assert data.model_dump(mode="json")["as_of"] == "2022-03-01T12:00:00+01:00"
    assert (data.status, data.revision) == (SummaryStatus.REVISED, 2)
    assert data.case_reviews.completed == 0
    assert data.notifications.overdue_unassessed == 0
    assert "Antallet af modtagne underretninger steg fra 0 til 1." in data.highlights


def test_periods_with_events() -> None:
    found = periods_with_events(INPUTS, ["2019H2"])
    assert found == {Period(2019, 2), Period(2020, 2), Period(2021, 2), Period(2022, 1),
                     Period(2023, 1)}
    assert periods_with_events(MunicipalityInputs()) == set()


def test_a_notification_belongs_to_its_receipt_not_its_assessment() -> None:
    note = NotificationState(notification_id="n", received_at=local(2022, 6, 30, 23),
                             assessed_at=local(2022, 7, 1, 9))
    assert periods_with_events(MunicipalityInputs(notifications=[note])) == {H1}
    late = datetime(2022, 6, 30, 22, 30, tzinfo=UTC)
    edge = NotificationState(notification_id="e", received_at=late)
    assert periods_with_events(MunicipalityInputs(notifications=[edge])) == {H1.next()}


def test_figures_key_ignores_status_revision_and_as_of() -> None:
    draft = compute_summary(INPUTS, H1, local(2022, 5, 1), SummaryStatus.DRAFT, 0)
    later = compute_summary(INPUTS, H1, local(2022, 5, 1, 0, 0, 1), SummaryStatus.REVISED, 3)
    assert draft.as_of != later.as_of
    assert figures_key(draft) == figures_key(later)
    assert len(figures_key(draft)) == 52
    assert not CPR_PATTERN.search(figures_key(draft))  # base32: never ten digits in a row


def test_a_key_stored_in_hex_by_an_earlier_version_is_the_same_figures() -> None:
    draft = compute_summary(INPUTS, H1, local(2022, 5, 1), SummaryStatus.DRAFT, 0)
    key = figures_key(draft)
    canonical = json.dumps(draft.model_dump(mode="json", exclude={"status", "revision", "as_of"}),
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert same_figures(hashlib.sha256(canonical.encode()).hexdigest(), key)
    assert same_figures(key, key) and not same_figures("0" * 64, key)


def test_figures_key_changes_with_a_figure() -> None:
    before = compute_summary(INPUTS, H1, local(2022, 6, 1), SummaryStatus.DRAFT, 0)
    after = compute_summary(INPUTS, H1, local(2022, 6, 2), SummaryStatus.DRAFT, 0)
    assert before.course.month_of_course == after.course.month_of_course == 5
    # the gap from the meeting on 5 April to as_of grew from 57 to 58 days
    assert (before.development_plan.longest_gap_days,
            after.development_plan.longest_gap_days) == (57, 58)
    assert figures_key(before) != figures_key(after)
    changed = before.model_copy(update={"notifications": before.notifications.model_copy(
        update={"urgent_received": 2})})
    assert figures_key(changed) != figures_key(before)
