"""Follow-up's pure rules: plans, milestone histories, meetings, overdue and cadence."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import DevelopmentPlanAdopted, FollowupMeetingHeld, MilestoneStatus, MilestoneUpdated
from schemas.reporting import MeetingState, MilestoneState, PlanState
from services.followup.domain import (
    apply_meeting,
    apply_milestone,
    apply_milestones,
    apply_plan,
    days_since_last_followup,
    half_year,
    local_date,
    overdue_milestones,
    plan_state,
    status_at,
)

pytestmark = pytest.mark.unit

MODELS: dict[str, Any] = {
    "development_plan.adopted": DevelopmentPlanAdopted,
    "milestone.updated": MilestoneUpdated,
    "followup.meeting_held": FollowupMeetingHeld,
}


def make(event_type: str, occurred_at: str, data: dict[str, Any], event_id: str | None = None) -> Any:
    return MODELS[event_type].model_validate_json(json.dumps({
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": occurred_at,
        "municipality_code": "480",
        "source": "taskforce.plans",
        "data": data,
    }))


def adopted(at: str, milestones: dict[str, str], plan: str = "p1", goals: int = 1) -> DevelopmentPlanAdopted:
    """A plan whose milestones {id: due_on} are spread round-robin over `goals` goals."""
    items = list(milestones.items())
    return make("development_plan.adopted", at, {"plan_id": plan, "course_id": "c-480-1", "goals": [
        {"goal_id": f"g{g}", "title": f"Goal {g}",
         "milestones": [{"milestone_id": m, "title": f"Milestone {m}", "due_on": due}
                        for m, due in items[g::goals]]}
        for g in range(goals)]})


def updated(at: str, status: str, milestone: str = "m1", plan: str = "p1",
            event_id: str | None = None) -> MilestoneUpdated:
    return make("milestone.updated", at, {"plan_id": plan, "milestone_id": milestone, "status": status},
                event_id=event_id)


def meeting(at: str, plan: str = "p1", cases: int = 2) -> FollowupMeetingHeld:
    return make("followup.meeting_held", at, {"plan_id": plan, "cases_rereviewed": cases})


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def fold_milestone(events: list[MilestoneUpdated]) -> MilestoneState | None:
    state = None
    for event in events:
        state = apply_milestone(state, event)
    return state


# --- local dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(("instant", "local"), [
    ("2022-03-26T22:59:59+00:00", date(2022, 3, 26)),   # 23:59:59 CET
    ("2022-03-26T23:00:00+00:00", date(2022, 3, 27)),   # midnight CET
    ("2022-03-27T00:30:00+00:00", date(2022, 3, 27)),   # 01:30 CET, half an hour before the change
    ("2022-03-27T01:30:00+00:00", date(2022, 3, 27)),   # 03:30 CEST, after it
    ("2022-06-30T21:59:59+00:00", date(2022, 6, 30)),
    ("2022-06-30T22:00:00+00:00", date(2022, 7, 1)),    # midnight CEST
    ("2022-10-29T21:59:59+00:00", date(2022, 10, 29)),
    ("2022-10-29T22:30:00+00:00", date(2022, 10, 30)),  # 00:30 CEST on the night of the change
    ("2022-10-30T00:30:00+00:00", date(2022, 10, 30)),  # 02:30 CEST, the first of two
    ("2022-10-30T01:30:00+00:00", date(2022, 10, 30)),  # 02:30 CET, the second
    ("2022-10-30T22:59:59+00:00", date(2022, 10, 30)),
    ("2022-10-30T23:00:00+00:00", date(2022, 10, 31)),  # midnight CET
    ("2022-12-31T23:30:00+00:00", date(2023, 1, 1)),
    ("2023-01-01T00:30:00+01:00", date(2023, 1, 1)),
])
def test_local_date_is_copenhagen(instant: str, local: date) -> None:
    assert local_date(dt(instant)) == local


@pytest.mark.parametrize(("instant", "held_on"), [
    ("2022-03-27T00:30:00+00:00", date(2022, 3, 27)),
    ("2022-10-29T22:30:00+00:00", date(2022, 10, 30)),
    ("2022-10-29T21:30:00+00:00", date(2022, 10, 29)),
    ("2022-03-26T23:15:00+00:00", date(2022, 3, 27)),
])
def test_meeting_date_is_local_date(instant: str, held_on: date) -> None:
    event = meeting(instant, cases=3)
    state = apply_meeting(None, event)
    assert state == MeetingState(meeting_id=str(event.event_id), plan_id="p1", held_at=dt(instant),
                                 held_on=held_on, cases_rereviewed=3)
    assert apply_meeting(state, event) == state


# --- plans ---------------------------------------------------------------------------------


def test_plan_state_flattens_goals_and_uses_local_adoption_date() -> None:
    event = adopted("2022-10-29T22:30:00+00:00", {"m1": "2022-12-01", "m2": "2023-01-15", "m3": "2023-03-01"},
                    goals=2)
    state = plan_state(event)
    assert (state.plan_id, state.course_id) == ("p1", "c-480-1")
    assert (state.adopted_at, state.adopted_on) == (dt("2022-10-29T22:30:00+00:00"), date(2022, 10, 30))
    assert [(m.milestone_id, m.goal_id, m.due_on) for m in state.milestones] == [
        ("m1", "g0", date(2022, 12, 1)), ("m3", "g0", date(2023, 3, 1)), ("m2", "g1", date(2023, 1, 15))]


PLANS = [
    adopted("2022-02-01T10:00:00+01:00", {"m1": "2022-06-01"}),
    adopted("2022-05-01T10:00:00+02:00", {"m1": "2022-08-01", "m2": "2022-09-01"}),   # the revision
    adopted("2022-05-01T10:00:00+02:00", {"m1": "2022-08-01", "m2": "2022-09-15"}),   # tied instant
    adopted("2022-03-01T10:00:00+01:00", {"m9": "2022-07-01"}),
]


def test_plan_readoption_latest_wins() -> None:
    first, revision = PLANS[0], PLANS[1]
    assert apply_plan(apply_plan(None, first), revision) == plan_state(revision)
    assert apply_plan(apply_plan(None, revision), first) == plan_state(revision)


@settings(max_examples=50, deadline=None)
@given(st.permutations(PLANS))
def test_plan_readoption_independent_of_order(order: list[DevelopmentPlanAdopted]) -> None:
    def fold(events: list[DevelopmentPlanAdopted]) -> PlanState | None:
        state = None
        for e in events:
            state = apply_plan(state, e)
        return state

    expected, state = fold(PLANS), fold(order)
    assert state is not None and expected is not None
    assert state.model_dump_json() == expected.model_dump_json()
    assert state.adopted_at == dt("2022-05-01T10:00:00+02:00")
    assert [m.milestone_id for m in state.milestones] == ["m1", "m2"]


PLAN_VARIANTS = [*PLANS, adopted("2022-05-01T08:00:00+00:00", {"m1": "2022-08-01", "m2": "2022-08-15"}),
                 adopted("2022-05-01T10:00:00+02:00", {"m1": "2022-08-01", "m2": "2022-09-01"})]


def eager_apply_plan(state: PlanState | None, event: DevelopmentPlanAdopted) -> PlanState:
    """The rule as first written: both (adopted_at, JSON) keys built for every comparison."""
    new = plan_state(event)
    if state is None or (new.adopted_at, new.model_dump_json()) > (state.adopted_at, state.model_dump_json()):
        return new
    return state


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(PLAN_VARIANTS), min_size=1, max_size=5))
def test_apply_plan_equals_the_eager_rule(events: list[DevelopmentPlanAdopted]) -> None:
    lazy = eager = None
    for event in events:
        lazy, eager = apply_plan(lazy, event), eager_apply_plan(eager, event)
        assert lazy == eager
        assert lazy.model_dump_json() == eager.model_dump_json()


# --- milestones ----------------------------------------------------------------------------

STATUSES = [s.value for s in MilestoneStatus]
INSTANTS = ["2022-03-01T09:00:00+01:00", "2022-03-15T09:00:00+01:00", "2022-03-27T00:30:00+00:00",
            "2022-04-01T09:00:00+02:00", "2022-06-30T21:59:59+00:00", "2022-06-30T22:00:00+00:00",
            "2022-10-30T01:30:00+00:00", "2023-01-01T00:00:00+01:00"]
#: The instants a summary asks about: each half-year's end (exclusive) and after everything.
HALF_YEAR_ENDS = ["2022-01-01T00:00:00+01:00", "2022-07-01T00:00:00+02:00", "2023-01-01T00:00:00+01:00",
                  "2023-07-01T00:00:00+02:00"]


@st.composite
def milestone_updates(draw: st.DrawFn) -> list[MilestoneUpdated]:
    """Updates of one milestone with distinct ids; instants repeat (ties) on purpose."""
    ids = draw(st.lists(st.uuids(version=4), min_size=1, max_size=7, unique=True))
    return [updated(draw(st.sampled_from(INSTANTS)), draw(st.sampled_from(STATUSES)), event_id=str(i))
            for i in ids]


def probe_instants() -> list[datetime]:
    """Just before each half-year's end (the status a period's summary reads) and far after."""
    return [dt(end) - timedelta(microseconds=1) for end in HALF_YEAR_ENDS] + [dt("2999-01-01T00:00:00+00:00")]


def expected_status(events: list[MilestoneUpdated], instant: datetime) -> MilestoneStatus:
    seen = [e for e in events if e.occurred_at <= instant]
    if not seen:
        return MilestoneStatus.NOT_STARTED
    return max(seen, key=lambda e: (e.occurred_at, str(e.event_id))).data.status


def last_per_half_year(events: list[MilestoneUpdated]) -> list[str]:
    """The event ids a compacted history keeps, in order: each half-year's last update."""
    last: dict[tuple[int, int], MilestoneUpdated] = {}
    for event in events:
        period = half_year(event.occurred_at)
        if period not in last or (event.occurred_at, str(event.event_id)) > (
                last[period].occurred_at, str(last[period].event_id)):
            last[period] = event
    return [str(e.event_id) for e in sorted(last.values(), key=lambda e: (e.occurred_at, str(e.event_id)))]


@settings(max_examples=100, deadline=None)
@given(st.data(), milestone_updates())
def test_milestone_history_independent_of_order_and_duplicates(data: st.DataObject,
                                                               events: list[MilestoneUpdated]) -> None:
    again = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    order = data.draw(st.permutations([*events, *again]))
    expected = fold_milestone(events)
    state = fold_milestone(order)
    assert state is not None and expected is not None
    assert state.model_dump_json() == expected.model_dump_json()
    assert [c.event_id for c in state.history] == last_per_half_year(events)
    for instant in probe_instants():
        assert status_at(state, instant) == expected_status(events, instant)


@settings(max_examples=100, deadline=None)
@given(st.data(), milestone_updates())
def test_updates_applied_together_equal_one_at_a_time(data: st.DataObject,
                                                      events: list[MilestoneUpdated]) -> None:
    """The engine hands a batch's updates of one milestone over at once: in any order, with
    repeats and cut anywhere, the state is the one built update by update."""
    again = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    order = data.draw(st.permutations([*events, *again]))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(order) - 1), max_size=3))) if len(order) > 1 else []
    state = None
    for start, end in zip([0, *cuts], [*cuts, len(order)], strict=True):
        state = apply_milestones(state, order[start:end])
    expected = fold_milestone(order)
    assert state is not None and expected is not None
    assert state.model_dump_json() == expected.model_dump_json()
    assert [c.event_id for c in state.history] == last_per_half_year(events)


def test_a_milestone_updated_200000_times_keeps_one_change_per_half_year() -> None:
    """A flood of updates over two years leaves at most four changes, the right ones."""
    start = dt("2022-01-01T00:00:00+01:00")
    templates = [updated(start.isoformat(), status) for status in STATUSES]
    state = None
    events = []
    for n in range(200_000):
        events.append(templates[n % len(STATUSES)].model_copy(
            update={"occurred_at": start + timedelta(minutes=5 * n), "event_id": uuid.UUID(int=n)}))
        if len(events) == 5_000:
            state, events = apply_milestones(state, events), []
    assert state is not None and len(state.history) == 4  # 2022H1 .. 2023H2
    last = start + timedelta(minutes=5 * 199_999)
    assert status_at(state, last) is MilestoneStatus(STATUSES[199_999 % len(STATUSES)])


def test_older_update_never_overwrites_current_status() -> None:
    newer = updated("2022-04-01T09:00:00+02:00", "achieved")
    older = updated("2021-12-15T09:00:00+01:00", "at_risk")
    state = apply_milestone(apply_milestone(None, newer), older)
    assert status_at(state, dt("2022-12-31T00:00:00+01:00")) is MilestoneStatus.ACHIEVED
    assert state.history[-1].status is MilestoneStatus.ACHIEVED
    # the older one, last of its half-year, is kept for the past
    assert status_at(state, dt("2021-12-31T23:59:59+01:00")) is MilestoneStatus.AT_RISK
    assert status_at(state, dt("2021-12-15T08:59:59+01:00")) is MilestoneStatus.NOT_STARTED
    # an older update of the same half-year changes nothing
    same_half = updated("2022-03-15T09:00:00+01:00", "missed")
    assert apply_milestone(state, same_half) == state


def test_duplicate_event_id_is_kept_once() -> None:
    event = updated("2022-03-15T09:00:00+01:00", "in_progress")
    state = apply_milestone(apply_milestone(None, event), event)
    assert len(state.history) == 1
    assert (state.plan_id, state.milestone_id) == ("p1", "m1")
    assert state.history[0].event_id == str(event.event_id)
    assert state.history[0].effective_at == dt("2022-03-15T09:00:00+01:00")


def test_status_at_boundaries() -> None:
    state = fold_milestone([updated("2021-12-01T09:00:00+01:00", "in_progress"),
                            updated("2022-03-27T00:30:00+00:00", "at_risk"),
                            updated("2022-06-30T22:00:00+00:00", "achieved")])  # 1 July, local midnight
    assert status_at(None, dt("2030-01-01T00:00:00+01:00")) is MilestoneStatus.NOT_STARTED
    assert status_at(state, dt("2021-12-01T08:59:59+01:00")) is MilestoneStatus.NOT_STARTED
    assert status_at(state, dt("2021-12-01T08:00:00+00:00")) is MilestoneStatus.IN_PROGRESS  # same instant
    assert status_at(state, dt("2022-03-27T01:29:59+01:00")) is MilestoneStatus.IN_PROGRESS
    assert status_at(state, dt("2022-03-27T01:30:00+01:00")) is MilestoneStatus.AT_RISK
    assert status_at(state, dt("2022-06-30T23:59:59+02:00")) is MilestoneStatus.AT_RISK  # 2022H1's end
    assert status_at(state, dt("2022-07-01T00:00:00+02:00")) is MilestoneStatus.ACHIEVED
    assert [half_year(c.effective_at) for c in state.history] == [(2021, 2), (2022, 1), (2022, 2)]


def test_same_instant_updates_are_ordered_by_event_id() -> None:
    low = updated("2022-03-15T09:00:00+01:00", "missed", event_id="00000000-0000-4000-8000-000000000001")
    high = updated("2022-03-15T08:00:00+00:00", "achieved", event_id="ffffffff-0000-4000-8000-000000000001")
    for order in ([low, high], [high, low]):
        state = fold_milestone(order)
        assert status_at(state, dt("2022-03-15T09:00:00+01:00")) is MilestoneStatus.ACHIEVED


# --- overdue milestones and cadence --------------------------------------------------------

PLAN = plan_state(adopted("2022-01-10T09:00:00+01:00", {
    "m1": "2022-03-01",   # achieved in time
    "m2": "2022-03-27",   # due today -> not overdue yet
    "m3": "2022-04-01",   # not yet due
    "m4": "2022-02-01",   # achieved, but only after `now`
    "m5": "2022-03-26",   # no updates at all: not_started; due yesterday in local time
    "m6": "2022-03-20",   # at risk
}, goals=2))
MILESTONES = [
    fold_milestone([updated("2022-02-01T09:00:00+01:00", "in_progress", "m1"),
                    updated("2022-02-28T09:00:00+01:00", "achieved", "m1")]),
    fold_milestone([updated("2022-03-01T09:00:00+01:00", "in_progress", "m2")]),
    fold_milestone([updated("2021-12-20T09:00:00+01:00", "at_risk", "m4"),
                    updated("2022-04-10T09:00:00+02:00", "achieved", "m4")]),
    fold_milestone([updated("2022-03-10T09:00:00+01:00", "at_risk", "m6")]),
    # another plan's milestone with the same id is not ours
    fold_milestone([updated("2022-03-01T09:00:00+01:00", "achieved", "m5", plan="p2")]),
]


def overdue(now: str) -> list[tuple[str, MilestoneStatus]]:
    return [(m.milestone_id, status) for m, status in overdue_milestones(PLAN, MILESTONES, dt(now))]


def test_overdue_milestones_hand_computed() -> None:
    # 2022-03-26T23:30Z is 00:30 on 27 March in Copenhagen: m5 (due 26 March) is overdue
    assert overdue("2022-03-26T23:30:00+00:00") == [
        ("m4", MilestoneStatus.AT_RISK), ("m6", MilestoneStatus.AT_RISK), ("m5", MilestoneStatus.NOT_STARTED)]
    # an hour earlier it is still 26 March locally
    assert overdue("2022-03-26T22:30:00+00:00") == [
        ("m4", MilestoneStatus.AT_RISK), ("m6", MilestoneStatus.AT_RISK)]
    # after m4 was achieved and m2 passed its due date
    assert overdue("2022-04-20T12:00:00+02:00") == [
        ("m6", MilestoneStatus.AT_RISK), ("m5", MilestoneStatus.NOT_STARTED),
        ("m2", MilestoneStatus.IN_PROGRESS), ("m3", MilestoneStatus.NOT_STARTED)]
    # before anything is due
    assert overdue("2022-02-01T12:00:00+01:00") == []


def test_overdue_milestones_without_any_updates() -> None:
    late = overdue_milestones(PLAN, [], dt("2022-03-02T00:00:00+01:00"))
    assert [(m.milestone_id, s) for m, s in late] == [
        ("m4", MilestoneStatus.NOT_STARTED), ("m1", MilestoneStatus.NOT_STARTED)]


MEETINGS = [
    apply_meeting(None, meeting("2022-02-21T10:00:00+01:00")),
    apply_meeting(None, meeting("2022-03-27T00:30:00+00:00")),          # local 27 March
    apply_meeting(None, meeting("2022-03-30T10:00:00+02:00", plan="p2")),  # another plan
    apply_meeting(None, meeting("2022-05-02T10:00:00+02:00")),          # after `now` below
]


@pytest.mark.parametrize(("now", "days"), [
    ("2022-01-10T23:00:00+01:00", 0),    # adoption day, no meeting yet
    ("2022-02-20T23:59:00+01:00", 41),   # 10 Jan -> 20 Feb
    ("2022-02-21T09:59:00+01:00", 42),   # the meeting has not happened yet
    ("2022-02-21T10:00:00+01:00", 0),
    ("2022-03-26T23:00:00+00:00", 34),   # local 27 March 00:00; the meeting at 01:30 is later
    ("2022-03-27T00:30:00+00:00", 0),
    ("2022-04-01T12:00:00+02:00", 5),    # p2's meeting on 30 March does not count
    ("2022-05-01T23:59:59+02:00", 35),
    ("2022-05-02T10:00:00+02:00", 0),
])
def test_days_since_last_followup(now: str, days: int) -> None:
    plan = plan_state(adopted("2022-01-10T09:00:00+01:00", {"m1": "2022-06-01"}))
    assert days_since_last_followup(plan, MEETINGS, dt(now)) == days


def test_days_since_last_followup_across_autumn_dst() -> None:
    plan = plan_state(adopted("2022-09-01T09:00:00+02:00", {"m1": "2023-06-01"}))
    meetings = [apply_meeting(None, meeting("2022-10-29T22:30:00+00:00"))]   # local 30 October
    assert days_since_last_followup(plan, meetings, dt("2022-10-30T22:59:59+00:00")) == 0
    assert days_since_last_followup(plan, meetings, dt("2022-10-30T23:00:00+00:00")) == 1
    assert days_since_last_followup(plan, meetings, dt("2022-10-29T22:29:59+00:00")) == 59  # 1 Sep -> 29 Oct


@settings(max_examples=100, deadline=None)
@given(st.datetimes(min_value=datetime(2022, 1, 11), max_value=datetime(2023, 12, 31),
                    timezones=st.just(UTC)))
def test_days_since_last_followup_never_exceeds_days_since_adoption(now: datetime) -> None:
    plan = plan_state(adopted("2022-01-10T09:00:00+01:00", {"m1": "2022-06-01"}))
    days = days_since_last_followup(plan, MEETINGS, now)
    assert 0 <= days <= (local_date(now) - date(2022, 1, 10)).days
