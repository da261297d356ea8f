"""Reporting's batch handler: replicate states, then republish the summaries that changed.

Per batch: note the periods that now have events, upsert the newest version of every
entity state (older versions are ignored), raise each municipality's watermark, then
recompute only the periods that can have changed (from the replica's memory, see
`Replica`) and let the pure lifecycle decide what to publish. While records still wait on a
municipality's partition, its recomputation is owed instead, and done once (see
`services.reporting.owed`). Summaries are saved as `pending` before they are sent and
marked sent afterwards, so a crash in between republishes them on restart instead of
losing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from schemas import topics
from schemas.commands import SummaryRequested
from schemas.common import EnvelopeFields
from schemas.summary import SummaryData, SummaryStatus
from services.common.dlq import report_rejections
from services.common.pipeline import next_offsets
from services.common.projection import PIECE_RECORDS, split_batch_in_pieces
from services.common.records import OutRecord
from services.reporting.domain.lifecycle import Published, decide
from services.reporting.domain.periods import Period, period_of_micros, utc
from services.reporting.domain.summary import figures_key, same_figures, summary_of
from services.reporting.owed import Move, OwedSummaries, Partition, Touched
from services.reporting.replica import KINDS, Kind, Replica, periods_of

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from services.common.metrics import ServiceMetrics
    from services.common.runtime import Runtime
    from services.common.settings import Settings

log = logging.getLogger(__name__)
SUMMARY_NAMESPACE = uuid.UUID("0b7f2d9e-53c1-4f0a-8f77-5a2f3c9d1e42")


#: States written per chunk; one chunk's writes overlap the building of the next chunk's
#: documents, which yields to the event loop every `PIECE_RECORDS` so the write can go on.
CHUNK_RECORDS = 500


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
        self.batches_written = 0
        self.owed = OwedSummaries(settings.summary_max_delay_ms / 1000)
        #: Partitions whose stored notes of owed summaries were read since partitions last moved.
        self.recovered: set[Partition] = set()

    async def setup(self) -> None:
        await self.replica.setup()

    def forget(self) -> None:
        """Partitions moved: drop the replica's memory and what is owed (noted in the store,
        it is read again from there for the partitions this process gets)."""
        self.replica.forget()
        self.owed.clear()
        self.recovered.clear()

    async def apply_batch(self, records: list[ConsumerRecord]) -> list[OutRecord]:
        """Both steps in sequence (tests and tools use this)."""
        return await self.apply(await self.prepare(records))

    async def prepare(self, records: list[ConsumerRecord]) -> Decoded:
        """Decode a batch (CPU only): it runs, a piece at a time, while the previous batch is
        being applied."""
        valid, rejected = await split_batch_in_pieces(records, self.settings)
        decoded = Decoded(dead_letters=report_rejections(rejected, self.settings, self.metrics))
        ends = next_offsets(records)
        decoded.partitions = set(ends)
        decoded.waiting = self.runtime.waiting_after(ends)
        states_topic = self.settings.topic(topics.REPORTING)
        for record in records:
            if record.topic == states_topic:
                decoded.partition_of[record.key] = (record.topic, record.partition)
        for event in valid:
            if isinstance(event, SummaryRequested):
                decoded.commands.append(event)
            elif event.event_type in KINDS:  # type: ignore[attr-defined]
                decoded.states.append(event)
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
        if self.maybe_pending:
            await self._publish_pending()
        touched: dict[str, Touched] = defaultdict(Touched)
        for command in decoded.commands:
            entry = touched[command.municipality_code]
            (entry.final if command.data.final else entry.republish).add(command.data.period)
        moves = await self._replicate(decoded.states, touched)
        self.batches_written += 1
        if self.settings.crash_after_write == self.batches_written:
            os._exit(137)  # test-only fault hook: after the state writes, before summaries and commit
        if self.replaying:
            return list(decoded.dead_letters)
        await self._recover(decoded.partitions)
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
        summaries: list[dict[str, Any]] = []
        for code, owed in due.items():  # a snapshot: a rebalance may clear what is owed meanwhile
            summaries += await self._refresh(code, owed.touched, owed.move)
        await self._publish(summaries)
        await self.replica.settle_owed([code for code, owed in due.items() if owed.noted])
        self.owed.settle(due)
        return list(decoded.dead_letters)

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
            kind = KINDS[event.event_type]  # type: ignore[attr-defined]
            data = event.data  # type: ignore[attr-defined]
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

    async def _refresh(self, code: str, entry: Touched, move: Move | None) -> list[dict[str, Any]]:
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
        dirty = self._dirty(known, entry, move)
        computed: dict[str, SummaryData] = {}
        to_publish = []
        for period in dirty:
            prev_name = period.previous().name
            previous = computed.get(prev_name) or _stored_data(view.summaries.get(prev_name))
            inputs = await self.replica.summary_inputs(code, period)
            data = summary_of(inputs, period, watermark, SummaryStatus.DRAFT, 0, previous)
            key = figures_key(data)
            before = view.summaries.get(period.name)
            published = Published(SummaryStatus(before["status"]), before["revision"]) if before else None
            changed = before is None or not same_figures(before["figures_key"], key)
            decision = decide(published, changed, watermark, period,
                              self.grace, period.name in entry.final, period.name in entry.republish)
            if decision is not None:
                data = data.model_copy(update={"status": decision.status, "revision": decision.revision})
                to_publish.append(self._summary_doc(code, data, key, entry.correlation_id))
            computed[period.name] = data
        return to_publish

    def start_replay(self) -> None:
        """A rebuild drops the replica and replays: hold back summaries, trust no cache."""
        self.forget()
        self.replaying = True

    async def refresh_all(self) -> None:
        """Recompute every municipality's periods (after a replay); publish only real changes.
        Nothing is owed afterwards."""
        self.replaying = False
        summaries: list[dict[str, Any]] = []
        for code in await self.replica.municipality_codes():
            summaries += await self._refresh(code, Touched(everything=True), None)
        await self._publish(summaries)
        await self.replica.settle_owed(None)
        self.owed.clear()

    def _dirty(self, known: list[Period], entry: Touched, move: Move | None) -> list[Period]:
        """Periods whose summary may differ now, in order; a change also dirties the next
        period, whose highlights compare with it."""
        dirty: set[Period] = set()
        for period in known:
            name = period.name
            if entry.everything or name in entry.periods or name in entry.final or name in entry.republish:
                dirty.add(period)
            elif move is not None and (move[0] is None or utc(period.end) + self.grace >= utc(move[0])):
                dirty.add(period)  # its as_of moved, or its grace may just have passed
        for period in known:
            if period.previous() in dirty:
                dirty.add(period)
        return sorted(dirty)

    def _summary_doc(
        self, code: str, data: SummaryData, key: str, correlation_id: str | None
    ) -> dict[str, Any]:
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
        return {
            "_id": f"{code}:{data.period}", "municipality_code": code, "period": data.period,
            "status": data.status.value, "revision": data.revision, "figures_key": key,
            "data": payload, "pending": True,
            "envelope": json.dumps(envelope, separators=(",", ":")),
        }

    async def _publish(self, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
        await self.replica.save_summaries(docs)
        self.maybe_pending = True
        await self.runtime.publish([self._record(d) for d in docs])
        await self.replica.mark_published([d["_id"] for d in docs])
        self.maybe_pending = False
        for doc in docs:
            self.metrics.summaries.labels(doc["status"]).inc()
        log.info("summaries published", extra={"summaries": [d["_id"] for d in docs][:20],
                                               "count": len(docs)})

    async def _publish_pending(self) -> None:
        pending = await self.replica.pending()
        if pending:
            await self.runtime.publish([self._record(d) for d in pending])
            await self.replica.mark_published([d["_id"] for d in pending])
            log.info("republished pending summaries", extra={"count": len(pending)})
        self.maybe_pending = False

    def _record(self, doc: dict[str, Any]) -> OutRecord:
        return OutRecord(self.settings.topic(topics.SUMMARIES), doc["municipality_code"].encode(),
                         doc["envelope"].encode())


def _stored_data(doc: dict[str, Any] | None) -> SummaryData | None:
    return SummaryData.model_validate(doc["data"], strict=False) if doc else None

