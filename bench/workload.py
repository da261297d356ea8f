"""Deterministic, valid input events for the benchmark, already encoded as Kafka records.

Every record is `(topic, key, value)` with the topic unprefixed, the key the municipality
code and the value the event's JSON, exactly as a municipal system would publish it. The
same seed always gives the same bytes, so the raw consumer and each service see the same
input. Events come roughly in the order they happen (as they would from a live system),
with a small, random delay between a notification's receipt and its assessment in the
stream.
"""

from __future__ import annotations

import heapq
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import topics
from schemas.rules import DIMENSIONS

Record = tuple[str, bytes, bytes]

MUNICIPALITIES = ("480", "849", "330", "482", "607")
START = datetime(2020, 3, 2, 8, 0, tzinfo=UTC)
SPAN = timedelta(days=4 * 365)  # eight half-year periods
SOURCE = "bench.generator"
REPORTERS = ("school", "daycare", "health", "police", "social_services", "family", "anonymous", "other")
OUTCOMES = ("no_action", "advice_and_guidance", "child_investigation_opened", "immediate_measure",
            "referred_elsewhere")
STATUSES = ("in_progress", "at_risk", "achieved", "missed")
COURSE_EVENTS = 3 * len(MUNICIPALITIES)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def envelope(rng: random.Random, event_type: str, at: datetime, code: str,
             data: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": _uuid(rng), "event_type": event_type, "schema_version": 1,
            "occurred_at": at.isoformat(), "municipality_code": code, "source": SOURCE, "data": data}


def encode(topic: str, event: dict[str, Any]) -> Record:
    return topic, event["municipality_code"].encode(), json.dumps(event, separators=(",", ":")).encode()


def course_events(rng: random.Random) -> list[Record]:
    """Each municipality applies, is approved and starts its course before any notification."""
    out = []
    for i, code in enumerate(MUNICIPALITIES):
        at = START - timedelta(days=90 - i)
        app_id, course_id = f"a-{code}-1", f"c-{code}-1"
        out.append(encode(topics.APPLICATIONS, envelope(rng, "application.submitted", at, code, {
            "application_id": app_id, "reasons": ["rising_notifications", "competence_gap"]})))
        out.append(encode(topics.APPLICATIONS, envelope(rng, "application.decided", at + timedelta(days=20),
                                                        code, {
            "application_id": app_id, "decision": "approved",
            "expected_start": (at + timedelta(days=60)).date().isoformat()})))
        started = at + timedelta(days=60)
        out.append(encode(topics.APPLICATIONS, envelope(rng, "course.started", started, code, {
            "course_id": course_id, "application_id": app_id,
            "planned_end": (at + timedelta(days=760)).date().isoformat()})))
    return out


def intake_events(count: int, seed: int = 1) -> Iterator[Record]:
    """`count` intake records: the courses, then notification receipts and assessments in pairs.

    A generator, so a million records can be produced in chunks without holding them all.
    """
    rng = random.Random(seed)
    emitted = 0
    for record in course_events(rng)[:count]:
        yield record
        emitted += 1
    remaining = count - emitted
    pairs = (remaining + 1) // 2
    if pairs <= 0:
        return
    step = SPAN / pairs
    due: list[tuple[int, int, Record]] = []  # (emit after receipt number, tiebreak, record)
    for n in range(pairs):
        code = MUNICIPALITIES[n % len(MUNICIPALITIES)]
        nid = f"n{code}-{n}"
        received_at = START + step * n
        yield encode(topics.NOTIFICATIONS, envelope(rng, "notification.received", received_at, code, {
            "notification_id": nid, "child_ref": f"child-{code}-{n % 40_000}",
            "reporter": REPORTERS[rng.randrange(len(REPORTERS))], "urgent": rng.random() < 0.1}))
        emitted += 1
        if emitted < count:
            assessed_at = received_at + timedelta(hours=min(rng.expovariate(1 / 12), 120))
            record = encode(topics.NOTIFICATIONS, envelope(rng, "notification.assessed", assessed_at, code, {
                "notification_id": nid, "outcome": OUTCOMES[rng.randrange(len(OUTCOMES))]}))
            heapq.heappush(due, (n + rng.randint(0, 6), n, record))
        while due and (due[0][0] <= n or n == pairs - 1) and emitted < count:
            yield heapq.heappop(due)[2]
            emitted += 1
    while due and emitted < count:
        yield heapq.heappop(due)[2]
        emitted += 1


def analysis_events(count: int, seed: int = 2) -> list[Record]:
    """`count` completed case reviews over the eight periods, baseline first, then follow-up."""
    rng = random.Random(seed)
    step = SPAN / max(count, 1)
    out = []
    for i in range(count):
        code = MUNICIPALITIES[i % len(MUNICIPALITIES)]
        findings = [{"code": f"sel{rng.choice((48, 50, 68, 140, 155))}.x",
                     "severity": "major" if rng.random() < 0.2 else "minor"}
                    for _ in range(rng.choice((0, 0, 1, 2)))]
        at = START + step * i
        out.append(encode(topics.CASE_REVIEWS, envelope(rng, "case_review.completed", at, code, {
            "review_id": f"r-{code}-{i}", "course_id": f"c-{code}-1", "case_ref": f"case-{code}-{i % 3000}",
            "phase": "baseline" if i < count // 2 else "follow_up",
            "ratings": {d: rng.randint(1, 4) for d in DIMENSIONS},
            "legal_findings": findings})))
    return out


MILESTONES_PER_PLAN = 8
UPDATES_PER_MILESTONE = 3
MEETINGS_PER_PLAN = 6
EVENTS_PER_PLAN = 1 + MILESTONES_PER_PLAN * UPDATES_PER_MILESTONE + MEETINGS_PER_PLAN


def followup_events(count: int, seed: int = 3) -> list[Record]:
    """`count` follow-up records: plans with 8 milestones updated 3 times each, 6 meetings per plan.

    Sorted by occurrence over all plans; an update is sometimes listed after a newer one
    (the out-of-order case the service resolves).
    """
    rng = random.Random(seed)
    plans = max(1, -(-count // EVENTS_PER_PLAN))
    timed: list[tuple[datetime, int, dict[str, Any]]] = []
    for p in range(plans):
        code = MUNICIPALITIES[p % len(MUNICIPALITIES)]
        plan_id = f"p-{code}-{p}"
        adopted = START + SPAN * (p / plans) * 0.7
        goals = [{"goal_id": f"g{g}", "title": f"Mål {g}", "milestones": [
            {"milestone_id": f"m{g}-{m}", "title": f"Delmål {g}.{m}",
             "due_on": (adopted + timedelta(days=60 * (m + 1) + 30 * g)).date().isoformat()}
            for m in range(MILESTONES_PER_PLAN // 2)]} for g in range(2)]
        timed.append((adopted, len(timed), envelope(rng, "development_plan.adopted", adopted, code, {
            "plan_id": plan_id, "course_id": f"c-{code}-1", "goals": goals})))
        for goal in goals:
            for milestone in goal["milestones"]:
                at = adopted
                for _u in range(UPDATES_PER_MILESTONE):
                    at += timedelta(days=rng.randint(5, 90), hours=rng.randint(0, 8))
                    listed = at - timedelta(days=30) if rng.random() < 0.02 else at
                    timed.append((listed, len(timed), envelope(rng, "milestone.updated", at, code, {
                        "plan_id": plan_id, "milestone_id": milestone["milestone_id"],
                        "status": STATUSES[rng.randrange(len(STATUSES))]})))
        for m in range(MEETINGS_PER_PLAN):
            at = adopted + timedelta(days=42 * (m + 1) + rng.randint(-3, 3), hours=5)
            timed.append((at, len(timed), envelope(rng, "followup.meeting_held", at, code, {
                "plan_id": plan_id, "cases_rereviewed": rng.randint(0, 12)})))
    timed.sort(key=lambda item: (item[0], item[1]))
    return [encode(topics.MILESTONES, event) for _at, _i, event in timed[:count]]


def live_notification_id(code: str, number: int, run: str) -> str:
    return f"live-{run}-{code}-{number}"


def live_notification(code: str, number: int, at: datetime, run: str) -> Record:
    """One new notification received now, for the latency measurement."""
    rng = random.Random(f"{run}-{code}-{number}")
    return encode(topics.NOTIFICATIONS, envelope(rng, "notification.received", at, code, {
        "notification_id": live_notification_id(code, number, run),
        "child_ref": f"child-live-{number % 1000}",
        "reporter": "school", "urgent": False}))
