"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.store import mongo_client


@pytest.fixture
async def scratch_database(stack: Any, prefix: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A database of its own on the real store (named after the test's prefix), dropped after."""
    client = mongo_client(stack.mongodb_url)
    name = f"{prefix}scratch".replace(".", "_")
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()
