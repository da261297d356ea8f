"""Every event type against `schemas.decode.decode`: one valid example, and the ways to be invalid.

EVENTS.md: an invalid event (bad JSON, unknown type, missing or wrongly typed field, strict
JSON types, value out of range, a CPR-like number in any string) is rejected with a reason.
The CPR guard has its own file (`test_schemas_cpr.py`).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from schemas import topics
from schemas.decode import Rejection, decode
from schemas.summary import CommitteeSummaryPublished
from tests.unit.schemas.examples import (
    DECODABLE,
    EVENT_TYPES,
    Path,
    encode,
    topic_of,
    valid,
    with_value,
    without,
)

pytestmark = pytest.mark.unit

CONSUMED_TOPICS = (*topics.INPUT_TOPICS, topics.COMMANDS, topics.REPORTING)


def outcome(topic: str, raw: bytes | None) -> str:
    """`ok` for an accepted event, else the rejection's reason."""
    result = decode(topic, raw)
    if isinstance(result, Rejection):
        return result.reason
    assert isinstance(result, BaseModel)
    return "ok"


def reason_for(event_type: str, event: Any) -> str:
    return outcome(topic_of(event_type), encode(event))


def data_model(event_type: str) -> type[BaseModel]:
    model = EVENT_TYPES[event_type][0]
    annotation = model.model_fields["data"].annotation
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation


# --- the valid example of every type ---------------------------------------------------


@pytest.mark.parametrize("event_type", DECODABLE)
def test_valid_example_decodes_into_its_model(event_type: str) -> None:
    event = valid(event_type)
    result = decode(topic_of(event_type), encode(event))
    assert isinstance(result, EVENT_TYPES[event_type][0]), result
    assert result.model_dump(mode="json", exclude_unset=True) == event


@pytest.mark.parametrize("event_type", DECODABLE)
def test_optional_envelope_fields_may_be_absent_or_null(event_type: str) -> None:
    assert reason_for(event_type, without(valid(event_type), ("correlation_id",))) == "ok"
    assert reason_for(event_type, valid(event_type, correlation_id=None)) == "ok"


@pytest.mark.parametrize("event_type", DECODABLE)
def test_ascii_escaped_json_decodes_too(event_type: str) -> None:
    event = valid(event_type)
    assert outcome(topic_of(event_type), encode(event, ensure_ascii=True)) == "ok"


@pytest.mark.parametrize("timestamp", ["2022-03-01T08:30:00Z", "2022-03-01T09:30:00.123456+01:00",
                                       "2022-03-01T03:30:00-05:00"])
def test_timestamps_with_any_offset_are_valid(timestamp: str) -> None:
    assert reason_for("notification.received", valid("notification.received", occurred_at=timestamp)) == "ok"


def test_committee_summary_example_validates_against_its_model() -> None:
    """The output type is not consumed by the platform, so its check is the model's own."""
    event = valid("committee_summary.published")
    model = CommitteeSummaryPublished.model_validate_json(encode(event))
    assert model.model_dump(mode="json", exclude_unset=True) == event


def test_summary_figures_may_be_null_where_the_contract_says_so() -> None:
    event = valid("committee_summary.published")
    data = event["data"]
    data["course"] = {"status": "none", "course_id": None, "started_on": None, "planned_end": None,
                      "month_of_course": None}
    data["notifications"]["median_hours_to_assessment"] = None
    data["case_reviews"]["mean_rating"] = dict.fromkeys(data["case_reviews"]["mean_rating"])
    data["development_plan"]["longest_gap_days"] = None
    data["development_plan"]["cadence_ok"] = None
    data["notifications"]["share_within_24h"] = 0  # an integral float may be written as an int
    CommitteeSummaryPublished.model_validate_json(encode(event))


def test_committee_summary_decodes_on_the_summaries_topic() -> None:
    assert outcome(topics.SUMMARIES, encode(valid("committee_summary.published"))) == "ok"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("data", "status"), "published"),
        (("data", "revision"), -1),
        (("data", "revision"), "0"),
        (("data", "period"), "2022H3"),
        (("data", "as_of"), "2022-07-01T00:00:00"),
        (("data", "course", "status"), "paused"),
        (("data", "notifications", "received"), -1),
        (("data", "notifications", "received"), 10.0),
        (("data", "development_plan", "cadence_ok"), "false"),
        (("data", "case_reviews", "legal_findings", "fatal"), 1),
        (("data", "highlights"), "not a list"),
        (("source",), ""),
    ],
)
def test_invalid_committee_summaries_fail_their_model(path: Path, value: Any) -> None:
    event = with_value(valid("committee_summary.published"), path, value)
    with pytest.raises(ValidationError):
        CommitteeSummaryPublished.model_validate_json(encode(event))


# --- not JSON, not UTF-8, no value ------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"{", b'{"event_id": ', b"{'a': 1}", b"{,}", b"not json",
                                 b'{"a": 1} trailing', b"[" * 100_000, encode(valid("course.started"))[:-1]])
def test_bad_json_is_invalid_json(raw: bytes) -> None:
    for topic in CONSUMED_TOPICS:
        assert outcome(topic, raw) == "invalid_json", topic


def test_a_record_without_value_is_invalid_json() -> None:
    assert outcome(topics.NOTIFICATIONS, None) == "invalid_json"


@pytest.mark.parametrize("event_type", DECODABLE)
def test_non_utf8_bytes_are_invalid_encoding(event_type: str) -> None:
    event = valid(event_type, source="dubu.nørre")
    latin1 = json.dumps(event, ensure_ascii=False).encode("latin-1")
    utf16 = json.dumps(valid(event_type)).encode("utf-16")
    assert outcome(topic_of(event_type), latin1) == "invalid_encoding"
    assert outcome(topic_of(event_type), utf16) == "invalid_encoding"
    assert outcome(topic_of(event_type), encode(valid(event_type)) + b"\xff") == "invalid_encoding"


@pytest.mark.parametrize("value", [[], "event", 42, None, True])
def test_a_json_value_that_is_not_an_object_is_invalid(value: Any) -> None:
    assert outcome(topics.NOTIFICATIONS, json.dumps(value).encode()) == "invalid_event"


# --- event type, topic, schema version --------------------------------------------------


@pytest.mark.parametrize("event_type_value", ["notification.deleted", "", "NOTIFICATION.RECEIVED",
                                              42, None, ["notification.received"]])
def test_an_unknown_event_type_is_unknown_event_type(event_type_value: Any) -> None:
    event = valid("notification.received", event_type=event_type_value)
    for topic in CONSUMED_TOPICS:
        assert outcome(topic, encode(event)) == "unknown_event_type", topic


def test_a_missing_event_type_is_unknown_event_type() -> None:
    event = without(valid("notification.received"), ("event_type",))
    assert outcome(topics.NOTIFICATIONS, encode(event)) == "unknown_event_type"


@pytest.mark.parametrize("event_type", DECODABLE)
def test_an_event_on_another_topic_is_wrong_topic(event_type: str) -> None:
    raw = encode(valid(event_type))
    for topic in (*CONSUMED_TOPICS, topics.SUMMARIES, topics.DLQ, "taskforce.elsewhere"):
        if topic != topic_of(event_type):
            assert outcome(topic, raw) == "wrong_topic", topic


@pytest.mark.parametrize("event_type", DECODABLE)
def test_another_schema_version_is_unsupported(event_type: str) -> None:
    for version in (0, 2, 99, -1):
        event = valid(event_type, schema_version=version)
        assert reason_for(event_type, event) == "unsupported_schema_version", version


# --- the envelope: missing, wrongly typed, out of range --------------------------------

REQUIRED_ENVELOPE = ("event_id", "event_type", "schema_version", "occurred_at", "municipality_code",
                     "source", "data")


@pytest.mark.parametrize("field", [f for f in REQUIRED_ENVELOPE if f != "event_type"])
@pytest.mark.parametrize("event_type", DECODABLE)
def test_a_missing_envelope_field_is_invalid(event_type: str, field: str) -> None:
    assert reason_for(event_type, without(valid(event_type), (field,))) == "invalid_event"


ENVELOPE_INVALID: list[tuple[str, Any]] = [
    # strict JSON types
    ("schema_version", "1"),
    ("schema_version", 1.0),
    ("schema_version", True),
    ("schema_version", None),
    # event_id: a UUID string
    ("event_id", "not-a-uuid"),
    ("event_id", ""),
    ("event_id", "3b2f8a64-0d3c-4a8e-9a7e-2f4d8f6b9c1"),
    ("event_id", 42),
    # occurred_at: RFC 3339 with offset
    ("occurred_at", "2022-03-01T09:30:00"),
    ("occurred_at", "2022-03-01"),
    ("occurred_at", "01-03-2022 09:30"),
    ("occurred_at", "yesterday"),
    ("occurred_at", ""),
    ("occurred_at", 1646123400),
    ("occurred_at", 1646123400.5),
    # municipality_code: exactly three digits, as a string
    ("municipality_code", "48"),
    ("municipality_code", "4800"),
    ("municipality_code", "48a"),
    ("municipality_code", " 480"),
    ("municipality_code", "480\n"),
    ("municipality_code", ""),
    ("municipality_code", 480),
    # source: 1-100 characters
    ("source", ""),
    ("source", "x" * 101),
    ("source", 7),
    ("source", None),
    # correlation_id: an optional string
    ("correlation_id", 42),
    ("correlation_id", "c" * 201),
    ("correlation_id", ["corr-42"]),
    # data: an object
    ("data", None),
    ("data", []),
    ("data", "payload"),
]


@pytest.mark.parametrize("event_type", DECODABLE)
def test_an_invalid_envelope_field_is_invalid_event(event_type: str) -> None:
    wrong = [(field, value, reason) for field, value in ENVELOPE_INVALID
             if (reason := reason_for(event_type, valid(event_type, **{field: value}))) != "invalid_event"]
    assert not wrong


@pytest.mark.parametrize("event_type", DECODABLE)
def test_an_unknown_envelope_field_is_invalid(event_type: str) -> None:
    assert reason_for(event_type, valid(event_type, priority="high")) == "invalid_event"


@pytest.mark.parametrize("event_type", DECODABLE)
def test_source_of_1_and_100_chars_is_valid(event_type: str) -> None:
    assert reason_for(event_type, valid(event_type, source="x")) == "ok"
    assert reason_for(event_type, valid(event_type, source="x" * 100)) == "ok"




@pytest.mark.parametrize("code", ["４８０", "٤٨٠"])
def test_municipality_code_digits_are_ascii(code: str) -> None:
    assert reason_for("notification.received", valid("notification.received", municipality_code=code)) \
        == "invalid_event"


# --- data: missing fields, wrong JSON types, unknown fields ------------------------------


def _required_data_fields() -> list[tuple[str, str]]:
    return [(event_type, name) for event_type in DECODABLE
            for name, field in data_model(event_type).model_fields.items() if field.is_required()]


@pytest.mark.parametrize(("event_type", "field"), _required_data_fields())
def test_a_missing_data_field_is_invalid(event_type: str, field: str) -> None:
    assert reason_for(event_type, without(valid(event_type), ("data", field))) == "invalid_event"


def _wrong_type(value: Any) -> list[Any]:
    """JSON values of another type than `value`, including the near misses strict mode refuses."""
    if isinstance(value, bool):
        return ["true", 1, None]
    if isinstance(value, int):
        return [str(value), float(value), True, None]
    if isinstance(value, str):
        return [123, True, None, [value], {"value": value}]
    if isinstance(value, list):
        return ["x", {"0": value}, None]
    return ["x", [value], None]


@pytest.mark.parametrize("event_type", DECODABLE)
def test_a_wrongly_typed_data_field_is_invalid(event_type: str) -> None:
    event = valid(event_type)
    fields = data_model(event_type).model_fields
    optional = {name for name, field in fields.items() if not field.is_required()}
    cases = [(field, other) for field, value in event["data"].items() for other in _wrong_type(value)
             if not (other is None and field in optional)]  # an optional field may be null
    assert cases
    wrong = [(field, other, reason) for field, other in cases
             if (reason := reason_for(event_type, with_value(event, ("data", field), other)))
             != "invalid_event"]
    assert not wrong


@pytest.mark.parametrize("event_type", DECODABLE)
def test_an_unknown_data_field_is_invalid(event_type: str) -> None:
    event = with_value(valid(event_type), ("data", "comment"), "extra")
    assert reason_for(event_type, event) == "invalid_event"


# --- per type: enums, ranges and the rules of each ---------------------------------------

TYPE_INVALID: list[tuple[str, Path, Any]] = [
    # application.submitted
    ("application.submitted", ("data", "reasons"), []),
    ("application.submitted", ("data", "reasons"), ["budget"]),
    ("application.submitted", ("data", "reasons"), ["rising_caseload", "Other"]),
    ("application.submitted", ("data", "reasons"), "rising_caseload"),
    ("application.submitted", ("data", "application_id"), ""),
    ("application.submitted", ("data", "application_id"), "a" * 201),
    # application.decided
    ("application.decided", ("data", "decision"), "maybe"),
    ("application.decided", ("data", "decision"), "APPROVED"),
    ("application.decided", ("data", "expected_start"), "2021-02-30"),
    ("application.decided", ("data", "expected_start"), "2021-02-01T00:00:00+01:00"),
    ("application.decided", ("data", "expected_start"), "01-02-2021"),
    ("application.decided", ("data", "expected_start"), 20210201),
    # course.started / course.completed
    ("course.started", ("data", "planned_end"), "2022-13-01"),
    ("course.started", ("data", "course_id"), ""),
    ("course.completed", ("data", "course_id"), ""),
    # notification.received
    ("notification.received", ("data", "reporter"), "neighbour"),
    ("notification.received", ("data", "reporter"), "School"),
    ("notification.received", ("data", "urgent"), "true"),
    ("notification.received", ("data", "urgent"), 1),
    ("notification.received", ("data", "child_ref"), ""),
    # notification.assessed
    ("notification.assessed", ("data", "outcome"), "closed"),
    ("notification.assessed", ("data", "outcome"), None),
    # case_review.completed
    ("case_review.completed", ("data", "phase"), "midway"),
    ("case_review.completed", ("data", "ratings", "assessment"), 0),
    ("case_review.completed", ("data", "ratings", "intervention"), 5),
    ("case_review.completed", ("data", "ratings", "follow_up"), -1),
    ("case_review.completed", ("data", "ratings", "involvement"), "3"),
    ("case_review.completed", ("data", "ratings", "assessment"), 3.0),
    ("case_review.completed", ("data", "ratings", "assessment"), 2.5),
    ("case_review.completed", ("data", "ratings", "assessment"), True),
    ("case_review.completed", ("data", "ratings", "outcome"), 3),
    ("case_review.completed", ("data", "legal_findings", 0, "severity"), "critical"),
    ("case_review.completed", ("data", "legal_findings", 0, "code"), ""),
    ("case_review.completed", ("data", "legal_findings", 0, "note"), "x"),
    ("case_review.completed", ("data", "legal_findings", 0), "SEL-68"),
    # development_plan.adopted
    ("development_plan.adopted", ("data", "goals"), []),
    ("development_plan.adopted", ("data", "goals", 0, "milestones"), []),
    ("development_plan.adopted", ("data", "goals"), [  # a milestone id repeated in another goal
        {"goal_id": "g-1", "title": "Et mål", "milestones": [
            {"milestone_id": "m-1", "title": "Første", "due_on": "2021-06-30"}]},
        {"goal_id": "g-2", "title": "Et andet mål", "milestones": [
            {"milestone_id": "m-1", "title": "Samme id igen", "due_on": "2022-06-30"}]}]),
    ("development_plan.adopted", ("data", "goals", 0, "milestones", 1, "milestone_id"), "m-480-1-1"),
    ("development_plan.adopted", ("data", "goals", 0, "milestones", 0, "due_on"), "2021-06-31"),
    ("development_plan.adopted", ("data", "goals", 0, "milestones", 0, "title"), ""),
    ("development_plan.adopted", ("data", "goals", 0, "milestones", 0, "title"), "t" * 501),
    ("development_plan.adopted", ("data", "goals", 0, "title"), ""),
    ("development_plan.adopted", ("data", "goals", 0, "owner"), "x"),
    # milestone.updated
    ("milestone.updated", ("data", "status"), "done"),
    ("milestone.updated", ("data", "status"), "ACHIEVED"),
    # followup.meeting_held
    ("followup.meeting_held", ("data", "cases_rereviewed"), -1),
    ("followup.meeting_held", ("data", "cases_rereviewed"), "3"),
    ("followup.meeting_held", ("data", "cases_rereviewed"), 3.0),
    ("followup.meeting_held", ("data", "cases_rereviewed"), 2.5),
    # summary.requested
    ("summary.requested", ("data", "period"), "2022H3"),
    ("summary.requested", ("data", "period"), "2022H0"),
    ("summary.requested", ("data", "period"), "2022h1"),
    ("summary.requested", ("data", "period"), "22H1"),
    ("summary.requested", ("data", "period"), "2022H1 "),
    ("summary.requested", ("data", "period"), "2022-H1"),
    ("summary.requested", ("data", "final"), "true"),
    ("summary.requested", ("data", "final"), 0),
    # reporting events
    ("reporting.course_changed", ("data", "version"), -1),
    ("reporting.course_changed", ("data", "version"), 1.0),
    ("reporting.course_changed", ("data", "watermark"), "2021-02-01T08:00:00"),
    ("reporting.course_changed", ("data", "state", "courses", 0, "started_at"), "2021-02-01T08:00:00"),
    ("reporting.course_changed", ("data", "state", "applications", 0, "decision"), "pending"),
    ("reporting.course_changed", ("data", "state", "applications", 0, "reasons"), ["budget"]),
    ("reporting.notification_changed", ("data", "state", "reporter"), "neighbour"),
    ("reporting.notification_changed", ("data", "state", "urgent"), "true"),
    ("reporting.notification_changed", ("data", "entity_id"), ""),
    ("reporting.case_review_changed", ("data", "state", "ratings", "assessment"), 5),
    ("reporting.case_review_changed", ("data", "state", "legal_findings", "major"), -1),
    ("reporting.case_review_changed", ("data", "state", "phase"), "midway"),
    ("reporting.plan_changed", ("data", "state", "adopted_on"), "2021-03-01T09:00:00+01:00"),
    ("reporting.plan_changed", ("data", "state", "milestones", 0, "due_on"), 20210630),
    ("reporting.milestone_changed", ("data", "state", "history"), []),
    ("reporting.milestone_changed", ("data", "state", "history", 0, "status"), "done"),
    ("reporting.milestone_changed", ("data", "state", "history", 0, "effective_at"), 1617260400),
    ("reporting.meeting_changed", ("data", "state", "cases_rereviewed"), -1),
    ("reporting.meeting_changed", ("data", "state", "held_on"), "12-04-2021"),
]


@pytest.mark.parametrize(("event_type", "path", "value"), TYPE_INVALID)
def test_a_value_out_of_range_is_invalid_event(event_type: str, path: Path, value: Any) -> None:
    assert reason_for(event_type, with_value(valid(event_type), path, value)) == "invalid_event"


@pytest.mark.parametrize(
    ("event_type", "path"),
    [
        ("case_review.completed", ("data", "ratings", "assessment")),
        ("case_review.completed", ("data", "ratings", "involvement")),
        ("case_review.completed", ("data", "legal_findings", 0, "severity")),
        ("development_plan.adopted", ("data", "goals", 0, "milestones", 0, "due_on")),
        ("development_plan.adopted", ("data", "goals", 0, "milestones")),
        ("reporting.case_review_changed", ("data", "state", "ratings", "follow_up")),
        ("reporting.plan_changed", ("data", "state", "adopted_on")),
        ("reporting.milestone_changed", ("data", "state", "history", 0, "effective_at")),
    ],
)
def test_a_missing_nested_field_is_invalid(event_type: str, path: Path) -> None:
    assert reason_for(event_type, without(valid(event_type), path)) == "invalid_event"


TYPE_VALID: list[tuple[str, Path, Any]] = [
    ("application.submitted", ("data", "reasons"), ["other"]),
    ("application.decided", ("data", "decision"), "rejected"),
    ("case_review.completed", ("data", "legal_findings"), []),
    ("case_review.completed", ("data", "ratings"),
     {"assessment": 1, "intervention": 4, "follow_up": 1, "involvement": 4}),
    ("development_plan.adopted", ("data", "goals", 0, "milestones"),
     [{"milestone_id": "m-9", "title": "Én milepæl er nok", "due_on": "2022-06-30"}]),
    ("development_plan.adopted", ("data", "goals"), [  # a goal without milestones beside one with
        {"goal_id": "g-1", "title": "Et mål", "milestones": [
            {"milestone_id": "m-1", "title": "Første", "due_on": "2021-06-30"}]},
        {"goal_id": "g-2", "title": "Bedre børnesamtaler", "milestones": []}]),
    ("case_review.completed", ("data", "legal_findings"),
     [{"code": "SEL-50", "severity": "major"}, {"code": "SEL-68", "severity": "minor"}]),
    ("followup.meeting_held", ("data", "cases_rereviewed"), 0),
    ("followup.meeting_held", ("data", "cases_rereviewed"), 100_000),  # the upper bound
    ("summary.requested", ("data", "period"), "2022H2"),
    ("summary.requested", ("data", "final"), False),
    ("notification.received", ("data", "urgent"), True),
    ("reporting.course_changed", ("data", "state"), {}),
    ("reporting.notification_changed", ("data", "state"), {"notification_id": "n-480-17"}),
]


@pytest.mark.parametrize(("event_type", "path", "value"), TYPE_VALID)
def test_boundary_values_are_valid(event_type: str, path: Path, value: Any) -> None:
    assert reason_for(event_type, with_value(valid(event_type), path, value)) == "ok"


ENUMS: list[tuple[str, Path, list[str]]] = [
    ("application.submitted", ("data", "reasons", 0),
     ["rising_caseload", "rising_notifications", "quality_concerns", "competence_gap", "other"]),
    ("application.decided", ("data", "decision"), ["approved", "rejected"]),
    ("notification.received", ("data", "reporter"),
     ["school", "daycare", "health", "police", "social_services", "family", "anonymous", "other"]),
    ("notification.assessed", ("data", "outcome"),
     ["no_action", "advice_and_guidance", "child_investigation_opened", "immediate_measure",
      "referred_elsewhere"]),
    ("case_review.completed", ("data", "phase"), ["baseline", "follow_up"]),
    ("case_review.completed", ("data", "legal_findings", 0, "severity"), ["minor", "major"]),
    ("milestone.updated", ("data", "status"),
     ["not_started", "in_progress", "achieved", "at_risk", "missed"]),
]


@pytest.mark.parametrize(("event_type", "path", "members"), ENUMS,
                         ids=[f"{t}:{p[-1] if isinstance(p[-1], str) else p[-2]}" for t, p, _ in ENUMS])
def test_every_value_of_a_contract_enum_is_accepted(event_type: str, path: Path, members: list[str]) -> None:
    for member in members:
        assert reason_for(event_type, with_value(valid(event_type), path, member)) == "ok", member




@pytest.mark.parametrize("period", ["٢٠٢٢H1", "２０２２H1"])
def test_period_digits_are_ascii(period: str) -> None:
    event = with_value(valid("summary.requested"), ("data", "period"), period)
    assert reason_for("summary.requested", event) == "invalid_event"




@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00",
                                       "9999-12-31T23:30:00+00:00"])
def test_an_accepted_timestamp_converts_to_utc_and_local_time(timestamp: str) -> None:
    """A timestamp the platform cannot place in UTC or Copenhagen time must not pass as valid."""
    result = decode(topics.NOTIFICATIONS, encode(valid("notification.received", occurred_at=timestamp)))
    if isinstance(result, Rejection):
        assert result.reason == "invalid_event"
        return
    result.occurred_at.astimezone(UTC)  # type: ignore[attr-defined]
    result.occurred_at.astimezone(ZoneInfo("Europe/Copenhagen"))  # type: ignore[attr-defined]


@pytest.mark.parametrize(("timestamp", "accepted"), [
    ("1900-01-01T00:00:00+00:00", True),
    ("1900-01-01T00:30:00-01:00", True),  # 01:30 UTC
    ("2999-12-31T23:59:59.999999+00:00", True),
    ("3000-01-01T00:30:00+01:00", True),  # 23:30 UTC on 31 December 2999
    ("1899-12-31T23:59:59.999999+00:00", False),
    ("1900-01-01T00:30:00+01:00", False),  # 23:30 UTC on 31 December 1899
    ("2999-12-31T23:30:00-01:00", False),  # 00:30 UTC on 1 January 3000
])
def test_a_timestamp_must_lie_in_the_utc_years_1900_to_2999(timestamp: str, accepted: bool) -> None:
    result = decode(topics.NOTIFICATIONS, encode(valid("notification.received", occurred_at=timestamp)))
    if accepted:
        assert not isinstance(result, Rejection)
    else:
        assert isinstance(result, Rejection)
        assert result.reason == "invalid_event"
        assert "occurred_at" in result.detail
