"""1.1 "The cadence ends with the course", through the summary: which completion counts
(the course state's), and the highlights of an ended course."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from schemas.periods import LOCAL_TZ, Period, local_date
from schemas.reporting import (
    CourseFacts,
    CourseState,
    MeetingState,
    NotificationState,
    PlannedMilestone,
    PlanState,
)
from schemas.summary import CourseStatus, SummaryData, SummaryStatus
from services.reporting.domain.course import completion
from services.reporting.domain.highlights import highlights
from services.reporting.domain.summary import MunicipalityInputs, compute_summary

pytestmark = pytest.mark.unit

H22_1, H22_2, H23_2 = Period(2022, 1), Period(2022, 2), Period(2023, 2)
WATERMARK = datetime(2024, 1, 10, 10, tzinfo=LOCAL_TZ)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def meeting(held: datetime) -> MeetingState:
    return MeetingState(meeting_id=f"mt-{held.isoformat()}", plan_id="p-1", held_at=held,
                        held_on=local_date(held), cases_rereviewed=0)


STARTED = local(2020, 9, 1, 9)


def course(completed_at: datetime | None, started_at: datetime | None = STARTED,
           course_id: str = "c-1") -> CourseFacts:
    return CourseFacts(course_id=course_id, application_id="a-1", started_at=started_at,
                       planned_end=date(2022, 3, 31), completed_at=completed_at)


def inputs(*courses: CourseFacts) -> MunicipalityInputs:
    """A plan from October 2020, meetings until February 2022, notifications until December
    2023 (so the watermark runs on long after the course)."""
    return MunicipalityInputs(
        course=CourseState(courses=list(courses)),
        notifications=[NotificationState(notification_id="n-1", received_at=local(2023, 12, 1))],
        plans=[PlanState(plan_id="p-1", course_id="c-1", adopted_at=local(2020, 10, 1, 10),
                         adopted_on=date(2020, 10, 1),
                         milestones=[PlannedMilestone(milestone_id="m-1", goal_id="g-1",
                                                      title="x", due_on=date(2021, 9, 1))])],
        meetings=[meeting(local(2021, 12, 20, 10)), meeting(local(2022, 2, 10, 10))],
    )


def summary(data: MunicipalityInputs, period: Period,
            previous: SummaryData | None = None) -> SummaryData:
    return compute_summary(data, period, WATERMARK, SummaryStatus.DRAFT, 0, previous)


def cadence(data: SummaryData) -> tuple[int | None, bool | None]:
    return data.development_plan.longest_gap_days, data.development_plan.cadence_ok


ENDED = inputs(course(local(2022, 2, 15, 15)))


def test_a_course_completed_in_february_2022_is_not_behind_in_2023() -> None:
    running = summary(inputs(course(None)), H23_2)
    assert cadence(running) == (690, False)  # 10 Feb 2022 -> 1 Jan 2024, the old reading
    assert any("690 dage" in line for line in running.highlights)
    ended = summary(ENDED, H23_2)
    assert ended.course.status is CourseStatus.COMPLETED
    assert cadence(ended) == (None, None)
    assert not any("opfølgning" in line for line in ended.highlights)
    assert ended.development_plan.milestones_total == 1  # the plan is still reported


def test_the_period_the_course_ends_in_counts_up_to_the_completion_date() -> None:
    # 20 Dec 2021 -> 10 Feb 2022 (52 days), then 10 -> 15 Feb; not 10 Feb -> 1 Jul
    ended = summary(ENDED, H22_1)
    assert cadence(ended) == (52, False)
    assert ended.highlights[0] == ("Det længste interval i opfølgningen frem til forløbets "
                                   "afslutning var 52 dage; målet er højst 42.")
    assert cadence(summary(ENDED, H22_2)) == (None, None)


def test_a_completion_seen_without_its_start_ends_the_cadence() -> None:
    unstarted = inputs(course(local(2022, 2, 15, 15), started_at=None))
    data = summary(unstarted, H23_2)
    assert (data.course.status, data.course.month_of_course) == (CourseStatus.COMPLETED, None)
    assert cadence(data) == (None, None)


def test_a_later_correction_of_the_completion_wins() -> None:
    # The state keeps the latest course.completed (intake resolves it): here May 2023.
    corrected = inputs(course(local(2023, 5, 2, 12)))
    assert summary(corrected, H22_2).course.status is CourseStatus.RUNNING
    assert cadence(summary(corrected, H22_2)) == (325, False)  # 10 Feb 2022 -> 1 Jan 2023
    assert cadence(summary(corrected, Period(2023, 1))) == (446, False)  # ... -> 2 May 2023
    assert cadence(summary(corrected, H23_2)) == (None, None)


def test_the_completion_of_the_course_the_summary_reports() -> None:
    first = course(local(2022, 2, 15, 15))
    second = course(None, started_at=local(2022, 9, 1, 9), course_id="c-2")
    state = CourseState(courses=[first, second])
    # as of the summer, the first course is the latest begun: its completion counts
    assert completion(state, local(2022, 6, 1), H22_1) == local(2022, 2, 15, 15)
    # once a second course has begun, the summary reports it, and it is running
    assert completion(state, H22_2.end, H22_2) is None
    # a completion after as_of is not seen yet; at exactly as_of it is
    assert completion(state, local(2022, 2, 15, 14), H22_1) is None
    assert completion(state, local(2022, 2, 15, 15), H22_1) == local(2022, 2, 15, 15)
    assert completion(None, H22_1.end, H22_1) is None
    assert completion(CourseState(), H22_1.end, H22_1) is None


def test_no_cadence_alert_for_an_ended_course_even_against_a_broken_previous_one() -> None:
    previous = summary(inputs(course(None)), Period(2023, 1))
    assert cadence(previous)[1] is False
    ended = summary(ENDED, H23_2, previous)
    assert not any("opfølgning" in line for line in ended.highlights)
    assert highlights(ended, previous) == ended.highlights
