"""Intake's pure reducers: course facts, notifications, the 24-hour overdue rule."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import (
    ApplicationDecided,
    ApplicationSubmitted,
    CourseCompleted,
    CourseStarted,
    Decision,
    NotificationAssessed,
    NotificationReceived,
    Outcome,
    Reason,
    Reporter,
)
from schemas.reporting import NotificationState
from services.intake.domain import _earlier, _later, apply_course, apply_notification, unassessed_overdue

pytestmark = pytest.mark.unit

E = TypeVar("E")
S = TypeVar("S")

MODELS: dict[str, Any] = {
    "application.submitted": ApplicationSubmitted,
    "application.decided": ApplicationDecided,
    "course.started": CourseStarted,
    "course.completed": CourseCompleted,
    "notification.received": NotificationReceived,
    "notification.assessed": NotificationAssessed,
}


def make(event_type: str, occurred_at: str, data: dict[str, Any], event_id: str | None = None) -> Any:
    """A real, strictly validated contract event (JSON in, as on the wire)."""
    return MODELS[event_type].model_validate_json(json.dumps({
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": occurred_at,
        "municipality_code": "480",
        "source": "dubu.test",
        "data": data,
    }))


def fold(events: Iterable[E], apply: Callable[[E, S | None], S]) -> S | None:
    state: S | None = None
    for event in events:
        state = apply(event, state)
    return state


def fold_skipping_duplicates(events: Iterable[Any], apply: Callable[[Any, Any], Any]) -> Any:
    """What the projection engine does: an event id already applied has no effect."""
    seen: set[uuid.UUID] = set()
    state = None
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        state = apply(event, state)
    return state


def same(a: Any, b: Any) -> bool:
    """Equal as values and byte-identical as serialised (what a reporting event carries)."""
    return a == b and (a is None or a.model_dump_json() == b.model_dump_json())


@st.composite
def subset_and_arrival(draw: st.DrawFn, pool: list[Any]) -> tuple[list[Any], list[Any]]:
    """A non-empty subset of `pool` (in pool order), and an arrival order of it: any
    permutation, with any of its events delivered again."""
    chosen = draw(st.lists(st.sampled_from(range(len(pool))), min_size=1, unique=True))
    again = draw(st.lists(st.sampled_from(chosen), max_size=len(chosen)))
    order = draw(st.permutations(chosen + again))
    return [pool[i] for i in sorted(chosen)], [pool[i] for i in order]


# --- course --------------------------------------------------------------------------------

# Instants used by several events always carry the same offset, so serialised states compare.
T1, T2, T3, T4 = ("2021-09-01T10:00:00+02:00", "2021-09-15T10:00:00+02:00",
                  "2021-11-01T10:00:00+01:00", "2021-11-20T10:00:00+01:00")
T5, T6, T7, T8 = ("2022-02-01T08:00:00+01:00", "2022-02-03T08:00:00+01:00",
                  "2023-01-31T16:00:00+01:00", "2023-02-02T16:00:00+01:00")


def submitted(app: str, at: str, *reasons: str) -> ApplicationSubmitted:
    return make("application.submitted", at, {"application_id": app, "reasons": list(reasons)})


def decided(app: str, at: str, decision: str, expected_start: str) -> ApplicationDecided:
    return make("application.decided", at,
                {"application_id": app, "decision": decision, "expected_start": expected_start})


def started(course: str, at: str, app: str, planned_end: str) -> CourseStarted:
    return make("course.started", at,
                {"course_id": course, "application_id": app, "planned_end": planned_end})


def completed(course: str, at: str) -> CourseCompleted:
    return make("course.completed", at, {"course_id": course})


COURSE_POOL: list[Any] = [
    submitted("a1", T1, "rising_caseload"),
    submitted("a1", T2, "quality_concerns", "other"),
    submitted("a1", T2, "competence_gap"),              # competes with the one above: same instant
    submitted("a2", T1, "rising_notifications"),
    decided("a1", T3, "rejected", "2022-01-01"),
    decided("a1", T4, "approved", "2022-02-01"),
    decided("a1", T4, "approved", "2022-02-07"),         # same instant, other content
    started("c1", T5, "a1", "2022-12-31"),
    started("c1", T6, "a1", "2023-01-31"),
    started("c1", T6, "a2", "2023-01-31"),               # same instant, other application
    completed("c1", T7),
    completed("c1", T8),
    completed("c2", T8),                                  # completion of a course never started
]


def test_course_state_from_every_fact_takes_the_latest_of_each() -> None:
    state = fold(COURSE_POOL, apply_course)
    assert state is not None
    assert [a.application_id for a in state.applications] == ["a1", "a2"]
    a1, a2 = state.applications
    assert a1.submitted_at == datetime.fromisoformat(T2)
    assert a1.reasons in ([Reason.OTHER, Reason.QUALITY_CONCERNS], [Reason.COMPETENCE_GAP])
    assert (a1.decided_at, a1.decision) == (datetime.fromisoformat(T4), Decision.APPROVED)
    assert a1.expected_start in (date(2022, 2, 1), date(2022, 2, 7))
    assert (a2.submitted_at, a2.reasons, a2.decided_at) == (datetime.fromisoformat(T1),
                                                           [Reason.RISING_NOTIFICATIONS], None)
    assert [c.course_id for c in state.courses] == ["c1", "c2"]
    c1, c2 = state.courses
    assert (c1.started_at, c1.planned_end) == (datetime.fromisoformat(T6), date(2023, 1, 31))
    assert c1.application_id in ("a1", "a2")
    assert c1.completed_at == datetime.fromisoformat(T8)
    assert (c2.started_at, c2.application_id, c2.completed_at) == (None, None, datetime.fromisoformat(T8))


def test_a_late_arriving_older_fact_does_not_overwrite_a_newer_one() -> None:
    newer = fold([decided("a1", T4, "approved", "2022-02-01")], apply_course)
    state = apply_course(decided("a1", T3, "rejected", "2022-01-01"), newer)
    assert state.applications[0].decision is Decision.APPROVED
    assert state.applications[0].decided_at == datetime.fromisoformat(T4)


def test_facts_of_one_application_arrive_independently() -> None:
    # the decision arrives before the submission; neither erases the other
    state = fold([decided("a1", T4, "approved", "2022-02-01"), submitted("a1", T1, "other")], apply_course)
    assert state is not None
    (facts,) = state.applications
    assert (facts.submitted_at, facts.reasons) == (datetime.fromisoformat(T1), [Reason.OTHER])
    assert (facts.decided_at, facts.decision) == (datetime.fromisoformat(T4), Decision.APPROVED)


@settings(max_examples=150, deadline=None)
@given(subset_and_arrival(COURSE_POOL))
def test_course_state_is_independent_of_order_and_duplicates(case: tuple[list[Any], list[Any]]) -> None:
    events, arrival = case
    expected = fold(events, apply_course)
    assert same(fold(arrival, apply_course), expected)
    assert same(fold_skipping_duplicates(arrival, apply_course), expected)
    assert same(fold(reversed(events), apply_course), expected)


@settings(max_examples=100, deadline=None)
@given(subset_and_arrival(COURSE_POOL))
def test_each_course_fact_is_the_latest_competing_version(case: tuple[list[Any], list[Any]]) -> None:
    events, arrival = case
    state = fold(arrival, apply_course)
    assert state is not None
    apps = {a.application_id: a for a in state.applications}
    courses = {c.course_id: c for c in state.courses}
    for kind, field, key, facts in (
        (ApplicationSubmitted, "submitted_at", "application_id", apps),
        (ApplicationDecided, "decided_at", "application_id", apps),
        (CourseStarted, "started_at", "course_id", courses),
        (CourseCompleted, "completed_at", "course_id", courses),
    ):
        by_entity: dict[str, list[Any]] = {}
        for e in events:
            if isinstance(e, kind):
                by_entity.setdefault(getattr(e.data, key), []).append(e)
        for entity_id, competing in by_entity.items():
            assert getattr(facts[entity_id], field) == max(e.occurred_at for e in competing)


def test_same_instant_with_another_offset_serialises_the_same_in_any_order() -> None:
    local = started("c1", "2022-02-01T09:00:00+01:00", "a1", "2023-01-31")
    utc = started("c1", "2022-02-01T08:00:00+00:00", "a1", "2023-01-31")
    assert same(fold([local, utc], apply_course), fold([utc, local], apply_course))


def test_apply_course_refuses_other_events() -> None:
    with pytest.raises(TypeError):
        apply_course(received("n1", R1), None)


# --- notifications -------------------------------------------------------------------------

R0, R1, A0, A1 = ("2022-03-01T08:00:00+01:00", "2022-03-01T09:30:00+01:00",
                  "2022-03-01T15:00:00+01:00", "2022-03-02T10:00:00+01:00")


def received(nid: str, at: str, reporter: str = "school", urgent: bool = False) -> NotificationReceived:
    return make("notification.received", at,
                {"notification_id": nid, "child_ref": f"child-{nid}", "reporter": reporter, "urgent": urgent})


def assessed(nid: str, at: str, outcome: str = "advice_and_guidance") -> NotificationAssessed:
    return make("notification.assessed", at, {"notification_id": nid, "outcome": outcome})


NOTIFICATION_POOL: list[Any] = [
    received("n1", R1, "school", False),
    received("n1", R0, "police", True),       # an earlier receipt: the clock starts here
    received("n1", R0, "family", False),      # same instant, other content
    assessed("n1", A1, "no_action"),
    assessed("n1", A0, "immediate_measure"),  # an earlier assessment: the clock stops here
    assessed("n1", A0, "referred_elsewhere"),
]


def test_notification_earliest_receipt_and_earliest_assessment_win() -> None:
    state = fold(NOTIFICATION_POOL, apply_notification)
    assert state is not None
    assert state.notification_id == "n1"
    assert state.received_at == datetime.fromisoformat(R0)
    assert (state.reporter, state.urgent) in ((Reporter.POLICE, True), (Reporter.FAMILY, False))
    assert state.assessed_at == datetime.fromisoformat(A0)
    assert state.outcome in (Outcome.IMMEDIATE_MEASURE, Outcome.REFERRED_ELSEWHERE)


def test_assessment_before_receipt() -> None:
    state = apply_notification(assessed("n1", A1, "no_action"), None)
    assert (state.notification_id, state.received_at, state.assessed_at) == ("n1", None,
                                                                           datetime.fromisoformat(A1))
    state = apply_notification(received("n1", R1, "health", True), state)
    assert state == NotificationState(notification_id="n1", received_at=datetime.fromisoformat(R1),
                                      urgent=True, reporter=Reporter.HEALTH,
                                      assessed_at=datetime.fromisoformat(A1), outcome=Outcome.NO_ACTION)


def test_two_receipts_earliest_wins_in_either_order() -> None:
    early, late = received("n1", R0, "police", True), received("n1", R1, "school", False)
    for order in ([early, late], [late, early]):
        state = fold(order, apply_notification)
        assert state is not None
        assert (state.received_at, state.reporter, state.urgent) == (datetime.fromisoformat(R0),
                                                                     Reporter.POLICE, True)


def test_two_assessments_earliest_wins_in_either_order() -> None:
    early, late = assessed("n1", A0, "immediate_measure"), assessed("n1", A1, "no_action")
    for order in ([early, late], [late, early]):
        state = fold(order, apply_notification)
        assert state is not None
        assert (state.assessed_at, state.outcome) == (datetime.fromisoformat(A0), Outcome.IMMEDIATE_MEASURE)


@settings(max_examples=150, deadline=None)
@given(subset_and_arrival(NOTIFICATION_POOL))
def test_notification_state_is_independent_of_order_and_duplicates(
    case: tuple[list[Any], list[Any]],
) -> None:
    events, arrival = case
    expected = fold(events, apply_notification)
    state = fold(arrival, apply_notification)
    assert same(state, expected)
    assert same(fold_skipping_duplicates(arrival, apply_notification), expected)
    receipts = [e.occurred_at for e in events if isinstance(e, NotificationReceived)]
    assessments = [e.occurred_at for e in events if isinstance(e, NotificationAssessed)]
    assert state is not None
    assert state.received_at == (min(receipts) if receipts else None)
    assert state.assessed_at == (min(assessments) if assessments else None)


def test_a_duplicate_id_with_other_content_has_no_effect_when_skipped() -> None:
    first = received("n1", R1, "school", False)
    resent = received("n1", R0, "police", True).model_copy(update={"event_id": first.event_id})
    state = fold_skipping_duplicates([first, resent], apply_notification)
    assert state == apply_notification(first, None)


def test_apply_notification_refuses_other_events() -> None:
    with pytest.raises(TypeError):
        apply_notification(completed("c1", T7), None)


# --- unassessed_overdue --------------------------------------------------------------------


def note(nid: str, received_at: str | None, assessed_at: str | None = None) -> NotificationState:
    return NotificationState(
        notification_id=nid,
        received_at=datetime.fromisoformat(received_at) if received_at else None,
        assessed_at=datetime.fromisoformat(assessed_at) if assessed_at else None)


def overdue_ids(states: list[NotificationState], now: str, hours: float = 24) -> list[str]:
    return [s.notification_id for s in unassessed_overdue(states, datetime.fromisoformat(now), hours)]


@pytest.mark.parametrize(("received_at", "now", "overdue"), [
    # no DST change: exactly 24 h is overdue, one second less is not
    ("2022-02-01T09:00:00+01:00", "2022-02-02T09:00:00+01:00", True),
    ("2022-02-01T09:00:00+01:00", "2022-02-02T08:59:59+01:00", False),
    ("2022-02-01T09:00:00+01:00", "2022-02-02T08:59:00+01:00", False),   # 23 h 59 min
    ("2022-02-01T09:00:00+01:00", "2022-02-01T09:00:00+01:00", False),
    # spring forward (27 March 2022): 24 real hours end at 13:00 local, not 12:00
    ("2022-03-26T12:00:00+01:00", "2022-03-27T12:00:00+02:00", False),   # 23 h
    ("2022-03-26T12:00:00+01:00", "2022-03-27T12:59:00+02:00", False),   # 23 h 59 min
    ("2022-03-26T12:00:00+01:00", "2022-03-27T13:00:00+02:00", True),    # exactly 24 h
    # fall back (30 October 2022): 24 real hours end at 11:00 local, not 12:00
    ("2022-10-29T12:00:00+02:00", "2022-10-30T10:59:00+01:00", False),   # 23 h 59 min
    ("2022-10-29T12:00:00+02:00", "2022-10-30T11:00:00+01:00", True),    # exactly 24 h
    # the same instants written in UTC
    ("2022-10-29T10:00:00+00:00", "2022-10-30T10:00:00+00:00", True),
    ("2022-10-29T10:00:00+00:00", "2022-10-30T09:59:00+00:00", False),
])
def test_overdue_after_exactly_24_real_hours(received_at: str, now: str, overdue: bool) -> None:
    assert overdue_ids([note("n1", received_at)], now) == (["n1"] if overdue else [])


def test_assessed_or_unreceived_notifications_are_never_overdue() -> None:
    states = [
        note("assessed-late", "2022-01-01T09:00:00+01:00", "2022-03-01T09:00:00+01:00"),
        note("assessed-in-future", "2022-01-01T09:00:00+01:00", "2030-01-01T09:00:00+01:00"),
        note("assessment-only", None, "2022-01-02T09:00:00+01:00"),
    ]
    assert overdue_ids(states, "2022-06-01T00:00:00+02:00") == []


def test_overdue_sorted_oldest_first_then_by_id() -> None:
    states = [
        note("n3", "2022-02-01T10:00:00+01:00"),
        note("n2", "2022-02-01T09:00:00+01:00"),
        note("n1", "2022-02-01T08:00:00+00:00"),    # the same instant as n2
        note("n0", "2022-02-02T09:00:00+01:00"),    # only 23 h before now
        note("n4", "2022-01-15T09:00:00+01:00", "2022-01-15T10:00:00+01:00"),
    ]
    assert overdue_ids(states, "2022-02-03T08:00:00+01:00") == ["n1", "n2", "n3"]


def test_hours_is_configurable() -> None:
    states = [note("n1", "2022-02-01T09:00:00+01:00")]
    assert overdue_ids(states, "2022-02-01T11:00:00+01:00", hours=2) == ["n1"]
    assert overdue_ids(states, "2022-02-01T10:59:59+01:00", hours=2) == []


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
    .map(lambda d: d.replace(microsecond=0)),
    st.integers(min_value=-3 * 86_400, max_value=3 * 86_400),
)
def test_overdue_is_receipt_plus_86400_seconds_at_most_now(received_at: datetime, offset: int) -> None:
    now = received_at + timedelta(seconds=offset)
    state = NotificationState(notification_id="n", received_at=received_at)
    assert bool(unassessed_overdue([state], now)) is (received_at + timedelta(hours=24) <= now)


def test_exactly_24h_with_microseconds_is_overdue() -> None:
    received_at = datetime(2038, 1, 18, 3, 14, 47, 892029, tzinfo=UTC)
    state = NotificationState(notification_id="n1", received_at=received_at)
    assert unassessed_overdue([state], received_at + timedelta(hours=24)) == [state]


# --- tie-breaks ------------------------------------------------------------------------------


def _old_key(at: datetime | None, *content: Any) -> tuple[Any, ...]:
    """The eager key the reducers compared before (instant, content, spelling of the instant)."""
    return (at, *content, at.isoformat() if at else "")


BASE = datetime(2022, 3, 27, 0, 30, tzinfo=UTC)
OFFSETS = [timezone(timedelta(hours=h, minutes=m)) for h, m in [(0, 0), (1, 0), (2, 0), (-5, 0), (5, 30)]]
CONTENTS = st.tuples(st.sampled_from([None, Outcome.NO_ACTION, Outcome.IMMEDIATE_MEASURE]),
                     st.sampled_from([False, True]), st.lists(st.sampled_from(list(Reason)), max_size=2))


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """Few instants, each spelled with one of several offsets, with or without microseconds."""
    at = BASE + timedelta(minutes=draw(st.integers(-2, 2)), microseconds=draw(st.sampled_from([0, 0, 5])))
    return at.astimezone(draw(st.sampled_from(OFFSETS)))


def _outcome(compare: Callable[[], bool]) -> bool | type[Exception]:
    try:
        return compare()
    except TypeError:  # e.g. an unknown outcome beside a known one at the same instant
        return TypeError


@settings(max_examples=500, deadline=None)
@given(instants(), instants() | st.none(), CONTENTS, CONTENTS)
def test_lazy_tie_breaks_order_exactly_like_the_eager_keys(
    new_at: datetime, old_at: datetime | None, new: tuple[Any, ...], old: tuple[Any, ...]
) -> None:
    new_key, old_key = _old_key(new_at, *new), _old_key(old_at, *old)
    assert _outcome(lambda: _later(new_at, new, old_at, old)) == _outcome(
        lambda: old_key[0] is None or new_key > old_key)
    assert _outcome(lambda: _earlier(new_at, new, old_at, old)) == _outcome(
        lambda: old_key[0] is None or new_key < old_key)


def test_a_first_receipt_or_assessment_gives_the_state_the_copy_gave() -> None:
    first, then = received("n1", R0, "police", True), assessed("n1", A0)
    for event, update in [
        (first, {"received_at": first.occurred_at, "reporter": first.data.reporter, "urgent": True}),
        (then, {"assessed_at": then.occurred_at, "outcome": then.data.outcome}),
    ]:
        before = NotificationState(notification_id="n1").model_copy(update=update)
        state = apply_notification(event, None)
        assert same(state, before)
        assert list(state.__dict__.items()) == list(before.__dict__.items())
        assert state.model_fields_set == before.model_fields_set


def test_a_flood_of_application_ids_keeps_the_most_recent_200() -> None:
    """A municipality's course document stays bounded: 1,000 applications leave the 200 with
    the latest facts, and the course facts are untouched by them."""
    start = datetime(2022, 1, 1, tzinfo=UTC)
    state = apply_course(started("c1", "2022-01-01T00:00:00+00:00", "a-real", "2023-01-01"), None)
    for n in range(1_000):
        at = (start + timedelta(hours=n)).isoformat()
        state = apply_course(submitted(f"a-{n:04d}", at, "other"), state)
    assert len(state.applications) == 200
    assert [a.application_id for a in state.applications] == [f"a-{n:04d}" for n in range(800, 1_000)]
    assert [c.course_id for c in state.courses] == ["c1"]
