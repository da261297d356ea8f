"""Where an owning service's projection lives: the port the projection engine writes through,
its MongoDB adapter, and an in-memory adapter for tests.

The port is what the engine needs and no more: entity documents read by id and upserted
guarded by the version read (optimistic concurrency: a refused write means another replica
wrote meanwhile), each municipality's watermark raised by compare-and-set, and the progress
notes (`services.common.progress`) read per partition and saved. Both adapters keep the same
rules, so engine tests on the memory adapter say what the service does on MongoDB (the
integration tests run the latter).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pymongo import UpdateOne

from services.common.progress import Note, Stream, Where
from services.common.store import upsert_guarded
from services.common.watermarks import raise_watermarks, stamp, unstamp

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

WATERMARKS = "watermarks"
PROGRESS = "progress"
#: How a municipality's watermark moved: (before, after); before is None for its first.
Move = tuple[datetime | None, datetime]


@dataclass(frozen=True, slots=True)
class Write:
    """An entity document to upsert, unless the store's version is no longer `read_version`."""

    doc_id: str
    read_version: int
    document: dict[str, Any]


class ProjectionStore(Protocol):
    async def setup(self, collections: Iterable[str]) -> None:
        """Indexes: on `municipality_code` for each collection (the read models), and the notes'."""

    async def read(self, collection: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored documents of these ids, by id (those that exist)."""

    async def write(self, collection: str, writes: list[Write]) -> set[int]:
        """Upsert each document guarded by its read version; the indexes of the refused."""

    async def raise_watermarks(self, marks: Mapping[str, datetime]) -> dict[str, Move]:
        """Raise each municipality's watermark to at least its mark; how each moved."""

    async def read_notes(self, partitions: Collection[Where]) -> dict[Stream, Note]:
        """The progress notes of the streams on these (topic, partition)s."""

    async def save_notes(self, changed: Mapping[Stream, Note]) -> None: ...


class MongoProjectionStore:
    """The port on MongoDB (or a MongoDB-protocol server): one collection per entity kind."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    async def setup(self, collections: Iterable[str]) -> None:
        for collection in collections:
            await self.db[collection].create_index([("municipality_code", 1)])
        await self.db[PROGRESS].create_index([("topic", 1), ("partition", 1)])

    async def read(self, collection: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {d["_id"]: d async for d in self.db[collection].find({"_id": {"$in": ids}})}

    async def write(self, collection: str, writes: list[Write]) -> set[int]:
        return await upsert_guarded(self.db[collection], [
            ({"_id": w.doc_id, "version": w.read_version}, w.document) for w in writes])

    async def raise_watermarks(self, marks: Mapping[str, datetime]) -> dict[str, Move]:
        return await raise_watermarks(self.db[WATERMARKS], dict(marks))

    async def read_notes(self, partitions: Collection[Where]) -> dict[Stream, Note]:
        if not partitions:
            return {}
        query = {"$or": [{"topic": topic, "partition": partition} for topic, partition in sorted(partitions)]}
        return {(doc["municipality_code"], doc["topic"]): Note(
                    doc["partition"], unstamp(doc["through"]), doc["caught_up"], doc.get("offset", 0))
                async for doc in self.db[PROGRESS].find(query)}

    async def save_notes(self, changed: Mapping[Stream, Note]) -> None:
        if changed:
            await self.db[PROGRESS].bulk_write([
                UpdateOne({"_id": f"{topic}/{code}"}, {"$set": {
                    "municipality_code": code, "topic": topic, "partition": note.partition,
                    "through": stamp(note.through), "caught_up": note.caught_up, "offset": note.offset,
                }}, upsert=True)
                for (code, topic), note in sorted(changed.items())], ordered=False)


class MemoryProjectionStore:
    """The port in memory, with the MongoDB adapter's rules (for tests of the engine)."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}
        self.watermarks: dict[str, datetime] = {}
        self.notes: dict[Stream, Note] = {}

    async def setup(self, collections: Iterable[str]) -> None:
        for collection in collections:
            self.collections.setdefault(collection, {})

    async def read(self, collection: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        stored = self.collections.get(collection, {})
        return {doc_id: copy.deepcopy(stored[doc_id]) for doc_id in ids if doc_id in stored}

    async def write(self, collection: str, writes: list[Write]) -> set[int]:
        stored = self.collections.setdefault(collection, {})
        refused = set()
        for index, write in enumerate(writes):
            current = stored.get(write.doc_id)
            if current is not None and current["version"] != write.read_version:
                refused.add(index)  # as on MongoDB: the guard matches nothing, the insert collides
                continue
            stored[write.doc_id] = {**(current or {}), "_id": write.doc_id, **copy.deepcopy(write.document)}
        return refused

    async def raise_watermarks(self, marks: Mapping[str, datetime]) -> dict[str, Move]:
        moves: dict[str, Move] = {}
        for code, mark in marks.items():
            before = self.watermarks.get(code)
            after = mark if before is None or mark > before else before
            self.watermarks[code] = after
            moves[code] = (before, after)
        return moves

    async def read_notes(self, partitions: Collection[Where]) -> dict[Stream, Note]:
        return {(code, topic): note for (code, topic), note in self.notes.items()
                if (topic, note.partition) in partitions}

    async def save_notes(self, changed: Mapping[Stream, Note]) -> None:
        self.notes.update(changed)
