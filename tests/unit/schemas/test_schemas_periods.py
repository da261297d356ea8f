"""Periods, as_of and "the state as of T" (EVENTS.md, "Periods")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.periods import (
    LOCAL_TZ,
    Period,
    as_of,
    local_date,
    micros,
    utc,
    visible,
)

pytestmark = pytest.mark.unit

H1 = Period(2022, 1)
H2 = Period(2022, 2)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_name_and_parse_round_trip() -> None:
    assert H1.name == "2022H1"
    assert str(H2) == "2022H2"
    assert Period.parse("2022H2") == H2


@pytest.mark.parametrize("name", ["2022H3", "2022h1", "22H1", "2022H1 ", "2022-H1", ""])
def test_parse_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        Period.parse(name)


def test_bounds_in_local_time_with_offsets() -> None:
    assert H1.start.isoformat() == "2022-01-01T00:00:00+01:00"
    assert H1.end.isoformat() == "2022-07-01T00:00:00+02:00"
    assert H2.start.isoformat() == "2022-07-01T00:00:00+02:00"
    assert H2.end.isoformat() == "2023-01-01T00:00:00+01:00"
    assert (H1.start_date, H1.end_date) == (date(2022, 1, 1), date(2022, 7, 1))
    assert (H2.start_date, H2.end_date) == (date(2022, 7, 1), date(2023, 1, 1))


def test_previous_next_and_ordering() -> None:
    assert H1.next() == H2
    assert H2.next() == Period(2023, 1)
    assert H1.previous() == Period(2021, 2)
    assert H2.previous() == H1
    assert sorted([Period(2023, 1), H2, Period(2021, 2), H1]) == [
        Period(2021, 2), H1, H2, Period(2023, 1)]


def test_a_utc_instant_late_on_30_june_is_already_h2() -> None:
    assert Period.of(at("2022-06-30T22:30:00Z")) == H2
    assert Period.of(at("2022-06-30T21:59:59Z")) == H1
    assert Period.of(at("2022-12-31T23:00:00Z")) == Period(2023, 1)
    assert local_date(at("2022-06-30T22:30:00Z")) == date(2022, 7, 1)


def test_as_of_is_the_period_end_once_the_watermark_passes_it() -> None:
    assert as_of(H1, at("2022-08-01T12:00:00Z")).isoformat() == "2022-07-01T00:00:00+02:00"
    assert as_of(H1, at("2022-06-30T22:00:00Z")).isoformat() == "2022-07-01T00:00:00+02:00"


def test_as_of_is_the_watermark_in_local_time_before_the_end() -> None:
    assert as_of(H1, at("2022-03-01T08:30:00Z")).isoformat() == "2022-03-01T09:30:00+01:00"
    assert as_of(H1, at("2022-06-01T12:00:00-04:00")).isoformat() == "2022-06-01T18:00:00+02:00"


def test_an_event_at_exactly_the_period_end_is_left_out() -> None:
    end = H1.end
    assert not visible(at("2022-06-30T22:00:00Z"), as_of(H1, end), H1)
    assert visible(at("2022-06-30T21:59:59.999999Z"), as_of(H1, end), H1)


def test_an_event_at_exactly_an_earlier_as_of_is_included() -> None:
    cutoff = as_of(H1, at("2022-03-01T12:00:00+01:00"))
    assert visible(at("2022-03-01T11:00:00Z"), cutoff, H1)
    assert not visible(at("2022-03-01T11:00:00.000001Z"), cutoff, H1)
    assert visible(at("2021-03-01T11:00:00Z"), cutoff, H1)
    assert not visible(None, cutoff, H1)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        Period.of(datetime(2022, 1, 1))


OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
ZONES = st.sampled_from([UTC, LOCAL_TZ] + [
    ZoneInfo(name)
    for name in ("America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Australia/Sydney")])


@given(st.datetimes(min_value=datetime(1971, 1, 2), max_value=datetime(2199, 12, 30),
                    timezones=st.one_of(OFFSETS, ZONES)))
def test_period_of_contains_the_instant(instant: datetime) -> None:
    period = Period.of(instant)
    assert utc(period.start) <= utc(instant) < utc(period.end)
    assert period.contains(instant)
    assert not period.next().contains(instant)
    assert not period.previous().contains(instant)
    assert Period.parse(period.name) == period
    assert period.next().previous() == period


_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-11, minutes=-30)), timezone(timedelta(hours=14)),
                          ZoneInfo("Europe/Copenhagen")])


@given(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2999, 12, 30), timezones=_ZONES))
def test_micros_is_the_floored_microseconds_since_the_epoch(instant: datetime) -> None:
    """Before 1970 too, where a timedelta's days are negative and its seconds are not."""
    assert micros(instant) == (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
