"""Building valid input events in tests."""

from __future__ import annotations

import uuid
from typing import Any


def event(event_type: str, occurred_at: str, data: dict[str, Any], municipality: str = "480",
          event_id: str | None = None, source: str = "test.system") -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": occurred_at,
        "municipality_code": municipality,
        "source": source,
        "data": data,
    }


def received(nid: str, at: str, urgent: bool = False, municipality: str = "480") -> dict[str, Any]:
    return event("notification.received", at, {"notification_id": nid, "child_ref": f"child-{nid}",
                                               "reporter": "school", "urgent": urgent}, municipality)


def assessed(nid: str, at: str, municipality: str = "480") -> dict[str, Any]:
    return event("notification.assessed", at, {"notification_id": nid, "outcome": "advice_and_guidance"},
                 municipality)


def review(rid: str, at: str, phase: str, ratings: tuple[int, int, int, int], case: str = "case-1",
           findings: tuple[str, ...] = (), municipality: str = "480") -> dict[str, Any]:
    names = ("assessment", "intervention", "follow_up", "involvement")
    return event("case_review.completed", at, {
        "review_id": rid, "course_id": f"c-{municipality}-1", "case_ref": case, "phase": phase,
        "ratings": dict(zip(names, ratings, strict=True)),
        "legal_findings": [{"code": f"LF{i}", "severity": s} for i, s in enumerate(findings)],
    }, municipality)


def approved_course() -> list[dict[str, Any]]:
    """Nordfyn's application, its approval and the course's start (2021-11 to 2022-02)."""
    return [
        event("application.submitted", "2021-11-10T10:00:00+01:00",
              {"application_id": "a-1", "reasons": ["rising_notifications"]}),
        event("application.decided", "2021-12-17T10:00:00+01:00",
              {"application_id": "a-1", "decision": "approved", "expected_start": "2022-02-01"}),
        event("course.started", "2022-02-01T09:00:00+01:00",
              {"course_id": "c-480-1", "application_id": "a-1", "planned_end": "2024-01-31"}),
    ]

