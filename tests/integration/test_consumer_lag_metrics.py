"""Consumer lag on /metrics against the real broker: records and seconds behind, per input
partition, while a batch is stuck and after everything is consumed."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas import topics
from schemas.topics import DEFAULT_PARTITIONS
from services.common.runtime import Runtime
from services.common.service import BatchSteps
from services.common.serving import build_app
from services.common.settings import Settings
from services.intake.app import compose, create
from tests.support.events import received
from tests.support.kafka import produce
from tests.support.services import Running, running, settings_for

pytestmark = pytest.mark.integration

RECORDS = "taskforce_consumer_lag"
SECONDS = "taskforce_consumer_lag_seconds"
CODES = ("480", "482", "607", "330", "849")
#: intake's input partitions, as labelled (topic without the test's prefix, partition number).
INPUTS = {(t, str(p)) for t in (topics.APPLICATIONS, topics.NOTIFICATIONS)
          for p in range(DEFAULT_PARTITIONS[t])}

Lags = dict[str, dict[tuple[str, str], float]]


async def lags(service: Running) -> Lags:
    """The two lag gauges from /metrics: {metric: {(topic, partition): value}}."""
    async with service.client() as http:
        text = (await http.get("/metrics")).text
    out: Lags = {RECORDS: {}, SECONDS: {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in out:
                assert sample.labels["service"] == "intake"
                out[sample.name][(sample.labels["topic"], sample.labels["partition"])] = sample.value
    return out


async def until(service: Running, holds: Callable[[Lags], bool], timeout: float = 60.0) -> Lags:
    """Read /metrics until `holds(lags)`; the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await lags(service)
        if holds(seen):
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"lag never as expected: {seen}")
        await asyncio.sleep(0.2)


def caught_up(seen: Lags) -> bool:
    return (set(seen[RECORDS]) == INPUTS and set(seen[SECONDS]) == INPUTS
            and not any(seen[RECORDS].values()) and not any(seen[SECONDS].values()))


def gated(gate: asyncio.Event) -> Callable[[Settings], tuple[Any, Runtime]]:
    """intake, applying no batch until `gate` is set."""
    def make(settings: Settings) -> tuple[Any, Runtime]:
        service = compose(settings)
        steps = service.steps

        async def apply(prepared: Any) -> Any:
            await gate.wait()
            return await steps.apply(prepared)

        gated = dataclasses.replace(service, steps=BatchSteps(steps.prepare, apply))
        return build_app(gated), service.runtime
    return make


def events(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [received(f"n{i}", "2022-03-01T10:00:00+01:00", municipality=CODES[i % len(CODES)])
            for i in range(start, start + count)]


async def test_lag_per_input_partition_reaches_zero_after_a_publish(stack: Any, prefix: str) -> None:
    settings = settings_for("intake", stack, prefix, TASKFORCE_LAG_REFRESH_S=0.3)
    async with running(create, settings) as intake:
        # Every partition the service owns is reported, records on it or not.
        await until(intake, caught_up)
        await produce(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, events(60))
        await until(intake, caught_up)


async def test_a_stuck_batch_shows_records_and_seconds_behind(stack: Any, prefix: str) -> None:
    """Nothing is consumed meanwhile: the periodic refresh alone keeps the gauges current."""
    gate = asyncio.Event()
    settings = settings_for("intake", stack, prefix, TASKFORCE_LAG_REFRESH_S=0.3)
    async with running(gated(gate), settings) as intake:
        try:
            await until(intake, caught_up)  # caught up, and seen so: the seconds count from here
            published = await produce(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, events(40))
            seen = await until(intake, lambda s: sum(s[RECORDS].values()) == published
                               and max(s[SECONDS].values(), default=0) >= 1.0)
            behind = {where for where, count in seen[RECORDS].items() if count}
            assert behind and {topic for topic, _ in behind} == {topics.NOTIFICATIONS}
            assert {where for where, s in seen[SECONDS].items() if s} <= behind
            # The seconds keep growing while the batch is stuck.
            first = max(seen[SECONDS].values())
            later = await until(intake, lambda s: max(s[SECONDS].values(), default=0) >= first + 0.5)
            assert sum(later[RECORDS].values()) == published
        finally:
            gate.set()
        await until(intake, caught_up)


async def test_partitions_given_up_lose_their_samples(stack: Any, prefix: str) -> None:
    """A second member joins the group: each reports only the partitions it owns."""
    async with running(create, settings_for("intake", stack, prefix, TASKFORCE_LAG_REFRESH_S=0.3)) as first:
        await until(first, caught_up)
        async with running(create, settings_for("intake", stack, prefix,
                                                TASKFORCE_LAG_REFRESH_S=0.3)) as second:
            deadline = time.monotonic() + 90
            while True:
                mine, theirs = set((await lags(first))[RECORDS]), set((await lags(second))[RECORDS])
                if mine and theirs and not mine & theirs and mine | theirs == INPUTS:
                    break
                assert time.monotonic() < deadline, f"not split: {sorted(mine)} / {sorted(theirs)}"
                await asyncio.sleep(0.3)
