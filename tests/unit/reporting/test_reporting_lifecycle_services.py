"""Finalisation waits for every owning service (contract 1.1): the pure rule, and a model of
a replay in which the services and the reporting service run at any relative speed.

The model: each input topic has two partitions, each in time order (a replay of history,
published in a few waves of consecutive time spans, as the demo publishes half-years, so
records also arrive while the services run), and each municipality's events of a topic are
on one of them; intake reads two topics,
analysis and follow-up one each, one process per service. A service's batch takes the next
records of one partition or two (as a consumer drains what it fetched), and publishes per
record what the owning services publish: the state, the service's watermark for the
municipality and its progress (`services.common.progress.plan`, the code the services run),
then the announcements of their own. Reporting reads the reporting log (one partition) in
chunks of any size, keeps what the records say, and decides every period after each chunk
with the real `decide` and `held_by`, the partitions' end offsets and `unheard_holds`. Some
events also change the previous period's figures when they occur within its grace (an
assessment of a notification received before the period's end). No event arrives late, so
every period past its grace at the end must have been published final exactly once, at
revision 0, and never revised; and no status ever goes back from final to draft.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import topics
from schemas.periods import Period
from schemas.summary import SummaryStatus
from services.common.progress import Note, Seen, Where, plan
from services.reporting.domain.lifecycle import (
    INPUT_TOPICS,
    Progress,
    Published,
    decide,
    held_by,
    unheard_holds,
)

pytestmark = pytest.mark.unit

GRACE = timedelta(days=14)
H1 = Period(2022, 1)
END = H1.end
DRAFT, FINAL, REVISED = SummaryStatus.DRAFT, SummaryStatus.FINAL, SummaryStatus.REVISED
SERVICES = {"intake": (topics.APPLICATIONS, topics.NOTIFICATIONS), "analysis": (topics.CASE_REVIEWS,),
            "followup": (topics.MILESTONES,)}
CODES = ("480", "607")
START = datetime(2022, 1, 1, tzinfo=UTC)


# --- the rule ---------------------------------------------------------------------------------


def test_progress_only_grows_and_says_last_whether_caught_up() -> None:
    early, late = END - timedelta(days=1), END + timedelta(days=30)
    assert Progress(late, True).then(Progress(early, False)) == Progress(late, False)
    assert Progress(early, False).then(Progress(late, True)) == Progress(late, True)
    assert Progress(None, True).then(Progress(early, False)) == Progress(early, False)


def test_a_topic_is_past_a_period_when_caught_up_or_seen_past_its_grace() -> None:
    assert Progress(END, True).past(H1, GRACE)
    assert not Progress(END + GRACE, False).past(H1, GRACE)
    assert Progress(END + GRACE + timedelta(microseconds=1), False).past(H1, GRACE)


def test_every_topic_must_be_past_the_period() -> None:
    past, behind = Progress(END + timedelta(days=30), False), Progress(END, False)
    everything = {topic: past for topic in INPUT_TOPICS}
    assert held_by(H1, GRACE, everything, set()) == set()
    assert held_by(H1, GRACE, {**everything, topics.CASE_REVIEWS: behind}, set()) == {topics.CASE_REVIEWS}
    # A topic without progress for the municipality holds it only when it is said to.
    without = {t: p for t, p in everything.items() if t != topics.MILESTONES}
    assert held_by(H1, GRACE, without, set()) == set()
    assert held_by(H1, GRACE, without, {topics.MILESTONES}) == {topics.MILESTONES}


def test_caught_up_counts_only_while_nothing_arrived_after_the_offset_applied() -> None:
    said = Progress(END, True, partition=3, offset=120)
    assert said.past(H1, GRACE) and said.past(H1, GRACE, end=120)
    assert not said.past(H1, GRACE, end=121)
    assert Progress(END + GRACE + timedelta(days=1), False, 3, 50).past(H1, GRACE, end=121)
    assert held_by(H1, GRACE, dict.fromkeys(INPUT_TOPICS, said), set(), {topics.MILESTONES: {3: 121}}) == {
        topics.MILESTONES}


def test_a_topic_never_reported_for_a_municipality_holds_it_only_while_it_may_still_come() -> None:
    assert unheard_holds(behind_elsewhere=True, ends={0: 5}, applied={0: 5})
    assert not unheard_holds(behind_elsewhere=False, ends={0: 5, 1: 0}, applied={0: 5})
    assert unheard_holds(behind_elsewhere=False, ends={0: 5, 1: 2}, applied={0: 5})  # 1 not started on
    assert unheard_holds(behind_elsewhere=False, ends={0: 5}, applied={})  # its service has not spoken
    assert not unheard_holds(behind_elsewhere=False, ends={0: 0}, applied={})  # nothing to wait for
    assert not unheard_holds(behind_elsewhere=False, ends=None, applied={})  # ends not known: as before 1.1


def test_held_keeps_a_draft_and_a_request_still_finalises() -> None:
    past = END + timedelta(days=30)
    assert decide(Published(DRAFT, 0), False, past, H1, GRACE, False, False, held=True) is None
    assert decide(None, True, past, H1, GRACE, False, False, held=True).status == DRAFT  # type: ignore[union-attr]
    assert decide(Published(DRAFT, 0), False, past, H1, GRACE, True, False, held=True).status == FINAL  # type: ignore[union-attr]
    assert decide(Published(DRAFT, 0), False, past, H1, GRACE, False, False, held=False).status == FINAL  # type: ignore[union-attr]


# --- the model of a replay ----------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    number: int
    code: str
    topic: str
    partition: int
    at: datetime
    back: bool  # also changes the previous period's figures (within its grace)

    def periods(self) -> set[Period]:
        own = Period.of(self.at)
        if self.back and self.at - own.start <= GRACE:
            return {own, own.previous()}
        return {own}


@dataclass
class Record:
    """A reporting record: a state (None for an announcement of its own), the service's
    watermark for the municipality (None for an announcement), and its progress."""

    code: str
    event: Event | None
    watermark: datetime | None
    topic: str
    progress: Progress


@dataclass
class Service:
    logs: dict[Where, list[Event]]  # each partition of its topics, in time order, as published so far
    read: dict[Where, int] = field(default_factory=dict)
    notes: dict[tuple[str, str], Note] = field(default_factory=dict)
    marks: dict[str, datetime] = field(default_factory=dict)
    started: set[Where] = field(default_factory=set)

    def left(self) -> list[Where]:
        return [where for where, log in self.logs.items() if self.read.get(where, 0) < len(log)]

    def batch(self, choice: int, sizes: list[int], log: list[Record]) -> None:
        left = self.left()
        if not left:
            return
        chosen = [left[choice % len(left)], left[(choice + 1) % len(left)]][:1 + choice % 2]
        events: list[Event] = []
        ends: dict[Where, int] = {}
        for where, size in zip(dict.fromkeys(chosen), sizes, strict=False):
            start = self.read.get(where, 0)
            part = self.logs[where][start:start + max(size, 1)]
            events += part
            self.read[where] = ends[where] = start + len(part)
        waiting = {where for where in ends if self.read[where] < len(self.logs[where])}
        seen: dict[tuple[str, str], Seen] = {}
        for e in events:
            s = seen.setdefault((e.code, e.topic), Seen({e.partition}, e.at, e.at))
            s.earliest, s.latest = min(s.earliest, e.at), max(s.latest, e.at)
            self.marks[e.code] = max(self.marks.get(e.code, e.at), e.at)
        taken_over = set(ends) - self.started
        self.started |= taken_over
        out = plan(self.notes, seen, ends, waiting, taken_over)
        self.notes.update(out.after)
        self.notes.update(out.alone)
        last = {(e.code, e.topic): i for i, e in enumerate(events)}
        for i, e in enumerate(events):
            stream = (e.code, e.topic)
            note = out.after[stream] if last[stream] == i else out.before[stream]
            log.append(Record(e.code, e, self.marks[e.code], e.topic, _progress(note)))
        for (code, topic), note in out.alone.items():
            log.append(Record(code, None, None, topic, _progress(note)))


def _progress(note: Note) -> Progress:
    return Progress(note.through, note.caught_up, note.partition, note.offset)


@dataclass
class Reporting:
    ends: dict[str, dict[int, int]]  # the input partitions' end offsets now (grown by the waves)
    read: int = 0
    applied: dict[str, set[Event]] = field(default_factory=dict)
    marks: dict[str, datetime] = field(default_factory=dict)
    progress: dict[str, dict[str, Progress]] = field(default_factory=dict)
    offsets: dict[str, dict[int, int]] = field(default_factory=dict)  # said applied, per partition
    published: dict[tuple[str, Period], list[tuple[Published, frozenset[int]]]] = field(default_factory=dict)

    def consume(self, log: list[Record], count: int) -> None:
        for record in log[self.read:self.read + count]:
            known = self.progress.setdefault(record.code, {})
            old = known.get(record.topic)
            known[record.topic] = old.then(record.progress) if old else record.progress
            said = self.offsets.setdefault(record.topic, {})
            partition, offset = record.progress.partition, record.progress.offset
            assert partition is not None and offset is not None
            said[partition] = max(said.get(partition, 0), offset)
            if record.event is not None:
                self.applied.setdefault(record.code, set()).add(record.event)
                assert record.watermark is not None
                self.marks[record.code] = max(self.marks.get(record.code, record.watermark), record.watermark)
        self.read = min(len(log), self.read + count)
        self.decide_all(settled=self.read == len(log))

    def unheard_holding(self, settled: bool) -> set[str]:
        holding = set()
        for topic in INPUT_TOPICS:
            behind = any(not p[topic].caught_up for p in self.progress.values() if topic in p)
            if unheard_holds(behind, self.ends[topic], self.offsets.get(topic, {}), settled):
                holding.add(topic)
        return holding

    def decide_all(self, settled: bool) -> None:
        """`settled`: nothing waits on the reporting partition (here one for everybody)."""
        holding = self.unheard_holding(settled)
        for code, events in self.applied.items():
            for period in {Period.of(e.at) for e in events}:
                figures = frozenset(e.number for e in events if period in e.periods())
                history = self.published.setdefault((code, period), [])
                previous = history[-1] if history else None
                held = held_by(period, GRACE, self.progress[code], holding, self.ends,
                               self.offsets if settled else None)
                decision = decide(previous[0] if previous else None,
                                  previous is None or previous[1] != figures, self.marks[code], period,
                                  GRACE, False, False, held=bool(held))
                if decision is not None:
                    history.append((Published(decision.status, decision.revision), figures))


HOURS = 400 * 24
instants = st.integers(0, HOURS).map(lambda hours: START + timedelta(hours=hours))
event_lists = st.lists(st.tuples(instants, st.booleans()), max_size=10)
Step = tuple[str, int, list[int]]


@st.composite
def replays(draw: st.DrawFn) -> tuple[list[Event], list[datetime], list[Step]]:
    events = []
    for code in CODES:
        for topic in INPUT_TOPICS:
            partition = draw(st.integers(0, 1))
            for at, back in draw(event_lists):
                events.append(Event(len(events), code, topic, partition, at,
                                    back and topic == topics.NOTIFICATIONS))
    cuts = sorted(draw(st.lists(instants, max_size=3)))
    steps = draw(st.lists(st.tuples(st.sampled_from([*SERVICES, "reporting", "publish"]), st.integers(0, 3),
                                    st.lists(st.integers(0, 6), min_size=2, max_size=2)), max_size=50))
    return events, cuts, steps


@settings(max_examples=300, deadline=None)
@given(replays())
def test_a_replay_publishes_every_period_final_once_at_revision_zero(
    replay: tuple[list[Event], list[datetime], list[Step]],
) -> None:
    events, cuts, steps = replay
    in_order = sorted(events, key=lambda e: (e.at, e.number))
    waves = [[e for e in in_order if (i == 0 or cuts[i - 1] <= e.at) and (i == len(cuts) or e.at < cuts[i])]
             for i in range(len(cuts) + 1)]
    services = {name: Service({(topic, p): [] for topic in owned for p in (0, 1)})
                for name, owned in SERVICES.items()}
    reporting = Reporting({topic: {0: 0, 1: 0} for topic in INPUT_TOPICS})

    def publish() -> None:
        for e in waves.pop(0):
            owner = next(service for service in services.values() if (e.topic, e.partition) in service.logs)
            owner.logs[(e.topic, e.partition)].append(e)
            reporting.ends[e.topic][e.partition] += 1

    publish()
    log: list[Record] = []
    for actor, choice, sizes in steps:
        if actor == "reporting":
            reporting.consume(log, sizes[0] + sizes[1])
        elif actor == "publish":
            if waves:
                publish()
        else:
            services[actor].batch(choice, sizes, log)
    while waves:
        publish()
    for service in services.values():  # everyone finishes, at its own pace
        while service.left():
            service.batch(0, [2, 3], log)
            reporting.consume(log, 3)
    reporting.consume(log, len(log))

    for (code, period), history in reporting.published.items():
        statuses = [published.status for published, _ in history]
        assert REVISED not in statuses, (code, period, history)
        assert statuses.count(FINAL) <= 1
        if FINAL in statuses:
            assert DRAFT not in statuses[statuses.index(FINAL):]
        if period.end + GRACE < reporting.marks[code]:
            assert statuses[-1] == FINAL and history[-1][0].revision == 0, (code, period, history)
