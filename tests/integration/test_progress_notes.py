"""The owning services' progress notes and reporting's record of them, on the real store and
broker (contract 1.1, services.common.progress).

What a service said of a municipality is read back by the next process that takes the
partition over, which says where it stands; reporting keeps the greatest offset said per input
partition even when replicas race; and the broker's end offsets are read for any topic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.common.progress import Note, ProgressLedger, Seen
from services.common.projection_store import MongoProjectionStore
from services.reporting.domain.lifecycle import Progress
from services.reporting.replica import Replica
from tests.support.kafka import produce
from tests.support.services import runtime_consuming_with, settings_for

pytestmark = pytest.mark.integration

N = "taskforce.notifications"
T0 = datetime.fromisoformat("2022-06-30T10:00:00+02:00")


async def test_the_next_owner_of_a_partition_says_where_it_stands_with_everyone_noted(
    scratch_database: Any,
) -> None:
    store = MongoProjectionStore(scratch_database)
    await store.setup(())
    first = ProgressLedger(store)
    assert await first.take_over({(N, 2)}) == {(N, 2)}
    plan = first.plan({("480", N): Seen({2}, T0, T0), ("101", N): Seen({2}, T0, T0)}, {(N, 2): 40},
                      waiting={(N, 2)}, taken_over={(N, 2)})
    await first.save(plan.changed)

    successor = ProgressLedger(MongoProjectionStore(scratch_database))  # another process: nothing in memory
    assert await successor.take_over({(N, 2), (N, 3)}) == {(N, 2), (N, 3)}
    assert successor.notes == {("480", N): Note(2, T0, False, 40), ("101", N): Note(2, T0, False, 40)}
    caught_up = successor.plan({}, {(N, 2): 55}, waiting=set(), taken_over={(N, 2)})
    assert caught_up.alone == {("101", N): Note(2, T0, True, 55), ("480", N): Note(2, T0, True, 55)}
    await successor.save(caught_up.changed)
    assert await successor.take_over({(N, 2)}) == set()  # read once per partition

    again = ProgressLedger(MongoProjectionStore(scratch_database))
    await again.take_over({(N, 2)})
    assert again.notes[("480", N)] == Note(2, T0, True, 55)


async def test_reporting_keeps_the_greatest_offset_said_and_each_municipalitys_progress(
    scratch_database: Any,
) -> None:
    replica = Replica(scratch_database)
    await replica.setup()
    await replica.raise_applied({(N, 2): 40, (N, 3): 7})
    await replica.raise_applied({(N, 2): 30})  # a replica behind: refused, not lowered
    assert await replica.applied(N) == {2: 40, 3: 7}

    await replica.save_progress({("480", N): Progress(T0, False, 2, 40)})
    assert await replica.behind_anywhere(N) and not await replica.behind_anywhere("taskforce.milestones")
    await replica.save_progress({("480", N): Progress(T0, True, 2, 55)})
    replica.forget()  # read back from the store
    assert (await replica.view("480")).progress == {N: Progress(T0, True, 2, 55)}
    assert not await replica.behind_anywhere(N)


async def test_the_broker_is_asked_for_the_end_offsets_of_a_topic_not_consumed(
    stack: Any, prefix: str,
) -> None:
    topic, other = f"{prefix}input", f"{prefix}own"
    await produce(stack.bootstrap_servers, topic, [b"one", b"two", b"three"], key=lambda _v: b"480")
    await produce(stack.bootstrap_servers, other, [b"x"], key=lambda _v: b"480")
    consumer = AIOKafkaConsumer(other, bootstrap_servers=stack.bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers)
    await consumer.start()
    await producer.start()
    try:
        settings = settings_for("reporting", stack, prefix)
        async with runtime_consuming_with(settings, consumer, producer) as runtime:
            ends = await runtime.end_offsets(topic)
            assert ends is not None and sum(1 for end in ends.values() if end > 0) == 1
            assert max(ends.values()) >= 1  # the embedded broker may report the start of the last batch
            fetched: dict[Any, Any] = {}
            while not fetched:
                fetched = await consumer.getmany(timeout_ms=2000)
            (where,) = fetched
            assert not await runtime.behind_on(where.topic, where.partition, 1)
            assert await runtime.behind_on(where.topic, where.partition, 0)
            assert not await runtime.behind_on(topic, 0, 0)  # not consumed here: nothing known
    finally:
        await producer.stop()
        await consumer.stop()
