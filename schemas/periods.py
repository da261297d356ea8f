"""Half-year periods in Europe/Copenhagen local time, `as_of` and "the state as of T".

Part of the contract (docs/contract.md, "Periods, watermark, finalisation"): the reporting
service computes its summaries over them, and the CLI and the benchmark name them.

Aware datetimes are always compared and subtracted in UTC: Python compares two datetimes
that share a `tzinfo` object by wall-clock time, which is wrong around DST changes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Europe/Copenhagen")

_NAME = re.compile(r"^(\d{4})H([12])$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def utc(instant: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime: {instant!r}")
    return instant.astimezone(UTC)


def micros(instant: datetime) -> int:
    """An aware instant as whole microseconds since the Unix epoch: exact, and cheap to
    compare when a half-year's worth of instants is filtered again and again."""
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime: {instant!r}")
    since = instant - EPOCH  # aware arithmetic is UTC arithmetic
    # `since // MICROSECOND`, spelled with the fields: a third cheaper, and as exact (a
    # timedelta keeps its seconds and microseconds non-negative, so this floors too).
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def local(instant: datetime) -> datetime:
    """The same instant in Europe/Copenhagen, with its offset."""
    return utc(instant).astimezone(LOCAL_TZ)


def local_date(instant: datetime) -> date:
    """The Europe/Copenhagen calendar date of an instant."""
    return local(instant).date()


@dataclass(frozen=True, order=True)
class Period:
    """A half-year: H1 = 1 Jan to 1 Jul, H2 = 1 Jul to 1 Jan, local time."""

    year: int
    half: int

    def __post_init__(self) -> None:
        if self.half not in (1, 2) or not 1 <= self.year <= 9999:
            raise ValueError(f"invalid period: {self.year}H{self.half}")

    @classmethod
    def parse(cls, name: str) -> Period:
        match = _NAME.match(name)
        if match is None:
            raise ValueError(f"invalid period name: {name!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, instant: datetime) -> Period:
        """The period containing an aware instant."""
        here = local(instant)
        return cls(here.year, 1 if here.month <= 6 else 2)

    @functools.cached_property
    def name(self) -> str:
        """`2024H1`; spelled once per period (`period_of_micros` hands out shared instances, and
        every replicated state asks its period's name)."""
        return f"{self.year:04d}H{self.half}"

    def __str__(self) -> str:
        return self.name

    @property
    def start_date(self) -> date:
        return date(self.year, 1 if self.half == 1 else 7, 1)

    @property
    def end_date(self) -> date:
        """The first local date *after* the period (exclusive end)."""
        return self.next().start_date

    @property
    def start(self) -> datetime:
        return _local_start(self.year, self.half)

    @property
    def end(self) -> datetime:
        """Exclusive end: the start of the next period."""
        return self.next().start

    def next(self) -> Period:
        return Period(self.year, 2) if self.half == 1 else Period(self.year + 1, 1)

    def previous(self) -> Period:
        return Period(self.year, 1) if self.half == 2 else Period(self.year - 1, 2)

    def contains(self, instant: datetime) -> bool:
        start, end = _utc_bounds(self.year, self.half)
        return start <= utc(instant) < end


# Period bounds are asked for per event when a half-year is recomputed: build each once.
@functools.lru_cache(maxsize=512)
def _local_start(year: int, half: int) -> datetime:
    return datetime(year, 1 if half == 1 else 7, 1, tzinfo=LOCAL_TZ)


@functools.lru_cache(maxsize=512)
def _utc_bounds(year: int, half: int) -> tuple[datetime, datetime]:
    period = Period(year, half)
    return utc(period.start), utc(period.end)


@functools.lru_cache(maxsize=512)
def bounds_micros(period: Period) -> tuple[int, int]:
    """The period's [start, end) in `micros`."""
    start, end = _utc_bounds(period.year, period.half)
    return micros(start), micros(end)


def visible_before(period: Period, as_of: datetime) -> int:
    """The exclusive upper bound, in `micros`, of the instants visible as of `as_of` for the
    period: `visible(t, as_of, period)` ⇔ `micros(t)` < this bound. That is t <= as_of, except
    that when as_of is the period end an instant at it belongs to the next period.

    Computed once per summary, so that filtering its instants is an integer comparison each.
    """
    moment, end = micros(as_of), bounds_micros(period)[1]
    return end if moment == end else moment + 1


_AVERAGE_YEAR = timedelta(days=365.2425) // MICROSECOND


@functools.lru_cache(maxsize=1024)
def _period(year: int, half: int) -> Period:
    return Period(year, half)


@functools.lru_cache(maxsize=512)
def _half_starts(year: int) -> tuple[int, int]:
    """`micros` of local 1 January and 1 July of `year`."""
    return micros(_local_start(year, 1)), micros(_local_start(year, 2))


def period_of_micros(moment: int) -> Period:
    """`Period.of` for an instant in `micros`, without a time-zone conversion per call."""
    year = 1970 + moment // _AVERAGE_YEAR
    while moment < _half_starts(year)[0]:
        year -= 1
    while moment >= _half_starts(year + 1)[0]:
        year += 1
    return _period(year, 1 if moment < _half_starts(year)[1] else 2)


def as_of(period: Period, watermark: datetime) -> datetime:
    """min(period end, watermark), written in Europe/Copenhagen with its offset."""
    return local(min(utc(period.end), utc(watermark)))


def visible(instant: datetime | None, as_of: datetime, period: Period) -> bool:
    """Whether an event at `instant` is part of "the state as of `as_of`" for `period`.

    Events with occurred_at <= as_of count, except that when as_of is the period end an
    event at exactly that instant belongs to the next period and is left out. An unknown
    instant (None) is never visible.
    """
    return instant is not None and micros(instant) < visible_before(period, as_of)
