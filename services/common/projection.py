"""Idempotent, batched projection of input events into entity documents.

Every owning service (intake, analysis, follow-up) keeps one document per entity:

    {_id: "<municipality>:<entity id>", municipality_code, entity_id, version,
     applied: [event ids], state: {...}, ...index fields}

A batch is applied in memory by the service's pure reducers and written back with one
upsert per touched document. The document carries the ids of the (last 1,000) events it
has applied, so the projection update and the record that the event was applied are *one
atomic write*: a redelivered event is recognised and skipped (one older than the window
leaves the state as it was: every reducer is a join, see `APPLIED_WINDOW`), and a crash
between write and offset commit changes nothing. The write is guarded by the version read (optimistic
concurrency), so two replicas overlapping during a rebalance cannot lose each other's updates.

After the writes, the current state of every touched entity is published as a reporting
event (at least once; the reporting service ignores versions it already has), with the
service's progress on the entity's input topic for the municipality (1.1, see
`services.common.progress`).

The engine remembers the documents it wrote last (`RECENT_DOCUMENTS`, least recently used
first out), so a batch touching them again reads them from memory instead of the store.
That is safe because every write is version-guarded: if another replica wrote the document
meanwhile, the write collides, the entry is dropped and the document is read from the store.
Memory is forgotten on a rebalance and after any failed batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from schemas import topics
from schemas.common import EnvelopeFields
from schemas.decode import Rejection, decode
from services.common.dlq import report_rejections
from services.common.fold import (
    Entity,
    EntityKind,
    ReportingRecords,
    batch_watermarks,
    entity_document,
    group_events,
    reduce_entity,
    spelled_progress,
)
from services.common.pipeline import next_offsets
from services.common.progress import ProgressLedger, Seen, Stream, Where
from services.common.projection_store import Move, ProjectionStore, Write
from services.common.records import OutRecord
from services.common.tracing import tracing_records

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord, TopicPartition

    from services.common.metrics import ServiceMetrics
    from services.common.settings import Settings

log = logging.getLogger(__name__)

MAX_CONFLICT_ROUNDS = 10
#: Records decoded between two yields to the event loop in `prepare`.
PIECE_RECORDS = 100
#: Entity documents remembered after writing them (about 1–3 kB each).
RECENT_DOCUMENTS = 5_000


@dataclass
class PreparedBatch:
    """A decoded batch: its valid events (first of each id), grouped per entity document,
    and the dead letters for the records it rejected; and for progress: each municipality's
    events per input topic, the offset after the batch's last record per partition, and the
    partitions on which records wait after it."""

    events: list[EnvelopeFields]
    entities: dict[str, Entity]
    dead_letters: list[OutRecord]
    streams: dict[Stream, Seen] = field(default_factory=dict)
    ends: dict[Where, int] = field(default_factory=dict)
    waiting: set[Where] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Written:
    """An entity document as this process last wrote it."""

    version: int
    applied: tuple[str, ...]
    state: BaseModel
    dumped: dict[str, Any]


def split_batch(
    records: Iterable[ConsumerRecord], settings: Settings, seen: set[int] | None = None,
    sources: list[ConsumerRecord] | None = None,
) -> tuple[list[EnvelopeFields], list[tuple[ConsumerRecord, Rejection]]]:
    """Decode a batch: valid events (first of each event id), and rejected records.

    `seen` (the event ids, as their 128-bit integers, of earlier parts of the same batch) is
    updated in place, so a batch decoded in parts drops the same repeats as one decoded whole.
    (An int hashes in C; a UUID hashes through a Python method, twice per event.) `sources`,
    when given, gets the record of each valid event, in the same order.
    """
    valid: list[EnvelopeFields] = []
    rejected: list[tuple[ConsumerRecord, Rejection]] = []
    seen = set() if seen is None else seen
    for record in records:
        result = decode(settings.unprefixed(record.topic), record.value)
        if isinstance(result, Rejection):
            rejected.append((record, result))
        elif (event_id := result.event_id.int) not in seen:  # type: ignore[attr-defined]  # every event model has it
            seen.add(event_id)
            valid.append(result)  # type: ignore[arg-type]  # decode() types it BaseModel: an event is an EnvelopeFields
            if sources is not None:
                sources.append(record)
    return valid, rejected


async def split_batch_in_pieces(
    records: list[ConsumerRecord], settings: Settings, sources: list[ConsumerRecord] | None = None,
) -> tuple[list[EnvelopeFields], list[tuple[ConsumerRecord, Rejection]]]:
    """`split_batch`, `PIECE_RECORDS` at a time with a yield to the event loop between
    pieces, so a batch decoded while the previous one is applied does not hold up its store
    round trips. Drops the same repeats as one call over the whole batch."""
    valid: list[EnvelopeFields] = []
    rejected: list[tuple[ConsumerRecord, Rejection]] = []
    seen: set[int] = set()
    for start in range(0, len(records), PIECE_RECORDS):
        part_valid, part_rejected = split_batch(records[start:start + PIECE_RECORDS], settings, seen, sources)
        valid += part_valid
        rejected += part_rejected
        await asyncio.sleep(0)
    return valid, rejected


class ProjectionEngine:
    """Applies batches of input records for one service: the pure rules come from `kinds`
    (folded by `services.common.fold`), the documents live in `store`."""

    def __init__(
        self,
        settings: Settings,
        store: ProjectionStore,
        metrics: ServiceMetrics,
        kinds: dict[str, EntityKind[Any]],
        waiting_after: Callable[[Mapping[TopicPartition, int]], set[TopicPartition]] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.kinds = kinds
        self.records = ReportingRecords(f"taskforce.{settings.service}", settings.topic(topics.REPORTING))
        self.batches_written = 0  #: batches whose entity writes landed
        #: The documents written last, by `Entity.key`; least recently used first.
        self.recent: OrderedDict[str, _Written] = OrderedDict()
        self.progress = ProgressLedger(store)
        #: The partitions of a batch's end offsets on which records wait after it (the
        #: runtime's `waiting_after`; none without a consumer, e.g. in tests and tools).
        self.waiting_after: Callable[[Mapping[TopicPartition, int]], set[TopicPartition]] = (
            waiting_after or (lambda _ends: set()))

    def forget(self) -> None:
        """Drop the remembered documents and notes (partitions moved, or a batch failed)."""
        self.recent.clear()
        self.progress.forget()

    async def setup(self) -> None:
        """Indexes used by the operational read models, and by the progress notes."""
        await self.store.setup(sorted({kind.collection for kind in self.kinds.values()}))

    async def apply_batch(self, records: list[ConsumerRecord]) -> list[OutRecord]:
        """Both steps in sequence: write the batch's effects, return the records to publish."""
        return await self.apply(await self.prepare(records))

    async def prepare(self, records: list[ConsumerRecord]) -> PreparedBatch:
        """Decode and group a batch (CPU only): it runs while the previous batch is applied,
        a piece at a time, so that batch's store round trips are not held up.

        Rejected records become dead letters here, once per delivery of the batch.
        """
        ends = next_offsets(records)
        unprefixed = self.settings.unprefixed
        waiting = {(unprefixed(tp.topic), tp.partition) for tp in self.waiting_after(ends)}
        sources: list[ConsumerRecord] = []
        valid, rejected = await split_batch_in_pieces(records, self.settings, sources)
        dead_letters = report_rejections(rejected, self.settings, self.metrics)
        repeated_in_batch = len(records) - len(rejected) - len(valid)
        if repeated_in_batch:
            self.metrics.duplicates.labels(self.settings.service).inc(repeated_in_batch)
        streams: dict[Stream, Seen] = {}
        entities = group_events(self.kinds, valid, sources, unprefixed, streams, traced=tracing_records())
        return PreparedBatch(valid, entities, dead_letters, streams,
                             {(unprefixed(tp.topic), tp.partition): end for tp, end in ends.items()}, waiting)

    async def apply(self, batch: PreparedBatch) -> list[OutRecord]:
        """Write a prepared batch (idempotent: it may be applied again after a failure)."""
        try:
            return await self._apply(batch)
        except BaseException:
            self.forget()  # a write may have landed although it raised: trust the store only
            raise

    async def _apply(self, batch: PreparedBatch) -> list[OutRecord]:
        out = list(batch.dead_letters)
        taken_over = await self.progress.take_over(batch.ends)
        plan = self.progress.plan(batch.streams, batch.ends, batch.waiting, taken_over)
        now = datetime.now(UTC).isoformat()  # one publication instant for the whole batch
        records = self.records
        if not batch.events:
            await self.progress.save(plan.changed)
            out.extend(records.progress(stream, note, now) for stream, note in plan.alone.items())
            return out
        entities = batch.entities
        # The watermarks, the entity documents and the progress notes are independent:
        # written side by side.
        moves: dict[str, Move]
        moves, _, _ = await _all_of(self.store.raise_watermarks(batch_watermarks(batch.events)),
                                    self._write_entities(list(entities.values())),
                                    self.progress.save(plan.changed))
        self._count(entities.values())
        self.batches_written += 1
        spelled = {code: after.isoformat() for code, (_before, after) in moves.items()}
        progress = spelled_progress(entities.values(), plan)
        out.extend(records.state(e, spelled[e.municipality_code], now, progress[i])
                   for i, e in enumerate(entities.values()))
        out.extend(records.progress(stream, note, now) for stream, note in plan.alone.items())
        return out

    def _count(self, entities: Iterable[Entity]) -> None:
        applied: dict[str, int] = {}
        duplicates = 0
        for entity in entities:
            for event_type, count in entity.fresh.items():
                applied[event_type] = applied.get(event_type, 0) + count
            duplicates += entity.duplicates
        for event_type, count in applied.items():
            self.metrics.events_applied.labels(self.settings.service, event_type).inc(count)
        if duplicates:
            self.metrics.duplicates.labels(self.settings.service).inc(duplicates)

    async def _write_entities(self, entities: list[Entity]) -> None:
        pending = entities
        for _round in range(MAX_CONFLICT_ROUNDS):
            await self._load(pending)
            changed = [e for e in pending if reduce_entity(e)]
            lost = await self._store(changed)
            self._remember(pending, lost)
            pending = lost
            if not pending:
                return
            log.info("version conflicts; re-reading", extra={"conflicts": len(pending)})
        raise RuntimeError(f"{len(pending)} documents kept conflicting; batch will be retried")

    def _remember(self, entities: list[Entity], lost: list[Entity]) -> None:
        """Remember what the store now holds for `entities`, except those that lost a race."""
        recent = self.recent
        for entity in lost:
            recent.pop(entity.key, None)
        lost_ids = {id(entity) for entity in lost}
        for entity in entities:
            if id(entity) in lost_ids or entity.state is None or entity.dumped is None:
                continue
            key = entity.key
            recent[key] = _Written(entity.version, tuple(entity.applied), entity.state, entity.dumped)
            recent.move_to_end(key)
        while len(recent) > RECENT_DOCUMENTS:
            recent.popitem(last=False)

    async def _load(self, entities: list[Entity]) -> None:
        """Each entity's stored document: from memory if this process wrote it last, else
        from the store."""
        by_collection: dict[str, list[Entity]] = {}
        recent = self.recent
        for entity in entities:
            written = recent.get(entity.key)
            if written is not None:
                entity.stored(written.version, written.applied, written.state, written.dumped)
                continue
            by_collection.setdefault(entity.kind.collection, []).append(entity)
        for collection, group in by_collection.items():
            docs = await self.store.read(collection, [e.doc_id for e in group])
            for entity in group:
                doc = docs.get(entity.doc_id)
                if doc is None:
                    entity.stored(0, (), None, None)
                else:
                    state = entity.kind.state_model.model_validate(doc["state"], strict=False)
                    entity.stored(doc["version"], doc["applied"], state, doc["state"])

    async def _store(self, entities: list[Entity]) -> list[Entity]:
        """Upsert guarded by the version read; returns the entities that lost a race."""
        by_collection: dict[str, list[Entity]] = {}
        for entity in entities:
            by_collection.setdefault(entity.kind.collection, []).append(entity)
        conflicts: list[Entity] = []
        for collection, group in by_collection.items():
            refused = await self.store.write(
                collection, [Write(e.doc_id, e.read_version, entity_document(e)) for e in group])
            conflicts.extend(group[index] for index in sorted(refused))
        return conflicts


async def _all_of(*steps: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run the steps concurrently and let every one finish; then raise the first error as is
    (not wrapped in an exception group), so callers can tell an outage from a bug.

    A failed step does not cancel the others on purpose: on Python < 3.13, cancelling an
    operation while it waits inside the async MongoDB driver can leave one of the driver's
    locks held for good (the store-outage fault test once saw a RuntimeError raised inside a
    batch's writes, after which every operation of that service hung). The steps are store
    writes with their own timeouts, and the batch is retried as a whole.
    """
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
