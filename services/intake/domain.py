"""Pure reducers for a municipality's course and for each notification.

Every reducer is order-independent: applying the same set of events in any order gives the
same state. Where two events compete for one fact, a fixed rule picks the winner from the
events themselves (not from arrival order):

- a notification's receipt and its assessment: the earliest of each wins (the 24-hour
  clock starts at the first receipt and stops at the first assessment);
- an application's submission, decision, a course's start and completion: the latest by
  `occurred_at` wins (a re-sent fact is a correction), ties broken by content.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import singledispatch
from typing import Any

from schemas.events import (
    ApplicationDecided,
    ApplicationSubmitted,
    CourseCompleted,
    CourseStarted,
    NotificationAssessed,
    NotificationReceived,
)
from schemas.reporting import ApplicationFacts, CourseFacts, CourseState, NotificationState

# --- course --------------------------------------------------------------------------------


def _later(new_at: datetime, new: tuple[Any, ...], old_at: datetime | None, old: tuple[Any, ...]) -> bool:
    """Whether (new_at, *new) comes after (old_at, *old); anything comes after an unknown instant.

    Compared by instant, then content, then spelling of the instant (so that one instant
    written with two offsets still has a winner that does not depend on arrival order). The
    spelling is only built on a tie, but the order is that of the tuples
    `(at, *content, at.isoformat())`.
    """
    if old_at is None:
        return True
    if new_at != old_at:
        return new_at > old_at
    if new != old:
        return new > old
    return new_at.isoformat() > old_at.isoformat()


@singledispatch
def apply_course(event: object, state: CourseState | None) -> CourseState:
    raise TypeError(f"not a course event: {type(event).__name__}")


def _application(state: CourseState, application_id: str) -> ApplicationFacts:
    for facts in state.applications:
        if facts.application_id == application_id:
            return facts
    return ApplicationFacts(application_id=application_id)


def _course(state: CourseState, course_id: str) -> CourseFacts:
    for facts in state.courses:
        if facts.course_id == course_id:
            return facts
    return CourseFacts(course_id=course_id)


#: A municipality applies for a course a handful of times: the course state keeps the most
#: recent 200 applications and 200 courses (by their latest fact), so that a flood of ids
#: cannot grow its document (and its reporting events) without end. Below the bound every
#: rule above is exact; beyond it the oldest are forgotten.
MAX_KEPT = 200


def _recency(facts: ApplicationFacts | CourseFacts) -> tuple[datetime, str]:
    """Most recent first: by the latest fact's instant, then id (facts without an instant last)."""
    instants = [t for t in (getattr(facts, name, None) for name in _INSTANTS) if t is not None]
    latest = max(instants, default=datetime.min.replace(tzinfo=UTC))
    return latest, facts.application_id if isinstance(facts, ApplicationFacts) else facts.course_id


_INSTANTS = ("submitted_at", "decided_at", "started_at", "completed_at")


def _kept(items: list[Any], key: Callable[[Any], str]) -> list[Any]:
    """The `MAX_KEPT` most recent of `items`, in id order."""
    if len(items) > MAX_KEPT:
        items = sorted(items, key=_recency, reverse=True)[:MAX_KEPT]
    return sorted(items, key=key)


def _with_application(state: CourseState, facts: ApplicationFacts) -> CourseState:
    others = [a for a in state.applications if a.application_id != facts.application_id]
    return state.model_copy(update={
        "applications": _kept([*others, facts], lambda a: a.application_id)})


def _with_course(state: CourseState, facts: CourseFacts) -> CourseState:
    others = [c for c in state.courses if c.course_id != facts.course_id]
    return state.model_copy(update={"courses": _kept([*others, facts], lambda c: c.course_id)})


@apply_course.register
def _(event: ApplicationSubmitted, state: CourseState | None) -> CourseState:
    state = state or CourseState()
    facts = _application(state, event.data.application_id)
    reasons = sorted(event.data.reasons)
    if _later(event.occurred_at, (reasons,), facts.submitted_at, (sorted(facts.reasons),)):
        facts = facts.model_copy(update={"submitted_at": event.occurred_at, "reasons": reasons})
    return _with_application(state, facts)


@apply_course.register
def _(event: ApplicationDecided, state: CourseState | None) -> CourseState:
    state = state or CourseState()
    facts = _application(state, event.data.application_id)
    new = (event.data.decision, event.data.expected_start)
    if _later(event.occurred_at, new, facts.decided_at, (facts.decision, facts.expected_start)):
        facts = facts.model_copy(update={"decided_at": event.occurred_at, "decision": event.data.decision,
                                         "expected_start": event.data.expected_start})
    return _with_application(state, facts)


@apply_course.register
def _(event: CourseStarted, state: CourseState | None) -> CourseState:
    state = state or CourseState()
    facts = _course(state, event.data.course_id)
    new = (event.data.application_id, event.data.planned_end)
    if _later(event.occurred_at, new, facts.started_at, (facts.application_id, facts.planned_end)):
        facts = facts.model_copy(update={"started_at": event.occurred_at,
                                         "application_id": event.data.application_id,
                                         "planned_end": event.data.planned_end})
    return _with_course(state, facts)


@apply_course.register
def _(event: CourseCompleted, state: CourseState | None) -> CourseState:
    state = state or CourseState()
    facts = _course(state, event.data.course_id)
    if _later(event.occurred_at, (), facts.completed_at, ()):
        facts = facts.model_copy(update={"completed_at": event.occurred_at})
    return _with_course(state, facts)


# --- notifications -------------------------------------------------------------------------


def _earlier(new_at: datetime, new: tuple[Any, ...], old_at: datetime | None, old: tuple[Any, ...]) -> bool:
    """Whether (new_at, *new) comes before (old_at, *old), in the order of `_later`; anything
    comes before an unknown instant."""
    if old_at is None:
        return True
    if new_at != old_at:
        return new_at < old_at
    if new != old:
        return new < old
    return new_at.isoformat() < old_at.isoformat()


@singledispatch
def apply_notification(event: object, state: NotificationState | None) -> NotificationState:
    raise TypeError(f"not a notification event: {type(event).__name__}")


@apply_notification.register
def _(event: NotificationReceived, state: NotificationState | None) -> NotificationState:
    if state is None:  # validated values, so validating them again gives the same state
        return NotificationState(notification_id=event.data.notification_id, received_at=event.occurred_at,
                                 reporter=event.data.reporter, urgent=event.data.urgent)
    new = (event.data.reporter, event.data.urgent)
    if _earlier(event.occurred_at, new, state.received_at, (state.reporter, state.urgent)):
        state = state.model_copy(update={"received_at": event.occurred_at,
                                         "reporter": event.data.reporter, "urgent": event.data.urgent})
    return state


@apply_notification.register
def _(event: NotificationAssessed, state: NotificationState | None) -> NotificationState:
    if state is None:
        return NotificationState(notification_id=event.data.notification_id, assessed_at=event.occurred_at,
                                 outcome=event.data.outcome)
    if _earlier(event.occurred_at, (event.data.outcome,), state.assessed_at, (state.outcome,)):
        state = state.model_copy(update={"assessed_at": event.occurred_at, "outcome": event.data.outcome})
    return state


def unassessed_overdue(
    states: list[NotificationState], now: datetime, hours: float = 24
) -> list[NotificationState]:
    """Notifications received at least `hours` before `now` and not assessed yet, oldest first."""
    limit = now - timedelta(hours=hours)
    late = [s for s in states
            if s.assessed_at is None and s.received_at is not None and s.received_at <= limit]
    return sorted(late, key=lambda s: (s.received_at, s.notification_id))
