"""Per-municipality watermarks: the greatest `occurred_at` seen, only ever raised.

Stored as fixed-width UTC strings (see `stamp`), which order like the instants they name.
(The embedded store mishandles BSON dates in updates and `$max`; a string compare-and-set
works the same on MongoDB and on the stand-in.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.common.store import upsert_guarded

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

MAX_ROUNDS = 10


def stamp(instant: datetime) -> str:
    """A fixed-width UTC string that sorts like the instant, e.g. 2022-07-01T00:00:00.000000Z."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unstamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


async def raise_watermarks(
    collection: AsyncCollection[dict[str, Any]], marks: dict[str, datetime]
) -> dict[str, tuple[datetime | None, datetime]]:
    """Raise each municipality's watermark to at least `marks[m]`; (before, after) per municipality.

    A compare-and-set on the value read: a concurrent writer (two replicas during a
    rebalance) makes the upsert collide, and the round is repeated with fresh values.
    """
    result: dict[str, tuple[datetime | None, datetime]] = {}
    pending = dict(marks)
    for _round in range(MAX_ROUNDS):
        cursor = collection.find({"_id": {"$in": list(pending)}})
        stored = {d["_id"]: d.get("watermark") async for d in cursor}
        writes: list[tuple[dict[str, Any], dict[str, Any]]] = []
        codes: list[str] = []
        for code, mark in pending.items():
            before = stored.get(code)
            wanted = stamp(mark)
            if before is not None and before >= wanted:
                result[code] = (unstamp(before), unstamp(before))
                continue
            writes.append(({"_id": code, "watermark": before}, {"watermark": wanted}))
            codes.append(code)
            result[code] = (unstamp(before) if before else None, unstamp(wanted))
        refused = await upsert_guarded(collection, writes)
        if not refused:
            return result
        pending = {codes[index]: pending[codes[index]] for index in refused}
    raise RuntimeError("watermarks kept conflicting; the batch will be retried")


async def read_watermark(collection: AsyncCollection[dict[str, Any]], code: str) -> datetime | None:
    doc = await collection.find_one({"_id": code})
    return unstamp(doc["watermark"]) if doc and doc.get("watermark") else None
