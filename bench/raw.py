"""The raw limit: a plain aiokafka + PyMongo consumer doing the same store work, no framework.

    python -m bench.raw {intake|analysis|followup|reporting}

(settings from the same environment variables as the services). Per batch it does what an
owning service must do at the least to keep the same documents with the same guarantees:

* `getmany` (up to 2,000 records, the services' batch size) in a consumer group;
* `json.loads` each value (no schema validation, no DLQ, no CPR check, no pydantic);
* group the events per entity document, exactly like the services (`<code>:<entity id>`);
* one `find` of the touched documents (their versions and applied event ids), fold the
  new events into each document in plain dicts (skipping event ids already applied), and
  one unordered `bulk_write` of version-guarded upserts holding the applied event ids;
* one `bulk_write` raising each municipality's watermark (string compare-and-set);
* one reporting-sized output record per touched document, sent without waiting one by one;
* commit the offsets after the writes and the sends.

For `reporting` it replicates the newest state per entity with one version-guarded
`bulk_write` (a notification as the same compact row the service keeps) and sends one
summary-sized record per touched municipality: it does *not* compute summaries, which is
the reporting service's real work. What the raw path leaves out
on purpose: validation and the DLQ, the pure reducers' ordering rules (a plain
earliest/latest fold stands in), optimistic-concurrency retries, metrics, logs, the HTTP
app and FastStream's consumer machinery.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.errors import BulkWriteError

from schemas import topics
from schemas.periods import micros
from services.common.collector import settle_garbage_collector
from services.common.connections import kafka_connection

INPUTS = {
    "intake": [topics.APPLICATIONS, topics.NOTIFICATIONS],
    "analysis": [topics.CASE_REVIEWS],
    "followup": [topics.MILESTONES],
    "reporting": [topics.REPORTING, topics.COMMANDS],
}
NAMESPACE = uuid.UUID("3e0b8a52-8f5c-4a43-9d59-5f6a2b9c0d11")
MAX_RECORDS = 2000


def entity_of(event: dict[str, Any]) -> tuple[str, str]:
    """(collection, entity id) of an input event, the same keys the services use."""
    kind = event["event_type"]
    data = event["data"]
    if kind.startswith("notification."):
        return "notifications", data["notification_id"]
    if kind.startswith(("application.", "course.")):
        return "courses", "course"
    if kind == "case_review.completed":
        return "reviews", data["review_id"]
    if kind == "development_plan.adopted":
        return "plans", data["plan_id"]
    if kind == "milestone.updated":
        return "milestones", f"{data['plan_id']}/{data['milestone_id']}"
    if kind == "followup.meeting_held":
        return "meetings", event["event_id"]
    raise ValueError(f"unknown event type {kind}")


def fold(state: dict[str, Any], event: dict[str, Any]) -> None:
    """Keep per event type the earliest occurrence (a plain stand-in for the reducers)."""
    kind = event["event_type"]
    current = state.get(kind)
    if current is None or event["occurred_at"] < current["at"]:
        state[kind] = {"at": event["occurred_at"], **event["data"]}


def micros_of(value: str | None) -> int | None:
    return None if value is None else micros(datetime.fromisoformat(value))


def replica_body(event_type: str, state: dict[str, Any]) -> dict[str, Any]:
    """What reporting's replica keeps of a state: a notification's row, else the state."""
    if event_type == "reporting.notification_changed":
        return {"row": [micros_of(state.get("received_at")), micros_of(state.get("assessed_at")),
                        state.get("urgent") is True]}
    return {"state": state}


def utc_stamp(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RawConsumer:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.prefix = os.environ.get("TASKFORCE_TOPIC_PREFIX", "")
        kafka = kafka_connection().client_args()  # the environment, as the services read it
        self.mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            os.environ["MONGODB_URL"], tz_aware=True, retryWrites=False)
        self.db = self.mongo[f"{self.prefix}raw_{kind}".replace(".", "_")]
        self.consumer = AIOKafkaConsumer(
            *[self.prefix + t for t in INPUTS[kind]], **kafka,
            group_id=f"{self.prefix}raw-{kind}", enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=MAX_RECORDS)
        self.producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=5,
                                         max_batch_size=256 * 1024, enable_idempotence=False)
        self.out_topic = self.prefix + (topics.SUMMARIES if kind == "reporting" else topics.REPORTING)
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        settle_garbage_collector()  # the services' collector settings: only the work differs
        try:
            while not self.stopping.is_set():
                batch = await self.consumer.getmany(timeout_ms=50, max_records=MAX_RECORDS)
                records = [r for part in batch.values() for r in part]
                if not records:
                    continue
                started = time.perf_counter()
                events = [json.loads(r.value) for r in records]
                out = await (self.replicate(events) if self.kind == "reporting" else self.project(events))
                futures = [await self.producer.send(self.out_topic, value, key=key) for key, value in out]
                await asyncio.gather(*futures)
                await self.consumer.commit()
                print(json.dumps({"records": len(records), "published": len(out),  # one line a batch
                                  "seconds": round(time.perf_counter() - started, 4)}), flush=True)
        finally:
            await self.consumer.stop()
            await self.producer.stop()
            await self.mongo.close()

    async def project(self, events: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
        groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        marks: dict[str, str] = {}
        for event in events:
            collection, entity = entity_of(event)
            code = event["municipality_code"]
            groups[collection][f"{code}:{entity}"].append(event)
            stamp = utc_stamp(event["occurred_at"])
            if stamp > marks.get(code, ""):
                marks[code] = stamp
        await self.raise_watermarks(marks)
        out = []
        for collection, docs in groups.items():
            found = {d["_id"]: d async for d in self.db[collection].find({"_id": {"$in": list(docs)}})}
            ops, touched = [], []
            for doc_id, items in docs.items():
                doc = found.get(doc_id) or {"_id": doc_id, "version": 0, "applied": [], "state": {}}
                applied = set(doc["applied"])
                fresh = [e for e in items if e["event_id"] not in applied]
                if not fresh:
                    continue
                for event in fresh:
                    fold(doc["state"], event)
                    doc["applied"].append(event["event_id"])
                read_version = doc["version"]
                doc["version"] += len(fresh)
                code = fresh[0]["municipality_code"]
                ops.append(UpdateOne({"_id": doc_id, "version": read_version}, {"$set": {
                    "municipality_code": code, "version": doc["version"], "applied": doc["applied"],
                    "state": doc["state"]}}, upsert=True))
                touched.append((code, doc))
            if ops:
                await self.db[collection].bulk_write(ops, ordered=False)
            for code, doc in touched:
                out.append((code.encode(), json.dumps({
                    "event_id": str(uuid.uuid5(NAMESPACE, f"{doc['_id']}/{doc['version']}")),
                    "event_type": f"raw.{collection}_changed", "schema_version": 1,
                    "occurred_at": datetime.now(UTC).isoformat(), "municipality_code": code,
                    "source": "bench.raw",
                    "data": {"entity_id": doc["_id"], "version": doc["version"],
                             "watermark": marks[code], "state": doc["state"]},
                }, separators=(",", ":")).encode()))
        return out

    async def raise_watermarks(self, marks: dict[str, str]) -> None:
        ops = [UpdateOne({"_id": code, "watermark": {"$lt": stamp}}, {"$set": {"watermark": stamp}},
                         upsert=True) for code, stamp in marks.items()]
        await self._guarded(self.db["watermarks"], ops)

    async def replicate(self, events: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
        """Reporting's raw limit: newest state per entity, version-guarded; no summaries."""
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        marks: dict[str, str] = {}
        for event in events:
            if event["event_type"] in ("summary.requested", "reporting.progress"):
                continue  # no state to replicate (a progress record only says how far a service is)
            data, code = event["data"], event["municipality_code"]
            key = (event["event_type"], f"{code}:{data['entity_id']}")
            if key not in newest or newest[key]["version"] < data["version"]:
                newest[key] = {"_id": key[1], "municipality_code": code, "version": data["version"],
                               **replica_body(event["event_type"], data["state"])}
            mark = utc_stamp(data["watermark"])
            if mark > marks.get(code, ""):
                marks[code] = mark
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (event_type, _doc_id), doc in newest.items():
            by_type[event_type].append(doc)
        for event_type, docs in by_type.items():
            ops = [UpdateOne({"_id": d["_id"], "version": {"$lt": d["version"]}}, {"$set": d}, upsert=True)
                   for d in docs]
            await self._guarded(self.db[event_type.split(".")[-1]], ops)
        await self.raise_watermarks(marks)
        counts: dict[str, int] = defaultdict(int)
        for doc in newest.values():
            counts[doc["municipality_code"]] += 1
        return [(code.encode(), json.dumps({
            "event_type": "raw.summary", "municipality_code": code, "watermark": marks.get(code),
            "states_changed": n, "padding": "x" * 1500,  # about the size of a committee summary
        }).encode()) for code, n in counts.items()]

    @staticmethod
    async def _guarded(collection: Any, ops: list[UpdateOne]) -> None:
        """An unordered bulk write where a duplicate key means "not newer": ignored."""
        if not ops:
            return
        try:
            await collection.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            if any(err.get("code") != 11000 for err in exc.details.get("writeErrors", [])):
                raise


async def main(kind: str) -> None:
    consumer = RawConsumer(kind)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.stopping.set)
    await consumer.run()


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in INPUTS:
        sys.exit(f"usage: python -m bench.raw {{{'|'.join(INPUTS)}}}")
    asyncio.run(main(sys.argv[1]))
