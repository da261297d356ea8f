"""The owning services' operational read models over HTTP, against the real servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import topics
from services.analysis.app import create as create_analysis
from services.followup.app import create as create_followup
from services.intake.app import create as create_intake
from tests.support.events import assessed, event, received, review
from tests.support.kafka import produce
from tests.support.offsets import wait_caught_up
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration

TOKEN = "read-models-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def tokens(tmp_path: Path) -> str:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({TOKEN: "*"}))
    return str(path)


async def test_intake_lists_notifications_unassessed_past_24_hours(stack, prefix, tokens):
    settings = settings_for("intake", stack, prefix, TASKFORCE_TOKENS_FILE=tokens)
    events = [received("old-1", "2022-03-01T10:00:00+01:00", urgent=True),
              received("old-2", "2022-03-02T10:00:00+01:00"),
              received("done", "2022-03-01T10:00:00+01:00"), assessed("done", "2022-03-01T11:00:00+01:00"),
              assessed("no-receipt", "2022-03-01T11:00:00+01:00"),
              received("elsewhere", "2022-03-01T10:00:00+01:00", municipality="607")]
    async with running(create_intake, settings) as intake:
        await produce(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, events)
        await wait_caught_up(stack.bootstrap_servers, settings.group_id, [prefix + topics.NOTIFICATIONS])
        async with intake.client(headers=AUTH) as http:
            body = (await http.get("/municipalities/480/notifications/overdue")).json()
            assert (await http.get("/municipalities/48x/notifications/overdue")).status_code == 422
    assert body["count"] == 2
    assert [n["notification_id"] for n in body["notifications"]] == ["old-1", "old-2"]  # oldest first
    assert body["notifications"][0]["urgent"] is True and body["notifications"][0]["hours_waiting"] > 24


async def test_analysis_reports_the_change_between_baseline_and_follow_up(stack, prefix, tokens):
    settings = settings_for("analysis", stack, prefix, TASKFORCE_TOKENS_FILE=tokens)
    events = [review("b1", "2022-03-01T10:00:00+01:00", "baseline", (1, 2, 2, 3), case="k1"),
              review("f1", "2022-09-01T10:00:00+02:00", "follow_up", (3, 3, 2, 4), case="k1"),
              review("b2", "2022-03-02T10:00:00+01:00", "baseline", (2, 2, 1, 1), case="k2"),
              review("f2", "2022-09-02T10:00:00+02:00", "follow_up", (2, 4, 3, 2), case="k2"),
              review("b3", "2022-03-03T10:00:00+01:00", "baseline", (1, 1, 1, 1), case="k3")]
    async with running(create_analysis, settings) as analysis:
        await produce(stack.bootstrap_servers, prefix + topics.CASE_REVIEWS, events)
        await wait_caught_up(stack.bootstrap_servers, settings.group_id, [prefix + topics.CASE_REVIEWS])
        async with analysis.client(headers=AUTH) as http:
            body = (await http.get("/municipalities/480/reviews/changes")).json()
    assert body["reviews"] == 5 and body["cases_rereviewed"] == 2
    # k1: +2 +1 0 +1; k2: 0 +2 +2 +1 -> means
    assert body["mean_change"] == {"assessment": 1.0, "intervention": 1.5, "follow_up": 1.0,
                                   "involvement": 1.0}


async def test_followup_shows_overdue_milestones_and_days_since_the_last_meeting(stack, prefix, tokens):
    settings = settings_for("followup", stack, prefix, TASKFORCE_TOKENS_FILE=tokens)
    milestones = [
        {"milestone_id": "m1", "title": "Skabelon", "due_on": "2022-06-01"},
        {"milestone_id": "m2", "title": "Kurser", "due_on": "2022-09-01"},
        {"milestone_id": "m3", "title": "Langt ude", "due_on": "2099-01-01"}]
    goals = [{"goal_id": "g1", "title": "Mål", "milestones": milestones}]
    plan = {"plan_id": "p1", "course_id": "c1", "goals": goals}
    events = [event("development_plan.adopted", "2022-05-01T10:00:00+02:00", plan),
              event("milestone.updated", "2022-05-20T10:00:00+02:00",
                    {"plan_id": "p1", "milestone_id": "m1", "status": "achieved"}),
              event("milestone.updated", "2022-08-20T10:00:00+02:00",
                    {"plan_id": "p1", "milestone_id": "m2", "status": "at_risk"}),
              event("followup.meeting_held", "2022-06-12T10:00:00+02:00",
                    {"plan_id": "p1", "cases_rereviewed": 2})]
    async with running(create_followup, settings) as followup:
        await produce(stack.bootstrap_servers, prefix + topics.MILESTONES, events)
        await wait_caught_up(stack.bootstrap_servers, settings.group_id, [prefix + topics.MILESTONES])
        async with followup.client(headers=AUTH) as http:
            body = (await http.get("/municipalities/480/plan/status")).json()
            assert (await http.get("/municipalities/607/plan/status")).status_code == 404
    assert body["plan_id"] == "p1"
    assert [(m["milestone_id"], m["status"]) for m in body["overdue_milestones"]] == [("m2", "at_risk")]
    assert body["days_since_last_followup"] > 42 and body["cadence_ok"] is False
