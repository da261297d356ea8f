"""The projection engine's pure parts: reducing an entity's events and splitting a batch."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import topics
from schemas.decode import Rejection, decode
from schemas.events import (
    MilestoneStatus,
    MilestoneUpdated,
    NotificationAssessed,
    NotificationReceived,
    Outcome,
    Reporter,
)
from schemas.reporting import NotificationChanged, NotificationState
from services.common.fold import (
    REPORTING_NAMESPACE,
    Entity,
    ReportingRecords,
    compact_json,
    group_events,
    reduce_entity,
    reporting_event_id,
)
from services.common.metrics import ServiceMetrics
from services.common.projection import ProjectionEngine, split_batch
from services.common.projection_store import MemoryProjectionStore
from services.common.settings import Settings
from services.followup import projections as followup
from services.followup.domain import apply_milestone, status_at
from services.intake import projections as intake
from services.intake.domain import apply_notification

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from services.common.records import OutRecord

pytestmark = pytest.mark.unit

PREFIX = "t1."


def raw(event_type: str, occurred_at: str, data: dict[str, Any], event_id: str | None = None,
        correlation_id: str | None = None, **envelope: Any) -> dict[str, Any]:
    value = {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": occurred_at,
        "municipality_code": "480",
        "source": "dubu.test",
        "data": data,
        **envelope,
    }
    if correlation_id is not None:
        value["correlation_id"] = correlation_id
    return value


def received_raw(nid: str, at: str, event_id: str | None = None, **kw: Any) -> dict[str, Any]:
    return raw("notification.received", at, {"notification_id": nid, "child_ref": f"child-{nid}",
                                             "reporter": "school", "urgent": False}, event_id, **kw)


def assessed_raw(nid: str, at: str, event_id: str | None = None, **kw: Any) -> dict[str, Any]:
    return raw("notification.assessed", at, {"notification_id": nid, "outcome": "no_action"}, event_id, **kw)


def received(nid: str, at: str, event_id: str | None = None, **kw: Any) -> NotificationReceived:
    return NotificationReceived.model_validate_json(json.dumps(received_raw(nid, at, event_id, **kw)))


def assessed(nid: str, at: str, event_id: str | None = None, **kw: Any) -> NotificationAssessed:
    return NotificationAssessed.model_validate_json(json.dumps(assessed_raw(nid, at, event_id, **kw)))


def updated(at: str, status: str, event_id: str) -> MilestoneUpdated:
    return MilestoneUpdated.model_validate_json(json.dumps(raw(
        "milestone.updated", at, {"plan_id": "p1", "milestone_id": "m1", "status": status}, event_id)))


def make_settings(service: str) -> Settings:
    return Settings(TASKFORCE_SERVICE=service, TASKFORCE_TOPIC_PREFIX=PREFIX)  # type: ignore[call-arg]


RECORDS = ReportingRecords("taskforce.intake", PREFIX + topics.REPORTING)


def engine(service: str, kinds: dict[str, Any], store: MemoryProjectionStore | None = None) -> ProjectionEngine:  # noqa: E501
    """The service's engine over the in-memory store (a fresh one unless given)."""
    return ProjectionEngine(make_settings(service), store or MemoryProjectionStore(), ServiceMetrics(service),
                            kinds)


def counter(eng: ProjectionEngine, name: str, **labels: str) -> float:
    value = eng.metrics.registry.get_sample_value(name, {"service": eng.settings.service, **labels})
    return value or 0.0


def applied_count(eng: ProjectionEngine, event_type: str) -> float:
    return counter(eng, "taskforce_events_applied_total", event_type=event_type)


def duplicates(eng: ProjectionEngine) -> float:
    return counter(eng, "taskforce_duplicates_skipped_total")


def notification_entity(events: list[Any], applied: list[str] | None = None,
                        state: NotificationState | None = None, version: int = 0) -> Entity:
    return Entity(intake.NOTIFICATION, "480:n1", "480", "n1", events=list(events),
                   read_version=version, version=version, applied=list(applied or []), state=state)


# --- reduce_entity -------------------------------------------------------------------------------

OLD = received("n1", "2022-03-01T09:00:00+01:00")
LATE_DUP = received("n1", "2022-03-01T08:00:00+01:00")     # an earlier receipt (would win if applied)
NEW_A = assessed("n1", "2022-03-01T15:00:00+01:00", correlation_id="corr-a")
NEW_B = assessed("n1", "2022-03-01T12:00:00+01:00")


def test_reduce_skips_applied_ids_and_counts_the_rest() -> None:
    before = apply_notification(OLD, None)
    entity = notification_entity([NEW_A, OLD, NEW_B, LATE_DUP], version=3, state=before,
                                 applied=[str(OLD.event_id), str(LATE_DUP.event_id)])
    assert reduce_entity(entity) is True
    # the skipped (already applied) receipt at 08:00 did not move the receipt time
    assert entity.state == apply_notification(NEW_A, apply_notification(NEW_B, before))
    assert entity.state.received_at == OLD.occurred_at
    assert entity.state.assessed_at == NEW_B.occurred_at
    # new ids appended in (occurred_at, event_id) order; version grows by the fresh ones only
    assert entity.applied == [str(OLD.event_id), str(LATE_DUP.event_id), str(NEW_B.event_id),
                              str(NEW_A.event_id)]
    assert (entity.read_version, entity.version) == (3, 5)
    assert entity.duplicates == 2
    assert entity.fresh == {"notification.assessed": 2}
    # the correlation id of the last event applied
    assert entity.correlation_id == "corr-a"


def test_reduce_with_nothing_new_changes_nothing() -> None:
    state = apply_notification(OLD, None)
    entity = notification_entity([OLD, OLD], applied=[str(OLD.event_id)], state=state, version=1)
    assert reduce_entity(entity) is False
    assert (entity.state, entity.version, entity.applied) == (state, 1, [str(OLD.event_id)])
    assert entity.correlation_id is None
    assert (entity.duplicates, entity.fresh) == (2, {})


def test_reduce_applies_a_repeated_event_once() -> None:
    entity = notification_entity([NEW_B, OLD, NEW_B])
    assert reduce_entity(entity) is True
    assert entity.applied == [str(OLD.event_id), str(NEW_B.event_id)]
    assert entity.version == 2
    assert entity.correlation_id == str(NEW_B.event_id)    # no correlation id: the event id
    assert entity.duplicates == 1
    assert entity.state == NotificationState(
        notification_id="n1", received_at=OLD.occurred_at, urgent=False, reporter=Reporter.SCHOOL,
        assessed_at=NEW_B.occurred_at, outcome=Outcome.NO_ACTION)


def test_reduce_result_does_not_depend_on_the_order_events_are_listed() -> None:
    a = notification_entity([NEW_A, NEW_B, OLD])
    b = notification_entity([OLD, NEW_A, NEW_B])
    reduce_entity(a)
    reduce_entity(b)
    assert (a.state, a.applied, a.version) == (b.state, b.applied, b.version)


MILESTONE_INSTANTS = ["2022-03-01T09:00:00+01:00", "2022-03-15T09:00:00+01:00", "2022-03-27T00:30:00+00:00",
                      "2022-04-01T09:00:00+02:00"]


@st.composite
def two_batches(draw: st.DrawFn) -> tuple[list[MilestoneUpdated], ...]:
    """All updates of a milestone; a first batch; a second batch that redelivers part of it."""
    ids = draw(st.lists(st.uuids(version=4), min_size=1, max_size=6, unique=True))
    events = [updated(draw(st.sampled_from(MILESTONE_INSTANTS)),
                      draw(st.sampled_from([s.value for s in MilestoneStatus])), str(i)) for i in ids]
    first = draw(st.permutations(draw(st.lists(st.sampled_from(events), unique_by=lambda e: e.event_id))))
    rest = [e for e in events if e not in first]
    redelivered = draw(st.lists(st.sampled_from(first), max_size=3)) if first else []
    second = draw(st.permutations([*rest, *redelivered]))
    return events, first, second


@settings(max_examples=60, deadline=None)
@given(two_batches())
def test_reduce_over_redelivered_batches_equals_one_fold(
    case: tuple[list[MilestoneUpdated], list[MilestoneUpdated], list[MilestoneUpdated]],
) -> None:
    events, first, second = case
    entity = Entity(followup.MILESTONE, "480:p1/m1", "480", "p1/m1", events=first)
    reduce_entity(entity)
    # the second batch starts from what the first one stored
    entity = Entity(followup.MILESTONE, "480:p1/m1", "480", "p1/m1", events=second,
                     read_version=entity.version, version=entity.version, applied=entity.applied,
                     state=entity.state)
    reduce_entity(entity)
    expected = None
    for event in events:
        expected = apply_milestone(expected, event)
    assert entity.state is not None and expected is not None
    assert entity.state.model_dump_json() == expected.model_dump_json()
    assert entity.version == len(events)
    assert sorted(entity.applied) == sorted(str(e.event_id) for e in events)
    assert entity.duplicates == len(second) - (len(events) - len(first))
    at = datetime(2022, 12, 31, tzinfo=UTC)
    assert status_at(entity.state, at) == status_at(expected, at)


def test_reduce_hands_a_kind_with_apply_all_its_new_events_at_once() -> None:
    calls: list[tuple[Any, list[str]]] = []

    def apply_all(state: Any, events: list[MilestoneUpdated]) -> Any:
        calls.append((state, [e.event_key for e in events]))
        return followup.MILESTONE.apply_all(state, events)  # type: ignore[misc]

    kind = dataclasses.replace(followup.MILESTONE, apply_all=apply_all)
    first = updated("2022-03-01T09:00:00+01:00", "in_progress", str(uuid.uuid4()))
    late = updated("2022-02-01T09:00:00+01:00", "not_started", str(uuid.uuid4()))
    last = updated("2022-04-01T09:00:00+02:00", "achieved", str(uuid.uuid4()))
    before = apply_milestone(None, first)
    entity = Entity(kind, "480:p1/m1", "480", "p1/m1", events=[last, first, late, last],
                     read_version=1, version=1, applied=[first.event_key], state=before)
    assert reduce_entity(entity) is True
    # one call, from the stored state, with the new events in (occurred_at, event id) order
    assert calls == [(before, [late.event_key, last.event_key])]
    assert entity.version == 3 and entity.duplicates == 2
    assert entity.state == apply_milestone(apply_milestone(before, late), last)
    assert entity.dumped == entity.state.model_dump(mode="json")


def test_group_puts_events_into_their_entities() -> None:
    course = raw("course.completed", "2023-01-31T16:00:00+01:00", {"course_id": "c1"})
    other = received_raw("n2", "2022-03-01T09:00:00+01:00", municipality_code="101")
    events = [OLD, NEW_A, decode(topics.APPLICATIONS, json.dumps(course).encode()),
              decode(topics.NOTIFICATIONS, json.dumps(other).encode())]
    groups = group_events(intake.KINDS, events)  # type: ignore[arg-type]
    assert sorted(groups) == ["courses/480:course", "notifications/101:n2", "notifications/480:n1"]
    assert groups["notifications/480:n1"].events == [OLD, NEW_A]
    assert groups["notifications/101:n2"].municipality_code == "101"
    assert groups["courses/480:course"].kind is intake.COURSE


def test_reporting_record_carries_the_new_state() -> None:
    entity = notification_entity([OLD, NEW_B])
    reduce_entity(entity)
    watermark = datetime(2022, 3, 1, 11, 0, tzinfo=UTC)
    now = datetime.now(UTC).isoformat()
    record = RECORDS.state(entity, watermark.isoformat(), now)
    assert (record.topic, record.key) == (PREFIX + topics.REPORTING, b"480")
    event = decode(topics.REPORTING, record.value)
    assert isinstance(event, NotificationChanged)
    assert event.event_id == uuid.uuid5(REPORTING_NAMESPACE, "notification/480:n1/2")
    assert (event.source, event.municipality_code) == ("taskforce.intake", "480")
    assert (event.data.entity_id, event.data.version, event.data.watermark) == ("n1", 2, watermark)
    assert event.data.state == entity.state
    # the same entity version always gives the same reporting event id
    again = RECORDS.state(entity, watermark.isoformat(), datetime.now(UTC).isoformat())
    assert decode(topics.REPORTING, again.value).event_id == event.event_id


# --- split_batch ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    topic: str
    value: bytes | None
    partition: int = 0
    offset: int = 0
    key: bytes | None = b"480"


def record(topic: str, value: dict[str, Any] | bytes | None, offset: int) -> Record:
    body = json.dumps(value).encode() if isinstance(value, dict) else value
    return Record(PREFIX + topic, body, partition=offset % 3, offset=offset)


def test_split_batch_dedupes_ids_and_separates_rejections() -> None:
    first = received_raw("n1", "2022-03-01T09:00:00+01:00")
    resent_other_content = assessed_raw("n1", "2022-03-02T09:00:00+01:00", event_id=first["event_id"])
    second = assessed_raw("n1", "2022-03-01T12:00:00+01:00")
    same_id_other_topic = raw("course.completed", "2023-01-31T16:00:00+01:00", {"course_id": "c1"},
                              event_id=second["event_id"])
    records = [
        record(topics.NOTIFICATIONS, first, 0),
        bad_json := record(topics.NOTIFICATIONS, b"{not json", 1),
        record(topics.NOTIFICATIONS, first, 2),                    # redelivered
        record(topics.NOTIFICATIONS, resent_other_content, 3),     # same id, other content
        record(topics.NOTIFICATIONS, second, 4),
        no_value := record(topics.NOTIFICATIONS, None, 5),
        wrong_topic := record(topics.NOTIFICATIONS, raw("course.completed", "2023-01-31T16:00:00+01:00",
                                                        {"course_id": "c1"}), 6),
        cpr := record(topics.NOTIFICATIONS, received_raw("n9", "2022-03-01T09:00:00+01:00",
                                                         source="ref 010190-1234"), 7),
        naive := record(topics.NOTIFICATIONS, received_raw("n8", "2022-03-01T09:00:00"), 8),
        record(topics.APPLICATIONS, same_id_other_topic, 9),
    ]
    valid, rejected = split_batch(records, make_settings("intake"))  # type: ignore[arg-type]

    assert [str(e.event_id) for e in valid] == [first["event_id"], second["event_id"]]
    assert isinstance(valid[0], NotificationReceived)
    assert isinstance(valid[1], NotificationAssessed)
    assert valid[1].occurred_at == datetime.fromisoformat("2022-03-01T12:00:00+01:00")

    assert [r for r, _ in rejected] == [bad_json, no_value, wrong_topic, cpr, naive]
    assert all(isinstance(why, Rejection) for _, why in rejected)
    assert [why.reason for _, why in rejected] == [
        "invalid_json", "invalid_json", "wrong_topic", "cpr_number", "invalid_event"]
    # a rejection never echoes the value
    assert all("010190" not in why.detail for _, why in rejected)


def test_split_batch_rejected_duplicates_do_not_hide_a_valid_event() -> None:
    good = received_raw("n1", "2022-03-01T09:00:00+01:00")
    broken = dict(good, schema_version=2)
    valid, rejected = split_batch([record(topics.NOTIFICATIONS, broken, 0),  # type: ignore[arg-type]
                                   record(topics.NOTIFICATIONS, good, 1)], make_settings("intake"))
    assert [str(e.event_id) for e in valid] == [good["event_id"]]
    assert [why.reason for _, why in rejected] == ["unsupported_schema_version"]


def test_split_batch_of_nothing() -> None:
    assert split_batch([], make_settings("intake")) == ([], [])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=4), max_size=12))
def test_split_batch_keeps_the_first_of_each_id(picks: list[int]) -> None:
    pool = [received_raw(f"n{i}", f"2022-03-0{i + 1}T09:00:00+01:00") for i in range(5)]
    records = [record(topics.NOTIFICATIONS, pool[i], n) for n, i in enumerate(picks)]
    valid, rejected = split_batch(records, make_settings("intake"))  # type: ignore[arg-type]
    assert rejected == []
    assert [str(e.event_id) for e in valid] == [pool[i]["event_id"] for i in dict.fromkeys(picks)]


# --- reporting record helpers --------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_reporting_event_id_is_uuid5_in_the_reporting_namespace(name: str) -> None:
    assert reporting_event_id(name) == str(uuid.uuid5(REPORTING_NAMESPACE, name))


TEXT = st.text() | st.text(st.characters(max_codepoint=127))  # ASCII-only often, where the bytes must match
JSON_READY = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=1000, deadline=None)
@given(JSON_READY)
def test_compact_json_is_byte_identical_to_json_dumps(value: Any) -> None:
    assert compact_json(value) == json.dumps(value, separators=(",", ":")).encode()


def test_compact_json_escapes_like_json_dumps() -> None:
    for text in ["Mål 0", "\x00\x1f\x7f\"\\/\n\t\u2028", "\ud800", "😀", *map(chr, range(128))]:
        value = {"title": text, "n": [1, None, True]}
        assert compact_json(value) == json.dumps(value, separators=(",", ":")).encode()


def test_reporting_records_of_a_batch_carry_the_given_instant_and_watermark() -> None:
    entity = notification_entity([OLD])
    reduce_entity(entity)
    watermark = datetime(2022, 3, 1, 11, 0, tzinfo=UTC)
    now = "2024-05-01T12:00:00.123456+00:00"
    record = RECORDS.state(entity, watermark.isoformat(), now)
    event = decode(topics.REPORTING, record.value)
    assert isinstance(event, NotificationChanged)
    assert event.occurred_at == datetime.fromisoformat(now)
    assert event.data.watermark == watermark
    # the same batch instant and watermark give the very same record
    assert RECORDS.state(entity, watermark.isoformat(), now) == record


# --- the engine over the in-memory store ------------------------------------------------------


def notification_batch(*values: dict[str, Any], first_offset: int = 0) -> list[ConsumerRecord]:
    """The values as consecutive records of one partition (the fields the engine reads)."""
    return [Record(PREFIX + topics.NOTIFICATIONS, json.dumps(v).encode(), 0, first_offset + n)
            for n, v in enumerate(values)]


def reported(out: list[OutRecord]) -> list[NotificationChanged]:
    """The notification states the batch reported."""
    events = [decode(topics.REPORTING, r.value) for r in out]
    return [e for e in events if isinstance(e, NotificationChanged)]


async def test_a_batch_is_folded_stored_and_reported() -> None:
    store = MemoryProjectionStore()
    eng = engine("intake", intake.KINDS, store)
    await eng.setup()
    first = received_raw("n1", "2022-03-01T09:00:00+01:00")
    second = assessed_raw("n1", "2022-03-01T12:00:00+01:00")
    out = await eng.apply_batch(notification_batch(second, first))
    doc = store.collections["notifications"]["480:n1"]
    assert (doc["version"], doc["applied"]) == (2, [first["event_id"], second["event_id"]])
    (event,) = reported(out)
    assessed_at = datetime.fromisoformat(second["occurred_at"])
    assert (event.data.version, event.data.state.assessed_at) == (2, assessed_at)
    assert store.watermarks["480"] == datetime.fromisoformat(second["occurred_at"])
    assert event.data.watermark == store.watermarks["480"]
    assert applied_count(eng, "notification.received") == applied_count(eng, "notification.assessed") == 1


async def test_a_redelivered_batch_after_a_restart_changes_nothing() -> None:
    """A crash between the write and the commit: the next process gets the batch again."""
    store = MemoryProjectionStore()
    batch = notification_batch(received_raw("n1", "2022-03-01T09:00:00+01:00"),
                               assessed_raw("n1", "2022-03-01T12:00:00+01:00"))
    before = reported(await engine("intake", intake.KINDS, store).apply_batch(batch))
    restarted = engine("intake", intake.KINDS, store)  # nothing in memory
    again = reported(await restarted.apply_batch(batch))
    assert store.collections["notifications"]["480:n1"]["version"] == 2
    assert [e.event_id for e in again] == [e.event_id for e in before]  # the same event: ignored downstream
    assert duplicates(restarted) == 2 and applied_count(restarted, "notification.received") == 0


async def test_a_stale_memory_collides_and_rereads_instead_of_losing_an_update() -> None:
    """Two replicas during a rebalance: the one that remembers an older version loses the
    race, reads the document again and applies its events on top."""
    store = MemoryProjectionStore()
    one, two = engine("intake", intake.KINDS, store), engine("intake", intake.KINDS, store)
    await one.apply_batch(notification_batch(received_raw("n1", "2022-03-01T09:00:00+01:00")))
    assessed_later = assessed_raw("n1", "2022-03-01T12:00:00+01:00")
    await two.apply_batch(notification_batch(assessed_later, first_offset=1))
    late = received_raw("n1", "2022-03-01T08:00:00+01:00", event_id=str(uuid.uuid4()))
    (event,) = reported(await one.apply_batch(notification_batch(late, first_offset=2)))
    assert event.data.version == 3
    assert event.data.state.assessed_at is not None  # the other replica's update was kept
    assert store.collections["notifications"]["480:n1"]["version"] == 3
