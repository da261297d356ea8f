"""The demo scenario generator: deterministic, valid, faithful to the seeds, with problems."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas import topics
from schemas.decode import Rejection, decode
from schemas.events import INPUT_TYPES
from taskforce import demo

pytestmark = pytest.mark.unit

TZ = ZoneInfo("Europe/Copenhagen")
CPR = re.compile(r"\b\d{6}-?\d{4}\b")
CODES = {"480", "849", "482", "607", "330"}
Event = dict[str, Any]


@pytest.fixture(scope="module")
def small() -> list[Event]:
    return demo.generate(volume=0.1)


@pytest.fixture(scope="module")
def full() -> list[Event]:
    return demo.generate()


def when(event: Event) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def period(moment: datetime) -> str:
    local = moment.astimezone(TZ)
    return f"{local.year}H{1 if local.month < 7 else 2}"


def of_type(events: list[Event], event_type: str, code: str | None = None) -> list[Event]:
    return [e for e in events if e["event_type"] == event_type
            and (code is None or e["municipality_code"] == code)]


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def assessment_hours(events: list[Event]) -> dict[str, tuple[str, float | None]]:
    """notification_id -> (period of receipt, hours to assessment or None)."""
    received = {e["data"]["notification_id"]: when(e)
                for e in of_type(events, "notification.received")}
    assessed = {e["data"]["notification_id"]: when(e)
                for e in of_type(events, "notification.assessed")}
    return {nid: (period(at), (assessed[nid] - at).total_seconds() / 3600
                  if nid in assessed else None)
            for nid, at in received.items()}


# --- determinism and validity -------------------------------------------------------------


def test_same_seed_gives_identical_bytes() -> None:
    first = json.dumps(demo.generate(7, volume=0.05), ensure_ascii=False)
    again = json.dumps(demo.generate(7, volume=0.05), ensure_ascii=False)
    other = json.dumps(demo.generate(8, volume=0.05), ensure_ascii=False)
    assert first == again
    assert first != other


def test_written_feeds_are_byte_identical(tmp_path: Path) -> None:
    events = demo.generate(3, volume=0.05)
    a = demo.write_feeds(events, tmp_path / "a")
    b = demo.write_feeds(demo.generate(3, volume=0.05), tmp_path / "b")
    assert set(a) == set(b) == {f"{t}.jsonl" for t in topics.INPUT_TOPICS} | {
        demo.CSV_SAMPLE_NAME}
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes()
    lines = sum(len(a[f"{t}.jsonl"].read_bytes().splitlines()) for t in topics.INPUT_TOPICS)
    assert lines == len(events)


def test_every_event_is_valid_on_its_topic(small: list[Event]) -> None:
    for event in small:
        topic = INPUT_TYPES[event["event_type"]][1]
        result = decode(topic, json.dumps(event).encode())
        assert not isinstance(result, Rejection), (result, event["event_type"])


def test_event_ids_are_unique_uuids(small: list[Event]) -> None:
    ids = [e["event_id"] for e in small]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                            i) for i in ids)


def test_timestamps_are_copenhagen_local_with_offset(small: list[Event]) -> None:
    for event in small:
        moment = when(event)
        assert moment.utcoffset() == moment.astimezone(TZ).utcoffset()
        assert event["occurred_at"].endswith(("+01:00", "+02:00"))


def test_no_cpr_like_number_anywhere(full: list[Event]) -> None:
    assert not [s for e in full for s in strings(e) if CPR.search(s)]


def test_list_is_in_time_order_except_early_assessments(small: list[Event]) -> None:
    position = {e["data"]["notification_id"]: i
                for i, e in enumerate(small) if e["event_type"] == "notification.received"}
    early = {i for i, e in enumerate(small) if e["event_type"] == "notification.assessed"
             and i < position[e["data"]["notification_id"]]}
    assessed = len(of_type(small, "notification.assessed"))
    assert 0 < len(early) <= 0.04 * assessed
    # a stale milestone update may follow a newer one; everything else is in time order
    rest = [when(e) for i, e in enumerate(small)
            if i not in early and e["event_type"] != "milestone.updated"]
    assert rest == sorted(rest)


# --- the seed municipalities --------------------------------------------------------------


def test_every_seed_municipality_runs_a_course(small: list[Event]) -> None:
    assert {e["municipality_code"] for e in small} == CODES
    for code in CODES:
        chain = [e["event_type"] for e in small if e["municipality_code"] == code
                 and INPUT_TYPES[e["event_type"]][1] == topics.APPLICATIONS]
        expected = ["application.submitted", "application.decided", "course.started"]
        assert chain == (expected if code == "482" else [*expected, "course.completed"])
        decided = of_type(small, "application.decided", code)[0]
        assert decided["data"]["decision"] == "approved"
        started = of_type(small, "course.started", code)[0]
        assert started["data"]["course_id"] == f"c-{code}-1"
        length = date.fromisoformat(started["data"]["planned_end"]) - when(started).date()
        assert 600 <= length.days <= 750  # 20 months to about 2 years


def test_dates_and_reasons_follow_the_press_releases(small: list[Event]) -> None:
    def first(event_type: str, code: str) -> Event:
        return of_type(small, event_type, code)[0]

    nordfyn = first("application.submitted", "480")
    assert when(nordfyn).strftime("%Y-%m") == "2019-11"
    assert set(nordfyn["data"]["reasons"]) >= {"rising_caseload", "rising_notifications"}
    assert when(first("application.decided", "480")).date() == date(2019, 12, 17)
    assert when(first("course.started", "480")).strftime("%Y-%m") == "2020-02"
    assert first("application.submitted", "482")["data"]["reasons"] == ["quality_concerns"]
    assert when(first("application.submitted", "482")).strftime("%Y-%m") == "2021-12"
    assert when(first("course.started", "482")).strftime("%Y-%m") == "2022-09"
    assert when(first("course.started", "607")).strftime("%Y-%m") == "2021-06"
    assert when(first("course.started", "330")).year == 2020
    assert when(first("application.submitted", "330")).year == 2019
    assert when(first("course.started", "849")).year == 2020


def test_nothing_happens_after_the_course_or_the_scenario(small: list[Event]) -> None:
    assert max(when(e) for e in small) <= demo.SCENARIO_END
    for completed in of_type(small, "course.completed"):
        code = completed["municipality_code"]
        assert max(when(e) for e in small if e["municipality_code"] == code) == when(completed)


def test_plan_shape_and_milestones(small: list[Event]) -> None:
    for code in CODES:
        (plan,) = of_type(small, "development_plan.adopted", code)
        goals = plan["data"]["goals"]
        milestones = [m for g in goals for m in g["milestones"]]
        assert 2 <= len(goals) <= 4
        assert 6 <= len(milestones) <= 10
        started = when(of_type(small, "course.started", code)[0])
        assert 60 <= (when(plan) - started).days <= 300
        ids = {m["milestone_id"] for m in milestones}
        updated = {e["data"]["milestone_id"] for e in of_type(small, "milestone.updated", code)}
        assert updated <= ids
        assert all(when(u) > when(plan) for u in of_type(small, "milestone.updated", code))


def test_baseline_then_follow_up_reviews_of_the_same_cases(small: list[Event]) -> None:
    for code in CODES:
        reviews = of_type(small, "case_review.completed", code)
        baseline = [r for r in reviews if r["data"]["phase"] == "baseline"]
        follow_up = [r for r in reviews if r["data"]["phase"] == "follow_up"]
        plan = of_type(small, "development_plan.adopted", code)[0]
        assert 15 <= len(baseline) <= 25
        assert all(when(r) < when(plan) for r in baseline)
        assert {r["data"]["case_ref"] for r in follow_up} <= {
            r["data"]["case_ref"] for r in baseline}
        meetings = of_type(small, "followup.meeting_held", code)
        assert sum(m["data"]["cases_rereviewed"] for m in meetings) == len(follow_up)
        assert all(r["data"]["course_id"] == f"c-{code}-1" for r in reviews)


def test_follow_up_ratings_mostly_improve(small: list[Event]) -> None:
    latest: dict[str, dict[str, int]] = {}
    better = worse = 0
    for review in of_type(small, "case_review.completed"):
        ratings, ref = review["data"]["ratings"], review["data"]["case_ref"]
        if review["data"]["phase"] == "follow_up":
            better += sum(ratings[d] > latest[ref][d] for d in demo.DIMENSIONS)
            worse += sum(ratings[d] < latest[ref][d] for d in demo.DIMENSIONS)
        latest[ref] = ratings
    assert better > 3 * worse > 0


def test_legal_findings_mostly_minor(small: list[Event]) -> None:
    severities = Counter(f["severity"] for r in of_type(small, "case_review.completed")
                         for f in r["data"]["legal_findings"])
    assert severities["minor"] > 2 * severities["major"] > 0


# --- notifications ------------------------------------------------------------------------


def test_volume_is_in_the_promised_range(full: list[Event]) -> None:
    assert 15_000 <= len(full) <= 30_000
    per_half_year = Counter((e["municipality_code"], period(when(e)))
                            for e in of_type(full, "notification.received"))
    for code in CODES:
        periods = sorted(p for c, p in per_half_year if c == code)
        # the last half-year is cut short by the course's (or the scenario's) end
        assert all(280 <= per_half_year[code, p] <= 700 for p in periods[:-1]), code


def test_volume_scales_notifications_only(small: list[Event], full: list[Event]) -> None:
    ratio = len(of_type(small, "notification.received")) / len(
        of_type(full, "notification.received"))
    assert 0.08 <= ratio <= 0.12
    for kind in ("case_review.completed", "milestone.updated", "followup.meeting_held"):
        assert len(of_type(small, kind)) == len(of_type(full, kind))


def test_reporter_mix_follows_statistics_denmark(full: list[Event]) -> None:
    received = of_type(full, "notification.received")
    share = Counter(e["data"]["reporter"] for e in received)
    assert abs(share["school"] / len(received) - 0.21) < 0.02
    assert abs(share["health"] / len(received) - 0.196) < 0.02
    assert abs(share["police"] / len(received) - 0.125) < 0.02
    assert set(share) == {"school", "daycare", "health", "police", "social_services", "family",
                          "anonymous", "other"}
    assert 0.05 < sum(e["data"]["urgent"] for e in received) / len(received) < 0.2


def test_child_refs_are_pseudonymous_and_some_repeat(full: list[Event]) -> None:
    refs = Counter(e["data"]["child_ref"] for e in of_type(full, "notification.received"))
    assert all(re.fullmatch(r"b-\d{3}-\d{6}", ref) for ref in refs)
    assert 1.4 < sum(refs.values()) / len(refs) < 2.3


# --- the problems a committee should see --------------------------------------------------


def test_most_assessed_within_a_day_some_late_a_few_never(full: list[Event]) -> None:
    hours = [h for _, h in assessment_hours(full).values()]
    assessed = [h for h in hours if h is not None]
    assert all(h >= 0 for h in assessed)
    within = sum(h <= 24 for h in assessed) / len(hours)
    assert 0.85 < within < 0.97
    assert any(h > 24 for h in assessed)
    assert 0 < hours.count(None) < 0.02 * len(hours)


def test_nordfyn_share_within_24h_drops_in_2021h1(full: list[Event]) -> None:
    shares = defaultdict(lambda: [0, 0])
    nordfyn = [e for e in full if e["municipality_code"] == "480"]
    for p, h in assessment_hours(nordfyn).values():
        shares[p][0] += 1
        shares[p][1] += h is not None and h <= 24
    share = {p: within / received for p, (received, within) in shares.items()}
    assert share["2021H1"] < share["2020H2"] - 0.15
    assert share["2021H2"] > share["2021H1"] + 0.1


def test_one_municipality_misses_the_six_week_cadence(small: list[Event]) -> None:
    longest = {}
    for code in CODES:
        plan = of_type(small, "development_plan.adopted", code)[0]
        dates = [when(plan).date()] + [when(m).date()
                                       for m in of_type(small, "followup.meeting_held", code)]
        assert len(dates) >= 8
        longest[code] = max((b - a).days for a, b in pairwise(dates))
    assert [code for code, gap in longest.items() if gap > 42] == ["330"]
    assert 56 <= longest["330"] <= 72


def test_some_milestones_are_overdue(small: list[Event]) -> None:
    due = {m["milestone_id"]: date.fromisoformat(m["due_on"])
           for plan in of_type(small, "development_plan.adopted")
           for goal in plan["data"]["goals"] for m in goal["milestones"]}
    achieved: dict[str, date] = {}
    for update in of_type(small, "milestone.updated"):
        if update["data"]["status"] == "achieved":
            achieved.setdefault(update["data"]["milestone_id"], when(update).date())
    end = demo.SCENARIO_END.date()
    overdue = [mid for mid, d in due.items()
               if (mid in achieved and achieved[mid] > d) or (mid not in achieved and d < end)]
    assert len(overdue) >= 5
    statuses = Counter(e["data"]["status"] for e in of_type(small, "milestone.updated"))
    assert statuses["at_risk"] > 0 and statuses["missed"] > 0 and statuses["achieved"] > 0


def test_an_older_milestone_update_arrives_after_a_newer_one(small: list[Event]) -> None:
    seen: dict[str, datetime] = {}
    stale = 0
    for update in of_type(small, "milestone.updated"):
        mid = update["data"]["milestone_id"]
        stale += mid in seen and when(update) < seen[mid]
        seen[mid] = max(seen.get(mid, when(update)), when(update))
    assert stale >= 1


def test_rejects_a_negative_volume() -> None:
    with pytest.raises(ValueError):
        demo.generate(volume=-1)
