"""Which municipalities' summaries are owed a recomputation, and when to do it.

Every batch says which periods of which municipalities may have changed (`Touched`). While the
consumer is behind, recomputing them after every batch is wasted work: the next batch, already
waiting on the same partition, changes them again, and only the last of those summaries is
worth publishing. So while more records wait on a municipality's partition, what the batch
touched is merged into what is owed, and the summaries are recomputed once that partition is
caught up, after `max_delay` at the latest, or at once when a batch carries a command.

What is owed only in memory would be lost by a crash after the batch's offsets are committed,
so the processor stores a note per owed municipality (with its partition) before the commit,
and removes it after the summaries are published. A municipality is only owed while records
wait on its partition, so whoever owns that partition next applies at least one more batch
from it, and reads the notes of its partitions then (`SummaryProcessor._recover`).

Pure bookkeeping, no I/O: unit-tested in `tests/unit/reporting/test_reporting_owed.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services.reporting.domain.lifecycle import Move

#: A partition, as (topic, partition number); aiokafka's `TopicPartition` is one such tuple.
Partition = tuple[str, int]


@dataclass
class Touched:
    """What changed for one municipality: the periods to recompute (or all of them), the
    periods a command asks to finalise or republish, whether an owning service's progress
    changed (a draft past its grace may now be final) and the latest correlation id."""

    periods: set[str] = field(default_factory=set)
    everything: bool = False  # a course, plan, milestone or meeting changed: all periods
    final: set[str] = field(default_factory=set)
    republish: set[str] = field(default_factory=set)
    correlation_id: str | None = None
    progressed: bool = False
    #: The trace its summaries continue: the last record for it that carried one.
    trace: str | None = None

    def add(self, other: Touched) -> None:
        """Merge `other` (what a later batch touched) into this."""
        self.periods |= other.periods
        self.everything = self.everything or other.everything
        self.progressed = self.progressed or other.progressed
        self.final |= other.final
        self.republish |= other.republish
        if other.correlation_id is not None:
            self.correlation_id = other.correlation_id
        if other.trace is not None:
            self.trace = other.trace


def merge_moves(first: Move | None, second: Move | None) -> Move | None:
    """One move covering both: from the earlier `before` (None, the first watermark, is
    earliest) to the later `after`. Recomputing for a wider move is only more work, never
    wrong (see `domain.lifecycle.periods_to_recompute`)."""
    if first is None or second is None:
        return first or second
    before = None if first[0] is None or second[0] is None else min(first[0], second[0])
    return before, max(first[1], second[1])


@dataclass
class Owed:
    """What one municipality's summaries are owed."""

    touched: Touched
    move: Move | None
    partition: Partition | None  # where its events come from; None: unknown, never deferred
    since: float  # monotonic time it became owed
    noted: bool = False  # a note is in the store


class OwedSummaries:
    """The municipalities owed a recomputation, in memory."""

    def __init__(self, max_delay: float) -> None:
        self.max_delay = max_delay
        self.owed: dict[str, Owed] = {}

    def __len__(self) -> int:
        return len(self.owed)

    def __getitem__(self, code: str) -> Owed:
        return self.owed[code]

    def clear(self) -> None:
        self.owed.clear()

    def add(self, code: str, touched: Touched, move: Move | None, partition: Partition | None,
            now: float, noted: bool = False) -> None:
        owed = self.owed.get(code)
        if owed is None:
            self.owed[code] = Owed(Touched(), move, partition, now, noted)
            self.owed[code].touched.add(touched)
            return
        owed.touched.add(touched)
        owed.move = merge_moves(owed.move, move)
        owed.partition = partition if partition is not None else owed.partition
        owed.noted = owed.noted or noted

    def due(self, batch: set[Partition], waiting: set[Partition], now: float,
            everything: bool = False) -> dict[str, Owed]:
        """The municipalities to recompute now, after a batch from the partitions `batch`, of
        which records still wait on `waiting`. All of them when `everything` (a command) or
        when one has been owed for `max_delay`; else those whose partition is caught up (or
        unknown). One owed on a partition not in this batch stays owed: its records still wait,
        and a later batch brings them."""
        if everything or any(now - owed.since >= self.max_delay for owed in self.owed.values()):
            return dict(self.owed)
        return {code: owed for code, owed in self.owed.items()
                if owed.partition is None or (owed.partition in batch and owed.partition not in waiting)}

    def to_note(self, due: dict[str, Owed]) -> dict[str, Partition]:
        """The owed municipalities, not due now, whose note is not yet stored."""
        return {code: owed.partition for code, owed in self.owed.items()
                if code not in due and not owed.noted and owed.partition is not None}

    def mark_noted(self, codes: dict[str, Partition]) -> None:
        for code in codes:
            self.owed[code].noted = True

    def settle(self, codes: Iterable[str]) -> None:
        """Forget the recomputed municipalities (their stored notes are removed first). One
        already forgotten (partitions moved meanwhile) is skipped."""
        for code in codes:
            self.owed.pop(code, None)
