"""What an owning service tells reporting about how far it is with each municipality (1.1).

A period becomes final by watermark only once every owning service is past it too: it has
seen the municipality's events past the period end + grace, or it has nothing left for the
municipality (docs/contract.md). So every reporting record carries, for its entity's input
topic, the service's *progress* with the municipality as of that record (`StreamProgress`):

* `through`: up to which instant the municipality's events there have had their states
  published (the greatest `occurred_at` applied; the topic is taken in its order);
* `caught_up`: whether nothing was left for the municipality: no more of its states in the
  batch, and no records waiting on its partition after the batch (by the consumer's high
  watermark);
* `partition` and `offset`: the municipality's partition of the topic, and the offset before
  which the service had applied every record of it. Reporting compares the greatest offset
  said for the partition with its end offset *when it decides*, so a "caught up" said before
  new records arrived does not finalise a period those records may still change.

Within a batch only the municipality's last record says where the batch ends; its earlier
records still carry what held before the batch (not caught up), since reporting may read a
batch's records in two of its own batches. Before its first batch a stream has published
nothing: its earlier records then say "up to just before the batch's earliest event", which
is all the topic's order tells.

When nothing changed for a municipality, no state carries its progress; a
`reporting.progress` record of its own says it when needed:

* its partition caught up after the service said it was behind;
* a process takes a partition over (start, restart, rebalance): where it stands with every
  municipality known on it, so a backlog that built up meanwhile holds their periods;
* a batch has no valid event of a partition (dead letters only): one municipality known on
  it carries the partition's new offset, so reporting's offset check is not held for good.

What was said is kept per (municipality, topic) as a note in the service's store, written
before the batch's offsets are committed and read back by whoever takes the partition over;
a stored note only changes when `caught_up` (or the partition) does.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

#: (municipality code, input topic without prefix).
Stream = tuple[str, str]
#: (input topic without prefix, partition).
Where = tuple[str, int]
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Note:
    """What the service last said of a stream: its partition, `through`, `caught_up`, and
    the offset before which it had applied the partition."""

    partition: int
    through: datetime
    caught_up: bool
    offset: int


@dataclass
class Seen:
    """A stream's events in one batch: the partitions they came from, the earliest and the
    latest instant."""

    partitions: set[int]
    earliest: datetime
    latest: datetime


@dataclass
class Plan:
    """What a batch says about progress.

    `before`: what a stream's records carry before its last one in the batch; `after`: what
    its last record says; `alone`: announcements for streams without records in the batch;
    `changed`: the notes to store.
    """

    before: dict[Stream, Note] = field(default_factory=dict)
    after: dict[Stream, Note] = field(default_factory=dict)
    alone: dict[Stream, Note] = field(default_factory=dict)
    changed: dict[Stream, Note] = field(default_factory=dict)


def plan(notes: Mapping[Stream, Note], seen: Mapping[Stream, Seen], ends: Mapping[Where, int],
         waiting: Collection[Where], taken_over: Collection[Where]) -> Plan:
    """The progress a batch reports (pure).

    `notes`: what was said before, for the streams on the batch's partitions (at least);
    `seen`: the batch's streams; `ends`: per partition of the batch, the offset after its last
    record; `waiting`: the partitions on which records wait after it; `taken_over`: those this
    process had not read the notes of before.
    """
    out = Plan()
    for stream, events in seen.items():
        topic = stream[1]
        old = notes.get(stream)
        partition = max(events.partitions)
        if old is None:
            out.before[stream] = Note(partition, events.earliest - MICROSECOND, False, 0)
        else:
            out.before[stream] = Note(old.partition, old.through, False, old.offset)
        through = max(events.latest, out.before[stream].through)
        caught_up = not any((topic, p) in waiting for p in events.partitions)
        new = Note(partition, through, caught_up, ends[(topic, partition)])
        out.after[stream] = new
        if old is None or old.caught_up != caught_up or old.partition != partition:
            out.changed[stream] = new
    carried = {(stream[1], partition) for stream, events in seen.items() for partition in events.partitions}
    for stream, old in sorted(notes.items()):
        where = (stream[1], old.partition)
        if stream in seen or where not in ends:
            continue
        caught_up = where not in waiting
        if where in taken_over or (caught_up and not old.caught_up) or where not in carried:
            new = Note(old.partition, old.through, caught_up, ends[where])
            out.alone[stream] = new
            carried.add(where)
            if caught_up != old.caught_up:
                out.changed[stream] = new
    return out


class NoteStore(Protocol):
    """Where the notes are kept (`services.common.projection_store`)."""

    async def read_notes(self, partitions: Collection[Where]) -> dict[Stream, Note]: ...
    async def save_notes(self, changed: Mapping[Stream, Note]) -> None: ...


class ProgressLedger:
    """The notes of one owning service: in memory for the partitions this process has read
    them of since partitions last moved, and in the store."""

    def __init__(self, store: NoteStore) -> None:
        self.store = store
        self.notes: dict[Stream, Note] = {}
        self.recovered: set[Where] = set()

    def forget(self) -> None:
        """Partitions moved, or a batch failed: read the notes again when next needed."""
        self.notes.clear()
        self.recovered.clear()

    async def take_over(self, batch: Collection[Where]) -> set[Where]:
        """Read the notes of the batch's partitions not read since partitions last moved;
        returns those partitions."""
        new = set(batch) - self.recovered
        if new:
            self.notes.update(await self.store.read_notes(new))
            self.recovered |= new
        return new

    def plan(self, seen: Mapping[Stream, Seen], ends: Mapping[Where, int], waiting: Collection[Where],
             taken_over: Collection[Where]) -> Plan:
        """`plan` over the notes in memory, which then hold what the batch says."""
        out = plan(self.notes, seen, ends, waiting, taken_over)
        self.notes.update(out.after)
        self.notes.update(out.alone)
        return out

    async def save(self, changed: Mapping[Stream, Note]) -> None:
        await self.store.save_notes(changed)
