"""MongoDB wiring and the store-outage policy."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pymongo
from aiokafka.errors import KafkaError
from pymongo import AsyncMongoClient, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, ConnectionFailure, DocumentTooLarge, PyMongoError

from services.common.secret_files import SettingsError

#: Errors after which an operation is worth retrying once the servers are back.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionFailure, KafkaError, asyncio.TimeoutError)
DUPLICATE_KEY = 11000
# What makes the store not answer (store_answers)
_UNANSWERED: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, PyMongoError, OSError)


def mongo_client(url: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client that fails fast (2 s) so an outage surfaces as a retry, not a hang.

    TLS and credentials are the URL's own options (tls=true, tlsCAFile, tlsCertificateKeyFile,
    authSource). A URL the driver refuses raises SettingsError naming MONGODB_URL, without
    the URL (it may hold a password).
    """
    try:
        return AsyncMongoClient(
            url,
            tz_aware=True,
            serverSelectionTimeoutMS=2000,
            connectTimeoutMS=2000,
            socketTimeoutMS=30000,
            retryWrites=False,  # the embedded stand-in has no sessions; our writes are idempotent anyway
        )
    except OSError as exc:  # e.g. a tlsCAFile that does not exist
        reason = exc.strerror or type(exc).__name__
        where = f": {exc.filename}" if exc.filename else ""
        raise SettingsError("MONGODB_URL", f"a file the URL names cannot be read ({reason}{where})") from None
    except (PyMongoError, ValueError, TypeError) as exc:
        raise SettingsError("MONGODB_URL", f"the driver refused the URL ({type(exc).__name__}; the URL "
                                           "is not shown: it may hold a password)") from None


async def store_answers(client: AsyncMongoClient[dict[str, Any]], database: str) -> bool:
    """Readiness of the store: a ping and one real read, within a second.

    The deadline is the driver's own (`pymongo.timeout`), not an asyncio cancellation: on
    Python < 3.13, cancelling an operation while it waits inside the async driver can leave
    one of the driver's locks held for good, and every later operation then hangs.
    """
    try:
        with pymongo.timeout(1.0):
            await client.admin.command("ping")
            await client[database]["watermarks"].find_one({}, {"_id": 1})
        return True
    except _UNANSWERED:
        return False


async def upsert_newer(collection: AsyncCollection[dict[str, Any]], docs: list[dict[str, Any]]) -> set[int]:
    """Upsert each document (by `_id`) unless the stored one has its `version` or a newer one;
    returns the indexes of the documents that were not newer."""
    return await upsert_guarded(
        collection, [({"_id": doc["_id"], "version": {"$lt": doc["version"]}}, doc) for doc in docs])


async def upsert_guarded(collection: AsyncCollection[dict[str, Any]],
                         writes: list[tuple[dict[str, Any], dict[str, Any]]]) -> set[int]:
    """For each `(guard, fields)`: replace the document the guard matches by `fields` (the whole
    document, under the guard's `_id`), or insert it; returns the indexes whose guard refused.

    A guard names the document's `_id` and a condition on one of its fields (a version, a
    watermark read). When the stored document fails the condition, the guard matches nothing
    and the upsert collides with the stored `_id` (duplicate key): refused, found in the same
    round trip, without a read. A replacement rather than a `$set`: every caller writes whole
    documents, and a store that applies `$set` field by field (the embedded one parses the
    stored document for it) does more work for the same result. Sent as one plain `update`
    command: the driver's bulk API builds and validates a request object per document in
    Python, which for small documents costs about as much as encoding and sending them. A
    command too large for one BSON document (16 MiB) goes through the bulk API, which splits it.
    """
    if not writes:
        return set()
    replacements = [(guard, {"_id": guard["_id"], **fields}) for guard, fields in writes]
    updates = [{"q": guard, "u": document, "upsert": True} for guard, document in replacements]
    reply: Mapping[str, Any]
    try:
        reply = await collection.database.command("update", collection.name, updates=updates, ordered=False)
    except DocumentTooLarge:
        ops = [ReplaceOne(guard, document, upsert=True) for guard, document in replacements]
        try:
            await collection.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            reply = exc.details
        else:
            return set()
    return refused_indexes(reply)


def refused_indexes(reply: Mapping[str, Any]) -> set[int]:
    """The indexes that collided on `_id` (refused by their guard) in an unordered upsert's reply
    (the command's, or a `BulkWriteError`'s details); any other write error is raised as a
    `BulkWriteError`."""
    errors: list[dict[str, Any]] = reply.get("writeErrors", [])
    concern = reply.get("writeConcernError") or reply.get("writeConcernErrors")
    if concern or any(err.get("code") != DUPLICATE_KEY for err in errors):
        raise BulkWriteError({"writeErrors": errors, "writeConcernErrors": _as_list(concern)})
    return {err["index"] for err in errors}


def _as_list(concern: Any) -> list[Any]:
    return [] if not concern else concern if isinstance(concern, list) else [concern]
