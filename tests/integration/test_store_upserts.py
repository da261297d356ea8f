"""`upsert_newer` and `upsert_guarded` against the real store: a version-guarded upsert per
document in one command, a refusal told by a duplicate key, and a command too large for one
BSON document sent through the driver's bulk API instead."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.common.store import upsert_guarded, upsert_newer

pytestmark = pytest.mark.integration


@pytest.fixture
def collection(scratch_database: AsyncDatabase[dict[str, Any]]) -> AsyncCollection[dict[str, Any]]:
    return scratch_database["states"]


async def versions(collection: AsyncCollection[dict[str, Any]]) -> dict[str, int]:
    return {d["_id"]: d["version"] async for d in collection.find({})}


async def test_only_newer_versions_are_written_and_the_others_are_named(
    collection: AsyncCollection[dict[str, Any]],
) -> None:
    assert await upsert_newer(collection, []) == set()
    first = [{"_id": "a", "version": 2, "row": [1, None, False]},
             {"_id": "b", "version": 1, "row": [2, 3, True]}]
    assert await upsert_newer(collection, first) == set()

    again = [
        {"_id": "a", "version": 1, "row": [9, 9, True]},  # older: kept out
        {"_id": "b", "version": 1, "row": [9, 9, True]},  # the same version: kept out
        {"_id": "b", "version": 3, "row": [2, 4, True]},  # newer: written
        {"_id": "c", "version": 1, "row": [5, None, False]},  # new: written
    ]
    assert await upsert_newer(collection, again) == {0, 1}
    assert await versions(collection) == {"a": 2, "b": 3, "c": 1}
    assert (await collection.find_one({"_id": "a"}) or {})["row"] == [1, None, False]
    assert (await collection.find_one({"_id": "b"}) or {})["row"] == [2, 4, True]


async def test_a_command_too_large_for_one_document_is_split_by_the_driver(
    collection: AsyncCollection[dict[str, Any]],
) -> None:
    """17 documents of 1 MB: one `update` command would exceed 16 MiB."""
    big = [{"_id": f"d{i}", "version": 1, "blob": "x" * 1_000_000} for i in range(17)]
    assert await upsert_newer(collection, big) == set()
    assert await versions(collection) == {f"d{i}": 1 for i in range(17)}

    newer = [dict(doc, version=2) if i % 2 else doc for i, doc in enumerate(big)]
    assert await upsert_newer(collection, newer) == {i for i in range(17) if i % 2 == 0}
    assert await versions(collection) == {f"d{i}": 2 if i % 2 else 1 for i in range(17)}


async def test_a_guard_on_the_version_read_refuses_a_write_based_on_a_stale_read(
    collection: AsyncCollection[dict[str, Any]],
) -> None:
    """The owning services' optimistic concurrency: write only over the version they read."""
    first = ({"_id": "e", "version": 0}, {"version": 1, "state": "one"})
    assert await upsert_guarded(collection, [first]) == set()
    refused = await upsert_guarded(collection, [
        ({"_id": "e", "version": 0}, {"version": 2, "state": "stale"}),  # read before the first write
        ({"_id": "f", "version": 0}, {"version": 1, "state": "new"}),
    ])
    assert refused == {0}
    assert await versions(collection) == {"e": 1, "f": 1}
    fresh = ({"_id": "e", "version": 1}, {"version": 2, "state": "two"})
    assert await upsert_guarded(collection, [fresh]) == set()
    assert (await collection.find_one({"_id": "e"}) or {})["state"] == "two"


async def test_a_write_is_the_whole_document_under_the_guards_id(
    collection: AsyncCollection[dict[str, Any]],
) -> None:
    """A replacement, not a merge: a field the new document leaves out is gone, and an inserted
    document takes its `_id` from the guard (not one the store would make up)."""
    first = ({"_id": "g", "version": 0}, {"version": 1, "state": {"a": 1, "b": 2}, "extra": True})
    assert await upsert_guarded(collection, [first]) == set()
    second = ({"_id": "g", "version": 1}, {"version": 2, "state": {"a": 3}})
    assert await upsert_guarded(collection, [second]) == set()
    assert [doc async for doc in collection.find({})] == [{"_id": "g", "version": 2, "state": {"a": 3}}]
