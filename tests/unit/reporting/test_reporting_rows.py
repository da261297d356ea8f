"""The compact rows the reporting service recomputes from: same periods, same figures.

The state-level figure functions are defined through the rows, so here the rows are checked
against the plain datetime definitions they replace (`Period.of`, `Period.contains`,
`visible`, `timedelta` durations) on arbitrary instants and offsets.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.periods import (
    LOCAL_TZ,
    Period,
    as_of,
    bounds_micros,
    micros,
    period_of_micros,
    utc,
    visible,
    visible_before,
)
from schemas.reporting import NotificationState
from schemas.summary import NotificationFigures
from services.reporting.domain.notifications import figures_of_rows
from services.reporting.domain.rows import NotificationRow

pytestmark = pytest.mark.unit

OFFSETS = st.sampled_from(
    [UTC, LOCAL_TZ, timezone(timedelta(hours=-11)), timezone(timedelta(hours=13, minutes=45))])
INSTANTS = st.datetimes(min_value=datetime(1901, 1, 2), max_value=datetime(2998, 12, 30), timezones=OFFSETS)
# Close to the interesting instants: period ends, DST changes, 24 hours after a receipt.
NEAR_2022 = st.datetimes(min_value=datetime(2021, 12, 25), max_value=datetime(2023, 1, 8), timezones=OFFSETS)


@given(INSTANTS)
def test_micros_is_exact_utc_microseconds(instant: datetime) -> None:
    # Compared in UTC: Python never calls an instant in a repeated (DST) hour equal to one
    # in another zone, even the same instant.
    assert datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros(instant)) == utc(instant)


def test_micros_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        micros(datetime(2022, 1, 1))


@given(INSTANTS)
def test_period_of_micros_is_period_of(instant: datetime) -> None:
    assert period_of_micros(micros(instant)) == Period.of(instant)


@pytest.mark.parametrize(
    "edge", ["2022-06-30T22:00:00+00:00", "2022-12-31T23:00:00+00:00", "2023-01-01T00:00:00+01:00"])
def test_period_of_micros_at_period_starts(edge: str) -> None:
    start = datetime.fromisoformat(edge)
    for instant in (start - timedelta(microseconds=1), start):
        assert period_of_micros(micros(instant)) == Period.of(instant)


def _visible_by_definition(instant: datetime, limit: datetime, period: Period) -> bool:
    """EVENTS.md's "state as of" spelled with datetimes: t <= as_of, except that at the
    period end an instant at it belongs to the next period."""
    if utc(limit) == utc(period.end):
        return utc(instant) < utc(limit)
    return utc(instant) <= utc(limit)


@given(NEAR_2022, NEAR_2022)
def test_visible_before_matches_visible_inside_the_period(instant: datetime, watermark: datetime) -> None:
    period = Period.of(instant)
    limit = as_of(period, watermark)
    start, end = bounds_micros(period)
    assert start <= micros(instant) < end
    assert (micros(instant) < visible_before(period, limit)) == visible(instant, limit, period)
    assert visible(instant, limit, period) == _visible_by_definition(instant, limit, period)


@given(NEAR_2022, NEAR_2022, st.sampled_from([Period(2021, 2), Period(2022, 1), Period(2022, 2)]))
def test_visible_is_the_definition_for_any_instant_and_as_of(instant: datetime, limit: datetime,
                                                             period: Period) -> None:
    assert visible(instant, limit, period) == _visible_by_definition(instant, limit, period)
    assert visible(instant, period.end, period) == _visible_by_definition(instant, period.end, period)


def _reference(states: list[NotificationState], period: Period, limit: datetime) -> NotificationFigures:
    """The figures straight from the datetime definitions (no rows): receipts in the period and
    visible as of `limit`; real elapsed time from receipt to assessment."""
    received = [n for n in states if n.received_at is not None and period.contains(n.received_at)
                and visible(n.received_at, limit, period)]
    durations = [utc(n.assessed_at) - utc(n.received_at)  # type: ignore[arg-type]
                 for n in received if n.assessed_at is not None]
    within = sum(1 for d in durations if d <= timedelta(hours=24))
    hours = [d.total_seconds() / 3600 for d in durations]
    return NotificationFigures(
        received=len(received),
        assessed=len(durations),
        assessed_within_24h=within,
        share_within_24h=round(within / len(received), 2) if received else 0.0,
        median_hours_to_assessment=round(statistics.median(hours), 1) if hours else None,
        overdue_unassessed=sum(1 for n in received if n.assessed_at is None
                               and n.received_at + timedelta(hours=24) <= limit),  # type: ignore[operator]
        urgent_received=sum(1 for n in received if n.urgent is True),
    )


NOTIFICATIONS = st.lists(
    st.builds(
        lambda i, received, delay, urgent: NotificationState(
            notification_id=f"n{i}", received_at=received, urgent=urgent,
            assessed_at=None if delay is None or received is None else received + delay),
        st.integers(0, 10_000),
        st.one_of(st.none(), NEAR_2022),
        st.one_of(st.none(), st.timedeltas(min_value=timedelta(hours=-1), max_value=timedelta(hours=60))),
        st.one_of(st.none(), st.booleans()),
    ),
    max_size=25,
)


@given(NOTIFICATIONS, st.sampled_from([Period(2022, 1), Period(2022, 2)]), NEAR_2022)
def test_figures_over_rows_equal_the_datetime_definitions(
    states: list[NotificationState], period: Period, watermark: datetime,
) -> None:
    limit = as_of(period, watermark)
    rows = [NotificationRow.of(s) for s in states]
    assert figures_of_rows(rows, period, limit) == _reference(states, period, limit)


@given(NOTIFICATIONS)
def test_a_row_is_placed_where_its_state_is(states: list[NotificationState]) -> None:
    for state in states:
        row = NotificationRow.of(state)
        placed = state.received_at or state.assessed_at
        assert (row.instant is None) == (placed is None)
        if placed is not None and row.instant is not None:
            assert period_of_micros(row.instant) == Period.of(placed)
