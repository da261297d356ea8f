"""The `notifications` figures (EVENTS.md definitions, DST-safe 24 hours)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.periods import LOCAL_TZ, Period, as_of
from schemas.reporting import NotificationState
from schemas.summary import NotificationFigures
from services.reporting.domain.notifications import notification_figures

pytestmark = pytest.mark.unit

H1 = Period(2022, 1)
END = H1.end


def local(*args: int) -> datetime:
    """A Europe/Copenhagen wall-clock time (same tzinfo object on purpose: naive
    subtraction of two such datetimes would give wall-clock, not real, hours)."""
    return datetime(*args, tzinfo=LOCAL_TZ)


def note(received: datetime | None, assessed: datetime | None = None, urgent: bool = False,
         nid: str | None = None) -> NotificationState:
    return NotificationState(
        notification_id=nid or f"n-{received}-{assessed}",
        received_at=received, urgent=urgent, assessed_at=assessed)


def figures(*notes: NotificationState, at: datetime = END,
            period: Period = H1) -> NotificationFigures:
    return notification_figures(list(notes), period, as_of(period, at))


@pytest.mark.parametrize(("received", "assessed", "within", "hours"), [
    # spring (27 March 2022): wall clock shows 24 h, really 23 h
    (local(2022, 3, 26, 13), local(2022, 3, 27, 13), 1, 23.0),
    # spring: wall clock shows 24.5 h (naively late), really 23.5 h
    (local(2022, 3, 26, 12), local(2022, 3, 27, 12, 30), 1, 23.5),
    # spring: wall clock shows 25 h, really exactly 24 h
    (local(2022, 3, 26, 11), local(2022, 3, 27, 12), 1, 24.0),
    # autumn (30 October 2022): wall clock shows 23 h, really exactly 24 h
    (local(2022, 10, 29, 12), local(2022, 10, 30, 11), 1, 24.0),
    # autumn: wall clock shows 24 h, really 25 h
    (local(2022, 10, 29, 11), local(2022, 10, 30, 11), 0, 25.0),
    # no DST change: exactly 86,400 s is within, one second more is not
    (local(2022, 2, 1, 9), local(2022, 2, 2, 9), 1, 24.0),
    (local(2022, 2, 1, 9), local(2022, 2, 2, 9, 0, 1), 0, 24.0),
])
def test_within_24h_counts_real_seconds(received: datetime, assessed: datetime, within: int,
                                        hours: float) -> None:
    period = Period.of(received)
    result = figures(note(received, assessed), period=period, at=period.end)
    assert (result.received, result.assessed, result.assessed_within_24h) == (1, 1, within)
    assert result.median_hours_to_assessment == hours
    assert result.share_within_24h == float(within)


def test_mixed_offsets_are_compared_as_instants() -> None:
    received = datetime.fromisoformat("2022-03-26T23:30:00+01:00")
    assessed = datetime.fromisoformat("2022-03-27T22:00:00Z")
    result = figures(note(received, assessed))
    assert result.assessed_within_24h == 1
    assert result.median_hours_to_assessment == 23.5


def test_assessed_after_the_period_still_counts_for_the_receipt_period() -> None:
    n = note(local(2022, 6, 30, 15), local(2022, 7, 1, 10))
    at_end = figures(n)
    assert (at_end.received, at_end.assessed, at_end.assessed_within_24h) == (1, 1, 1)
    assert at_end.overdue_unassessed == 0
    # not filtered by as_of either: an earlier watermark still sees the assessment
    early = figures(n, at=local(2022, 6, 30, 20))
    assert (early.received, early.assessed) == (1, 1)
    assert figures(n, period=H1.next()).received == 0


def test_receipt_at_exactly_the_period_end_belongs_to_the_next_period() -> None:
    n = note(local(2022, 7, 1), local(2022, 7, 1, 3))
    assert figures(n).received == 0
    assert figures(n, period=H1.next()).received == 1


def test_receipt_at_2230_utc_on_30_june_is_h2() -> None:
    n = note(datetime(2022, 6, 30, 22, 30, tzinfo=UTC))
    assert figures(n).received == 0
    assert figures(n, period=H1.next(), at=datetime(2022, 7, 2, tzinfo=UTC)).received == 1


def test_receipts_after_as_of_and_before_the_period_are_left_out() -> None:
    notes = [note(local(2021, 12, 31, 23)), note(local(2022, 3, 1, 12)),
             note(local(2022, 3, 1, 12, 0, 1))]
    assert figures(*notes, at=local(2022, 3, 1, 12)).received == 1


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    start = local(2022, 2, 1, 8)
    notes = [note(start, start + timedelta(hours=h), nid=f"n{h}") for h in (2, 3, 5, 10)]
    assert figures(*notes).median_hours_to_assessment == 4.0
    pair = [note(start, start + timedelta(hours=1), nid="a"),
            note(start, start + timedelta(hours=2), nid="b")]
    assert figures(*pair).median_hours_to_assessment == 1.5


def test_median_is_rounded_to_one_decimal() -> None:
    start = local(2022, 2, 1, 8)
    notes = [note(start, start + timedelta(minutes=m), nid=f"n{m}") for m in (100, 101, 500)]
    assert figures(*notes).median_hours_to_assessment == 1.7  # 101 min = 1.683 h


def test_overdue_unassessed_at_exactly_24_hours() -> None:
    notes = [note(local(2022, 3, 1, 10), nid="old"),
             note(local(2022, 3, 1, 10, 0, 1), nid="young"),
             note(local(2022, 2, 1, 10), local(2022, 2, 5, 10), nid="late-but-assessed")]
    result = figures(*notes, at=local(2022, 3, 2, 10))
    assert result.overdue_unassessed == 1
    assert (result.received, result.assessed, result.assessed_within_24h) == (3, 1, 0)
    assert result.share_within_24h == 0.0
    assert result.median_hours_to_assessment == 96.0


def test_counts_shares_and_urgent() -> None:
    base = local(2022, 4, 4, 9)
    notes = [note(base, base + timedelta(hours=2), urgent=True, nid="a"),
             note(base, base + timedelta(hours=30), nid="b"),
             note(base, base + timedelta(hours=20), urgent=True, nid="c")]
    result = figures(*notes)
    assert result.received == 3
    assert result.assessed_within_24h == 2
    assert result.share_within_24h == 0.67
    assert result.median_hours_to_assessment == 20.0
    assert result.urgent_received == 2


def test_nothing_received() -> None:
    only_assessed = note(None, local(2022, 2, 1, 10), nid="x")
    result = figures(only_assessed)
    assert (result.received, result.assessed, result.assessed_within_24h) == (0, 0, 0)
    assert result.share_within_24h == 0.0
    assert result.median_hours_to_assessment is None
    assert result.overdue_unassessed == 0


INSTANTS = st.datetimes(min_value=datetime(2021, 12, 20), max_value=datetime(2022, 7, 10),
                        timezones=st.just(LOCAL_TZ))
NOTES = st.lists(
    st.tuples(INSTANTS, st.none() | st.integers(min_value=0, max_value=72 * 3600),
              st.booleans()),
    max_size=12,
).map(lambda rows: [
    note(received, None if delay is None else received + timedelta(seconds=delay), urgent,
         nid=f"n{i}")
    for i, (received, delay, urgent) in enumerate(rows)])


@given(NOTES, st.randoms(use_true_random=False), INSTANTS)
def test_order_of_notifications_does_not_matter(
    notes: list[NotificationState], rnd: random.Random, at: datetime,
) -> None:
    shuffled = list(notes)
    rnd.shuffle(shuffled)
    assert figures(*notes, at=at) == figures(*shuffled, at=at)
