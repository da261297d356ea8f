"""The national workload: a replay of `years` of Denmark's events, every municipality its share.

Volumes (per year, split between the municipalities in proportion to their population,
bench/sizes.py, so that the 98 add up to exactly the national figure):

- notifications: 152,700 a year (DOMAIN.md: Statistics Denmark, 2022), each a
  `notification.received` and a `notification.assessed` (0–120 h later) — 305,400 records;
  85,300 children, so a child is named in 1.8 notifications on average;
- case reviews: 6,000 a year (the bench's assumption; the spec gives no national figure),
  the first half of each municipality's `baseline`, the rest `follow_up`;
- milestone updates: 18,000 a year (assumption), on one development plan per municipality
  with 2 to 40 milestones (one per 9 updates), 2 % listed 30 days before they happened;
- per municipality, fixed: the application, its approval and `course.started` (before the
  replay's first year), the plan's adoption, and a follow-up meeting every 6 weeks.

A year is ~331,000 records, a decade ~3.3 million (DOMAIN.md: 3–4 million). With fewer
municipalities, the chosen ones (spread over the size ranking, `sizes.chosen`) keep their
national share: the workload is that part of the country, not the country squeezed into them.

Records come in the order they happen over all municipalities (a topic replayed), every one
valid under the contract, the same bytes for the same arguments. `expected` says, per
municipality, what its latest summary shows once everything is applied: the period of its
last event, `as_of` = that event's `occurred_at` (the watermark), and the period's counts.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import sizes
from bench.workload import OUTCOMES, REPORTERS, STATUSES, Record, encode
from schemas import topics
from schemas.periods import Period
from schemas.rules import DIMENSIONS

NOTIFICATIONS_PER_YEAR = 152_700
CHILDREN_PER_YEAR = 85_300
CASE_REVIEWS_PER_YEAR = 6_000
MILESTONE_UPDATES_PER_YEAR = 18_000
MEETING_EVERY = timedelta(days=42)
YEAR = timedelta(days=365)
#: The replay starts on 1 January 2022 (local time), the year of DOMAIN.md's figure.
START = Period(2022, 1).start.astimezone(UTC)
SOURCE = "bench.national"
UPDATES_PER_MILESTONE = 9
MILESTONES = (2, 40)


@dataclass(frozen=True)
class Volumes:
    """Each chosen municipality's share of the national volumes over `years`."""

    years: float
    notifications: dict[str, int]
    case_reviews: dict[str, int]
    milestone_updates: dict[str, int]

    @property
    def municipalities(self) -> list[str]:
        return list(self.notifications)

    def as_dict(self) -> dict[str, Any]:
        return {"municipalities": len(self.notifications), "years": self.years,
                "notifications": sum(self.notifications.values()),
                "case_reviews": sum(self.case_reviews.values()),
                "milestone_updates": sum(self.milestone_updates.values())}


def volumes(municipalities: int = 98, years: float = 1.0) -> Volumes:
    """The national totals over `years`, split by population over all 98; the chosen ones' parts."""
    if years <= 0:
        raise ValueError("years must be positive")
    weights = sizes.POPULATION_THOUSANDS
    codes = sizes.chosen(municipalities)

    def part(per_year: int) -> dict[str, int]:
        split = sizes.apportion(round(per_year * years), weights)
        return {code: split[code] for code in codes}

    return Volumes(years, part(NOTIFICATIONS_PER_YEAR), part(CASE_REVIEWS_PER_YEAR),
                   part(MILESTONE_UPDATES_PER_YEAR))


@dataclass
class Expected:
    """What a municipality's latest summary shows once every event of the replay is applied."""

    period: str
    watermark: datetime
    received: int
    case_reviews: int
    meetings: int
    #: Milestones per status (achieved, in_progress, ...): each milestone's latest update.
    statuses: dict[str, int]

    def met_by(self, summary: dict[str, Any]) -> bool:
        """Whether a `committee_summary.published` event's data shows all of it: the period of the
        last event, as of it, every notification received and assessed, every review, every
        meeting, and every milestone at its latest status."""
        data = summary["data"]
        plan = data["development_plan"]
        return (data["period"] == self.period
                and datetime.fromisoformat(data["as_of"]) == self.watermark
                and data["notifications"]["received"] == self.received
                and data["notifications"]["assessed"] == self.received
                and data["case_reviews"]["completed"] == self.case_reviews
                and plan["meetings_held"] == self.meetings
                and all(plan[status] == count for status, count in self.statuses.items()))


@dataclass
class Replay:
    """The records in the order they are published, and what the summaries must show after."""

    volumes: Volumes
    records: list[Record] = field(default_factory=list)
    expected: dict[str, Expected] = field(default_factory=dict)

    def by_topic(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for topic, _key, _value in self.records:
            counts[topic] = counts.get(topic, 0) + 1
        return counts

    def scale(self) -> dict[str, Any]:
        """The volumes as the results document records them."""
        return dict(self.volumes.as_dict(), records=len(self.records), records_by_topic=self.by_topic())


#: (listed at, tiebreak, topic, event) before encoding.
Timed = tuple[datetime, int, str, dict[str, Any]]


class _Municipality:
    """One municipality's events over the span, from its own random stream."""

    def __init__(self, code: str, seed: int, end: datetime) -> None:
        self.code = code
        self.rng = random.Random(f"{seed}-{code}")
        self.end = end
        self.events: list[Timed] = []
        self.occurred: list[tuple[str, datetime]] = []  # (kind, occurred_at) for the expectations
        self.latest: dict[str, tuple[datetime, str]] = {}  # milestone → (occurred_at, status)

    def emit(self, topic: str, event_type: str, at: datetime, data: dict[str, Any],
             listed: datetime | None = None, kind: str = "") -> None:
        event = {"event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                 "event_type": event_type, "schema_version": 1, "occurred_at": at.isoformat(),
                 "municipality_code": self.code, "source": SOURCE, "data": data}
        self.events.append((listed or at, len(self.events), topic, event))
        self.occurred.append((kind, at))

    def spread(self, count: int, index: int) -> datetime:
        """The `index`-th of `count` instants spread over the span, jittered, whole seconds."""
        span = (self.end - START).total_seconds() - 2
        return START + timedelta(seconds=int(span * (index + self.rng.random()) / count))

    def course(self) -> None:
        app_id, code = f"a-{self.code}-1", self.code
        submitted = START - timedelta(days=150)
        self.emit(topics.APPLICATIONS, "application.submitted", submitted, {
            "application_id": app_id, "reasons": ["rising_notifications", "competence_gap"]})
        self.emit(topics.APPLICATIONS, "application.decided", submitted + timedelta(days=20), {
            "application_id": app_id, "decision": "approved",
            "expected_start": (submitted + timedelta(days=60)).date().isoformat()})
        self.emit(topics.APPLICATIONS, "course.started", submitted + timedelta(days=60), {
            "course_id": f"c-{code}-1", "application_id": app_id,
            "planned_end": (submitted + timedelta(days=790)).date().isoformat()})

    def notifications(self, count: int) -> None:
        children = max(1, round(count * CHILDREN_PER_YEAR / NOTIFICATIONS_PER_YEAR))
        last = self.end - timedelta(seconds=1)
        for i in range(count):
            received = self.spread(count, i)
            nid = f"n{self.code}-{i}"
            self.emit(topics.NOTIFICATIONS, "notification.received", received, {
                "notification_id": nid, "child_ref": f"child-{self.code}-{i % children}",
                "reporter": REPORTERS[self.rng.randrange(len(REPORTERS))],
                "urgent": self.rng.random() < 0.1}, kind="received")
            delay = timedelta(seconds=int(min(self.rng.expovariate(1 / 12), 120) * 3600))
            self.emit(topics.NOTIFICATIONS, "notification.assessed", min(received + delay, last), {
                "notification_id": nid, "outcome": OUTCOMES[self.rng.randrange(len(OUTCOMES))]})

    def case_reviews(self, count: int) -> None:
        for i in range(count):
            findings = [{"code": f"sel{self.rng.choice((48, 50, 68, 140, 155))}.x",
                         "severity": "major" if self.rng.random() < 0.2 else "minor"}
                        for _ in range(self.rng.choice((0, 0, 1, 2)))]
            self.emit(topics.CASE_REVIEWS, "case_review.completed", self.spread(count, i), {
                "review_id": f"r-{self.code}-{i}", "course_id": f"c-{self.code}-1",
                "case_ref": f"case-{self.code}-{i}",
                "phase": "baseline" if i < count // 2 else "follow_up",
                "ratings": {d: self.rng.randint(1, 4) for d in DIMENSIONS},
                "legal_findings": findings}, kind="review")

    def plan(self, updates: int) -> None:
        plan_id = f"p-{self.code}-1"
        adopted = START - timedelta(days=60)
        low, high = MILESTONES
        count = max(low, min(high, math.ceil(updates / UPDATES_PER_MILESTONE)))
        milestones = [f"m{m}" for m in range(count)]
        goals = [{"goal_id": f"g{g}", "title": f"Mål {g}", "milestones": [
            {"milestone_id": m, "title": f"Delmål {m}",
             "due_on": (START + timedelta(days=30 * (1 + n % 24))).date().isoformat()}
            for n, m in enumerate(milestones) if n % 2 == g]} for g in range(2)]
        self.emit(topics.MILESTONES, "development_plan.adopted", adopted, {
            "plan_id": plan_id, "course_id": f"c-{self.code}-1", "goals": goals})
        at = START + timedelta(hours=10)
        while at < self.end:
            self.emit(topics.MILESTONES, "followup.meeting_held", at, {
                "plan_id": plan_id, "cases_rereviewed": self.rng.randint(0, 12)}, kind="meeting")
            at += MEETING_EVERY
        for i in range(updates):
            at = self.spread(updates, i)
            listed = at - timedelta(days=30) if self.rng.random() < 0.02 else at
            milestone, status = milestones[i % count], STATUSES[self.rng.randrange(len(STATUSES))]
            self.emit(topics.MILESTONES, "milestone.updated", at, {
                "plan_id": plan_id, "milestone_id": milestone, "status": status}, listed=listed)
            if milestone not in self.latest or self.latest[milestone][0] < at:
                self.latest[milestone] = (at, status)
        self.milestones = len(milestones)

    def expected(self) -> Expected:
        watermark = max(at for _kind, at in self.occurred)
        period = Period.of(watermark)

        def count(kind: str) -> int:
            return sum(1 for k, at in self.occurred if k == kind and period.contains(at))

        statuses = {status: 0 for status in STATUSES}
        for _at, status in self.latest.values():
            statuses[status] += 1
        statuses["not_started"] = self.milestones - len(self.latest)
        return Expected(period.name, watermark, count("received"), count("review"), count("meeting"),
                        statuses)


def replay(municipalities: int = 98, years: float = 1.0, seed: int = 11) -> Replay:
    """The national replay: every chosen municipality's events, in the order they happen."""
    plan = volumes(municipalities, years)
    end = START + YEAR * years
    out = Replay(plan)
    timed: list[tuple[datetime, str, int, str, dict[str, Any]]] = []
    for code in plan.municipalities:
        one = _Municipality(code, seed, end)
        one.course()
        one.plan(plan.milestone_updates[code])
        one.case_reviews(plan.case_reviews[code])
        one.notifications(plan.notifications[code])
        out.expected[code] = one.expected()
        timed.extend((listed, code, n, topic, event) for listed, n, topic, event in one.events)
    timed.sort(key=lambda item: (item[0], item[1], item[2]))
    out.records = [encode(topic, event) for _at, _code, _n, topic, event in timed]
    return out
