"""The runtime's tuning knobs reach what they tune: the consumer's fetch wait, the collector,
the readiness probe's deadline."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest

from services.common.collector import GC_YOUNG_THRESHOLD, settle_garbage_collector
from services.common.consumption import Consumption
from services.common.runtime import build_runtime
from services.common.service import BatchSteps, Service
from services.common.settings import load_settings
from services.common.store import mongo_client, store_answers

pytestmark = pytest.mark.unit


async def _nothing(records: list[Any]) -> list[Any]:
    return []


@pytest.mark.parametrize(("overrides", "expected"), [({}, 100), ({"TASKFORCE_FETCH_MAX_WAIT_MS": 77}, 77)])
def test_the_fetch_wait_setting_reaches_the_consumer(overrides: dict[str, int], expected: int) -> None:
    runtime = build_runtime(load_settings("intake", **overrides))
    Consumption(Service(runtime, ("taskforce.notifications",), BatchSteps(_nothing, _nothing)))
    # What FastStream hands to aiokafka's consumer when it starts.
    assert runtime.subscriber._connection_args["fetch_max_wait_ms"] == expected


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
def test_settling_freezes_what_exists_and_collects_the_young_less_often() -> None:
    gc.unfreeze()
    _young, middle, old = gc.get_threshold()
    settle_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)


async def test_readiness_gives_up_on_a_silent_store_by_the_drivers_own_deadline() -> None:
    """A silent store makes the probe answer False within its 1 s deadline, before server
    selection's own 2 s run out (why the deadline is the driver's: `store_answers`)."""
    from taskforce.servers import free_port

    client = mongo_client(f"mongodb://127.0.0.1:{free_port()}/")  # nothing listens there
    try:
        started = time.monotonic()
        assert await store_answers(client, "taskforce") is False
        assert time.monotonic() - started < 1.9
    finally:
        await client.close()
