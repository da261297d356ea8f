"""Intake's entity kinds: which document an event lands in and how it is reduced."""

from __future__ import annotations

from typing import Any

from schemas.reporting import CourseState, NotificationState
from services.common.fold import EntityKind
from services.common.watermarks import stamp
from services.intake.domain import apply_course, apply_notification

COURSES = "courses"
NOTIFICATIONS = "notifications"


def _notification_index(state: NotificationState) -> dict[str, Any]:
    received = stamp(state.received_at) if state.received_at else None
    return {"received_at": received, "assessed": state.assessed_at is not None}


COURSE = EntityKind(
    name="course",
    collection=COURSES,
    reporting_type="reporting.course_changed",
    state_model=CourseState,
    entity_id=lambda event: "course",  # one course record per municipality
    apply=lambda state, event: apply_course(event, state),
)
NOTIFICATION = EntityKind(
    name="notification",
    collection=NOTIFICATIONS,
    reporting_type="reporting.notification_changed",
    state_model=NotificationState,
    entity_id=lambda event: event.data.notification_id,
    apply=lambda state, event: apply_notification(event, state),
    index_fields=_notification_index,
)

KINDS: dict[str, EntityKind[Any]] = {
    "application.submitted": COURSE,
    "application.decided": COURSE,
    "course.started": COURSE,
    "course.completed": COURSE,
    "notification.received": NOTIFICATION,
    "notification.assessed": NOTIFICATION,
}
