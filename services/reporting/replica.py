"""The reporting service's replica of entity states, watermarks and published summaries."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from schemas.reporting import (
    CaseReviewState,
    CourseState,
    MeetingState,
    MilestoneState,
    NotificationState,
    PlanState,
)
from services.common.watermarks import raise_watermarks, read_watermark
from services.reporting.domain.periods import Period
from services.reporting.domain.summary import MunicipalityInputs, event_instants

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase


@dataclass(frozen=True)
class Kind:
    collection: str
    model: type[BaseModel]
    #: Kinds whose documents are looked up per period (the voluminous ones).
    by_period: bool


KINDS: dict[str, Kind] = {
    "reporting.course_changed": Kind("courses", CourseState, by_period=False),
    "reporting.notification_changed": Kind("notifications", NotificationState, by_period=True),
    "reporting.case_review_changed": Kind("reviews", CaseReviewState, by_period=True),
    "reporting.plan_changed": Kind("plans", PlanState, by_period=False),
    "reporting.milestone_changed": Kind("milestones", MilestoneState, by_period=False),
    "reporting.meeting_changed": Kind("meetings", MeetingState, by_period=False),
}
SUMMARIES = "summaries"
MUNICIPALITIES = "municipalities"
#: One document per (municipality, period) with events. (Not an $addToSet array: the
#: embedded store ignores $addToSet on a missing field, and plain upserts work everywhere.)
PERIODS = "periods"


def inputs_of(kind: Kind, state: BaseModel) -> MunicipalityInputs:
    """A one-entity input, to ask which instants (and periods) the state records."""
    field = {
        "courses": "course", "notifications": "notifications", "reviews": "reviews",
        "plans": "plans", "milestones": "milestones", "meetings": "meetings",
    }[kind.collection]
    return MunicipalityInputs(**{field: state if field == "course" else (state,)})  # type: ignore[arg-type]


def periods_of(kind: Kind, state: BaseModel) -> set[str]:
    return {Period.of(t).name for t in event_instants(inputs_of(kind, state))}


#: How many (kind, municipality, period) buckets of voluminous states stay in memory.
CACHED_BUCKETS = 64


class Replica:
    """Version-guarded upserts of states; reads per municipality and period.

    The voluminous states (notifications, reviews) of recently used periods are also kept
    in memory, so a batch need not re-read a whole half-year from the store to recompute
    it. The cache is only valid while this process owns the municipality's partition:
    `forget()` runs on every rebalance.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self._buckets: OrderedDict[tuple[str, str, str], dict[str, BaseModel]] = OrderedDict()
        self._bucket_of: dict[tuple[str, str], tuple[str, str, str]] = {}

    def forget(self) -> None:
        self._buckets.clear()
        self._bucket_of.clear()

    def _remember(self, kind: Kind, docs: list[dict[str, Any]], states: dict[str, BaseModel]) -> None:
        for doc in docs:
            where = (kind.collection, doc["_id"])
            old = self._bucket_of.pop(where, None)
            if old is not None and old in self._buckets:
                self._buckets[old].pop(doc["_id"], None)
            bucket = (kind.collection, doc["municipality_code"], doc["period"])
            if bucket in self._buckets:
                self._buckets[bucket][doc["_id"]] = states[doc["_id"]]
                self._bucket_of[where] = bucket

    async def _bucket(self, kind: Kind, code: str, period: str) -> dict[str, BaseModel]:
        key = (kind.collection, code, period)
        if key in self._buckets:
            self._buckets.move_to_end(key)
            return self._buckets[key]
        cursor = self.db[kind.collection].find({"municipality_code": code, "period": period}, {"state": 1})
        bucket = {d["_id"]: kind.model.model_validate(d["state"], strict=False) async for d in cursor}
        self._buckets[key] = bucket
        for doc_id in bucket:
            self._bucket_of[(kind.collection, doc_id)] = key
        while len(self._buckets) > CACHED_BUCKETS:
            (collection, _code, _period), evicted = self._buckets.popitem(last=False)
            for doc_id in evicted:
                self._bucket_of.pop((collection, doc_id), None)
        return bucket

    async def setup(self) -> None:
        for kind in KINDS.values():
            await self.db[kind.collection].create_index([("municipality_code", 1), ("period", 1)])
        await self.db[SUMMARIES].create_index([("municipality_code", 1)])
        await self.db[SUMMARIES].create_index([("pending", 1)])
        await self.db[PERIODS].create_index([("municipality_code", 1)])

    async def upsert_states(
        self, kind: Kind, docs: list[dict[str, Any]], states: dict[str, BaseModel]
    ) -> list[dict[str, Any]]:
        """Write each state unless the replica has its version or a newer one.

        Returns the documents actually written. An older or equal version makes the upsert
        collide with the existing `_id` (duplicate key), which is how "not newer" is detected
        in one round trip. `states` holds each document's state model, by `_id`.
        """
        written = await self._upsert(kind, docs)
        if kind.by_period:
            self._remember(kind, written, states)
        return written

    async def _upsert(self, kind: Kind, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not docs:
            return []
        ops = [UpdateOne({"_id": d["_id"], "version": {"$lt": d["version"]}}, {"$set": d}, upsert=True)
               for d in docs]
        try:
            await self.db[kind.collection].bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != 11000 for err in errors):
                raise
            stale = {err["index"] for err in errors}
            return [d for i, d in enumerate(docs) if i not in stale]
        return docs

    async def raise_watermarks(
        self, marks: dict[str, datetime]
    ) -> dict[str, tuple[datetime | None, datetime]]:
        """Raise each municipality's watermark; returns (before, after) per municipality."""
        return await raise_watermarks(self.db[MUNICIPALITIES], marks)

    async def add_periods(self, periods: dict[str, set[str]]) -> None:
        ops = [UpdateOne({"_id": f"{m}:{p}"}, {"$set": {"municipality_code": m, "period": p}}, upsert=True)
               for m, names in periods.items() for p in sorted(names)]
        if ops:
            await self.db[PERIODS].bulk_write(ops, ordered=False)

    async def watermark(self, code: str) -> datetime | None:
        return await read_watermark(self.db[MUNICIPALITIES], code)

    async def municipality_codes(self) -> list[str]:
        return sorted([d["_id"] async for d in self.db[MUNICIPALITIES].find({}, {"_id": 1})])

    async def periods(self, code: str) -> list[Period]:
        cursor = self.db[PERIODS].find({"municipality_code": code}, {"period": 1})
        return sorted([Period.parse(d["period"]) async for d in cursor])

    async def inputs(self, code: str, periods: Iterable[Period]) -> MunicipalityInputs:
        """All small states of the municipality, and the voluminous ones of `periods` only."""
        names = sorted({p.name for p in periods})
        loaded: dict[str, list[Any]] = {}
        for kind in KINDS.values():
            if kind.by_period:
                loaded[kind.collection] = [
                    state for name in names for state in (await self._bucket(kind, code, name)).values()]
                continue
            cursor = self.db[kind.collection].find({"municipality_code": code}, {"state": 1})
            loaded[kind.collection] = [
                kind.model.model_validate(d["state"], strict=False) async for d in cursor]
        return MunicipalityInputs(
            course=loaded["courses"][0] if loaded["courses"] else None,
            notifications=loaded["notifications"], reviews=loaded["reviews"], plans=loaded["plans"],
            milestones=loaded["milestones"], meetings=loaded["meetings"],
        )

    async def reviews(self, code: str) -> list[CaseReviewState]:
        cursor = self.db["reviews"].find({"municipality_code": code}, {"state": 1})
        return [CaseReviewState.model_validate(d["state"], strict=False) async for d in cursor]

    async def summaries(self, code: str) -> dict[str, dict[str, Any]]:
        cursor = self.db[SUMMARIES].find({"municipality_code": code})
        return {d["period"]: d async for d in cursor}

    async def all_summaries(self) -> list[dict[str, Any]]:
        return [d async for d in self.db[SUMMARIES].find({}, {"data.highlights": 0})]

    async def save_summaries(self, docs: list[dict[str, Any]]) -> None:
        if docs:
            await self.db[SUMMARIES].bulk_write(
                [UpdateOne({"_id": d["_id"]}, {"$set": d}, upsert=True) for d in docs], ordered=False)

    async def mark_published(self, ids: list[str]) -> None:
        if ids:
            await self.db[SUMMARIES].update_many({"_id": {"$in": ids}}, {"$set": {"pending": False}})

    async def pending(self) -> list[dict[str, Any]]:
        return [d async for d in self.db[SUMMARIES].find({"pending": True})]
