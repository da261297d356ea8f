"""Reporting's batch handler: replicate states, then republish the summaries that changed.

Per batch: note the periods that now have events, upsert the newest version of every
entity state (older versions are ignored), raise each municipality's watermark, then
recompute only the periods that can have changed (from the replica's memory, see
`Replica`) and let the pure lifecycle decide what to publish. While records still wait on a
municipality's partition, its recomputation is owed instead, and done once (see
`services.reporting.owed`). Summaries are saved as `pending` before they are sent and
marked sent afterwards, so a crash in between republishes them on restart instead of
losing them.

(1.1) The owning services' progress on each municipality's input topics comes with their
records; a period past its grace is final only once none of them holds it (see
`services.reporting.domain.lifecycle.held_by`), checked against the input partitions' end
offsets when deciding. A municipality held by a topic it has no progress on is noted, and
recomputed when that topic's service says it got further.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from schemas import topics
from schemas.commands import SummaryRequested
from schemas.common import EnvelopeFields
from schemas.periods import Period, period_of_micros
from schemas.reporting import ProgressReported, StreamProgress
from schemas.summary import SummaryData, SummaryStatus
from services.common.dlq import report_rejections
from services.common.pipeline import next_offsets
from services.common.projection import PIECE_RECORDS, split_batch_in_pieces
from services.common.records import OutRecord
from services.common.tracing import TRACEPARENT, record_trace, tracing_records
from services.reporting.domain.lifecycle import (
    INPUT_TOPICS,
    Move,
    Progress,
    decide,
    finalisable_by_progress,
    held_by,
    periods_to_recompute,
    unheard_holds,
    waits_for_holds,
)
from services.reporting.domain.summary import figures_key, same_figures, summary_of
from services.reporting.owed import OwedSummaries, Partition, Touched
from services.reporting.replica import KINDS, Kind, Replica, periods_of
from services.reporting.stored import StoredSummary

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from services.common.metrics import ServiceMetrics
    from services.common.runtime import Runtime
    from services.common.settings import Settings

log = logging.getLogger(__name__)
SUMMARY_NAMESPACE = uuid.UUID("0b7f2d9e-53c1-4f0a-8f77-5a2f3c9d1e42")


#: States written per chunk; one chunk's writes overlap the building of the next chunk's
#: documents, which yields to the event loop every `PIECE_RECORDS` so the write can go on.
#: As large as a batch (2,000 records): each write command has a fixed cost in the store, and
#: in `make bench` chunks of 500 cost the embedded store about a fifth more CPU per state
#: than one command per batch, which is what bounds reporting's throughput there; a batch's
#: documents take a few milliseconds to build, its write a few hundred.
CHUNK_RECORDS = 2000


@dataclass
class Decoded:
    """A decoded batch: state events, summary commands, and dead letters for the rest; and
    where it came from: its partitions, those on which records wait after it, and the
    partition of each municipality's states (by record key, the municipality code)."""

    states: list[EnvelopeFields] = field(default_factory=list)
    commands: list[SummaryRequested] = field(default_factory=list)
    dead_letters: list[OutRecord] = field(default_factory=list)
    partitions: set[Partition] = field(default_factory=set)
    waiting: set[Partition] = field(default_factory=set)
    partition_of: dict[bytes | None, Partition] = field(default_factory=dict)
    ends: dict[Partition, int] = field(default_factory=dict)
    #: What the owning services said of their progress, per (municipality, input topic), merged
    #: in the order of the batch; and per input partition the greatest offset said applied.
    progress: dict[tuple[str, str], Progress] = field(default_factory=dict)
    applied: dict[tuple[str, int], int] = field(default_factory=dict)
    #: While decoding: per (municipality, input topic), the greatest `through` heard so far
    #: and the last record's word (folded into `progress` at the end, see `_merge_progress`).
    heard: dict[tuple[str, str], tuple[datetime | None, StreamProgress]] = field(default_factory=dict)
    #: Per municipality, the trace its summaries continue (`services.common.tracing`): that
    #: of the batch's last record for it that carried one.
    traces: dict[str, str] = field(default_factory=dict)


class Newest(NamedTuple):
    """The newest state of one entity in a chunk: its replica document (what is kept of the
    state, its version and the first period it counts in), what memory keeps of it, and every
    period it counts in."""

    kind: Kind
    doc: dict[str, Any]
    held: Any
    periods: tuple[str, ...]  # in order: the first is the document's `period`


@dataclass
class Chunk:
    """One chunk's state documents (with what memory keeps of each) and periods, to write."""

    by_kind: dict[Kind, list[tuple[dict[str, Any], Any]]] = field(default_factory=lambda: defaultdict(list))
    periods: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


class SummaryProcessor:
    def __init__(self, settings: Settings, replica: Replica, runtime: Runtime,
                 metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.replica = replica
        self.runtime = runtime
        self.metrics = metrics
        self.grace = timedelta(days=settings.grace_days)
        self.maybe_pending = True
        #: During a rebuild's replay only the replica is written; summaries wait for the end.
        self.replaying = False
        self.owed = OwedSummaries(settings.summary_max_delay_ms / 1000)
        #: Partitions whose stored notes of owed summaries were read since partitions last moved.
        self.recovered: set[Partition] = set()
        #: Each municipality's partition of the states topic, as far as batches have shown it.
        self.partition_of: dict[str, Partition] = {}
        #: Municipalities noted as held by topics they have no progress on (None: not read yet).
        self.held: dict[str, set[str]] | None = None
        #: Per batch: what the input topics' services are said to be behind with, the topics'
        #: end offsets (None: not known, no consumer) and the offsets said applied.
        self.unheard_holding: dict[str, bool] = {}
        self.input_ends: dict[str, dict[int, int] | None] = {}
        #: The batch's one request for the input topics' end offsets, made while its states
        #: are written (see `_read_input_ends`).
        self.ends_reading: asyncio.Task[dict[str, dict[int, int]] | None] | None = None
        self.input_applied: dict[str, dict[int, int]] = {}
        #: Per partition of this process's input, the offset after the last record applied.
        self.handed: dict[Partition, int] = {}

    async def setup(self) -> None:
        await self.replica.setup()

    def forget(self) -> None:
        """Partitions moved: drop the replica's memory and what is owed (noted in the store,
        it is read again from there for the partitions this process gets)."""
        self.replica.forget()
        self.owed.clear()
        self.recovered.clear()
        self.partition_of.clear()
        self.held = None
        self.handed.clear()

    async def prepare(self, records: list[ConsumerRecord]) -> Decoded:
        """Decode a batch (CPU only): it runs, a piece at a time, while the previous batch is
        being applied."""
        sources: list[ConsumerRecord] | None = [] if tracing_records() else None
        valid, rejected = await split_batch_in_pieces(records, self.settings, sources)
        decoded = Decoded(dead_letters=report_rejections(rejected, self.settings, self.metrics))
        for index, record in enumerate(sources or ()):
            if (trace := record_trace(record)) is not None:
                decoded.traces[valid[index].municipality_code] = trace
        ends = next_offsets(records)
        decoded.partitions = set(ends)
        decoded.ends = {(tp.topic, tp.partition): end for tp, end in ends.items()}
        decoded.waiting = self.runtime.waiting_after(ends)
        states_topic = self.settings.topic(topics.REPORTING)
        for record in records:
            if record.topic == states_topic:
                decoded.partition_of[record.key] = (record.topic, record.partition)
        for event in valid:
            if isinstance(event, SummaryRequested):
                decoded.commands.append(event)
            elif event.event_type in KINDS:  # type: ignore[attr-defined]  # each event model has one; the base does not
                decoded.states.append(event)
                said = event.data.progress  # type: ignore[attr-defined]  # a state-changed event: its data has one
                if said is not None:
                    _merge_progress(decoded, event.municipality_code, said)
            elif isinstance(event, ProgressReported):
                _merge_progress(decoded, event.municipality_code, event.data)
        _settle_progress(decoded)
        return decoded

    async def apply(self, decoded: Decoded) -> list[OutRecord]:
        try:
            return await self._apply(decoded)
        except BaseException:
            # A write may have landed although it raised: the in-memory view may now be
            # behind the store. Read everything again when the batch is retried.
            self.replica.forget()
            raise

    async def _apply(self, decoded: Decoded) -> list[OutRecord]:
        self.input_ends.clear()
        self.ends_reading = None if self.replaying else asyncio.create_task(self._read_input_ends())
        try:
            return await self._apply_reading_ends(decoded)
        finally:
            if self.ends_reading is not None:  # not needed after all: not left running
                self.ends_reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.ends_reading
                self.ends_reading = None

    async def _read_input_ends(self) -> dict[str, dict[int, int]] | None:
        """The input topics' end offsets, in one request to the broker.

        Asked at the start of every batch, so that the answer (a broker round trip that can
        take as long as a store write) arrives while the batch's states are written instead of
        after them. The finalisation checks compare them with what the owning services said
        they applied, and end offsets only grow: read a moment earlier they can only miss
        records produced in that moment, which a read just before deciding could miss as
        well. See docs/domain.md, "When a summary becomes final".
        """
        return await self.runtime.end_offsets_of([self.settings.topic(t) for t in INPUT_TOPICS])

    async def _apply_reading_ends(self, decoded: Decoded) -> list[OutRecord]:
        self.handed.update(decoded.ends)
        if self.maybe_pending:
            await self._publish_pending()
        touched: dict[str, Touched] = defaultdict(Touched)
        for command in decoded.commands:
            entry = touched[command.municipality_code]
            (entry.final if command.data.final else entry.republish).add(command.data.period)
        for code, trace in decoded.traces.items():
            touched[code].trace = trace
        moves = await self._replicate(decoded.states, touched)
        released = await self._note_progress(decoded, touched)
        if self.replaying:
            return list(decoded.dead_letters)
        await self._recover(decoded.partitions)
        self.unheard_holding.clear()
        self.input_applied.clear()
        for code in touched:
            partition = decoded.partition_of.get(code.encode())
            if partition is not None:
                self.partition_of[code] = partition
        if released:
            await self._release_held(released, touched)
        now = time.monotonic()
        for code, entry in touched.items():
            self.owed.add(code, entry, moves.get(code), decoded.partition_of.get(code.encode()), now)
        due = self.owed.due(decoded.partitions, decoded.waiting, now, everything=bool(decoded.commands))
        notes = self.owed.to_note(due)
        if notes:
            await self.replica.note_owed(notes)  # before this batch's offsets are committed
            self.owed.mark_noted(notes)
        for code in touched.keys() - due.keys():
            await self.replica.keep_rows(code, touched[code].periods)
        summaries: list[StoredSummary] = []
        for code, owed in due.items():  # a snapshot: a rebalance may clear what is owed meanwhile
            summaries += await self._refresh(code, owed.touched, owed.move)
        await self._publish(summaries)
        await self.replica.settle_owed([code for code, owed in due.items() if owed.noted])
        self.owed.settle(due)
        return list(decoded.dead_letters)

    async def _note_progress(self, decoded: Decoded, touched: dict[str, Touched]) -> set[str]:
        """Keep what the owning services said of their progress; returns the topics on which a
        service got further (caught up with a municipality, or applied more of a partition),
        which may release municipalities waiting for those topics."""
        released = {topic for topic, _partition in decoded.applied}
        changed: dict[tuple[str, str], Progress] = {}
        for (code, topic), new in decoded.progress.items():
            old = (await self.replica.view(code)).progress.get(topic)
            now = old.then(new) if old is not None else new
            if now == old:
                continue
            changed[(code, topic)] = now
            touched[code].progressed = True
            released.add(topic)
        writes = []
        if changed:
            writes.append(self.replica.save_progress(changed))
        if decoded.applied:
            writes.append(self.replica.raise_applied(decoded.applied))
        # Side by side, each let finish (a store operation is never cancelled midway, see
        # `_all_of` in services/common/projection.py); then the first error, as is.
        for result in await asyncio.gather(*writes, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        return released

    async def _release_held(self, names: set[str], touched: dict[str, Touched]) -> None:
        """Recompute the municipalities on this process's partitions that wait for one of the
        topics (their own progress did not change, so nothing else would)."""
        if self.held is None:
            self.held = await self.replica.held_notes()
        if not any(waited & names for waited in self.held.values()):
            return
        held = await self.replica.held_on(names, self.runtime.assigned_partitions())
        for code, partition in held.items():
            touched[code].progressed = True
            self.partition_of.setdefault(code, partition)

    async def _recover(self, partitions: set[Partition]) -> None:
        """Take over what is owed on partitions this process has not read the notes of since
        partitions last moved (a crash, or another process that owned them)."""
        new = partitions - self.recovered
        if not new:
            return
        now = time.monotonic()
        for code, partition in (await self.replica.owed_on(new)).items():
            self.owed.add(code, Touched(everything=True), None, partition, now, noted=True)
        self.recovered |= new

    async def _replicate(
        self, states: list[EnvelopeFields], touched: dict[str, Touched],
    ) -> dict[str, Move]:
        """Upsert the newest state per entity, a chunk at a time, and raise the watermarks;
        returns how each municipality's watermark moved.

        A chunk's writes are in flight while the next chunk's documents are built, so the
        store and this process work at the same time. Chunks are written in order, each
        after its periods are noted; the version guard makes the outcome the same as one
        write of the whole batch. The watermarks (other documents) are raised while the last
        chunk is written: both have landed before any summary is recomputed.
        """
        marks: dict[str, datetime] = {}
        writing: asyncio.Task[None] | None = None
        try:
            for start in range(0, len(states), CHUNK_RECORDS):
                newest: dict[tuple[str, str], Newest] = {}
                for piece in range(start, min(start + CHUNK_RECORDS, len(states)), PIECE_RECORDS):
                    self._keep_newest(states[piece:piece + PIECE_RECORDS], touched, marks, newest)
                    await asyncio.sleep(0)  # let the chunk being written take its next step
                chunk = self._chunk(newest, touched)
                if writing is not None:
                    await writing  # chunks are written in order
                await self.replica.add_periods({m: names for m, names in chunk.periods.items() if names})
                writing = asyncio.create_task(self._write(chunk))
            moves = await self.replica.raise_watermarks(marks) if marks else {}
            if writing is not None:
                await writing
            return moves
        finally:
            if writing is not None and not writing.done():
                # Something else failed while a chunk is being written: let the write finish
                # (never cancel a store operation midway, see `_all_of` in projection.py);
                # the batch is retried as a whole, so its own error does not matter here.
                with contextlib.suppress(Exception):
                    await writing

    def _keep_newest(self, events: list[EnvelopeFields], touched: dict[str, Touched],
                     marks: dict[str, datetime],
                     newest: dict[tuple[str, str], Newest]) -> None:
        """Into `newest`: the newest state document per entity of the events."""
        correlations: dict[str, str] = {}
        for event in events:
            kind = KINDS[event.event_type]  # type: ignore[attr-defined]  # each event model has one; the base does not
            data = event.data  # type: ignore[attr-defined]  # likewise: `data`, typed per event model
            code = event.municipality_code
            mark = data.watermark  # aware: compared as instants, turned into UTC when stored
            known = marks.get(code)
            if known is None or mark > known:
                marks[code] = mark
            if event.correlation_id:
                correlations[code] = event.correlation_id
            key = (kind.collection, f"{code}:{data.entity_id}")
            current = newest.get(key)
            if current is not None and current.doc["version"] >= data.version:
                continue
            state = data.state
            held: Any = state
            if kind.row is not None:
                held = kind.row.of(state)
                instant = held.instant
                periods: tuple[str, ...] = (period_of_micros(instant).name,) if instant is not None else ()
            else:
                periods = tuple(sorted(periods_of(kind, state)))
            doc = {"_id": key[1], "municipality_code": code, "version": data.version,
                   "period": periods[0] if periods else None}
            doc.update(kind.body(state, held))
            newest[key] = Newest(kind, doc, held, periods)
        for code, correlation_id in correlations.items():
            touched[code].correlation_id = correlation_id

    @staticmethod
    def _chunk(newest: dict[tuple[str, str], Newest], touched: dict[str, Touched]) -> Chunk:
        """The chunk's documents grouped by kind (ids are only unique within a kind)."""
        chunk = Chunk()
        for kind, doc, held, periods in newest.values():
            code = doc["municipality_code"]
            chunk.by_kind[kind].append((doc, held))
            chunk.periods[code].update(periods)
            if not kind.by_period:
                touched[code].everything = True
        # Written now or stored already: either way re-derive. A batch redelivered after a
        # crash between its state writes and its summaries finds its states stored, and must
        # still recompute (an unchanged summary is not republished).
        for code, names in chunk.periods.items():
            touched[code].periods |= names
        return chunk

    async def _write(self, chunk: Chunk) -> None:
        for kind, entries in chunk.by_kind.items():
            await self.replica.upsert_states(kind, [doc for doc, _ in entries],
                                             {doc["_id"]: held for doc, held in entries})

    async def _refresh(self, code: str, entry: Touched, move: Move | None) -> list[StoredSummary]:
        """Recompute the periods that may have changed; return the summaries to publish."""
        view = await self.replica.view(code)
        watermark = view.watermark
        if watermark is None:
            return []  # a command for a municipality without events: nothing to summarise
        known = sorted(Period.parse(name) for name in view.periods)
        unknown = (entry.final | entry.republish) - view.periods
        if unknown:
            log.info("summary requested for a period without events; nothing to summarise",
                     extra={"municipality_code": code, "periods": sorted(unknown)})
        published = {name: stored.published for name, stored in view.summaries.items()}
        # Progress moved: a draft past its grace may be final now, though no figure changed.
        opened = (finalisable_by_progress(known, published, watermark, self.grace)
                  if entry.progressed else set())
        dirty = periods_to_recompute(
            known, entry.periods | entry.final | entry.republish, everything=entry.everything,
            move=move, grace=self.grace, also=opened)
        computed: dict[str, SummaryData] = {}
        to_publish = []
        waiting_for: set[str] = set()  # topics without progress that hold a period
        for period in dirty:
            previous = computed.get(period.previous().name)
            if previous is None and (stored := view.summaries.get(period.previous().name)) is not None:
                previous = stored.summary()
            inputs = await self.replica.summary_inputs(code, period)
            data = summary_of(inputs, period, watermark, SummaryStatus.DRAFT, 0, previous)
            key = figures_key(data)
            before = view.summaries.get(period.name)
            held: set[str] = set()
            if waits_for_holds(published.get(period.name), watermark, period, self.grace,
                               period.name in entry.final):
                settled = await self._settled(code)
                unheard = {topic for topic in INPUT_TOPICS
                           if topic not in view.progress and await self._unheard_holds(topic, settled)}
                ends = {topic: found for topic in view.progress
                        if (found := await self._input_ends(topic)) is not None}
                applied = {topic: await self._applied(topic) for topic in ends} if settled else None
                held = held_by(period, self.grace, view.progress, unheard, ends, applied)
                waiting_for |= held & unheard
            changed = before is None or not same_figures(before.figures_key, key)
            decision = decide(published.get(period.name), changed, watermark, period,
                              self.grace, period.name in entry.final, period.name in entry.republish,
                              held=bool(held))
            if decision is not None:
                data = data.model_copy(update={"status": decision.status, "revision": decision.revision})
                to_publish.append(self._stored(code, data, key, entry.correlation_id, entry.trace))
            computed[period.name] = data
        await self._note_held(code, waiting_for)
        return to_publish

    async def _unheard_holds(self, topic: str, settled: bool) -> bool:
        """Whether the topic holds a municipality without progress on it (`unheard_holds`);
        the store and the broker are asked once per batch."""
        behind = self.unheard_holding.get(topic)
        if behind is None:
            behind = self.unheard_holding[topic] = await self.replica.behind_anywhere(topic)
        if behind:
            return True
        ends = await self._input_ends(topic)
        return unheard_holds(False, ends, await self._applied(topic) if ends else {}, settled)

    async def _applied(self, topic: str) -> dict[int, int]:
        if topic not in self.input_applied:
            self.input_applied[topic] = await self.replica.applied(topic)
        return self.input_applied[topic]

    async def _settled(self, code: str) -> bool:
        """Whether nothing waits on the municipality's partition of the states topic (unknown:
        it has had no states here, so none can be on their way)."""
        partition = self.partition_of.get(code)
        if partition is None:
            return True
        return not await self.runtime.behind_on(*partition, self.handed.get(partition))

    async def _input_ends(self, topic: str) -> dict[int, int] | None:
        """The input topic's end offsets per partition (None without a consumer), as this
        batch's request (`_read_input_ends`) found them."""
        if not self.input_ends and self.ends_reading is not None:
            found = await self.ends_reading
            self.ends_reading = None
            self.input_ends.update({topic: None for topic in INPUT_TOPICS} if found is None else
                                   {topic: found.get(self.settings.topic(topic)) for topic in INPUT_TOPICS})
        if topic not in self.input_ends:  # no request this batch (a replay's end): ask now
            self.input_ends[topic] = await self.runtime.end_offsets(self.settings.topic(topic))
        return self.input_ends[topic]

    async def _note_held(self, code: str, names: set[str]) -> None:
        """Note (or settle) that the municipality waits for topics it has no progress on, so
        that a service catching up on one of them has it recomputed (`_release_held`)."""
        if self.held is None:
            self.held = await self.replica.held_notes()
        if self.held.get(code, set()) == names:
            return
        partition = self.partition_of.get(code)
        if code in self.held:
            await self.replica.settle_held([code])
            del self.held[code]
        if names and partition is not None:
            await self.replica.note_held({code: (names, partition)})
            self.held[code] = set(names)

    def start_replay(self) -> None:
        """A rebuild drops the replica and replays: hold back summaries, trust no cache."""
        self.forget()
        self.replaying = True

    async def refresh_all(self) -> None:
        """Recompute every municipality's periods (after a replay); publish only real changes.
        Nothing is owed afterwards."""
        self.replaying = False
        summaries: list[StoredSummary] = []
        for code in await self.replica.municipality_codes():
            summaries += await self._refresh(code, Touched(everything=True), None)
        await self._publish(summaries)
        await self.replica.settle_owed(None)
        self.owed.clear()

    def _stored(
        self, code: str, data: SummaryData, key: str, correlation_id: str | None,
        trace: str | None = None,
    ) -> StoredSummary:
        event_id = uuid.uuid5(SUMMARY_NAMESPACE, f"{code}/{data.period}/{data.status}/{data.revision}/{key}")
        payload = data.model_dump(mode="json")
        envelope = {
            "event_id": str(event_id),
            "event_type": "committee_summary.published",
            "schema_version": 1,
            "occurred_at": datetime.now(UTC).isoformat(),
            "municipality_code": code,
            "source": "taskforce.reporting",
            "correlation_id": correlation_id,
            "data": payload,
        }
        return StoredSummary(code, data.period, data.status, data.revision, key, payload,
                             json.dumps(envelope, separators=(",", ":")), pending=True, trace=trace)

    async def _publish(self, summaries: list[StoredSummary]) -> None:
        if not summaries:
            return
        await self.replica.save_summaries(summaries)
        self.maybe_pending = True
        await self.runtime.publish([self._record(s) for s in summaries])
        await self.replica.mark_published(summaries)
        self.maybe_pending = False
        for summary in summaries:
            self.metrics.summaries.labels(summary.status.value).inc()
        log.info("summaries published", extra={"summaries": [s.id for s in summaries][:20],
                                               "count": len(summaries)})

    async def _publish_pending(self) -> None:
        pending = await self.replica.pending()
        if pending:
            await self.runtime.publish([self._record(s) for s in pending])
            await self.replica.mark_published(pending)
            log.info("republished pending summaries", extra={"count": len(pending)})
        self.maybe_pending = False

    def _record(self, summary: StoredSummary) -> OutRecord:
        return OutRecord(self.settings.topic(topics.SUMMARIES), summary.municipality_code.encode(),
                         summary.envelope.encode(),
                         {TRACEPARENT: summary.trace} if summary.trace else {})


def _merge_progress(decoded: Decoded, code: str, said: StreamProgress) -> None:
    """Fold what a record says into the batch's progress, in batch order: `Progress.then`,
    one record after another, without building a `Progress` per record (one per key is
    built at the end of `prepare`)."""
    key = (code, said.topic)
    through = said.through
    heard = decoded.heard.get(key)
    if heard is not None:
        top = heard[0]
        if top is not None and (through is None or not through > top):
            through = top
    decoded.heard[key] = (through, said)
    where = (said.topic, said.partition)
    if said.offset > decoded.applied.get(where, 0):
        decoded.applied[where] = said.offset


def _settle_progress(decoded: Decoded) -> None:
    """The progress heard while decoding, as one `Progress` per (municipality, input topic)."""
    for key, (through, said) in decoded.heard.items():
        decoded.progress[key] = Progress(through, said.caught_up, said.partition, said.offset)
    decoded.heard.clear()
