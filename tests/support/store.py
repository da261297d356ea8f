"""Reading a service's projections straight from the store, for comparisons."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient


async def dump(mongodb_url: str, database: str, skip: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Every document of every collection, by collection and _id; `applied` as a set."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        db = client[database]
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(await db.list_collection_names()):
            if name in skip:
                continue
            docs = {}
            async for doc in db[name].find({}):
                if "applied" in doc:
                    doc["applied"] = sorted(doc["applied"])
                docs[doc["_id"]] = doc
            out[name] = docs
        return out
    finally:
        await client.close()
