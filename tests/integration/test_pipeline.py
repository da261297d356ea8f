"""All four services against the real servers: input events in, exact summaries out."""

from __future__ import annotations

import asyncio
import json

import pytest

from schemas import topics
from services.analysis.app import create as create_analysis
from services.followup.app import create as create_followup
from services.intake.app import create as create_intake
from services.reporting.app import create as create_reporting
from tests.support.events import approved_course, assessed, event, received, review
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration


def scenario() -> dict[str, list[dict]]:
    apps = approved_course()
    notes = [
        received("n1", "2022-03-01T10:00:00+01:00", urgent=True), assessed("n1", "2022-03-01T16:00:00+01:00"),
        received("n2", "2022-03-26T12:00:00+01:00"), assessed("n2", "2022-03-27T12:00:00+02:00"),  # 23 h, DST
        received("n3", "2022-05-02T08:00:00+02:00"), assessed("n3", "2022-05-04T08:00:00+02:00"),  # 48 h
        received("n4", "2022-06-30T23:00:00+02:00"), assessed("n4", "2022-07-01T09:00:00+02:00"),  # 10 h, H1
        received("n5", "2022-06-10T08:00:00+02:00"),  # never assessed
        received("n6", "2022-07-01T00:30:00+02:00"),  # H2
    ]
    reviews = [
        review("r1", "2022-04-01T10:00:00+02:00", "baseline", (2, 3, 2, 4), case="k1", findings=("major",)),
        review("r2", "2022-04-02T10:00:00+02:00", "baseline", (3, 3, 1, 2), case="k2", findings=("minor",)),
    ]
    plan = [
        event("development_plan.adopted", "2022-05-01T10:00:00+02:00", {
            "plan_id": "p1", "course_id": "c-480-1", "goals": [{"goal_id": "g1", "title": "Bedre udredning",
            "milestones": [{"milestone_id": "m1", "title": "Ny skabelon", "due_on": "2022-06-01"},
                           {"milestone_id": "m2", "title": "Kurser", "due_on": "2022-12-01"}]}]}),
        event("milestone.updated", "2022-06-15T10:00:00+02:00",
              {"plan_id": "p1", "milestone_id": "m1", "status": "achieved"}),
        event("milestone.updated", "2022-06-01T10:00:00+02:00",  # older: must not win
              {"plan_id": "p1", "milestone_id": "m1", "status": "at_risk"}),
        event("followup.meeting_held", "2022-06-12T10:00:00+02:00", {"plan_id": "p1", "cases_rereviewed": 3}),
    ]
    return {topics.APPLICATIONS: apps, topics.NOTIFICATIONS: notes, topics.CASE_REVIEWS: reviews,
            topics.MILESTONES: plan}


async def test_input_events_become_exact_summaries(stack, prefix, tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"all-token": "*", "fredericia-token": "607"}))
    creates = {"intake": create_intake, "analysis": create_analysis, "followup": create_followup,
               "reporting": create_reporting}
    settings = {name: settings_for(name, stack, prefix, TASKFORCE_TOKENS_FILE=str(tokens))
                for name in creates}
    async with (running(creates["reporting"], settings["reporting"]) as reporting,
                running(creates["intake"], settings["intake"]),
                running(creates["analysis"], settings["analysis"]),
                running(creates["followup"], settings["followup"])):
        for topic, events in scenario().items():
            await produce(stack.bootstrap_servers, prefix + topic, events)

        def settled(records):
            latest = {}
            for s in decoded(records):
                latest[s["data"]["period"]] = s["data"]
            h1 = latest.get("2022H1")
            return bool(h1 and h1["notifications"]["received"] == 5 and h1["case_reviews"]["completed"] == 2
                        and h1["development_plan"]["meetings_held"] == 1 and "2022H2" in latest
                        and h1["course"]["status"] == "running")

        records = await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, settled, timeout=60)
        await asyncio.sleep(1.0)  # let any last draft land, then read the latest over HTTP
        async with reporting.client(headers={"Authorization": "Bearer all-token"}) as http:
            h1 = (await http.get("/municipalities/480/summaries/2022H1")).json()
            listing = (await http.get("/municipalities/480/summaries")).json()
        async with reporting.client() as anonymous:
            assert (await anonymous.get("/municipalities/480/summaries/2022H1")).status_code == 401
        async with reporting.client(headers={"Authorization": "Bearer fredericia-token"}) as other:
            refused = await other.get("/municipalities/480/summaries/2022H1")
            assert refused.status_code == 403 and refused.content == b""
            assert (await other.get("/municipalities/607/summaries/2022H1")).status_code == 404

        # The watermark (1 July 09:00) has not passed the end + 14 days: a command finalises.
        command = event("summary.requested", "2022-07-02T08:00:00+02:00", {"period": "2022H1", "final": True})
        await produce(stack.bootstrap_servers, prefix + topics.COMMANDS, [command])

        def h1_finals(records):
            return [s["data"] for s in decoded(records)
                    if s["data"]["period"] == "2022H1" and s["data"]["status"] == "final"]

        finals = await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, h1_finals)
        final = h1_finals(finals)[0]

        # A late notification for the final period: a revised summary, revision 1.
        await produce(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS,
                      [received("n7", "2022-06-20T09:00:00+02:00")])

        def h1_revised(records):
            return [s["data"] for s in decoded(records)
                    if s["data"]["period"] == "2022H1" and s["data"]["status"] == "revised"]

        late = await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, h1_revised)
        revised = h1_revised(late)[0]

    assert decoded(records)[-1]["source"] == "taskforce.reporting"
    assert h1["municipality_code"] == "480"
    assert h1["status"] == "draft"
    assert {k: v for k, v in final.items() if k != "status"} == {k: v for k, v in h1.items()
                                                                 if k not in ("status", "municipality_code")}
    n = h1["notifications"]
    assert (n["received"], n["assessed"], n["assessed_within_24h"]) == (5, 4, 3)
    assert n["share_within_24h"] == 0.6
    assert n["median_hours_to_assessment"] == 16.5  # hours 6, 23, 48, 10 -> (10 + 23) / 2
    assert (n["overdue_unassessed"], n["urgent_received"]) == (1, 1)
    r = h1["case_reviews"]
    assert (r["completed"], r["baseline"], r["follow_up"]) == (2, 2, 0)
    assert r["mean_rating"] == {"assessment": 2.5, "intervention": 3.0, "follow_up": 1.5, "involvement": 3.0}
    assert r["share_meeting_standard"] == {"assessment": 0.5, "intervention": 1.0, "follow_up": 0.0,
                                           "involvement": 0.5}
    assert r["legal_findings"] == {"major": 1, "minor": 1}
    p = h1["development_plan"]
    assert (p["milestones_total"], p["achieved"], p["not_started"], p["overdue"]) == (2, 1, 1, 0)
    assert p["meetings_held"] == 1
    assert p["longest_gap_days"] == 42 and p["cadence_ok"] is True  # 1 May -> 12 Jun, 12 Jun -> 1 Jul
    c = h1["course"]
    assert c == {"status": "running", "course_id": "c-480-1", "started_on": "2022-02-01",
                 "planned_end": "2024-01-31", "month_of_course": 6}
    assert h1["as_of"] == "2022-07-01T00:00:00+02:00"
    assert {row["period"] for row in listing["periods"]} == {"2021H2", "2022H1", "2022H2"}
    assert revised["revision"] == 1
    assert revised["notifications"]["received"] == 6 and revised["notifications"]["overdue_unassessed"] == 2
