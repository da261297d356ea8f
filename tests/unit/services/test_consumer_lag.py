"""Consumer lag bookkeeping (services.common.lag): records and seconds behind, per partition."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.common.lag import (
    Lag,
    LagGauges,
    LagTracker,
    newest_per_partition,
    records_behind,
    seconds_behind,
)
from services.common.metrics import ServiceMetrics

pytestmark = pytest.mark.unit

T = "p.taskforce.notifications"


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: int


def batch(partition: int, offsets: range, at_ms: int = 1_000_000, topic: str = T) -> list[Rec]:
    return [Rec(topic, partition, o, at_ms + o) for o in offsets]


# ----------------------------------------------------------------------------- pure functions


def test_newest_per_partition_takes_each_partitions_last_offset() -> None:
    records = batch(0, range(5, 8)) + batch(1, range(0, 2)) + [Rec(T, 0, 3, 42)]
    assert newest_per_partition(records) == {(T, 0): (8, 1_000_007), (T, 1): (2, 1_000_001)}
    assert newest_per_partition([]) == {}


def test_records_behind() -> None:
    assert records_behind(10, 4) == 6
    assert records_behind(10, 10) == 0
    assert records_behind(3, 10) == 0  # a stale end never makes lag negative
    assert records_behind(None, 4) == 0  # never fetched: nothing known to be behind


def test_seconds_behind() -> None:
    assert seconds_behind(0, 100.0, None, 500.0) == 0.0  # caught up
    assert seconds_behind(5, 100.0, None, 500.0) == 400.0
    assert seconds_behind(5, 100.0, 450.0, 500.0) == 50.0  # caught up since the record: from then
    assert seconds_behind(5, None, 450.0, 500.0) == 50.0
    assert seconds_behind(5, None, None, 500.0) is None  # behind, since when is not known
    assert seconds_behind(5, 600.0, None, 500.0) == 0.0  # a producer clock ahead of ours


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_records_behind_is_never_negative_and_exact_when_ahead(end: int, consumed: int) -> None:
    behind = records_behind(end, consumed)
    assert behind >= 0
    assert behind == (end - consumed if end >= consumed else 0)


# ----------------------------------------------------------------------------- tracker


def test_tracker_unknown_partition_has_no_lag_until_started() -> None:
    tracker = LagTracker()
    assert tracker.lag((T, 0), 10, 0.0, 1.0) is None
    tracker.start((T, 0), 4)
    assert tracker.lag((T, 0), 10, 0.0, 1.0) == Lag(6, None)
    tracker.start((T, 0), 0)  # ignored once known
    assert tracker.lag((T, 0), 10, 0.0, 1.0) == Lag(6, None)


def test_tracker_batches_move_the_consumed_offset_and_the_newest_timestamp() -> None:
    tracker = LagTracker()
    assert tracker.consumed(batch(0, range(0, 10), at_ms=1_000_000)) == [(T, 0)]
    # 20 records at the end; the newest consumed (offset 9) was written at 1,000,009 ms.
    assert tracker.lag((T, 0), 20, 1_001.0, 1_010.0) == Lag(10, pytest.approx(1_010.0 - 1_000.009))
    tracker.consumed(batch(0, range(10, 20), at_ms=1_005_000))
    assert tracker.lag((T, 0), 20, 1_011.0, 1_012.0) == Lag(0, 0.0)


def test_tracker_start_does_not_undo_a_batch() -> None:
    tracker = LagTracker()
    tracker.consumed(batch(0, range(0, 10)))
    tracker.start((T, 0), 3)  # a committed offset read before the batch's commit
    assert tracker.lag((T, 0), 10, 0.0, 0.0) == Lag(0, 0.0)


def test_tracker_an_older_batch_does_not_move_back() -> None:
    tracker = LagTracker()
    tracker.consumed(batch(0, range(10, 20)))
    tracker.consumed(batch(0, range(0, 10)))
    assert tracker.lag((T, 0), 20, 0.0, 0.0) == Lag(0, 0.0)


def test_tracker_counts_seconds_from_when_it_was_last_caught_up() -> None:
    """An hour-old last record does not make a partition that was caught up a second ago an
    hour behind when a new record arrives."""
    tracker = LagTracker()
    tracker.consumed(batch(0, range(0, 5), at_ms=0))
    assert tracker.lag((T, 0), 5, 3_600.0, 3_600.0) == Lag(0, 0.0)  # caught up, seen at 3,600 s
    assert tracker.lag((T, 0), 6, 3_601.0, 3_601.5) == Lag(1, 1.5)
    # Stuck: the clock keeps running while the record waits.
    assert tracker.lag((T, 0), 6, 3_601.0, 3_700.0) == Lag(1, 100.0)


def test_tracker_caught_up_time_only_moves_forward() -> None:
    tracker = LagTracker()
    tracker.start((T, 0), 5)
    tracker.lag((T, 0), 5, 200.0, 200.0)
    tracker.lag((T, 0), 5, 100.0, 201.0)  # an end offset seen earlier, reported late
    assert tracker.lag((T, 0), 6, 100.0, 210.0) == Lag(1, 10.0)


def test_tracker_unknown_end_is_not_caught_up() -> None:
    tracker = LagTracker()
    tracker.start((T, 0), 0)
    assert tracker.lag((T, 0), None, 100.0, 100.0) == Lag(0, 0.0)
    assert tracker.lag((T, 0), 3, 150.0, 160.0) == Lag(3, None)  # no caught-up time came of it


def test_tracker_records_without_timestamp() -> None:
    tracker = LagTracker()
    tracker.consumed([Rec(T, 0, 0, -1)])
    assert tracker.lag((T, 0), 2, 0.0, 10.0) == Lag(1, None)


def test_tracker_forget_and_retain() -> None:
    tracker = LagTracker()
    for partition in range(3):
        tracker.consumed(batch(partition, range(0, 2)))
    tracker.forget([(T, 0)])
    assert not tracker.knows((T, 0))
    tracker.retain([(T, 1)])
    assert tracker.knows((T, 1)) and not tracker.knows((T, 2))


# ----------------------------------------------------------------------------- gauges


def samples(metrics: ServiceMetrics) -> dict[tuple[str, str, str], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        if family.name.startswith("taskforce_consumer_lag"):
            for s in family.samples:
                out[(s.name, s.labels["topic"], s.labels["partition"])] = s.value
    return out


def test_gauges_show_both_values_with_the_topic_unprefixed() -> None:
    metrics = ServiceMetrics("intake", CollectorRegistry())
    gauges = LagGauges(metrics.lag, metrics.lag_seconds, "intake", lambda t: t.removeprefix("p."))
    gauges.show({(T, 0): Lag(7, 12.5), (T, 1): Lag(0, 0.0), (T, 2): Lag(3, None)})
    topic = "taskforce.notifications"
    assert samples(metrics) == {
        ("taskforce_consumer_lag", topic, "0"): 7, ("taskforce_consumer_lag_seconds", topic, "0"): 12.5,
        ("taskforce_consumer_lag", topic, "1"): 0, ("taskforce_consumer_lag_seconds", topic, "1"): 0,
        ("taskforce_consumer_lag", topic, "2"): 3,  # seconds not known: no sample
    }
    text = generate_latest(metrics.registry).decode()
    assert 'service="intake"' in text


def test_gauges_drop_partitions_given_up() -> None:
    metrics = ServiceMetrics("intake", CollectorRegistry())
    gauges = LagGauges(metrics.lag, metrics.lag_seconds, "intake")
    gauges.show({(T, p): Lag(p, float(p)) for p in range(4)})
    assert gauges.retain([(T, 1), (T, 2)]) == [(T, 0), (T, 3)]
    assert {(name, part) for name, _topic, part in samples(metrics)} == {
        (n, p) for n in ("taskforce_consumer_lag", "taskforce_consumer_lag_seconds") for p in ("1", "2")}
    gauges.forget([(T, 1)])
    gauges.forget([(T, 1), (T, 9)])  # forgetting twice, or what was never shown, is harmless
    assert {part for _n, _t, part in samples(metrics)} == {"2"}
    assert gauges.retain([]) == [(T, 2)]
    assert samples(metrics) == {}


def test_gauges_drop_seconds_that_became_unknown() -> None:
    metrics = ServiceMetrics("intake", CollectorRegistry())
    gauges = LagGauges(metrics.lag, metrics.lag_seconds, "intake")
    gauges.show({(T, 0): Lag(2, 5.0)})
    gauges.show({(T, 0): Lag(2, None)})
    assert samples(metrics) == {("taskforce_consumer_lag", T, "0"): 2}
