"""SIGTERM under load: the service finishes and commits its batch, exits 0, and after a
restart nothing is lost and nothing is applied twice."""

from __future__ import annotations

import asyncio
import time

import pytest

from schemas import topics
from tests.support.events import assessed, received
from tests.support.kafka import produce
from tests.support.offsets import lag, wait_caught_up
from tests.support.processes import ServiceProcess
from tests.support.store import dump

pytestmark = pytest.mark.e2e


async def test_sigterm_under_load_loses_and_doubles_nothing(stack, prefix, tmp_path):
    codes = ["480", "482", "607", "330", "849"]
    events = []
    for i in range(6000):
        code = codes[i % 5]
        events.append(received(f"n{i}", "2022-03-01T10:00:00+01:00", municipality=code))
        events.append(assessed(f"n{i}", "2022-03-01T12:00:00+01:00", municipality=code))
    topic, group = prefix + topics.NOTIFICATIONS, f"{prefix}intake"
    service = ServiceProcess("intake", stack, prefix, tmp_path, TASKFORCE_BATCH_MAX_RECORDS="500").start()
    try:
        await produce(stack.bootstrap_servers, topic, events)
        start_lag = await lag(stack.bootstrap_servers, group, [topic])
        while (remaining := await lag(stack.bootstrap_servers, group, [topic])) > start_lag * 0.7:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert remaining > 0, "the service finished before it could be stopped under load"
        stopped_at = time.monotonic()
        assert service.terminate() == 0  # exit code 0: a clean, graceful exit
        assert time.monotonic() - stopped_at < 30
        left = await lag(stack.bootstrap_servers, group, [topic])
        assert 0 < left < len(events)

        service = ServiceProcess("intake", stack, prefix, tmp_path).start()
        await wait_caught_up(stack.bootstrap_servers, group, [topic], timeout=120)
    finally:
        service.kill()

    notes = (await dump(stack.mongodb_url, f"{prefix}intake".replace(".", "_")))["notifications"]
    assert len(notes) == len(events) // 2
    assert all(doc["version"] == 2 and len(doc["applied"]) == 2 for doc in notes.values())
    assert all(doc["state"]["assessed_at"] is not None for doc in notes.values())
    log = service.log.read_text()
    assert '"level": "error"' not in log
