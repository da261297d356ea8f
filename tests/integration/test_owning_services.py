"""Intake, analysis and follow-up against the real servers: a realistic batch of the demo's
events (thousands, five municipalities) gives exactly the right projections and reporting
events; a redelivery of everything changes nothing; a rebuild gives the live projections."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas import topics
from schemas.events import INPUT_TYPES
from services.analysis.app import compose as compose_analysis
from services.analysis.app import create as create_analysis
from services.common.projection_store import PROGRESS
from services.common.rebuild import rebuild
from services.followup.app import compose as compose_followup
from services.followup.app import create as create_followup
from services.intake.app import compose as compose_intake
from services.intake.app import create as create_intake
from taskforce.demo import generate
from tests.support.kafka import decoded, produce, read_until
from tests.support.offsets import rewind, wait_caught_up
from tests.support.services import running, settings_for
from tests.support.store import dump

pytestmark = pytest.mark.integration
COPENHAGEN = ZoneInfo("Europe/Copenhagen")
#: What the service last told reporting of its progress: it depends on where batches ended,
#: so a redelivery or a rebuild says it differently (services.common.progress).
NOT_PROJECTIONS = (PROGRESS,)

SERVICES = {
    "intake": (create_intake, compose_intake, [topics.APPLICATIONS, topics.NOTIFICATIONS]),
    "analysis": (create_analysis, compose_analysis, [topics.CASE_REVIEWS]),
    "followup": (create_followup, compose_followup, [topics.MILESTONES]),
}


def _feed(service_topics: list[str]) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """The demo's events for these topics, with 2 % sent twice (same id: duplicates)."""
    events = [e for e in generate(seed=7, volume=0.18) if INPUT_TYPES[e["event_type"]][1] in service_topics]
    rng = random.Random(7)
    by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_topic[INPUT_TYPES[event["event_type"]][1]].append(event)
    for items in by_topic.values():
        items.extend(rng.sample(items, max(1, len(items) // 50)))
        rng.shuffle(items)
    return by_topic, events


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _expected_notifications(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Independently: the earliest receipt and the earliest assessment of each notification."""
    out: dict[str, dict[str, Any]] = {}
    for e in events:
        if not e["event_type"].startswith("notification."):
            continue
        key = f"{e['municipality_code']}:{e['data']['notification_id']}"
        slot = out.setdefault(key, {"received_at": None, "assessed_at": None, "events": 0})
        field = "received_at" if e["event_type"] == "notification.received" else "assessed_at"
        if slot[field] is None or _at(e["occurred_at"]) < _at(slot[field]):
            slot[field] = e["occurred_at"]
        slot["events"] += 1
    return out


def _expected_counts(events: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for e in events:
        counts[e["event_type"]] += 1
    return counts


@pytest.mark.parametrize("service", list(SERVICES))
async def test_batch_redelivery_and_rebuild(stack, prefix, service):
    create, compose, service_topics = SERVICES[service]
    settings = settings_for(service, stack, prefix)
    by_topic, events = _feed(service_topics)
    input_topics = [prefix + t for t in service_topics]
    async with running(create, settings):
        for topic, items in by_topic.items():
            await produce(stack.bootstrap_servers, prefix + topic, items)
        await wait_caught_up(stack.bootstrap_servers, settings.group_id, input_topics, timeout=120)
        live = await dump(stack.mongodb_url, settings.database, NOT_PROJECTIONS)

    # Exactly right: every entity's document against an independent computation.
    docs = {doc_id: doc for collection in live.values() for doc_id, doc in collection.items()}
    applied = sum(len(d.get("applied", [])) for d in docs.values())
    assert applied == len(events)  # every distinct event applied once; duplicates not at all
    counts = _expected_counts(events)
    if service == "intake":
        expected = _expected_notifications(events)
        notes = live["notifications"]
        assert set(notes) == set(expected)
        for key, want in expected.items():
            state = notes[key]["state"]
            for field in ("received_at", "assessed_at"):
                got = state[field]
                assert (got and _at(got)) == (want[field] and _at(want[field])), (key, field)
            assert notes[key]["version"] == want["events"]
        assert len(live["courses"]) == len({e["municipality_code"] for e in events})
    elif service == "analysis":
        assert len(live["reviews"]) == counts["case_review.completed"]
    else:
        assert len(live["plans"]) == counts["development_plan.adopted"]
        assert len(live["meetings"]) == counts["followup.meeting_held"]
        # one change per half-year in which a milestone changed
        half_years: dict[tuple[str, str, str], set[tuple[int, bool]]] = defaultdict(set)
        for e in events:
            if e["event_type"] == "milestone.updated":
                local = _at(e["occurred_at"]).astimezone(COPENHAGEN)
                half_years[(e["municipality_code"], e["data"]["plan_id"], e["data"]["milestone_id"])].add(
                    (local.year, local.month > 6))
        histories = sum(len(d["state"]["history"]) for d in live["milestones"].values())
        assert histories == sum(len(h) for h in half_years.values())
    marks = {e["municipality_code"]: max(_at(x["occurred_at"]) for x in events
                                         if x["municipality_code"] == e["municipality_code"]) for e in events}
    assert {k: datetime.strptime(v["watermark"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
            for k, v in live["watermarks"].items()} == {k: v.timestamp() for k, v in marks.items()}

    # The reporting events carry each entity's latest state and version.
    entities = [d for d in docs.values() if "entity_id" in d]

    def covered(records: list[Any]) -> bool:
        versions = {(d["municipality_code"], d["data"]["entity_id"]): d["data"]["version"]
                    for d in decoded(records)}
        return all(versions.get((d["municipality_code"], d["entity_id"])) == d["version"] for d in entities)

    records = await read_until(stack.bootstrap_servers, prefix + topics.REPORTING, covered, timeout=60)
    reporting = decoded(records)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for event in reporting:
        key = (event["municipality_code"], event["data"]["entity_id"])
        if key not in latest or event["data"]["version"] > latest[key]["data"]["version"]:
            latest[key] = event
    for doc in entities:
        sent = latest[(doc["municipality_code"], doc["entity_id"])]
        assert sent["data"]["state"] == doc["state"]

    # A redelivery of everything (group rewound, service restarted) changes nothing.
    await rewind(stack.bootstrap_servers, settings.group_id, input_topics)
    async with running(create, settings):
        await wait_caught_up(stack.bootstrap_servers, settings.group_id, input_topics, timeout=120)
        assert await dump(stack.mongodb_url, settings.database, NOT_PROJECTIONS) == live

    # A rebuild (drop, replay under a new group, switch over) equals the live projections.
    summary = await rebuild(compose(settings))  # no HTTP app: the service's parts only
    assert summary["records_replayed"] == sum(len(items) for items in by_topic.values())
    assert await dump(stack.mongodb_url, settings.database, NOT_PROJECTIONS) == live
    await wait_caught_up(stack.bootstrap_servers, settings.group_id, input_topics, timeout=5)
    json.dumps(summary)
