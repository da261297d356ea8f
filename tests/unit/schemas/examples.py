"""One valid example of every event type of the contract, and helpers to vary it.

The examples are plain JSON data (what a producer puts on the topic), built fresh on every
call so that a test can mutate its copy freely.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from schemas import topics
from schemas.commands import SummaryRequested
from schemas.events import INPUT_TYPES
from schemas.reporting import REPORTING_TYPES
from schemas.summary import CommitteeSummaryPublished

Json = Any
Path = tuple[str | int, ...]

#: Every event type with its model and the topic it travels on.
EVENT_TYPES: dict[str, tuple[type[BaseModel], str]] = {
    **INPUT_TYPES,
    "summary.requested": (SummaryRequested, topics.COMMANDS),
    "committee_summary.published": (CommitteeSummaryPublished, topics.SUMMARIES),
    **{name: (model, topics.REPORTING) for name, model in REPORTING_TYPES.items()},
}
#: The types `schemas.decode.decode` accepts: everything on a consumed topic.
DECODABLE = [name for name, (_, topic) in EVENT_TYPES.items() if topic != topics.SUMMARIES]

CPR_DASHED = "010190-1234"
CPR_PLAIN = "0101901234"

_DATA: dict[str, Json] = {
    "application.submitted": {
        "application_id": "a-480-1",
        "reasons": ["rising_caseload", "quality_concerns"],
    },
    "application.decided": {
        "application_id": "a-480-1",
        "decision": "approved",
        "expected_start": "2021-02-01",
    },
    "course.started": {
        "course_id": "c-480-1",
        "application_id": "a-480-1",
        "planned_end": "2022-12-31",
    },
    "course.completed": {"course_id": "c-480-1"},
    "notification.received": {
        "notification_id": "n-480-17",
        "child_ref": "barn-8f3a",
        "reporter": "school",
        "urgent": True,
    },
    "notification.assessed": {
        "notification_id": "n-480-17",
        "outcome": "advice_and_guidance",
    },
    "case_review.completed": {
        "review_id": "r-480-3",
        "course_id": "c-480-1",
        "case_ref": "sag-77c1",
        "phase": "baseline",
        "ratings": {"assessment": 2, "intervention": 3, "follow_up": 1, "involvement": 4},
        "legal_findings": [{"code": "SEL-50", "severity": "major"},
                           {"code": "SEL-68", "severity": "minor"}],
    },
    "development_plan.adopted": {
        "plan_id": "p-480-1",
        "course_id": "c-480-1",
        "goals": [
            {
                "goal_id": "g-1",
                "title": "Rettidig vurdering af underretninger",
                "milestones": [
                    {"milestone_id": "m-1", "title": "Ny visitationsprocedure", "due_on": "2021-06-30"},
                    {"milestone_id": "m-2", "title": "Alle vurderet inden 24 timer", "due_on": "2022-01-31"},
                ],
            },
            {"goal_id": "g-2", "title": "Bedre børnesamtaler", "milestones": []},
        ],
    },
    "milestone.updated": {"plan_id": "p-480-1", "milestone_id": "m-1", "status": "in_progress"},
    "followup.meeting_held": {"plan_id": "p-480-1", "cases_rereviewed": 4},
    "summary.requested": {"period": "2022H1", "final": True},
    "committee_summary.published": {
        "period": "2022H1",
        "status": "draft",
        "revision": 0,
        "as_of": "2022-07-01T00:00:00+02:00",
        "course": {"status": "running", "course_id": "c-480-1", "started_on": "2021-02-01",
                   "planned_end": "2022-12-31", "month_of_course": 18},
        "notifications": {"received": 10, "assessed": 9, "assessed_within_24h": 8,
                          "share_within_24h": 0.8, "median_hours_to_assessment": 6.5,
                          "overdue_unassessed": 1, "urgent_received": 2},
        "case_reviews": {
            "completed": 6, "baseline": 4, "follow_up": 2,
            "mean_rating": {"assessment": 2.5, "intervention": 3.0, "follow_up": 2.17,
                            "involvement": 3.33},
            "share_meeting_standard": {"assessment": 0.5, "intervention": 0.67, "follow_up": 0.33,
                                       "involvement": 0.83},
            "legal_findings": {"major": 2, "minor": 3},
        },
        "development_plan": {"milestones_total": 8, "achieved": 3, "in_progress": 2, "at_risk": 1,
                             "missed": 1, "not_started": 1, "overdue": 2, "meetings_held": 4,
                             "longest_gap_days": 49, "cadence_ok": False},
        "highlights": ["Andelen af underretninger vurderet inden for 24 timer faldt fra 92 % til 80 %."],
    },
    "reporting.course_changed": {
        "entity_id": "course",
        "version": 3,
        "watermark": "2021-02-01T08:00:00+01:00",
        "state": {
            "applications": [{
                "application_id": "a-480-1",
                "submitted_at": "2020-10-01T10:00:00+02:00",
                "reasons": ["rising_caseload"],
                "decided_at": "2020-11-15T12:00:00+01:00",
                "decision": "approved",
                "expected_start": "2021-02-01",
            }],
            "courses": [{
                "course_id": "c-480-1",
                "application_id": "a-480-1",
                "started_at": "2021-02-01T08:00:00+01:00",
                "planned_end": "2022-12-31",
                "completed_at": None,
            }],
        },
    },
    "reporting.notification_changed": {
        "entity_id": "n-480-17",
        "version": 2,
        "watermark": "2022-03-02T10:00:00+01:00",
        "state": {
            "notification_id": "n-480-17",
            "received_at": "2022-03-01T09:30:00+01:00",
            "urgent": True,
            "reporter": "school",
            "assessed_at": "2022-03-01T15:00:00+01:00",
            "outcome": "no_action",
        },
    },
    "reporting.case_review_changed": {
        "entity_id": "r-480-3",
        "version": 1,
        "watermark": "2022-04-01T12:00:00+02:00",
        "state": {
            "review_id": "r-480-3",
            "course_id": "c-480-1",
            "case_ref": "sag-77c1",
            "phase": "follow_up",
            "ratings": {"assessment": 3, "intervention": 3, "follow_up": 2, "involvement": 4},
            "legal_findings": {"major": 0, "minor": 1},
            "completed_at": "2022-04-01T12:00:00+02:00",
        },
    },
    "reporting.plan_changed": {
        "entity_id": "p-480-1",
        "version": 1,
        "watermark": "2021-03-01T09:00:00+01:00",
        "state": {
            "plan_id": "p-480-1",
            "course_id": "c-480-1",
            "adopted_at": "2021-03-01T09:00:00+01:00",
            "adopted_on": "2021-03-01",
            "milestones": [{"milestone_id": "m-1", "goal_id": "g-1",
                            "title": "Ny visitationsprocedure", "due_on": "2021-06-30"}],
        },
    },
    "reporting.milestone_changed": {
        "entity_id": "p-480-1/m-1",
        "version": 2,
        "watermark": "2021-05-01T09:00:00+02:00",
        "state": {
            "plan_id": "p-480-1",
            "milestone_id": "m-1",
            "history": [
                {"status": "in_progress", "effective_at": "2021-04-01T09:00:00+02:00",
                 "event_id": "6f1c1a52-5a55-4a0e-9d6e-4f1f0b8a2c01"},
                {"status": "achieved", "effective_at": "2021-05-01T09:00:00+02:00",
                 "event_id": "6f1c1a52-5a55-4a0e-9d6e-4f1f0b8a2c02"},
            ],
        },
    },
    "reporting.meeting_changed": {
        "entity_id": "8a0e3c2e-1d7b-4c61-9a43-0b5f1f7f9e10",
        "version": 0,
        "watermark": "2021-04-12T14:00:00+02:00",
        "state": {
            "meeting_id": "8a0e3c2e-1d7b-4c61-9a43-0b5f1f7f9e10",
            "plan_id": "p-480-1",
            "held_at": "2021-04-12T14:00:00+02:00",
            "held_on": "2021-04-12",
            "cases_rereviewed": 5,
        },
    },
    "reporting.progress": {"topic": "taskforce.case-reviews", "through": "2022-04-01T12:00:00+02:00",
                           "caught_up": True, "partition": 4, "offset": 120},
}

_SOURCES = {
    topics.APPLICATIONS: "dubu.nordfyn",
    topics.NOTIFICATIONS: "dubu.nordfyn",
    topics.CASE_REVIEWS: "taskforce.analysis-tool",
    topics.MILESTONES: "udviklingsplan.nordfyn",
    topics.COMMANDS: "taskforce.cli",
    topics.SUMMARIES: "taskforce.reporting",
    topics.REPORTING: "taskforce.intake",
}


def topic_of(event_type: str) -> str:
    return EVENT_TYPES[event_type][1]


def valid(event_type: str, /, **envelope: Json) -> dict[str, Json]:
    """A fresh valid event of `event_type`; keyword arguments replace envelope fields."""
    event: dict[str, Json] = {
        "event_id": "3b2f8a64-0d3c-4a8e-9a7e-2f4d8f6b9c10",
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2022-03-01T09:30:00+01:00",
        "municipality_code": "480",
        "source": _SOURCES[topic_of(event_type)],
        "correlation_id": "corr-42",
        "data": copy.deepcopy(_DATA[event_type]),
    }
    event.update(envelope)
    return event


def encode(event: Json, *, ensure_ascii: bool = False) -> bytes:
    return json.dumps(event, ensure_ascii=ensure_ascii).encode("utf-8")


def with_value(event: Json, path: Path, value: Json) -> Json:
    """A copy of `event` with the value at `path` replaced."""
    out = copy.deepcopy(event)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def without(event: Json, path: Path) -> Json:
    """A copy of `event` with the key at `path` removed."""
    out = copy.deepcopy(event)
    target = out
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return out


def string_paths(value: Json, prefix: Path = ()) -> Iterator[Path]:
    """The path of every string leaf of a JSON value."""
    if isinstance(value, str):
        yield prefix
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_paths(item, (*prefix, index))
