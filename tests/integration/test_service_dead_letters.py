"""Each owning service sends its own kinds of invalid events to the DLQ, with the reason."""

from __future__ import annotations

import copy
import json

import pytest

from schemas import topics
from services.analysis.app import create as create_analysis
from services.followup.app import create as create_followup
from tests.support.events import event, review
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration


def _review_cases() -> tuple[list[bytes], list[str], int]:
    good = review("r-ok", "2022-04-01T10:00:00+02:00", "baseline", (3, 3, 3, 3))
    rating_5 = copy.deepcopy(good)
    rating_5["data"]["ratings"]["assessment"] = 5
    missing = copy.deepcopy(good)
    del missing["data"]["ratings"]["involvement"]
    cpr = copy.deepcopy(good)
    cpr["data"]["case_ref"] = "sag 0101901234"
    bad = [rating_5, missing, cpr]
    for item in bad:
        item["event_id"] = event("x", "2022-01-01T00:00:00+01:00", {})["event_id"]
    values = [json.dumps(e).encode() for e in [bad[0], good, bad[1], bad[2]]]
    return values, ["cpr_number", "invalid_event", "invalid_event"], 1


def _milestone_cases() -> tuple[list[bytes], list[str], int]:
    plan = {"plan_id": "p1", "course_id": "c1", "goals": [{"goal_id": "g1", "title": "Mål", "milestones": [
        {"milestone_id": "m1", "title": "Delmål", "due_on": "2022-09-01"}]}]}
    good = event("development_plan.adopted", "2022-05-01T10:00:00+02:00", plan)
    no_milestone = event("development_plan.adopted", "2022-05-01T10:00:00+02:00",
                         {**plan, "goals": [{"goal_id": "g1", "title": "Mål", "milestones": []}]})
    bad_status = event("milestone.updated", "2022-06-01T10:00:00+02:00",
                       {"plan_id": "p1", "milestone_id": "m1", "status": "done"})
    negative = event("followup.meeting_held", "2022-06-12T10:00:00+02:00",
                     {"plan_id": "p1", "cases_rereviewed": -1})
    wrong_topic = event("notification.assessed", "2022-06-12T10:00:00+02:00",
                        {"notification_id": "n1", "outcome": "no_action"})
    values = [json.dumps(e).encode() for e in [no_milestone, good, bad_status, negative, wrong_topic]]
    return values, ["invalid_event", "invalid_event", "invalid_event", "wrong_topic"], 1


CASES = {
    "analysis": (create_analysis, topics.CASE_REVIEWS, _review_cases),
    "followup": (create_followup, topics.MILESTONES, _milestone_cases),
}


@pytest.mark.parametrize("service", list(CASES))
async def test_invalid_events_reach_the_dlq(stack, prefix, service):
    create, topic, cases = CASES[service]
    values, reasons, valid = cases()
    async with running(create, settings_for(service, stack, prefix)):
        await produce(stack.bootstrap_servers, prefix + topic, values, key=lambda _v: b"480")
        dlq = await read_until(stack.bootstrap_servers, prefix + topics.DLQ,
                               lambda rs: len(rs) >= len(reasons))
        states = await read_until(stack.bootstrap_servers, prefix + topics.REPORTING,
                                  lambda rs: len(rs) >= valid)
    got = sorted(dict(r.headers)["reason"].decode() for r in dlq)
    assert got == sorted(reasons)
    assert all(dict(r.headers)["original_topic"].decode() == topic for r in dlq)
    assert all(b"0101901234" not in r.value for r in dlq)
    assert len(decoded(states)) == valid
