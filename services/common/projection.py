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
import hashlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel
from pydantic_core import to_json

from schemas import topics
from schemas.common import EnvelopeFields
from schemas.decode import Rejection, decode
from schemas.reporting import REPORTING_SCHEMA_VERSION
from services.common.dlq import report_rejections
from services.common.pipeline import next_offsets
from services.common.progress import Note, Plan, ProgressLedger, Seen, Stream, Where
from services.common.records import OutRecord
from services.common.store import upsert_guarded
from services.common.tracing import TRACEPARENT, record_trace, tracing_records
from services.common.watermarks import raise_watermarks

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord, TopicPartition
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.metrics import ServiceMetrics
    from services.common.settings import Settings

log = logging.getLogger(__name__)

S = TypeVar("S", bound=BaseModel)
REPORTING_NAMESPACE = uuid.UUID("6d1f3c55-2a8e-4d8e-9a57-2f0c8a1b7e01")
_NAMESPACE_BYTES = REPORTING_NAMESPACE.bytes
WATERMARKS = "watermarks"
MAX_CONFLICT_ROUNDS = 10
#: Records decoded between two yields to the event loop in `prepare`.
PIECE_RECORDS = 100
#: Entity documents remembered after writing them (about 1–3 kB each).
RECENT_DOCUMENTS = 5_000
#: The event ids an entity document remembers: its most recent ones. A redelivered event
#: among them is skipped and counted (`taskforce_duplicates_skipped_total`). Correctness does
#: not rest on them: every reducer is a join (the same events in any order, with any of them
#: repeated, give the same state: the domains' property tests), so an event older than the
#: window that comes again leaves the state as it was; only the version grows (a version
#: counts the events applied, so a replay of the topic gives every entity its live version).
#: The window keeps a document bounded however many events an entity sees (a milestone
#: updated 200,000 times; docs/contract.md).
APPLIED_WINDOW = 1_000


@dataclass(frozen=True)
class EntityKind(Generic[S]):
    """How one kind of entity is keyed, reduced, indexed and reported."""

    name: str
    collection: str
    reporting_type: str
    state_model: type[S]
    entity_id: Callable[[Any], str]
    apply: Callable[[S | None, Any], S]
    #: Optional: `apply` for each of a list of events in turn, in one step (cheaper when
    #: building a state costs more than folding an event in); must give the same state.
    apply_all: Callable[[S | None, list[Any]], S] | None = None
    index_fields: Callable[[S], dict[str, Any]] = field(default=lambda _state: {})


@dataclass
class _Entity:
    kind: EntityKind[Any]
    doc_id: str
    municipality_code: str
    entity_id: str
    #: The input topic its events come from (without prefix).
    topic: str = ""
    events: list[EnvelopeFields] = field(default_factory=list)
    read_version: int = 0
    version: int = 0
    applied: list[str] = field(default_factory=list)
    state: BaseModel | None = None
    dumped: dict[str, Any] | None = None
    correlation_id: str | None = None
    #: The trace its reporting event continues: the last of its records that carried one
    #: (`services.common.tracing`).
    trace: str | None = None
    #: What the last (successful) reduction applied and skipped, for the metrics.
    fresh: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0


@dataclass
class PreparedBatch:
    """A decoded batch: its valid events (first of each id), grouped per entity document,
    and the dead letters for the records it rejected; and for progress: each municipality's
    events per input topic, the offset after the batch's last record per partition, and the
    partitions on which records wait after it."""

    events: list[EnvelopeFields]
    entities: dict[str, _Entity]
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
    """Applies batches of input records for one service; pure rules come from `kinds`."""

    def __init__(
        self,
        settings: Settings,
        db: AsyncDatabase[dict[str, Any]],
        metrics: ServiceMetrics,
        kinds: dict[str, EntityKind[Any]],
        waiting_after: Callable[[Mapping[TopicPartition, int]], set[TopicPartition]] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.metrics = metrics
        self.kinds = kinds
        self.source = f"taskforce.{settings.service}"
        self.batches_written = 0  #: batches whose entity writes landed
        #: The documents written last, by "<collection>/<_id>"; least recently used first.
        self.recent: OrderedDict[str, _Written] = OrderedDict()
        self.progress = ProgressLedger(db)
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
        for kind in {k.collection: k for k in self.kinds.values()}.values():
            await self.db[kind.collection].create_index([("municipality_code", 1)])
        await self.progress.setup()

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
        return PreparedBatch(valid, self._group(valid, sources, streams), dead_letters, streams,
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
        if not batch.events:
            await self.progress.save(plan.changed)
            out.extend(self._progress_record(stream, note, now) for stream, note in plan.alone.items())
            return out
        entities = batch.entities
        # The watermarks, the entity documents and the progress notes are independent:
        # written side by side.
        marks: dict[str, datetime]
        marks, _, _ = await _all_of(self._advance_watermarks(batch.events),
                                    self._write_entities(list(entities.values())),
                                    self.progress.save(plan.changed))
        self._count(entities.values())
        self.batches_written += 1
        spelled = {code: mark.isoformat() for code, mark in marks.items()}
        progress = self._spelled_progress(entities.values(), plan)
        out.extend(self._reporting_record(e, spelled[e.municipality_code], now, progress[i])
                   for i, e in enumerate(entities.values()))
        out.extend(self._progress_record(stream, note, now) for stream, note in plan.alone.items())
        return out

    def _group(self, events: list[EnvelopeFields], sources: list[ConsumerRecord] | None = None,
               streams: dict[Stream, Seen] | None = None) -> dict[str, _Entity]:
        """Group the events per entity document. With `sources` (the record of each event),
        each entity learns its input topic, and `streams` gets each municipality's events per
        input topic."""
        entities: dict[str, _Entity] = {}
        unprefixed = self.settings.unprefixed
        topic_of: dict[str, str] = {}
        traced = sources is not None and tracing_records()
        for index, event in enumerate(events):
            kind = self.kinds[event.event_type]  # type: ignore[attr-defined]  # each event model has one; the base does not
            code = event.municipality_code
            entity_id = kind.entity_id(event)
            doc_id = f"{code}:{entity_id}"
            key = f"{kind.collection}/{doc_id}"
            entity = entities.get(key)
            if sources is None:
                if entity is None:
                    entity = entities[key] = _Entity(kind, doc_id, code, entity_id)
                entity.events.append(event)
                continue
            record = sources[index]
            topic = topic_of.get(record.topic)
            if topic is None:
                topic = topic_of[record.topic] = unprefixed(record.topic)
            if entity is None:
                entity = entities[key] = _Entity(kind, doc_id, code, entity_id, topic)
            entity.events.append(event)
            if traced and (trace := record_trace(record)) is not None:
                entity.trace = trace
            if streams is None:
                continue
            seen = streams.get((code, topic))
            at = event.occurred_at
            if seen is None:
                streams[(code, topic)] = Seen({record.partition}, at, at)
            else:
                seen.partitions.add(record.partition)
                if at > seen.latest:
                    seen.latest = at
                elif at < seen.earliest:
                    seen.earliest = at
        return entities

    @staticmethod
    def _spelled_progress(entities: Iterable[_Entity], plan: Plan) -> list[dict[str, Any]]:
        """The `progress` of each entity's record, in order: a stream's last record says where
        the batch leaves it, its earlier ones what held before the batch (not caught up)."""
        entities = list(entities)
        last = {(e.municipality_code, e.topic): i for i, e in enumerate(entities)}
        spelled: dict[Stream, dict[str, Any]] = {}
        progress = []
        for i, entity in enumerate(entities):
            stream = (entity.municipality_code, entity.topic)
            if last[stream] == i:
                progress.append(_spell(entity.topic, plan.after[stream]))
                continue
            early = spelled.get(stream)
            if early is None:
                early = spelled[stream] = _spell(entity.topic, plan.before[stream])
            progress.append(early)
        return progress

    async def _advance_watermarks(self, events: list[EnvelopeFields]) -> dict[str, datetime]:
        """Raise each municipality's watermark to the batch's greatest occurred_at."""
        batch_marks: dict[str, datetime] = {}
        for event in events:
            at = event.occurred_at.astimezone(UTC)
            current = batch_marks.get(event.municipality_code)
            if current is None or at > current:
                batch_marks[event.municipality_code] = at
        moves = await raise_watermarks(self.db[WATERMARKS], batch_marks)
        return {code: after for code, (_before, after) in moves.items()}

    def _count(self, entities: Iterable[_Entity]) -> None:
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

    async def _write_entities(self, entities: list[_Entity]) -> None:
        pending = entities
        for _round in range(MAX_CONFLICT_ROUNDS):
            await self._load(pending)
            changed = [e for e in pending if self._reduce(e)]
            lost = await self._store(changed)
            self._remember(pending, lost)
            pending = lost
            if not pending:
                return
            log.info("version conflicts; re-reading", extra={"conflicts": len(pending)})
        raise RuntimeError(f"{len(pending)} documents kept conflicting; batch will be retried")

    def _remember(self, entities: list[_Entity], lost: list[_Entity]) -> None:
        """Remember what the store now holds for `entities`, except those that lost a race."""
        recent = self.recent
        for entity in lost:
            recent.pop(f"{entity.kind.collection}/{entity.doc_id}", None)
        lost_ids = {id(entity) for entity in lost}
        for entity in entities:
            if id(entity) in lost_ids or entity.state is None or entity.dumped is None:
                continue
            key = f"{entity.kind.collection}/{entity.doc_id}"
            recent[key] = _Written(entity.version, tuple(entity.applied), entity.state, entity.dumped)
            recent.move_to_end(key)
        while len(recent) > RECENT_DOCUMENTS:
            recent.popitem(last=False)

    async def _load(self, entities: list[_Entity]) -> None:
        by_collection: dict[str, list[_Entity]] = {}
        recent = self.recent
        for entity in entities:
            written = recent.get(f"{entity.kind.collection}/{entity.doc_id}")
            if written is not None:
                entity.read_version = entity.version = written.version
                entity.applied = list(written.applied)
                entity.state, entity.dumped = written.state, written.dumped
                continue
            by_collection.setdefault(entity.kind.collection, []).append(entity)
        for collection, group in by_collection.items():
            ids = [e.doc_id for e in group]
            docs = {d["_id"]: d async for d in self.db[collection].find({"_id": {"$in": ids}})}
            for entity in group:
                doc = docs.get(entity.doc_id)
                if doc is None:
                    entity.read_version = entity.version = 0
                    entity.applied, entity.state, entity.dumped = [], None, None
                else:
                    entity.read_version = entity.version = doc["version"]
                    entity.applied = list(doc["applied"])
                    entity.state = entity.kind.state_model.model_validate(doc["state"], strict=False)
                    entity.dumped = doc["state"]

    def _reduce(self, entity: _Entity) -> bool:
        """Apply the entity's new events in a fixed order; True when anything was applied."""
        applied = set(entity.applied)
        entity.fresh.clear()
        entity.duplicates = 0
        events = entity.events
        # each event's id spelled once; ordered by (occurred_at, event id), ties kept as listed
        ordered: Iterable[tuple[str, EnvelopeFields]]
        if len(events) == 1:
            ordered = ((events[0].event_key, events[0]),)
        else:
            ids = [e.event_key for e in events]
            ordered = [(ids[i], events[i])
                       for i in sorted(range(len(events)), key=lambda i: (events[i].occurred_at, ids[i]))]
        new_events = []
        for event_id, event in ordered:
            if event_id in applied:
                entity.duplicates += 1
                continue
            new_events.append(event)
            entity.applied.append(event_id)
            applied.add(event_id)
            entity.correlation_id = event.correlation_id or event_id
            event_type = event.event_type  # type: ignore[attr-defined]  # likewise
            entity.fresh[event_type] = entity.fresh.get(event_type, 0) + 1
        if not new_events:
            return False
        kind = entity.kind
        state = entity.state
        if kind.apply_all is not None:
            state = kind.apply_all(state, new_events)
        else:
            for event in new_events:
                state = kind.apply(state, event)
        entity.state = state
        entity.dumped = state.model_dump(mode="json")  # type: ignore[union-attr]  # not None: new_events were applied
        entity.version += len(new_events)
        del entity.applied[:-APPLIED_WINDOW]
        return True

    async def _store(self, entities: list[_Entity]) -> list[_Entity]:
        """Upsert guarded by the version read; returns the entities that lost a race."""
        by_collection: dict[str, list[_Entity]] = {}
        for entity in entities:
            by_collection.setdefault(entity.kind.collection, []).append(entity)
        conflicts: list[_Entity] = []
        for collection, group in by_collection.items():
            refused = await upsert_guarded(self.db[collection], [self._upsert(e) for e in group])
            conflicts.extend(group[index] for index in sorted(refused))
        return conflicts

    @staticmethod
    def _upsert(entity: _Entity) -> tuple[dict[str, Any], dict[str, Any]]:
        """The entity's document, guarded by the version read."""
        assert entity.state is not None
        document = {
            "municipality_code": entity.municipality_code,
            "entity_id": entity.entity_id,
            "version": entity.version,
            "applied": entity.applied,
            "state": entity.dumped,
            **entity.kind.index_fields(entity.state),
        }
        return {"_id": entity.doc_id, "version": entity.read_version}, document

    def _reporting_record(self, entity: _Entity, watermark: str, now: str,
                          progress: dict[str, Any] | None = None) -> OutRecord:
        """The entity's current state as a reporting event (event-carried state transfer).

        `watermark` (the municipality's, after the batch) and `now` (the event's
        `occurred_at`) are ISO 8601 strings, spelled once per batch; `progress` is the
        service's on the entity's topic for the municipality, as of this record (left out
        when None).
        """
        assert entity.state is not None
        kind = entity.kind
        envelope: dict[str, Any] = {
            "event_id": reporting_event_id(f"{kind.name}/{entity.doc_id}/{entity.version}"),
            "event_type": kind.reporting_type,
            "schema_version": REPORTING_SCHEMA_VERSION,
            "occurred_at": now,
            "municipality_code": entity.municipality_code,
            "source": self.source,
            "correlation_id": entity.correlation_id,
            "data": {
                "entity_id": entity.entity_id,
                "version": entity.version,
                "watermark": watermark,
                "state": entity.dumped if entity.dumped is not None else entity.state.model_dump(mode="json"),
            },
        }
        if progress is not None:
            envelope["data"]["progress"] = progress
        return OutRecord(
            self.settings.topic(topics.REPORTING),
            entity.municipality_code.encode(),
            compact_json(envelope),
            {TRACEPARENT: entity.trace} if entity.trace is not None else {},
        )

    def _progress_record(self, stream: Stream, note: Note, now: str) -> OutRecord:
        """A `reporting.progress` event: the service's progress on a stream with no state to
        carry it."""
        code, topic = stream
        envelope = {
            "event_id": reporting_event_id(f"progress/{self.source}/{code}/{topic}/{now}/{note.caught_up}"),
            "event_type": "reporting.progress",
            "schema_version": REPORTING_SCHEMA_VERSION,
            "occurred_at": now,
            "municipality_code": code,
            "source": self.source,
            "data": _spell(topic, note),
        }
        return OutRecord(self.settings.topic(topics.REPORTING), code.encode(), compact_json(envelope))


def _instant(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def _spell(topic: str, note: Note) -> dict[str, Any]:
    return {"topic": topic, "through": _instant(note.through), "caught_up": note.caught_up,
            "partition": note.partition, "offset": note.offset}


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


def reporting_event_id(name: str) -> str:
    """`str(uuid.uuid5(REPORTING_NAMESPACE, name))`, spelled without building UUID objects."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def compact_json(value: Any) -> bytes:
    """Exactly `json.dumps(value, separators=(",", ":")).encode()` for JSON-ready values
    without floats (reporting envelopes: states are dumped in JSON mode and carry none).

    pydantic-core's encoder gives the same bytes whenever its output is ASCII without DEL;
    anything else (non-ASCII text and DEL, which `json.dumps` escapes, or text pydantic-core
    cannot encode) goes to `json.dumps`.
    """
    try:
        encoded = to_json(value)
    except ValueError:
        pass
    else:
        if encoded.isascii() and b"\x7f" not in encoded:
            return encoded
    return json.dumps(value, separators=(",", ":")).encode()
