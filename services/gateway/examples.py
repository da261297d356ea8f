"""One valid example event per input event type, for the OpenAPI document (municipality 480)."""

from __future__ import annotations

import uuid
from typing import Any

from schemas.events import INPUT_TYPES

_NAMESPACE = uuid.UUID("0b6c2f1e-7d1a-4c7e-9a55-3f2d8e61c0a4")
_RATINGS = {"assessment": 2, "intervention": 3, "follow_up": 2, "involvement": 3}

#: Per event type: occurred_at, source, data.
_PARTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "application.submitted": ("2019-11-21T10:00:00+01:00", "esdh.nordfyn", {
        "application_id": "a-480-1", "reasons": ["rising_caseload", "rising_notifications"]}),
    "application.decided": ("2019-12-17T11:00:00+01:00", "socialstyrelsen.taskforce", {
        "application_id": "a-480-1", "decision": "approved", "expected_start": "2020-02-01"}),
    "course.started": ("2020-02-03T09:00:00+01:00", "socialstyrelsen.taskforce", {
        "course_id": "c-480-1", "application_id": "a-480-1", "planned_end": "2022-01-31"}),
    "course.completed": ("2022-01-31T15:00:00+01:00", "socialstyrelsen.taskforce", {"course_id": "c-480-1"}),
    "notification.received": ("2022-03-01T09:30:00+01:00", "dubu.nordfyn", {
        "notification_id": "u-480-000001", "child_ref": "b-480-004711", "reporter": "school",
        "urgent": False}),
    "notification.assessed": ("2022-03-01T14:10:00+01:00", "dubu.nordfyn", {
        "notification_id": "u-480-000001", "outcome": "advice_and_guidance"}),
    "case_review.completed": ("2020-03-12T10:15:00+01:00", "taskforce.sagsgennemgang", {
        "review_id": "r-480-001", "course_id": "c-480-1", "case_ref": "sag-480-1234", "phase": "baseline",
        "ratings": _RATINGS, "legal_findings": [{"code": "sel48.boernesamtale", "severity": "major"}]}),
    "development_plan.adopted": ("2020-06-23T14:00:00+02:00", "udviklingsplan.nordfyn", {
        "plan_id": "up-480-1", "course_id": "c-480-1", "goals": [{
            "goal_id": "g-480-1", "title": "Rettidig håndtering af underretninger", "milestones": [
                {"milestone_id": "m-480-1-1", "title": "Fast underretningsteam etableret",
                 "due_on": "2020-10-01"}]}]}),
    "milestone.updated": ("2020-09-14T10:00:00+02:00", "udviklingsplan.nordfyn", {
        "plan_id": "up-480-1", "milestone_id": "m-480-1-1", "status": "in_progress"}),
    "followup.meeting_held": ("2020-08-04T13:30:00+02:00", "udviklingsplan.nordfyn", {
        "plan_id": "up-480-1", "cases_rereviewed": 3}),
}
assert set(_PARTS) == set(INPUT_TYPES), "an example for every input event type"


def example_event(event_type: str) -> dict[str, Any]:
    """A valid event of the type, as a municipal system would send it."""
    occurred_at, source, data = _PARTS[event_type]
    return {"event_id": str(uuid.uuid5(_NAMESPACE, event_type)), "event_type": event_type,
            "schema_version": 1, "occurred_at": occurred_at, "municipality_code": "480",
            "source": source, "data": data}


def event_types() -> list[str]:
    return sorted(_PARTS)
