"""The contract catalogue: every event type with its model, topic, schema version and example.

One ordered, immutable table (`CATALOGUE`) from which the rest of the contract derives:

- decoding (`schemas.decode`): which types may arrive on which topic, and each topic's adapter
  (one model, or a union of the topic's models discriminated by `event_type`);
- the JSON Schemas (`schemas.generate`): one per entry, with its topic and schema version;
- the AsyncAPI document (`schemas.asyncapi`): the payload of every received and sent topic;
- `taskforce schema [TYPE]`: the listing and each type's example;
- the schema tests (`tests/unit/schemas/examples.py`): the type table and the valid events;
- `schemas.events.INPUT_TYPES`, kept for its importers, is a view of this table.

A new event type is one `_spec(...)` line here (with a valid example: a unit test decodes
every example on its topic) besides its model. The audit trail's `access.audited`
(`schemas/audit.py`, on `taskforce.audit`) is not here: it is an operational record with its
own envelope rules, written by the services and declared in the AsyncAPI document by hand.
"""

from __future__ import annotations

import functools
import json
import operator
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import Field

from schemas import topics
from schemas.commands import SummaryRequested
from schemas.common import SCHEMA_VERSION, EnvelopeFields
from schemas.events import (
    ApplicationDecided,
    ApplicationSubmitted,
    CaseReviewCompleted,
    CourseCompleted,
    CourseStarted,
    DevelopmentPlanAdopted,
    FollowupMeetingHeld,
    MilestoneUpdated,
    NotificationAssessed,
    NotificationReceived,
)
from schemas.reporting import (
    REPORTING_SCHEMA_VERSION,
    CaseReviewChanged,
    CourseChanged,
    MeetingChanged,
    MilestoneChanged,
    NotificationChanged,
    PlanChanged,
    ProgressReported,
)
from schemas.summary import CommitteeSummaryPublished

#: input: published by municipal systems (or the gateway); command: asks the platform to act;
#: output: what the platform publishes for others; internal: between the platform's services.
Kind = Literal["input", "command", "output", "internal"]

#: The examples' event ids are UUIDv5 of the event type in this namespace: stable, distinct.
EXAMPLE_NAMESPACE = uuid.UUID("6a0f9c1e-2d3b-4e5f-8a7b-9c0d1e2f3a4b")
EXAMPLE_MUNICIPALITY = "480"  # Nordfyns Kommune


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event type of the contract.

    The example is kept as JSON text so that the table stays immutable; `example` parses a
    fresh copy, which a caller may change freely.
    """

    event_type: str
    model: type[EnvelopeFields]
    topic: str
    kind: Kind
    schema_version: int
    example_json: str

    @property
    def example(self) -> dict[str, Any]:
        """A complete, valid event of this type (municipality 480), as a producer would send it."""
        example: dict[str, Any] = json.loads(self.example_json)
        return example

    @property
    def decodable(self) -> bool:
        """Whether a service of the platform consumes it (all but the platform's own output)."""
        return self.kind != "output"


def _spec(event_type: str, model: type[EnvelopeFields], topic: str, kind: Kind, occurred_at: str,
          source: str, /, *, schema_version: int = SCHEMA_VERSION, **data: Any) -> EventSpec:
    """An entry whose example carries `data` (positional-only parameters: a data field may be
    called `topic`)."""
    example = {
        "event_id": str(uuid.uuid5(EXAMPLE_NAMESPACE, event_type)),
        "event_type": event_type,
        "schema_version": schema_version,
        "occurred_at": occurred_at,
        "municipality_code": EXAMPLE_MUNICIPALITY,
        "source": source,
        "data": data,
    }
    return EventSpec(event_type, model, topic, kind, schema_version,
                     json.dumps(example, ensure_ascii=False))


_AT = "2022-03-01T14:10:00+01:00"
_RATINGS = {"assessment": 2, "intervention": 3, "follow_up": 2, "involvement": 3}
_MILESTONE = {"milestone_id": "m-480-1-1", "title": "Fast underretningsteam etableret",
              "due_on": "2020-10-01"}
_MEETING_ID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
_INTERNAL = REPORTING_SCHEMA_VERSION

#: Every event type of the contract, in a fixed order: the input types topic by topic, the
#: command, the output, the internal reporting types.
CATALOGUE: tuple[EventSpec, ...] = (
    # --- taskforce.applications
    _spec("application.submitted", ApplicationSubmitted, topics.APPLICATIONS, "input",
          "2019-11-21T10:00:00+01:00", "esdh.nordfyn", application_id="a-480-1",
          reasons=["rising_caseload", "rising_notifications", "competence_gap"]),
    _spec("application.decided", ApplicationDecided, topics.APPLICATIONS, "input",
          "2019-12-17T11:00:00+01:00", "socialstyrelsen.taskforce",
          application_id="a-480-1", decision="approved", expected_start="2020-02-01"),
    _spec("course.started", CourseStarted, topics.APPLICATIONS, "input",
          "2020-02-03T09:00:00+01:00", "socialstyrelsen.taskforce", course_id="c-480-1",
          application_id="a-480-1", planned_end="2022-01-31"),
    _spec("course.completed", CourseCompleted, topics.APPLICATIONS, "input",
          "2022-01-31T15:00:00+01:00", "socialstyrelsen.taskforce", course_id="c-480-1"),
    # --- taskforce.notifications
    _spec("notification.received", NotificationReceived, topics.NOTIFICATIONS, "input",
          "2022-03-01T09:30:00+01:00", "dubu.nordfyn",
          notification_id="u-480-000001", child_ref="b-480-004711", reporter="school", urgent=False),
    _spec("notification.assessed", NotificationAssessed, topics.NOTIFICATIONS, "input",
          _AT, "dubu.nordfyn", notification_id="u-480-000001", outcome="advice_and_guidance"),
    # --- taskforce.case-reviews
    _spec("case_review.completed", CaseReviewCompleted, topics.CASE_REVIEWS, "input",
          "2020-03-12T10:15:00+01:00", "taskforce.sagsgennemgang",
          review_id="r-480-001", course_id="c-480-1", case_ref="sag-480-1234", phase="baseline",
          ratings=_RATINGS, legal_findings=[{"code": "sel48.boernesamtale", "severity": "major"}]),
    # --- taskforce.milestones
    _spec("development_plan.adopted", DevelopmentPlanAdopted, topics.MILESTONES, "input",
          "2020-06-23T14:00:00+02:00", "udviklingsplan.nordfyn",
          plan_id="up-480-1", course_id="c-480-1",
          goals=[{"goal_id": "g-480-1", "title": "Rettidig håndtering af underretninger", "milestones": [
              _MILESTONE,
              {"milestone_id": "m-480-1-2", "title": "Månedlig ledelsesinformation", "due_on": "2021-03-01"},
          ]}]),
    _spec("milestone.updated", MilestoneUpdated, topics.MILESTONES, "input",
          "2020-09-14T10:00:00+02:00", "udviklingsplan.nordfyn", plan_id="up-480-1",
          milestone_id="m-480-1-1", status="in_progress"),
    _spec("followup.meeting_held", FollowupMeetingHeld, topics.MILESTONES, "input",
          "2020-08-04T13:30:00+02:00", "udviklingsplan.nordfyn", plan_id="up-480-1", cases_rereviewed=3),
    # --- taskforce.commands
    _spec("summary.requested", SummaryRequested, topics.COMMANDS, "command",
          "2022-07-02T08:00:00+02:00", "taskforce.cli", period="2022H1", final=True),
    # --- taskforce.summaries
    _spec(
        "committee_summary.published", CommitteeSummaryPublished, topics.SUMMARIES, "output",
        "2022-07-15T00:00:05+02:00", "taskforce.reporting",
        period="2022H1", status="final", revision=0, as_of="2022-07-01T00:00:00+02:00",
        course={"status": "running", "course_id": "c-480-1", "started_on": "2021-02-01",
                "planned_end": "2022-12-31", "month_of_course": 18},
        notifications={"received": 10, "assessed": 9, "assessed_within_24h": 8, "share_within_24h": 0.8,
                       "median_hours_to_assessment": 6.5, "overdue_unassessed": 1, "urgent_received": 2},
        case_reviews={"completed": 6, "baseline": 4, "follow_up": 2,
                      "mean_rating": {"assessment": 2.5, "intervention": 3.0, "follow_up": 2.17,
                                      "involvement": 3.33},
                      "share_meeting_standard": {"assessment": 0.5, "intervention": 0.67, "follow_up": 0.33,
                                                 "involvement": 0.83},
                      "legal_findings": {"major": 2, "minor": 3}},
        development_plan={"milestones_total": 8, "achieved": 3, "in_progress": 2, "at_risk": 1, "missed": 1,
                          "not_started": 1, "overdue": 2, "meetings_held": 4, "longest_gap_days": 49,
                          "cadence_ok": False},
        highlights=["Andelen af underretninger vurderet inden for 24 timer faldt fra 92 % til 80 %."],
    ),
    # --- taskforce.reporting
    _spec("reporting.course_changed", CourseChanged, topics.REPORTING, "internal",
          "2020-02-03T09:00:00+01:00", "taskforce.intake", schema_version=_INTERNAL, entity_id="course",
          version=3, watermark="2020-02-03T09:00:00+01:00", state={
              "applications": [{"application_id": "a-480-1", "submitted_at": "2019-11-21T10:00:00+01:00",
                                "reasons": ["rising_caseload"], "decided_at": "2019-12-17T11:00:00+01:00",
                                "decision": "approved", "expected_start": "2020-02-01"}],
              "courses": [{"course_id": "c-480-1", "application_id": "a-480-1",
                           "started_at": "2020-02-03T09:00:00+01:00", "planned_end": "2022-01-31"}]}),
    _spec("reporting.notification_changed", NotificationChanged, topics.REPORTING, "internal",
          _AT, "taskforce.intake", schema_version=_INTERNAL, entity_id="u-480-000001", version=2,
          watermark=_AT, state={"notification_id": "u-480-000001", "received_at": "2022-03-01T09:30:00+01:00",
                                "urgent": False, "reporter": "school", "assessed_at": _AT,
                                "outcome": "advice_and_guidance"},
          progress={"topic": "taskforce.notifications", "through": _AT, "caught_up": True, "partition": 2,
                    "offset": 1187}),
    _spec("reporting.case_review_changed", CaseReviewChanged, topics.REPORTING, "internal",
          _AT, "taskforce.analysis", schema_version=_INTERNAL, entity_id="r-480-001", version=1,
          watermark=_AT, state={"review_id": "r-480-001", "course_id": "c-480-1", "case_ref": "sag-480-1234",
                                "phase": "baseline", "ratings": _RATINGS,
                                "legal_findings": {"major": 1, "minor": 0},
                                "completed_at": "2020-03-12T10:15:00+01:00"}),
    _spec("reporting.plan_changed", PlanChanged, topics.REPORTING, "internal",
          _AT, "taskforce.followup", schema_version=_INTERNAL, entity_id="up-480-1", version=1, watermark=_AT,
          state={"plan_id": "up-480-1", "course_id": "c-480-1", "adopted_at": "2020-06-23T14:00:00+02:00",
                 "adopted_on": "2020-06-23", "milestones": [{**_MILESTONE, "goal_id": "g-480-1"}]}),
    _spec("reporting.milestone_changed", MilestoneChanged, topics.REPORTING, "internal",
          _AT, "taskforce.followup", schema_version=_INTERNAL, entity_id="m-480-1-1", version=2,
          watermark=_AT, state={"plan_id": "up-480-1", "milestone_id": "m-480-1-1", "history": [
              {"status": "in_progress", "effective_at": "2020-09-14T10:00:00+02:00",
               "event_id": "5b1f3c2a-9d4e-4f6a-8b7c-1d2e3f4a5b6c"}]}),
    _spec("reporting.meeting_changed", MeetingChanged, topics.REPORTING, "internal",
          _AT, "taskforce.followup", schema_version=_INTERNAL, entity_id=_MEETING_ID, version=1,
          watermark=_AT, state={"meeting_id": _MEETING_ID, "plan_id": "up-480-1",
                                "held_at": "2020-08-04T13:30:00+02:00", "held_on": "2020-08-04",
                                "cases_rereviewed": 3}),
    _spec("reporting.progress", ProgressReported, topics.REPORTING, "internal",
          "2022-03-01T14:10:02+01:00", "taskforce.analysis", schema_version=_INTERNAL,
          topic="taskforce.case-reviews", through="2020-03-12T10:15:00+01:00", caught_up=True, partition=2,
          offset=31),
)

#: The catalogue by event type.
BY_TYPE: Mapping[str, EventSpec] = MappingProxyType({spec.event_type: spec for spec in CATALOGUE})
if len(BY_TYPE) != len(CATALOGUE):
    raise RuntimeError("schemas.catalogue: an event type is listed twice")

#: Every topic that carries a catalogued type, in the order of first appearance.
TOPICS: tuple[str, ...] = tuple(dict.fromkeys(spec.topic for spec in CATALOGUE))

#: The public input types with their model and topic (`schemas.events.INPUT_TYPES`).
INPUT_TYPES: Mapping[str, tuple[type[EnvelopeFields], str]] = MappingProxyType(
    {spec.event_type: (spec.model, spec.topic) for spec in CATALOGUE if spec.kind == "input"}
)


def on_topic(topic: str) -> tuple[EventSpec, ...]:
    """The entries that travel on `topic`, in catalogue order (none for an unknown topic)."""
    return tuple(spec for spec in CATALOGUE if spec.topic == topic)


def topics_of(*kinds: Kind) -> tuple[str, ...]:
    """The topics that carry a type of one of `kinds`, in catalogue order."""
    return tuple(dict.fromkeys(spec.topic for spec in CATALOGUE if spec.kind in kinds))


def payload(topic: str) -> Any:
    """The type a value on `topic` validates against: the model of its one event type, or the
    union of its types' models discriminated by `event_type` (for `TypeAdapter` and AsyncAPI)."""
    models = [spec.model for spec in on_topic(topic)]
    if not models:
        raise KeyError(f"no event type travels on {topic}")
    if len(models) == 1:
        return models[0]
    return Annotated[functools.reduce(operator.or_, models), Field(discriminator="event_type")]
