"""Consumer lag per partition: records behind the partition's end, and seconds behind.

Bookkeeping only, no I/O: `LagWatch` tells `LagTracker` what it has consumed (each batch
once it is applied and published) and which end offsets it knows (the high watermark of the
consumer's last fetch, or the broker's end offsets), and `LagGauges` puts the result on
`/metrics`, dropping the partitions this process no longer owns.

Seconds behind is now minus the timestamp of the newest record consumed from the partition,
0 when nothing is behind. A record consumed long ago must not make a partition that was
caught up until a moment ago look hours behind, so the clock starts at whichever is later:
that record's timestamp, or the last time the partition was seen caught up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client import Gauge

#: A partition as (topic, number), the topic as the consumer names it (prefix included).
Partition = tuple[str, int]


class Record(Protocol):
    """What lag needs of a consumed record (aiokafka's `ConsumerRecord` has it)."""

    topic: str
    partition: int
    offset: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class Lag:
    """How far a partition is behind: records, and seconds (None: behind, but since when is
    not known, e.g. nothing consumed from it yet by this process)."""

    records: int
    seconds: float | None


@dataclass(slots=True)
class Progress:
    """What this process has consumed from one partition."""

    #: The offset after the newest record consumed (what its commit says).
    consumed: int
    #: That record's timestamp in seconds since the epoch; None when not known.
    newest_s: float | None = None
    #: When the partition was last seen with nothing behind (seconds since the epoch).
    caught_up_s: float | None = None


def newest_per_partition(records: Iterable[Record]) -> dict[Partition, tuple[int, int]]:
    """Per partition of a batch, (offset after its newest record, that record's timestamp
    in ms; -1 when the record has none)."""
    newest: dict[Partition, tuple[int, int]] = {}
    for record in records:
        key = (record.topic, record.partition)
        seen = newest.get(key)
        if seen is None or record.offset >= seen[0]:
            newest[key] = (record.offset + 1, record.timestamp)
    return newest


def records_behind(end: int | None, consumed: int) -> int:
    """Records between what was consumed and the partition's end (0 when the end is unknown:
    a partition never fetched from has shown no record to be behind on)."""
    return 0 if end is None else max(end - consumed, 0)


def seconds_behind(behind: int, newest_s: float | None, caught_up_s: float | None,
                   now_s: float) -> float | None:
    """Seconds a partition with `behind` records waiting is behind: 0 when none wait, else
    now minus the later of the newest consumed record's timestamp and the last time it was
    caught up; None when neither is known. Never negative (clocks differ)."""
    if behind <= 0:
        return 0.0
    since = max((t for t in (newest_s, caught_up_s) if t is not None), default=None)
    return None if since is None else max(now_s - since, 0.0)


class LagTracker:
    """Per partition, the consumed offset and the times lag is measured from."""

    def __init__(self) -> None:
        self._progress: dict[Partition, Progress] = {}

    def consumed(self, records: Iterable[Record]) -> list[Partition]:
        """Account for a batch that has been applied and published; returns its partitions."""
        partitions = []
        for key, (after, timestamp_ms) in newest_per_partition(records).items():
            newest_s = timestamp_ms / 1000 if timestamp_ms >= 0 else None
            known = self._progress.get(key)
            if known is None:
                self._progress[key] = Progress(after, newest_s)
            elif after >= known.consumed:
                known.consumed = after
                if newest_s is not None:
                    known.newest_s = newest_s
            partitions.append(key)
        return partitions

    def start(self, partition: Partition, consumed: int) -> None:
        """Where a partition stands before this process consumed from it (its committed
        offset); ignored once the partition's progress is known."""
        self._progress.setdefault(partition, Progress(consumed))

    def knows(self, partition: Partition) -> bool:
        return partition in self._progress

    def lag(self, partition: Partition, end: int | None, seen_s: float, now_s: float) -> Lag | None:
        """The partition's lag by an end offset observed at `seen_s`, as of `now_s`; None
        while its progress is not known (see `start`)."""
        progress = self._progress.get(partition)
        if progress is None:
            return None
        behind = records_behind(end, progress.consumed)
        if behind == 0 and end is not None:
            last = progress.caught_up_s
            progress.caught_up_s = seen_s if last is None else max(last, seen_s)
        return Lag(behind, seconds_behind(behind, progress.newest_s, progress.caught_up_s, now_s))

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop partitions this process gave up (after a rebalance another member moves them)."""
        for partition in partitions:
            self._progress.pop(partition, None)

    def retain(self, owned: Iterable[Partition]) -> None:
        """Keep only the partitions this process owns."""
        keep = set(owned)
        self.forget([p for p in self._progress if p not in keep])


class LagGauges:
    """The two lag gauges of one service, labelled (service, topic, partition)."""

    def __init__(self, records: Gauge, seconds: Gauge, service: str,
                 topic_label: Callable[[str], str] | None = None) -> None:
        self.records = records
        self.seconds = seconds
        self.service = service
        #: The topic as labelled (without the tenant prefix).
        self._topic_label = topic_label or (lambda topic: topic)
        self._shown: set[Partition] = set()
        self._timed: set[Partition] = set()

    def _labels(self, partition: Partition) -> tuple[str, str, str]:
        topic, number = partition
        return self.service, self._topic_label(topic), str(number)

    def show(self, lags: Mapping[Partition, Lag]) -> None:
        """Set the gauges of these partitions (a partition whose seconds are not known has
        no seconds sample)."""
        for partition, lag in lags.items():
            labels = self._labels(partition)
            self.records.labels(*labels).set(lag.records)
            self._shown.add(partition)
            if lag.seconds is not None:
                self.seconds.labels(*labels).set(lag.seconds)
                self._timed.add(partition)
            elif partition in self._timed:
                self.seconds.remove(*labels)
                self._timed.discard(partition)

    def retain(self, owned: Iterable[Partition]) -> list[Partition]:
        """Remove the samples of partitions not owned any more; returns them."""
        keep = set(owned)
        gone = sorted(p for p in self._shown | self._timed if p not in keep)
        self.forget(gone)
        return gone

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Remove the samples of these partitions (given up in a rebalance)."""
        for partition in partitions:
            labels = self._labels(partition)
            if partition in self._shown:
                self.records.remove(*labels)
            if partition in self._timed:
                self.seconds.remove(*labels)
            self._shown.discard(partition)
            self._timed.discard(partition)
