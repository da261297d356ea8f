"""The replica's row cache: bounded in bytes, least recently used out, and every bucket's rows
and tally kept as the writes leave them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.periods import Period, as_of, bounds_micros
from services.reporting.domain import notifications
from services.reporting.domain.rows import NotificationRow
from services.reporting.domain.tallies import NotificationTally
from services.reporting.row_cache import ROW_BYTES, RowCache

pytestmark = pytest.mark.unit

H1, H2 = Period(2022, 1), Period(2022, 2)
HOUR = 3_600_000_000
CLOSED = datetime(2023, 2, 1, tzinfo=UTC)  # both periods past their end


def row(period: Period, hours: int, assessed_after: int | None = 2) -> NotificationRow:
    received = bounds_micros(period)[0] + hours * HOUR
    assessed = None if assessed_after is None else received + assessed_after * HOUR
    return NotificationRow(received, assessed, False)


def key(period: Period, code: str = "480") -> tuple[str, str, str]:
    return ("notifications", code, period.name)


def test_beyond_its_bytes_the_least_recently_used_buckets_go() -> None:
    cache = RowCache(max_bytes=5 * ROW_BYTES)
    cache.put(key(H1, "101"), {f"a{i}": row(H1, i) for i in range(2)}, NotificationTally)
    cache.put(key(H1, "147"), {f"b{i}": row(H1, i) for i in range(2)}, NotificationTally)
    assert cache.get(key(H1, "101")) is not None  # now the most recently used
    cache.put(key(H1, "151"), {f"c{i}": row(H1, i) for i in range(2)}, NotificationTally)
    assert list(cache) == [key(H1, "101"), key(H1, "151")]
    assert cache.rows == 4


def test_a_bucket_larger_than_the_bound_is_kept_alone() -> None:
    cache = RowCache(max_bytes=ROW_BYTES)
    cache.put(key(H1, "101"), {"a": row(H1, 1)}, NotificationTally)
    cache.put(key(H1, "147"), {f"b{i}": row(H1, i) for i in range(3)}, NotificationTally)
    assert list(cache) == [key(H1, "147")] and cache.rows == 3


def test_a_row_moving_to_another_period_leaves_its_old_bucket_and_tally() -> None:
    cache = RowCache(max_bytes=1_000 * ROW_BYTES)
    h1 = cache.put(key(H1), {"n1": row(H1, 1), "n2": row(H1, 2, assessed_after=None)}, NotificationTally)
    h2 = cache.put(key(H2), {}, NotificationTally)
    cache.written(key(H2), "n1", row(H2, 5, assessed_after=30))  # its receipt was corrected
    cache.written(key(H1), "n2", row(H1, 2, assessed_after=1))  # assessed now
    assert set(h1.rows) == {"n2"} and set(h2.rows) == {"n1"} and cache.rows == 2
    for period, bucket in ((H1, h1), (H2, h2)):
        at = as_of(period, CLOSED)
        tally = bucket.tally
        assert isinstance(tally, NotificationTally)
        assert tally.figures(period, at) == notifications.figures_of_rows(bucket.rows.values(), period, at)


def test_a_write_to_a_bucket_not_in_memory_changes_nothing_cached() -> None:
    cache = RowCache(max_bytes=1_000 * ROW_BYTES)
    h1 = cache.put(key(H1), {"n1": row(H1, 1)}, NotificationTally)
    cache.written(key(H2), "n1", row(H2, 1))  # moved to a period not in memory: read when needed
    assert h1.rows == {} and cache.rows == 0
    cache.written(key(H1), "n1", row(H1, 3))  # and back
    assert set(h1.rows) == {"n1"} and cache.rows == 1
