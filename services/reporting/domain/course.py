"""The `course` figures: the municipality's application and course as of `as_of`."""

from __future__ import annotations

import calendar
from datetime import date, datetime

from schemas.periods import Period, local_date, utc, visible
from schemas.reporting import ApplicationFacts, CourseFacts, CourseState
from schemas.summary import CourseFigures, CourseStatus

_NOT_STARTED = CourseFigures(
    status=CourseStatus.NONE, course_id=None, started_on=None, planned_end=None,
    month_of_course=None)


def month_of_course(started_on: date, on: date) -> int:
    """Whole calendar months from `started_on` to `on`, plus one.

    A month is whole once its day of month is reached; when the target month is shorter
    (started 31 Jan), its last day counts as reached (28 Feb completes the first month).
    """
    months = (on.year - started_on.year) * 12 + on.month - started_on.month
    anniversary = min(started_on.day, calendar.monthrange(on.year, on.month)[1])
    if on.day < anniversary:
        months -= 1
    return months + 1


def course_figures(state: CourseState | None, as_of: datetime, period: Period) -> CourseFigures:
    if state is None:
        return _NOT_STARTED
    course = _latest_course(state.courses, as_of, period)
    if course is not None:
        return _course_figures(course, as_of, period)
    application = _latest_application(state.applications, as_of, period)
    if application is None:
        return _NOT_STARTED
    if visible(application.decided_at, as_of, period) and application.decision is not None:
        status = CourseStatus(application.decision.value)
    else:
        status = CourseStatus.APPLIED
    return _NOT_STARTED.model_copy(update={"status": status})


def completion(state: CourseState | None, as_of: datetime, period: Period) -> datetime | None:
    """When the course the summary reports (the latest begun as of `as_of`) completed, if
    that is visible as of `as_of`; else None. The state holds each course's latest
    `course.completed`, so a later correction wins. The follow-up cadence ends here (1.1)."""
    if state is None:
        return None
    course = _latest_course(state.courses, as_of, period)
    return None if course is None else _seen(course.completed_at, as_of, period)


def _seen(instant: datetime | None, as_of: datetime, period: Period) -> datetime | None:
    """`instant` when it is visible as of `as_of`, else None."""
    return instant if visible(instant, as_of, period) else None


def _course_figures(course: CourseFacts, as_of: datetime, period: Period) -> CourseFigures:
    started_at = _seen(course.started_at, as_of, period)
    completed_at = _seen(course.completed_at, as_of, period)
    started_on = local_date(started_at) if started_at is not None else None
    month = None
    if started_on is not None:
        month = month_of_course(started_on, local_date(completed_at or as_of))
    return CourseFigures(
        status=CourseStatus.COMPLETED if completed_at is not None else CourseStatus.RUNNING,
        course_id=course.course_id,
        started_on=started_on,
        planned_end=course.planned_end,
        month_of_course=month,
    )


def _latest_course(
    courses: list[CourseFacts], as_of: datetime, period: Period,
) -> CourseFacts | None:
    """The latest course begun as of `as_of`.

    A course counts once its start is visible; one whose completion is visible but whose
    start was never seen counts too (ranked by its completion), so a completion is not lost.
    """
    candidates: list[tuple[datetime, str, CourseFacts]] = []
    for course in courses:
        begun = (_seen(course.started_at, as_of, period)
                 or _seen(course.completed_at, as_of, period))
        if begun is not None:
            candidates.append((utc(begun), course.course_id, course))
    return max(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None


def _latest_application(
    applications: list[ApplicationFacts], as_of: datetime, period: Period,
) -> ApplicationFacts | None:
    """The application whose latest visible fact (submission or decision) is latest."""
    candidates: list[tuple[datetime, str, ApplicationFacts]] = []
    for application in applications:
        seen = [utc(t) for t in (application.submitted_at, application.decided_at)
                if t is not None and visible(t, as_of, period)]
        if seen:
            candidates.append((max(seen), application.application_id, application))
    return max(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None
