"""Finalisation waits for every owning service (contract 1.1), against the real servers.

A replay of history with the services deliberately at different speeds: all of it is
published at once; intake applies its whole stream while analysis and follow-up have taken
one record each and are held back. Intake's watermark is then far past every half-year, but
nothing analysis or follow-up could still change is final: not Nordfyn's (480) periods, not
Fredericia's (607, which analysis has not even reached), and not those of a municipality with
notifications only (101), whose reviews or milestones could still be on their way. Once the
slow services are let go, every period past its grace is published final exactly once, at
revision 0, and never revised; a notification that really arrives late still gives `revised`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from schemas import topics
from services.analysis.app import compose as compose_analysis
from services.common.runtime import Runtime
from services.common.service import BatchSteps, Service
from services.common.serving import build_app
from services.common.settings import Settings
from services.followup.app import compose as compose_followup
from services.intake.app import create as create_intake
from services.reporting.app import create as create_reporting
from taskforce.settle import OffsetWatch, wait_until_settled
from tests.support.events import approved_course, assessed, event, received, review
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration

#: Past their grace by the end, and with events of the slow services (the last events are in
#: August 2023).
PAST_GRACE = ("2022H1", "2022H2", "2023H1")
CODES = ("480", "607", "101")


def notifications(code: str) -> list[dict[str, Any]]:
    """Two a month from January 2022 to August 2023; those received at the end of a half-year
    are assessed in the next one, within its grace (so they count in the earlier one)."""
    out = []
    for month in range(20):
        year, number = 2022 + month // 12, month % 12 + 1
        for day in (5, 28):
            nid = f"n{code}-{month}-{day}"
            at = f"{year}-{number:02d}-{day:02d}T10:00:00+01:00"
            out.append(received(nid, at, municipality=code))
            if number in (6, 12) and day == 28:
                later = f"{year + (number == 12)}-{number % 12 + 1:02d}-05T09:00:00+01:00"
                out.append(assessed(nid, later, municipality=code))
            else:
                out.append(assessed(nid, f"{year}-{number:02d}-{day:02d}T15:00:00+01:00", municipality=code))
    return sorted(out, key=lambda e: e["occurred_at"])


def scenario() -> dict[str, list[dict[str, Any]]]:
    apps = approved_course()
    reviews = [
        review("r1", "2022-03-01T10:00:00+01:00", "baseline", (2, 3, 2, 4), case="k1"),
        review("r2", "2022-06-29T10:00:00+02:00", "baseline", (3, 3, 1, 2), case="k2", findings=("minor",)),
        review("r3", "2022-10-03T10:00:00+02:00", "follow_up", (3, 4, 3, 4), case="k1"),
        review("r4", "2023-02-01T10:00:00+01:00", "follow_up", (4, 3, 3, 3), case="k2"),
        review("f1", "2022-12-20T10:00:00+01:00", "baseline", (2, 2, 2, 2), case="f1", municipality="607"),
        review("f2", "2023-06-27T10:00:00+02:00", "follow_up", (3, 3, 3, 3), case="f1", municipality="607"),
    ]
    plan = [
        event("development_plan.adopted", "2022-03-15T10:00:00+01:00", {
            "plan_id": "p1", "course_id": "c-480-1", "goals": [{"goal_id": "g1", "title": "Bedre udredning",
            "milestones": [{"milestone_id": "m1", "title": "Ny skabelon", "due_on": "2022-09-01"},
                           {"milestone_id": "m2", "title": "Kurser", "due_on": "2023-03-01"}]}]}),
        event("followup.meeting_held", "2022-04-20T10:00:00+02:00", {"plan_id": "p1", "cases_rereviewed": 2}),
        event("milestone.updated", "2022-06-30T10:00:00+02:00",
              {"plan_id": "p1", "milestone_id": "m1", "status": "in_progress"}),
        event("milestone.updated", "2022-08-30T10:00:00+02:00",
              {"plan_id": "p1", "milestone_id": "m1", "status": "achieved"}),
        event("followup.meeting_held", "2022-11-02T10:00:00+01:00", {"plan_id": "p1", "cases_rereviewed": 1}),
        event("milestone.updated", "2023-05-02T10:00:00+02:00",
              {"plan_id": "p1", "milestone_id": "m2", "status": "at_risk"}),
    ]
    return {topics.APPLICATIONS: apps, topics.NOTIFICATIONS: [e for c in CODES for e in notifications(c)],
            topics.CASE_REVIEWS: reviews, topics.MILESTONES: plan}


def slowed(compose: Callable[[Settings], Service], gate: asyncio.Event,
           let_through: int = 1) -> Callable[[Settings], tuple[Any, Runtime]]:
    """The service, applying `let_through` batches and then none until `gate` is set."""
    def make(settings: Settings) -> tuple[Any, Runtime]:
        service = compose(settings)
        steps, applied = service.steps, 0

        async def apply(prepared: Any) -> Any:
            nonlocal applied
            if applied >= let_through:
                await gate.wait()
            applied += 1
            return await steps.apply(prepared)

        held = dataclasses.replace(service, steps=BatchSteps(steps.prepare, apply))
        return build_app(held), service.runtime
    return make


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 90.0) -> None:
    """Poll `condition` (offsets on the broker: nothing to wait on) until it holds."""
    async with asyncio.timeout(timeout):
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.2)


def history(records: list[Any]) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """(status, revision) of every summary published, per (municipality, period), in order."""
    out: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for summary in decoded(records):
        data = summary["data"]
        out.setdefault((summary["municipality_code"], data["period"]), []).append(
            (data["status"], data["revision"]))
    return out


@contextlib.asynccontextmanager
async def pipeline(stack: Any, prefix: str, tokens: str, gate: asyncio.Event) -> AsyncIterator[None]:
    slow = {"TASKFORCE_BATCH_MAX_RECORDS": 1, "TASKFORCE_TOKENS_FILE": tokens}
    async with (running(create_reporting, settings_for("reporting", stack, prefix,
                                                       TASKFORCE_TOKENS_FILE=tokens)),
                running(create_intake, settings_for("intake", stack, prefix, TASKFORCE_TOKENS_FILE=tokens)),
                running(slowed(compose_analysis, gate), settings_for("analysis", stack, prefix, **slow)),
                running(slowed(compose_followup, gate), settings_for("followup", stack, prefix, **slow))):
        try:
            yield
        finally:
            gate.set()  # let the slow services finish their batches before they stop


async def test_a_replay_at_different_speeds_publishes_every_period_final_once(stack, prefix, tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"all-token": "*"}))
    gate = asyncio.Event()
    summaries = prefix + topics.SUMMARIES
    async with pipeline(stack, prefix, str(tokens), gate):
        for topic, events in scenario().items():
            await produce(stack.bootstrap_servers, prefix + topic, events)

        # Intake's whole stream applied, and read by reporting; analysis and follow-up not.
        async with OffsetWatch(stack.bootstrap_servers, prefix) as watch:
            async def intake_done() -> bool:
                return await watch.behind("intake") == 0 and await watch.behind("reporting") == 0

            await until(intake_done)
            assert await watch.behind("analysis") > 0 and await watch.behind("followup") > 0
        latest = {(code, "2023H2") for code in CODES}
        seen = await read_until(stack.bootstrap_servers, summaries, lambda rs: {
            (s["municipality_code"], s["data"]["period"]) for s in decoded(rs)} >= latest)
        early = history(seen)
        # Only what every service is past may be final yet (480's 2021H2, before the course).
        assert all(status == "draft" for code in CODES for period in PAST_GRACE
                   for status, _ in early[(code, period)]), early
        assert all(status != "revised" for statuses in early.values() for status, _ in statuses), early

        gate.set()
        await wait_until_settled(stack.bootstrap_servers, prefix, quiet_s=2.0, timeout_s=120)
        settled = await read_until(stack.bootstrap_servers, summaries, lambda rs: len(rs) > 0)
        done = history(settled)
        assert {key for key in done if key[1] != "2023H2"} == {(c, p) for c in CODES for p in PAST_GRACE} | {
            ("480", "2021H2")}
        for (code, period), statuses in done.items():
            if period == "2023H2":
                assert {status for status, _ in statuses} == {"draft"}
                continue
            assert [s for s in statuses if s[0] != "draft"] == [("final", 0)], (code, period, statuses)
            assert statuses[-1] == ("final", 0)
        figures = {(s["municipality_code"], s["data"]["period"]): s["data"] for s in decoded(settled)}
        assert figures[("480", "2022H1")]["case_reviews"]["completed"] == 2
        assert figures[("480", "2022H1")]["notifications"]["assessed"] == 12  # June's last one in July
        assert figures[("607", "2023H1")]["case_reviews"]["completed"] == 1
        assert figures[("480", "2022H2")]["development_plan"]["achieved"] == 1

        # A notification that really arrives late: its final half-year is revised, once.
        await produce(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS,
                      [received("late-1", "2022-05-10T10:00:00+02:00", municipality="101")])

        def revised(records: list[Any]) -> bool:
            return ("revised", 1) in history(records).get(("101", "2022H1"), [])

        late = history(await read_until(stack.bootstrap_servers, summaries, revised))
    assert late[("101", "2022H1")][-1] == ("revised", 1)
    revised_now = {key for key, statuses in late.items() if ("revised", 1) in statuses}
    assert revised_now <= {("101", "2022H1"), ("101", "2022H2")}, revised_now
