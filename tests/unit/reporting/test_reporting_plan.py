"""The `development_plan` figures: milestones, overdue, meetings and cadence."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from schemas.events import MilestoneStatus
from schemas.periods import LOCAL_TZ, Period, as_of, local_date
from schemas.reporting import (
    MeetingState,
    MilestoneState,
    PlannedMilestone,
    PlanState,
    StatusChange,
)
from services.reporting.domain.plan import (
    NO_PLAN,
    cadence_gap,
    current_plan,
    longest_gap_days,
    milestone_status,
    plan_figures,
    plans_that_count,
)
from services.reporting.domain.rows import meeting_days

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


# --- 1.1: the cadence ends with the course ------------------------------------------------

H23_2 = Period(2023, 2)
LONG_PLAN = plan(local(2020, 10, 1, 10))
LONG_MEETINGS = [meeting(local(2020, 11, 5, 10)), meeting(local(2021, 12, 20, 10)),
                 meeting(local(2022, 2, 10, 10))]
FEB_2022 = local(2022, 2, 15, 15)


def cadence(result: object) -> tuple[int | None, bool | None]:
    return result.longest_gap_days, result.cadence_ok  # type: ignore[attr-defined]


def test_a_course_that_ended_long_ago_is_not_behind() -> None:
    # Before 1.1: 10 Feb 2022 -> 1 Jan 2024 (the local date of as_of) made 690 days.
    assert cadence(plan_figures([LONG_PLAN], [], LONG_MEETINGS, H23_2, H23_2.end)) == (690, False)
    ended = plan_figures([LONG_PLAN], [], LONG_MEETINGS, H23_2, H23_2.end, FEB_2022)
    assert cadence(ended) == (None, None)
    # Only the cadence figures: the other plan figures are as before.
    assert ended.milestones_total == 1 and ended.meetings_held == 0
    # Every period whose first day is after 15 Feb 2022 is null, 2022H2 included.
    assert cadence(plan_figures([LONG_PLAN], [], LONG_MEETINGS, H2, H2.end, FEB_2022)) == (None, None)


def test_in_the_period_it_ends_in_the_spans_stop_at_the_completion_date() -> None:
    # 20 Dec 2021, 10 Feb, 15 Feb (completion): 52 and 5 days; not 10 Feb -> 1 Jul (141)
    assert cadence(plan_figures([LONG_PLAN], [], LONG_MEETINGS, H1, H1.end)) == (141, False)
    assert cadence(plan_figures([LONG_PLAN], [], LONG_MEETINGS, H1, H1.end, FEB_2022)) == (52, False)


def test_a_completion_after_as_of_changes_nothing() -> None:
    as_of_ = as_of(H1, local(2022, 2, 15, 14))
    running = plan_figures([LONG_PLAN], [], LONG_MEETINGS, H1, as_of_)
    assert plan_figures([LONG_PLAN], [], LONG_MEETINGS, H1, as_of_, FEB_2022) == running
    assert cadence(running) == (52, False)


def test_completion_exactly_at_as_of_counts() -> None:
    held = [meeting(local(2022, 3, 1, 10)), meeting(local(2022, 4, 20, 10))]
    adopted = plan(local(2022, 2, 1, 10))
    done = local(2022, 4, 20, 15)
    at = as_of(H1, done)
    assert at == done
    # as of the completion the list ends on its date either way: 28, 50
    assert cadence(plan_figures([adopted], [], held, H1, at, done)) == (50, False)
    # ... and the course is not behind in the next period, however late the watermark
    assert cadence(plan_figures([adopted], [], held, H2, H2.end, done)) == (None, None)


def test_completion_at_exactly_the_period_end_belongs_to_the_next_period() -> None:
    adopted = plan(local(2022, 5, 1, 10))
    held = [meeting(local(2022, 6, 10, 10)), meeting(local(2022, 8, 1, 10))]
    # H1: not completed as of its end, so the list runs to 1 July (40, 21)
    assert cadence(plan_figures([adopted], [], held, H1, H1.end, H1.end)) == (40, True)
    # H2: completed on its first day, which is not after the completion date: computed,
    # and every span ends on or before 1 July, so none overlaps H2 (0, like any such period)
    assert cadence(plan_figures([adopted], [], held, H2, H2.end, H1.end)) == (0, True)


def test_completion_on_the_first_day_cuts_the_span_straddling_into_the_period() -> None:
    adopted = plan(local(2022, 5, 1, 10))
    held = [meeting(local(2022, 6, 10, 10)), meeting(local(2022, 9, 1, 10))]
    done = local(2022, 7, 1, 12)
    assert cadence(plan_figures([adopted], [], held, H2, H2.end, done)) == (0, True)
    # had the course run on: 10 Jun -> 1 Sep (83) straddles H2, 1 Sep -> 1 Jan is 122
    assert cadence(plan_figures([adopted], [], held, H2, H2.end)) == (122, False)


def test_a_meeting_on_the_completion_date_is_kept_and_later_ones_are_left_out() -> None:
    adopted = plan(local(2022, 1, 3, 10))
    held = [meeting(local(2022, m, d, h)) for m, d, h in
            [(2, 1, 10), (3, 10, 10), (4, 15, 17), (6, 30, 10)]]
    done = local(2022, 4, 15, 14)  # the 15 April meeting is later that day: kept
    # 3 Jan, 1 Feb, 10 Mar, 15 Apr (meeting and completion): 29, 37, 36, 0
    result = plan_figures([adopted], [], held, H1, H1.end, done)
    assert cadence(result) == (37, True)
    assert result.meetings_held == 4  # meetings_held is not cut at the completion
    # without the completion, 15 Apr -> 30 Jun (76 days) would break the cadence
    assert cadence(plan_figures([adopted], [], held, H1, H1.end)) == (76, False)
    assert cadence_gap(date(2022, 1, 3), [date(2022, 4, 15)], date(2022, 6, 30), H1,
                       date(2022, 4, 15)) == 102


def test_a_plan_adopted_after_the_completion_has_no_span() -> None:
    adopted = plan(local(2022, 4, 1, 10))
    done = local(2022, 3, 1, 10)
    # the adoption is after the end of the list, like a meeting after it: no span, 0
    assert cadence(plan_figures([adopted], [], [meeting(local(2022, 5, 1))], H1, H1.end,
                                done)) == (0, True)
    assert cadence(plan_figures([adopted], [], [], H2, H2.end, done)) == (None, None)


@pytest.mark.parametrize(("completed_on", "gap"), [
    (None, 61),                  # 1 May -> 1 Jul (today)
    (date(2022, 6, 30), 60),     # ends the day before today
    (date(2022, 1, 1), 0),       # the period's first day: not after it, computed, no span
    (date(2021, 12, 31), None),  # the period starts after it
])
def test_cadence_gap(completed_on: date | None, gap: int | None) -> None:
    assert cadence_gap(date(2022, 5, 1), [], date(2022, 7, 1), H1, completed_on) == gap


PERIODS = st.sampled_from([Period(2021, 2), H1, H2, Period(2023, 1), H23_2])


def around(period: Period, first_day: int, last_day: int) -> st.SearchStrategy[datetime]:
    """Instants from `first_day` to `last_day` days after the period's start, local time."""
    start = period.start.astimezone(UTC)
    return st.integers(first_day * 86_400, last_day * 86_400).map(
        lambda s: (start + timedelta(seconds=s)).astimezone(LOCAL_TZ))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[datetime, list[datetime], datetime | None, datetime,
                                        Period]:
    """A plan adoption, meetings, maybe a completion and a watermark around one period."""
    period = draw(PERIODS)
    return (draw(around(period, -400, 120)), draw(st.lists(around(period, -400, 250), max_size=8)),
            draw(st.none() | around(period, -120, 200)), draw(around(period, 0, 400)), period)


@settings(max_examples=200)
@given(scenarios())
def test_the_cadence_never_runs_past_the_completion(
    scenario: tuple[datetime, list[datetime], datetime | None, datetime, Period],
) -> None:
    adopted_at, held_at, done, watermark, period = scenario
    adopted = plan(adopted_at)
    held = [meeting(t) for t in held_at]
    at = as_of(period, watermark)
    result = plan_figures([adopted], [], held, period, at, done)
    if result == NO_PLAN:
        event("no plan as of as_of")
        return
    completed = done is not None and (done < at if at == period.end else done <= at)
    if not completed:
        event("running as of as_of")
        # no completion as of as_of: the contract's list up to the local date of as_of
        visible = [m.held_on for m in held
                   if (m.held_at < at if at == period.end else m.held_at <= at)]
        expected = longest_gap_days([adopted.adopted_on, *visible, local_date(at)], period)
        assert result.longest_gap_days == expected
        return
    assert done is not None
    ended_on = local_date(done)
    if period.start_date > ended_on:
        event("ended before the period")
        assert cadence(result) == (None, None)
        return
    event("ended in the period")
    assert result.longest_gap_days is not None
    assert result.cadence_ok == (result.longest_gap_days <= 42)
    # meetings after the completion date change nothing ...
    later = [meeting(datetime.combine(ended_on + timedelta(days=k), datetime.min.time(),
                                      LOCAL_TZ) + timedelta(hours=10)) for k in (1, 30, 90)]
    assert cadence(plan_figures([adopted], [], held + later, period, at, done)) == cadence(result)
    # ... nor does the watermark moving on once the course has ended
    assert cadence(plan_figures([adopted], [], held, period, period.end, done)) == cadence(result)
    # and no counted span reaches past the completion date
    first = min([adopted.adopted_on, *(m.held_on for m in held)])
    assert result.longest_gap_days <= max(0, (ended_on - first).days)


# --- meetings kept per plan and day --------------------------------------------------------

_MEETING_TIMES = st.builds(lambda day, minute: local(2022, 1, 1) + timedelta(days=day, minutes=minute),
                           st.integers(0, 400), st.integers(0, 24 * 60 - 1))


@settings(max_examples=150, deadline=None)
@given(times=st.lists(_MEETING_TIMES, max_size=40),
       plans=st.lists(st.sampled_from(["p-1", "p-2"]), max_size=40),
       period=st.sampled_from([H1, H2, Period(2023, 1)]), at_end=st.booleans())
def test_meetings_per_day_give_the_figures_of_the_meetings(
    times: list[datetime], plans: list[str], period: Period, at_end: bool,
) -> None:
    """Whether memory keeps every meeting or one (plan, day) with a count, the figures are the
    same, as of a period's end or of a watermark no meeting is after (as the service runs)."""
    meetings = [meeting(t, plan_id) for t, plan_id in zip(times, plans + ["p-1"] * len(times), strict=False)]
    watermark = max([local(2022, 1, 10, 10), *times])
    moment = period.end if at_end else as_of(period, watermark)
    days = list(meeting_days(meetings).values())
    assert sum(day.count for day in days) == len(meetings)
    by_day = plan_figures([PLAN], [], days, period, moment)
    assert by_day == plan_figures([PLAN], [], meetings, period, moment)


_ADOPTIONS = st.builds(lambda day, minute: local(2021, 11, 1) + timedelta(days=day, minutes=minute),
                       st.integers(0, 500), st.sampled_from([0, 1, 600]))


@settings(max_examples=150, deadline=None)
@given(adopted=st.lists(st.tuples(_ADOPTIONS, st.sampled_from(["p-1", "p-2", "p-3", "p-4"])),
                        max_size=12),
       period=st.sampled_from([H1, H2, Period(2023, 1)]), at_end=st.booleans())
def test_only_each_half_years_last_plan_can_be_current(
    adopted: list[tuple[datetime, str]], period: Period, at_end: bool,
) -> None:
    """Keeping only each half-year's last adopted plan picks the same plan, as of a period's
    end or of a watermark no adoption is after."""
    plans = [plan(at, plan_id) for at, plan_id in adopted]
    watermark = max([local(2021, 11, 1), *(at for at, _ in adopted)])
    moment = period.end if at_end else as_of(period, watermark)
    kept = list(plans_that_count(plans).values())
    assert len(kept) <= len({Period.of(p.adopted_at) for p in plans})
    assert current_plan(kept, period, moment) == current_plan(plans, period, moment)
