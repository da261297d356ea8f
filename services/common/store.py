"""MongoDB wiring and the store-outage policy."""

from __future__ import annotations

import asyncio
from typing import Any

import pymongo
from aiokafka.errors import KafkaError
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

#: Errors after which an operation is worth retrying once the servers are back.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionFailure, KafkaError, asyncio.TimeoutError)


def mongo_client(url: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client that fails fast (2 s) so an outage surfaces as a retry, not a hang."""
    return AsyncMongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        socketTimeoutMS=30000,
        retryWrites=False,  # the embedded stand-in has no sessions; our writes are idempotent anyway
    )


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
    except (*TRANSIENT_ERRORS, PyMongoError, OSError):
        return False
