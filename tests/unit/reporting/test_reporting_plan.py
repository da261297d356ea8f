"""The `development_plan` figures: milestones, overdue, meetings and cadence."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import MilestoneStatus
from schemas.reporting import (
    MeetingState,
    MilestoneState,
    PlannedMilestone,
    PlanState,
    StatusChange,
)
from services.reporting.domain.periods import LOCAL_TZ, Period, as_of, local_date
from services.reporting.domain.plan import NO_PLAN, longest_gap_days, milestone_status, plan_figures

pytestmark = pytest.mark.unit

H1 = Period(2022, 1)
H2 = Period(2022, 2)
S = MilestoneStatus


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def plan(adopted: datetime, plan_id: str = "p-1",
         due: dict[str, date] | None = None) -> PlanState:
    due = due if due is not None else {"m1": date(2022, 12, 31)}
    return PlanState(
        plan_id=plan_id, course_id="c-480-1", adopted_at=adopted, adopted_on=local_date(adopted),
        milestones=[PlannedMilestone(milestone_id=m, goal_id="g1", title=f"Delmål {m}", due_on=d)
                    for m, d in due.items()])


def change(status: MilestoneStatus, effective: datetime, event_id: str = "e") -> StatusChange:
    return StatusChange(status=status, effective_at=effective, event_id=event_id)


def history(milestone_id: str, *changes: StatusChange, plan_id: str = "p-1") -> MilestoneState:
    return MilestoneState(plan_id=plan_id, milestone_id=milestone_id, history=list(changes))


def meeting(held: datetime, plan_id: str = "p-1") -> MeetingState:
    return MeetingState(meeting_id=f"mt-{held.isoformat()}", plan_id=plan_id, held_at=held,
                        held_on=local_date(held), cases_rereviewed=0)


PLAN = plan(local(2022, 1, 10, 10), due={
    "m1": date(2022, 3, 1), "m2": date(2022, 6, 30), "m3": date(2022, 2, 1),
    "m4": date(2022, 12, 31)})
MILESTONES = [
    history("m1", change(S.IN_PROGRESS, local(2022, 2, 1, 9), "a"),
            change(S.ACHIEVED, local(2022, 2, 20, 9), "b")),
    # the older "achieved" arrived last; the newer "at_risk" still wins
    history("m2", change(S.AT_RISK, local(2022, 4, 1, 9), "c"),
            change(S.ACHIEVED, local(2022, 3, 1, 9), "d")),
    # only an update after as_of: not started yet
    history("m4", change(S.MISSED, local(2022, 5, 2, 9), "e")),
    # another plan's milestone with the same id is ignored
    history("m3", change(S.ACHIEVED, local(2022, 2, 2, 9), "f"), plan_id="p-other"),
]
MEETINGS = [meeting(local(2022, 1, 20, 14)), meeting(local(2022, 3, 15, 14)),
            meeting(local(2022, 5, 10, 14)), meeting(local(2022, 2, 1, 14), plan_id="p-other")]


def test_milestones_meetings_and_gap_mid_period() -> None:
    result = plan_figures([PLAN], MILESTONES, MEETINGS, H1, as_of(H1, local(2022, 5, 1, 12)))
    assert result.model_dump() == {
        "milestones_total": 4, "achieved": 1, "in_progress": 0, "at_risk": 1, "missed": 0,
        "not_started": 2,
        "overdue": 1,            # m3 (due 1 Feb, not started); m2 is not due until 30 June
        "meetings_held": 2,      # 20 Jan and 15 Mar; 10 May is after as_of
        "longest_gap_days": 54,  # 10 Jan, 20 Jan, 15 Mar, 1 May: gaps 10, 54, 47
        "cadence_ok": False,
    }


def test_at_the_period_end() -> None:
    result = plan_figures([PLAN], MILESTONES, MEETINGS, H1, H1.end)
    # overdue: m2 (due 30 June, at risk) and m3; m4 is missed but not due until December
    assert (result.missed, result.not_started, result.overdue) == (1, 1, 2)
    # dates 10 Jan, 20 Jan, 15 Mar, 10 May, 1 Jul (local date of as_of): gaps 10, 54, 56, 52
    assert (result.meetings_held, result.longest_gap_days, result.cadence_ok) == (3, 56, False)


def test_an_older_milestone_update_does_not_win() -> None:
    newer, older = change(S.AT_RISK, local(2022, 4, 1), "z"), change(S.ACHIEVED, local(2022, 3, 1))
    assert milestone_status([newer, older], H1, H1.end) is S.AT_RISK
    assert milestone_status([newer, older], H1, local(2022, 3, 15)) is S.ACHIEVED
    assert milestone_status([], H1, H1.end) is S.NOT_STARTED


def test_same_instant_is_broken_by_event_id() -> None:
    changes = [change(S.MISSED, local(2022, 4, 1), "b"), change(S.ACHIEVED, local(2022, 4, 1), "a")]
    assert milestone_status(changes, H1, H1.end) is S.MISSED


def test_update_at_exactly_the_period_end_is_left_out() -> None:
    changes = [change(S.IN_PROGRESS, local(2022, 3, 1)), change(S.ACHIEVED, H1.end, "z")]
    assert milestone_status(changes, H1, H1.end) is S.IN_PROGRESS
    assert milestone_status(changes, H2, H2.end) is S.ACHIEVED


def test_no_visible_plan() -> None:
    assert plan_figures([], [], [], H1, H1.end) == NO_PLAN
    later = plan(local(2022, 5, 1, 10))
    assert plan_figures([later], [], [], H1, as_of(H1, local(2022, 4, 1))) == NO_PLAN
    assert NO_PLAN.longest_gap_days is None and NO_PLAN.cadence_ok is None
    assert NO_PLAN.milestones_total == NO_PLAN.meetings_held == 0


def test_the_latest_adopted_plan_is_used() -> None:
    old = plan(local(2021, 9, 1, 10), "p-old", due={"x": date(2021, 12, 1)})
    new = plan(local(2022, 2, 1, 10), "p-new", due={"y": date(2022, 12, 1), "z": date(2022, 12, 1)})
    assert plan_figures([new, old], [], [], H1, H1.end).milestones_total == 2
    before = plan_figures([new, old], [], [], H1, as_of(H1, local(2022, 1, 15)))
    assert (before.milestones_total, before.overdue) == (1, 1)


def test_gap_straddling_the_period_start_counts() -> None:
    adopted = plan(local(2022, 5, 1, 10))
    held = [meeting(local(2022, m, d, 10)) for m, d in
            [(6, 1), (8, 10), (9, 10), (10, 10), (11, 10), (12, 10)]]
    result = plan_figures([adopted], [], held, H2, H2.end)
    # 1 Jun -> 10 Aug (70 days) straddles 1 July; 1 May -> 1 Jun lies wholly before H2
    assert (result.meetings_held, result.longest_gap_days, result.cadence_ok) == (5, 70, False)


def test_gaps_wholly_before_the_period_are_ignored() -> None:
    adopted = plan(local(2022, 1, 3, 10))
    held = [meeting(local(2022, m, 20, 10)) for m in range(6, 13)]
    result = plan_figures([adopted], [], held, H2, H2.end)
    # 3 Jan -> 20 Jun (168 days) is before H2; 20 Jun -> 20 Jul straddles; longest is 31
    assert (result.meetings_held, result.longest_gap_days, result.cadence_ok) == (6, 31, True)


def test_meeting_at_exactly_the_period_end_is_not_in_the_period() -> None:
    adopted = plan(local(2022, 6, 1, 10))
    result = plan_figures([adopted], [], [meeting(H1.end)], H1, H1.end)
    assert (result.meetings_held, result.longest_gap_days) == (0, 30)


@pytest.mark.parametrize(("dates", "period", "gap"), [
    ([date(2022, 1, 1), date(2022, 2, 12)], H1, 42),
    ([date(2022, 1, 1), date(2022, 2, 13)], H1, 43),
    # b on the start date is not after it; a on the end date is not before it
    ([date(2022, 5, 1), date(2022, 7, 1), date(2022, 7, 5)], H2, 4),
    ([date(2022, 6, 1), date(2022, 7, 1), date(2022, 9, 1)], H1, 30),
    ([date(2022, 7, 5), date(2022, 7, 5)], H2, 0),
    ([date(2022, 7, 1), date(2022, 7, 1)], H2, 0),  # nothing overlaps: 0
])
def test_longest_gap_days(dates: list[date], period: Period, gap: int) -> None:
    assert longest_gap_days(dates, period) == gap
    assert longest_gap_days(list(reversed(dates)), period) == gap


@pytest.mark.parametrize(("days", "ok"), [(42, True), (43, False)])
def test_cadence_limit_is_42_days(days: int, ok: bool) -> None:
    adopted = plan(local(2022, 2, 1, 10))
    result = plan_figures([adopted], [], [], H1, as_of(H1, local(2022, 2, 1, 12) + timedelta(days)))
    assert (result.longest_gap_days, result.cadence_ok) == (days, ok)


CHANGES = st.lists(
    st.builds(change, st.sampled_from(list(S)),
              st.datetimes(min_value=datetime(2021, 12, 1), max_value=datetime(2022, 7, 31),
                           timezones=st.just(LOCAL_TZ)),
              st.text(alphabet="abcdef", min_size=1, max_size=3)),
    max_size=10,
    unique_by=lambda c: c.event_id,  # event ids are unique, so the order is total
)


@given(CHANGES, st.randoms(use_true_random=False))
def test_order_of_milestone_history_does_not_matter(
    changes: list[StatusChange], rnd: random.Random,
) -> None:
    shuffled = list(changes)
    rnd.shuffle(shuffled)
    for cutoff in (H1.end, local(2022, 3, 27, 2, 30), local(2022, 1, 1)):
        assert milestone_status(changes, H1, cutoff) == milestone_status(shuffled, H1, cutoff)
    figures = plan_figures([PLAN], [history("m1", *changes)] if changes else [], [], H1, H1.end)
    reordered = plan_figures([PLAN], [history("m1", *shuffled)] if shuffled else [], [], H1,
                             H1.end)
    assert figures == reordered
