"""The `course` figures (EVENTS.md: `course`, `month_of_course`)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from schemas.events import Decision
from schemas.periods import Period, as_of
from schemas.reporting import ApplicationFacts, CourseFacts, CourseState
from schemas.summary import CourseStatus
from services.reporting.domain.course import course_figures, month_of_course

pytestmark = pytest.mark.unit

H1 = Period(2022, 1)
END = H1.end


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def cut(text: str) -> datetime:
    """as_of for H1 at the given watermark."""
    return as_of(H1, at(text))


def state(applications: list[ApplicationFacts] | None = None,
          courses: list[CourseFacts] | None = None) -> CourseState:
    return CourseState(applications=applications or [], courses=courses or [])


def application(app_id: str = "a-1", submitted: str | None = "2021-10-01T10:00:00+02:00",
                decided: str | None = None,
                decision: Decision | None = None) -> ApplicationFacts:
    return ApplicationFacts(
        application_id=app_id,
        submitted_at=at(submitted) if submitted else None,
        decided_at=at(decided) if decided else None,
        decision=decision,
    )


def course(course_id: str = "c-480-1", started: str | None = "2022-02-01T09:00:00+01:00",
           completed: str | None = None) -> CourseFacts:
    return CourseFacts(
        course_id=course_id, application_id="a-1",
        started_at=at(started) if started else None,
        planned_end=date(2022, 12, 31),
        completed_at=at(completed) if completed else None,
    )


@pytest.mark.parametrize(("started_on", "on", "month"), [
    (date(2022, 2, 1), date(2022, 2, 1), 1),
    (date(2022, 2, 1), date(2022, 2, 15), 1),   # the spec's example
    (date(2022, 2, 1), date(2022, 2, 28), 1),
    (date(2022, 2, 1), date(2022, 3, 1), 2),    # the spec's example
    (date(2021, 2, 1), date(2022, 7, 1), 18),   # a whole year and five months later
    (date(2022, 1, 15), date(2022, 3, 14), 2),
    (date(2022, 1, 15), date(2022, 3, 15), 3),
    (date(2022, 1, 31), date(2022, 2, 27), 1),
    (date(2022, 1, 31), date(2022, 2, 28), 2),  # a short month's last day completes it
    (date(2021, 12, 10), date(2022, 1, 10), 2),
])
def test_month_of_course(started_on: date, on: date, month: int) -> None:
    assert month_of_course(started_on, on) == month


def test_no_state_and_empty_state_mean_none() -> None:
    for given in (None, state()):
        figures = course_figures(given, END, H1)
        assert figures.status is CourseStatus.NONE
        assert (figures.course_id, figures.started_on, figures.planned_end,
                figures.month_of_course) == (None, None, None, None)


def test_submitted_application_is_applied() -> None:
    figures = course_figures(state([application()]), END, H1)
    assert figures.status is CourseStatus.APPLIED
    assert figures.course_id is None
    assert figures.month_of_course is None


@pytest.mark.parametrize(("decision", "status"), [
    (Decision.APPROVED, CourseStatus.APPROVED), (Decision.REJECTED, CourseStatus.REJECTED)])
def test_visible_decision_sets_the_status(decision: Decision, status: CourseStatus) -> None:
    facts = application(decided="2022-01-10T10:00:00+01:00", decision=decision)
    assert course_figures(state([facts]), END, H1).status is status


def test_decision_after_as_of_is_not_seen_yet() -> None:
    facts = application(decided="2022-03-10T10:00:00+01:00", decision=Decision.APPROVED)
    figures = course_figures(state([facts]), cut("2022-03-01T00:00:00+01:00"), H1)
    assert figures.status is CourseStatus.APPLIED


def test_application_not_yet_submitted_as_of_is_none() -> None:
    facts = application(submitted="2022-05-01T10:00:00+02:00")
    figures = course_figures(state([facts]), cut("2022-03-01T00:00:00+01:00"), H1)
    assert figures.status is CourseStatus.NONE


def test_latest_application_wins_by_its_latest_visible_fact() -> None:
    rejected = application("a-1", "2021-10-01T10:00:00+02:00", "2021-11-01T10:00:00+01:00",
                           Decision.REJECTED)
    resubmitted = application("a-2", "2022-01-05T10:00:00+01:00")
    assert course_figures(state([resubmitted, rejected]), END, H1).status is CourseStatus.APPLIED
    decided_later = application("a-1", "2021-10-01T10:00:00+02:00", "2022-02-01T10:00:00+01:00",
                                Decision.APPROVED)
    figures = course_figures(state([resubmitted, decided_later]), END, H1)
    assert figures.status is CourseStatus.APPROVED


def test_running_course_first_month() -> None:
    facts = state([application(decided="2022-01-10T10:00:00+01:00", decision=Decision.APPROVED)],
                  [course()])
    figures = course_figures(facts, cut("2022-02-15T12:00:00+01:00"), H1)
    assert figures.status is CourseStatus.RUNNING
    assert figures.course_id == "c-480-1"
    assert figures.started_on == date(2022, 2, 1)
    assert figures.planned_end == date(2022, 12, 31)
    assert figures.month_of_course == 1


def test_running_course_second_month_on_1_march() -> None:
    figures = course_figures(state(courses=[course()]), cut("2022-03-01T00:00:00+01:00"), H1)
    assert figures.month_of_course == 2


def test_started_on_is_the_local_date() -> None:
    facts = state(courses=[course(started="2022-01-31T23:30:00+00:00")])
    figures = course_figures(facts, END, H1)
    assert figures.started_on == date(2022, 2, 1)
    assert figures.month_of_course == 6  # as of 1 July (local date of the period end)


def test_completed_course_keeps_the_month_it_completed_in() -> None:
    facts = state(courses=[course(completed="2022-05-10T15:00:00+02:00")])
    figures = course_figures(facts, END, H1)
    assert figures.status is CourseStatus.COMPLETED
    assert figures.month_of_course == 4
    assert figures.started_on == date(2022, 2, 1)


def test_completion_after_as_of_is_still_running() -> None:
    facts = state(courses=[course(completed="2022-05-10T15:00:00+02:00")])
    figures = course_figures(facts, cut("2022-05-10T14:59:59+02:00"), H1)
    assert figures.status is CourseStatus.RUNNING
    assert figures.month_of_course == 4


def test_course_started_at_exactly_the_period_end_is_left_out() -> None:
    facts = state([application(decided="2022-06-01T10:00:00+02:00", decision=Decision.APPROVED)],
                  [course(started="2022-07-01T00:00:00+02:00")])
    figures = course_figures(facts, END, H1)
    assert figures.status is CourseStatus.APPROVED
    assert figures.course_id is None
    assert figures.planned_end is None


def test_the_latest_started_course_wins() -> None:
    first = course("c-1", "2021-02-01T09:00:00+01:00", "2021-12-20T09:00:00+01:00")
    second = course("c-2", "2022-03-01T09:00:00+01:00")
    figures = course_figures(state(courses=[second, first]), END, H1)
    assert (figures.status, figures.course_id) == (CourseStatus.RUNNING, "c-2")
    earlier = course_figures(state(courses=[second, first]), cut("2022-02-01T00:00:00+01:00"), H1)
    assert (earlier.status, earlier.course_id) == (CourseStatus.COMPLETED, "c-1")
    assert earlier.month_of_course == 11


def test_completion_without_a_seen_start_is_completed_without_month() -> None:
    facts = state(courses=[course(started=None, completed="2022-05-10T15:00:00+02:00")])
    figures = course_figures(facts, END, H1)
    assert figures.status is CourseStatus.COMPLETED
    assert figures.course_id == "c-480-1"
    assert figures.started_on is None
    assert figures.month_of_course is None
