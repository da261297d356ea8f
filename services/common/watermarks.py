"""Per-municipality watermarks: the greatest `occurred_at` seen, only ever raised.

Stored as fixed-width UTC strings (see `stamp`), which order like the instants they name.
(The embedded store mishandles BSON dates in updates and `$max`; a string compare-and-set
works the same on MongoDB and on the stand-in.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

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
        ops, codes = [], []
        for code, mark in pending.items():
            before = stored.get(code)
            wanted = stamp(mark)
            if before is not None and before >= wanted:
                result[code] = (unstamp(before), unstamp(before))
                continue
            guard = {"_id": code, "watermark": before}
            ops.append(UpdateOne(guard, {"$set": {"watermark": wanted}}, upsert=True))
            codes.append(code)
            result[code] = (unstamp(before) if before else None, unstamp(wanted))
        if not ops:
            return result
        try:
            await collection.bulk_write(ops, ordered=False)
            return result
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != 11000 for err in errors):
                raise
            pending = {codes[err["index"]]: pending[codes[err["index"]]] for err in errors}
    raise RuntimeError("watermarks kept conflicting; the batch will be retried")


async def read_watermark(collection: AsyncCollection[dict[str, Any]], code: str) -> datetime | None:
    doc = await collection.find_one({"_id": code})
    return unstamp(doc["watermark"]) if doc and doc.get("watermark") else None
