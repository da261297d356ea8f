"""/metrics after a run: our counters and FastStream's, with the right values."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas import topics
from services.intake.app import create
from tests.support.events import assessed, received
from tests.support.kafka import produce
from tests.support.offsets import wait_caught_up
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(values: dict, name: str, **labels: str) -> float:
    return sum(v for (n, lbl), v in values.items()
               if n == name and all((k, val) in lbl for k, val in labels.items()))


async def test_counters_after_a_run(stack, prefix):
    events = [received(f"n{i}", "2022-03-01T10:00:00+01:00") for i in range(30)]
    events += [assessed(f"n{i}", "2022-03-01T12:00:00+01:00") for i in range(20)]
    duplicates = events[:5]
    bad = [b"{not json", json.dumps({"event_type": "nope"}).encode()]
    settings = settings_for("intake", stack, prefix)
    async with running(create, settings) as intake:
        await produce(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, [*events, *bad, *duplicates],
                      key=lambda _v: b"480")
        await wait_caught_up(stack.bootstrap_servers, settings.group_id, [prefix + topics.NOTIFICATIONS])
        async with intake.client() as http:
            text = (await http.get("/metrics")).text

    values = samples(text)
    assert total(values, "taskforce_events_applied_total", event_type="notification.received") == 30
    assert total(values, "taskforce_events_applied_total", event_type="notification.assessed") == 20
    assert total(values, "taskforce_duplicates_skipped_total") == 5
    assert total(values, "taskforce_dlq_records_total", reason="invalid_json") == 1
    assert total(values, "taskforce_dlq_records_total", reason="unknown_event_type") == 1
    assert total(values, "taskforce_batch_size_count") >= 1
    assert total(values, "taskforce_batch_size_sum") == len(events) + len(bad) + len(duplicates)
    assert total(values, "taskforce_batch_seconds_count") >= 1
    assert total(values, "taskforce_consumer_lag", topic=topics.NOTIFICATIONS) == 0
    assert total(values, "taskforce_ready", service="intake") == 1
    assert total(values, "faststream_received_messages_total") >= 1  # FastStream's middleware
