"""Watermarks against the real store: only ever raised, and a concurrent raise between the
read and the write (two replicas during a rebalance) is met by reading again, not overwritten."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.common.watermarks import raise_watermarks, read_watermark, stamp

pytestmark = pytest.mark.integration

JAN, FEB, MAR = (datetime(2024, m, 1, tzinfo=UTC) for m in (1, 2, 3))


@pytest.fixture
def collection(scratch_database: AsyncDatabase[dict[str, Any]]) -> AsyncCollection[dict[str, Any]]:
    return scratch_database["municipalities"]


async def test_a_watermark_is_only_ever_raised(collection: AsyncCollection[dict[str, Any]]) -> None:
    assert await raise_watermarks(collection, {"480": FEB}) == {"480": (None, FEB)}
    assert await raise_watermarks(collection, {"480": JAN, "482": JAN}) == {
        "480": (FEB, FEB), "482": (None, JAN)}
    assert await raise_watermarks(collection, {"480": MAR}) == {"480": (FEB, MAR)}
    assert await read_watermark(collection, "480") == MAR
    assert await read_watermark(collection, "482") == JAN


class RacedOnce:
    """The collection, with another writer raising 480's watermark right after the first read."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], to: datetime) -> None:
        self.collection, self.to, self.raced = collection, to, False
        self.database, self.name = collection.database, collection.name

    def find(self, *args: Any, **kwargs: Any) -> Any:
        return _RacingCursor(self, self.collection.find(*args, **kwargs))


class _RacingCursor:
    def __init__(self, owner: RacedOnce, cursor: Any) -> None:
        self.owner, self.cursor = owner, cursor

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async for doc in self.cursor:
            yield doc
        if not self.owner.raced:
            self.owner.raced = True
            theirs = {"$set": {"watermark": stamp(self.owner.to)}}
            await self.owner.collection.update_one({"_id": "480"}, theirs)


@pytest.mark.parametrize(("theirs", "ours", "expected"), [(MAR, FEB, MAR), (FEB, MAR, MAR)])
async def test_a_concurrent_raise_is_read_again_and_never_lowered(
    collection: AsyncCollection[dict[str, Any]], theirs: datetime, ours: datetime, expected: datetime,
) -> None:
    await raise_watermarks(collection, {"480": JAN})
    raced = RacedOnce(collection, theirs)
    moves = await raise_watermarks(raced, {"480": ours})  # type: ignore[arg-type]
    assert raced.raced
    assert await read_watermark(collection, "480") == expected
    assert moves["480"][1] == expected
