"""The projection's pure part: events grouped per entity, folded into its stored state, and
the records that carry the result.

No I/O here. `services.common.projection.ProjectionEngine` reads each entity's stored document
through a store port (`services.common.projection_store`), folds the batch's events into it
with `reduce_entity`, writes `entity_write` back guarded by the version read, and publishes
`reporting_record` for every entity that changed. Unit tests drive these functions directly.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel
from pydantic_core import to_json

from schemas.common import EnvelopeFields
from schemas.reporting import REPORTING_SCHEMA_VERSION
from services.common.progress import Note, Plan, Seen, Stream
from services.common.records import OutRecord
from services.common.tracing import TRACEPARENT, record_trace

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

S = TypeVar("S", bound=BaseModel)
REPORTING_NAMESPACE = uuid.UUID("6d1f3c55-2a8e-4d8e-9a57-2f0c8a1b7e01")
_NAMESPACE_BYTES = REPORTING_NAMESPACE.bytes
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
class Entity:
    """One entity document while a batch is applied: its events in the batch, and what the
    store held (`read_version`) and holds after the fold."""

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

    @property
    def key(self) -> str:
        """Unique across kinds: "<collection>/<document id>"."""
        return f"{self.kind.collection}/{self.doc_id}"

    def stored(self, version: int, applied: Iterable[str], state: BaseModel | None,
               dumped: dict[str, Any] | None) -> None:
        """Start from what the store holds (version 0 and no state: nothing yet)."""
        self.read_version = self.version = version
        self.applied = list(applied)
        self.state, self.dumped = state, dumped


def group_events(
    kinds: dict[str, EntityKind[Any]], events: list[EnvelopeFields],
    sources: list[ConsumerRecord] | None = None, unprefixed: Callable[[str], str] = str,
    streams: dict[Stream, Seen] | None = None, traced: bool = False,
) -> dict[str, Entity]:
    """The events per entity document (by `Entity.key`), in the order given. With `sources`
    (the record of each event), each entity learns its input topic (`unprefixed`) and, when
    `traced`, the trace its record carried; `streams` gets each municipality's events per
    input topic."""
    entities: dict[str, Entity] = {}
    topic_of: dict[str, str] = {}
    for index, event in enumerate(events):
        kind = kinds[event.event_type]  # type: ignore[attr-defined]  # each event model has one; the base does not
        code = event.municipality_code
        entity_id = kind.entity_id(event)
        doc_id = f"{code}:{entity_id}"
        key = f"{kind.collection}/{doc_id}"
        entity = entities.get(key)
        if sources is None:
            if entity is None:
                entity = entities[key] = Entity(kind, doc_id, code, entity_id)
            entity.events.append(event)
            continue
        record = sources[index]
        topic = topic_of.get(record.topic)
        if topic is None:
            topic = topic_of[record.topic] = unprefixed(record.topic)
        if entity is None:
            entity = entities[key] = Entity(kind, doc_id, code, entity_id, topic)
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


def reduce_entity(entity: Entity) -> bool:
    """Fold the entity's new events into its state in a fixed order; True when anything was
    applied. Events it has applied already are skipped and counted in `duplicates`."""
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


def entity_document(entity: Entity) -> dict[str, Any]:
    """The entity's document after the fold (its `_id` is `entity.doc_id`)."""
    assert entity.state is not None
    return {
        "municipality_code": entity.municipality_code,
        "entity_id": entity.entity_id,
        "version": entity.version,
        "applied": entity.applied,
        "state": entity.dumped,
        **entity.kind.index_fields(entity.state),
    }


@dataclass(frozen=True)
class ReportingRecords:
    """The reporting events a service publishes: who it is (`source`) and where (the topic's
    full name)."""

    source: str
    topic: str

    def state(self, entity: Entity, watermark: str, now: str,
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
        return OutRecord(self.topic, entity.municipality_code.encode(), compact_json(envelope),
                         {TRACEPARENT: entity.trace} if entity.trace is not None else {})

    def progress(self, stream: Stream, note: Note, now: str) -> OutRecord:
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
            "data": spell(topic, note),
        }
        return OutRecord(self.topic, code.encode(), compact_json(envelope))


def spelled_progress(entities: Iterable[Entity], plan: Plan) -> list[dict[str, Any]]:
    """The `progress` of each entity's record, in order: a stream's last record says where
    the batch leaves it, its earlier ones what held before the batch (not caught up)."""
    entities = list(entities)
    last = {(e.municipality_code, e.topic): i for i, e in enumerate(entities)}
    spelled: dict[Stream, dict[str, Any]] = {}
    progress = []
    for i, entity in enumerate(entities):
        stream = (entity.municipality_code, entity.topic)
        if last[stream] == i:
            progress.append(spell(entity.topic, plan.after[stream]))
            continue
        early = spelled.get(stream)
        if early is None:
            early = spelled[stream] = spell(entity.topic, plan.before[stream])
        progress.append(early)
    return progress


def spell(topic: str, note: Note) -> dict[str, Any]:
    """A progress note as the contract's `StreamProgress` spells it."""
    return {"topic": topic, "through": note.through.astimezone(UTC).isoformat(), "caught_up": note.caught_up,
            "partition": note.partition, "offset": note.offset}


def batch_watermarks(events: Iterable[EnvelopeFields]) -> dict[str, datetime]:
    """Per municipality, the greatest occurred_at of the events (in UTC)."""
    marks: dict[str, datetime] = {}
    for event in events:
        at = event.occurred_at.astimezone(UTC)
        current = marks.get(event.municipality_code)
        if current is None or at > current:
            marks[event.municipality_code] = at
    return marks


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
