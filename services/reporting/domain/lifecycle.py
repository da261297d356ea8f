"""When to publish a summary, and with which status and revision.

draft -> final once the watermark passes the period end plus a grace (or on request);
after that, only a change of figures publishes again, as `revised` with revision + 1.

(1.1) By watermark only once every owning service is past the period too: on each of the
four input topics the municipality's events have been seen past the end plus the grace, or
the service that owns the topic has nothing left for the municipality there (`held_by`).
A fast service's watermark alone would finalise a period that a slower one is still
delivering, and every such event would then revise it.

"Nothing left" is what the service said last (`caught_up`), checked against the broker when
deciding: the partition's end offset must not be past the offset the service has said it
applied, so a "caught up" said before new records arrived does not count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas import topics
from schemas.periods import Period, utc
from schemas.rules import DEFAULT_GRACE
from schemas.summary import SummaryStatus

#: The input topics whose owning services a period waits for.
INPUT_TOPICS: tuple[str, ...] = topics.INPUT_TOPICS


@dataclass(frozen=True)
class Published:
    """What was last published for a period."""

    status: SummaryStatus
    revision: int


@dataclass(frozen=True)
class Decision:
    """What to publish now."""

    status: SummaryStatus
    revision: int


def grace_passed(watermark: datetime, period: Period, grace: timedelta = DEFAULT_GRACE) -> bool:
    """The watermark is strictly past the period end plus the grace (in real time)."""
    return utc(watermark) > utc(period.end) + grace


def is_open(published: Published | None) -> bool:
    """Not final yet: never published, or a draft."""
    return published is None or published.status == SummaryStatus.DRAFT


def waits_for_holds(published: Published | None, watermark: datetime, period: Period,
                    grace: timedelta, final_requested: bool) -> bool:
    """Whether finalising the period now depends on the owning services' progress (`held_by`):
    it is open, past its grace by the watermark, and no request finalises it anyway."""
    return is_open(published) and not final_requested and grace_passed(watermark, period, grace)


def finalisable_by_progress(known: Iterable[Period], published: Mapping[str, Published],
                            watermark: datetime, grace: timedelta) -> set[Period]:
    """The periods an owning service's progress may finalise though no figure changed: open
    and past their grace by the watermark (recompute them when progress moves)."""
    return {period for period in known
            if is_open(published.get(period.name)) and grace_passed(watermark, period, grace)}


#: How a municipality's watermark moved: (before, after); before is None for its first.
Move = tuple[datetime | None, datetime]


def periods_to_recompute(known: Collection[Period], named: Collection[str], *, everything: bool,
                         move: Move | None, grace: timedelta,
                         also: Collection[Period] = ()) -> list[Period]:
    """The periods whose summary may differ now, oldest first.

    `named`: periods a batch's states or commands touched; `everything`: a change that reaches
    every period (a course, plan, milestone or meeting); `move`: how the watermark moved, if it
    did (from None: there was none), which changes `as_of` of every period whose end plus
    the grace is not before the old watermark (and may pass its grace); `also`: periods to
    recompute besides. A recomputed period also recomputes the next one, whose highlights
    compare with it (and only the next: its figures stay, so the one after it need not follow).
    Recomputing more would only be more work, never a wrong summary.
    """
    dirty: set[Period] = set(also)
    def as_of_moves(period: Period) -> bool:  # or its grace may just have passed
        return move is not None and (move[0] is None or utc(period.end) + grace >= utc(move[0]))

    for period in known:
        if everything or period.name in named or as_of_moves(period):
            dirty.add(period)
    # The next period's highlights compare with a recomputed period's figures; its own figures
    # do not change by that, so the one after it need not follow (no cascade to the newest).
    following = {period for period in known if period.previous() in dirty}
    return sorted(dirty | following)


@dataclass(frozen=True)
class Progress:
    """What the owning service of one input topic last said of one municipality's events
    there: up to which instant their states are published (`through`), whether it had
    nothing left for the municipality (`caught_up`), and the municipality's partition of the
    topic with the offset before which the service had applied it (None from producers that
    do not say)."""

    through: datetime | None
    caught_up: bool
    partition: int | None = None
    offset: int | None = None

    def then(self, later: Progress) -> Progress:
        """This followed by `later` (in the order of the municipality's partition): what the
        service has seen only grows; the rest is what it said last."""
        through = self.through
        if through is None or (later.through is not None and later.through > through):
            through = later.through
        return Progress(through, later.caught_up, later.partition, later.offset)

    def past(self, period: Period, grace: timedelta, end: int | None = None, applied: int = 0) -> bool:
        """The service has nothing more for the period: seen past its end + grace, or caught
        up with nothing arrived since. `end`: the partition's end offset now (None: not
        known, not checked); `applied`: an offset the service has said it applied the
        partition to since (with another municipality's records; see `held_by`)."""
        if self.through is not None and grace_passed(self.through, period, grace):
            return True
        if not self.caught_up:
            return False
        return end is None or self.offset is None or end <= max(self.offset, applied)


def unheard_holds(behind_elsewhere: bool, ends: Mapping[int, int] | None, applied: Mapping[int, int],
                  settled: bool = True) -> bool:
    """Whether a topic on which the municipality has had no progress at all holds its periods.

    No progress can mean nothing for the municipality there, or not reached yet. It is not
    reached yet while the topic's service says it is behind with some other municipality
    (`behind_elsewhere`: the records wait behind records it has started on), or while some
    partition of the topic has records past the offset the service has said it applied there
    (`ends` now, per partition; `applied`, per partition, the greatest offset said, 0 when
    none: a partition it has not started on, or a service that has not started at all). An
    empty topic holds nothing, so a deployment or test without a topic's service is not held.
    `settled`: the municipality's own reporting partition has nothing waiting, so a state the
    service published before saying so has been read (else it holds while ends are known).
    """
    if behind_elsewhere:
        return True
    if ends is None:
        return False
    return not settled or any(end > applied.get(p, 0) for p, end in ends.items())


def held_by(period: Period, grace: timedelta, progress: Mapping[str, Progress],
            unheard_holding: Collection[str], ends: Mapping[str, Mapping[int, int]] | None = None,
            applied: Mapping[str, Mapping[int, int]] | None = None) -> set[str]:
    """The input topics that hold back the period's finalisation by watermark.

    `progress` is per topic for the municipality; `unheard_holding` names the topics that hold
    a municipality without progress on them (see `unheard_holds`); `ends`, per topic and
    partition, the end offsets now (a topic left out is not checked); `applied`, per topic and
    partition, the greatest offset its service has said it applied there, which counts for a
    municipality caught up at an earlier offset: the records between were others' (its own
    would have said it was not caught up). Leave it out unless the municipality's reporting
    partition has nothing waiting, so that such a record of its own has been read.
    """
    held = set()
    for topic in INPUT_TOPICS:
        known = progress.get(topic)
        if known is None:
            if topic in unheard_holding:
                held.add(topic)
            continue
        end, said = None, 0
        if ends is not None and known.partition is not None and topic in ends:
            end = ends[topic].get(known.partition)
            if applied is not None:
                said = applied.get(topic, {}).get(known.partition, 0)
        if not known.past(period, grace, end, said):
            held.add(topic)
    return held


def decide(
    previous: Published | None,
    figures_changed: bool,
    watermark: datetime,
    period: Period,
    grace: timedelta,
    final_requested: bool,
    republish_requested: bool,
    held: bool = False,
) -> Decision | None:
    """The next publication for a period, or None when there is nothing to publish.

    `figures_changed` compares with the last publication (ignored when there is none);
    `republish_requested` republishes the current status even when nothing changed; `held`:
    an owning service is not past the period yet (`held_by`), so the watermark alone does not
    finalise it (a request still does).
    """
    finalise = final_requested or (not held and grace_passed(watermark, period, grace))
    if previous is None:
        return Decision(SummaryStatus.FINAL if finalise else SummaryStatus.DRAFT, 0)
    if previous.status == SummaryStatus.DRAFT:
        if finalise:
            return Decision(SummaryStatus.FINAL, 0)
        if figures_changed or republish_requested:
            return Decision(SummaryStatus.DRAFT, previous.revision)
        return None
    if figures_changed:
        return Decision(SummaryStatus.REVISED, previous.revision + 1)
    if republish_requested:
        return Decision(previous.status, previous.revision)
    return None
