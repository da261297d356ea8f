"""`GET /municipalities`, a code not in Danmarks Statistik's list, and the finished course's
date in the committee report, against the real servers.

The reporting service runs in-process against the real Kafka-protocol broker and
MongoDB-protocol server and is fed `reporting.*` events: Nordfyn (480), whose course started
1 February 2022 and completed 16 May 2022, with a plan and a follow-up meeting before that and
notifications in both half-years of 2022; Fredericia (607), one notification; and the code
999, valid in the contract but no municipality, one notification.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from schemas import topics
from services.common.auth.tokens import digest
from services.reporting.app import create as create_reporting
from tests.support.browser import sign_in
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import Running, running, settings_for

pytestmark = pytest.mark.integration

ALL, NORDFYN, ELSEWHERE, UNKNOWN = "every-municipality", "only-nordfyn", "only-copenhagen", "no-such-token"
WATERMARK = "2022-11-20T12:00:00+01:00"
STARTED, COMPLETED = "2022-02-01T09:00:00+01:00", "2022-05-16T15:00:00+02:00"
LISTING_CLIENT = "198.51.100.48"


def changed(kind: str, entity_id: str, state: dict[str, Any], *, municipality: str = "480",
            source: str = "taskforce.intake", version: int = 1) -> dict[str, Any]:
    """A valid `reporting.<kind>_changed` event carrying the entity's whole state."""
    return {
        "event_id": str(uuid.uuid4()), "event_type": f"reporting.{kind}_changed", "schema_version": 1,
        "occurred_at": WATERMARK, "municipality_code": municipality, "source": source,
        "data": {"entity_id": entity_id, "version": version, "watermark": WATERMARK, "state": state},
    }


def notification(nid: str, received: str, municipality: str = "480") -> dict[str, Any]:
    return changed("notification", nid, {
        "notification_id": nid, "received_at": received, "urgent": False, "reporter": "school",
        "assessed_at": None, "outcome": None}, municipality=municipality)


def scenario() -> list[dict[str, Any]]:
    course = changed("course", "course", {"applications": [], "courses": [{
        "course_id": "c-480-1", "application_id": None, "started_at": STARTED,
        "planned_end": "2024-01-31", "completed_at": COMPLETED}]}, source="taskforce.intake")
    plan = changed("plan", "p-480-1", {
        "plan_id": "p-480-1", "course_id": "c-480-1", "adopted_at": "2022-03-01T10:00:00+01:00",
        "adopted_on": "2022-03-01", "milestones": [
            {"milestone_id": "m1", "goal_id": "g1", "title": "Fast underretningsteam etableret",
             "due_on": "2022-12-31"}]}, source="taskforce.followup")
    meeting_id = str(uuid.uuid4())
    meeting = changed("meeting", meeting_id, {
        "meeting_id": meeting_id, "plan_id": "p-480-1", "held_at": "2022-04-05T10:00:00+02:00",
        "held_on": "2022-04-05", "cases_rereviewed": 3}, source="taskforce.followup")
    return [course, plan, meeting,
            notification("n1", "2022-03-02T10:00:00+01:00"),
            notification("n2", "2022-08-01T10:00:00+02:00"),
            notification("f1", "2022-03-09T10:00:00+01:00", municipality="607"),
            notification("x1", "2022-04-01T10:00:00+02:00", municipality="999")]


def _settled(records: list[Any]) -> bool:
    latest = {(s["municipality_code"], s["data"]["period"]): s["data"] for s in decoded(records)}
    h2 = latest.get(("480", "2022H2"))
    return bool(h2 and h2["course"]["status"] == "completed" and h2["development_plan"]["milestones_total"]
                and h2["notifications"]["received"] == 1
                and ("607", "2022H1") in latest and ("999", "2022H1") in latest)


@dataclass
class Service:
    running: Running

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.running.client(headers={**headers, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture(scope="module")
async def service(stack, tmp_path_factory) -> AsyncIterator[Service]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    tokens = tmp_path_factory.mktemp("municipalities") / "tokens.json"
    tokens.write_text(json.dumps({ALL: "*", NORDFYN: "480", f"sha256:{digest(ELSEWHERE)}": "101"}))
    settings = settings_for("reporting", stack, prefix, TASKFORCE_TOKENS_FILE=str(tokens),
                            TASKFORCE_SESSION_SECRET="test-secret-" + prefix)
    async with running(create_reporting, settings) as reporting:
        await produce(stack.bootstrap_servers, prefix + topics.REPORTING, scenario())
        await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, _settled, timeout=60)
        await _served(reporting)
        yield Service(reporting)


async def _served(reporting: Running, timeout: float = 30.0) -> None:
    """Until the API serves what the summaries topic showed."""
    deadline = time.monotonic() + timeout
    async with reporting.client(headers={"Authorization": f"Bearer {ALL}"}) as http:
        while True:
            listed = (await http.get("/municipalities")).json()["municipalities"]
            latest = {m["code"]: m["latest_period"] for m in listed}
            if latest == {"480": "2022H2", "607": "2022H1", "999": "2022H1"}:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"summaries not served: {listed}")
            await asyncio.sleep(0.2)


async def listing(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/municipalities")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return list(response.json()["municipalities"])


# --- GET /municipalities ----------------------------------------------------------------

async def test_every_municipality_with_summaries_for_an_all_scope(service):
    async with service.client(ALL) as http:
        rows = await listing(http)
        periods = {code: (await http.get(f"/municipalities/{code}/summaries")).json()["periods"]
                   for code in ("480", "607", "999")}
    assert [row["code"] for row in rows] == ["480", "607", "999"]
    by_code = {row["code"]: row for row in rows}
    assert {k: by_code["480"][k] for k in ("name", "region", "known", "latest_period")} == {
        "name": "Nordfyns Kommune", "region": "Region Syddanmark", "known": True, "latest_period": "2022H2"}
    assert {k: by_code["607"][k] for k in ("name", "region", "known")} == {
        "name": "Fredericia Kommune", "region": "Region Syddanmark", "known": True}
    assert {k: by_code["999"][k] for k in ("name", "region", "known", "latest_period")} == {
        "name": "Kommune 999", "region": None, "known": False, "latest_period": "2022H1"}
    for code, row in by_code.items():  # the latest period's status and revision, as listed per code
        last = periods[code][-1]
        assert (row["latest_period"], row["status"], row["revision"]) == (
            last["period"], last["status"], last["revision"])
        assert row["status"] in ("draft", "final", "revised") and row["revision"] >= 0
        assert row["as_of"][:10] == last["as_of"][:10]


async def test_a_principal_scoped_to_one_municipality_sees_only_it(service):
    async with service.client(NORDFYN) as http:
        rows = await listing(http)
    assert [row["code"] for row in rows] == ["480"]


async def test_a_scope_without_summaries_lists_nothing(service):
    async with service.client(ELSEWHERE) as http:
        assert await listing(http) == []


async def test_a_browser_session_lists_its_scope(service):
    async with service.client() as browser:
        assert (await sign_in(browser, NORDFYN)).status_code == 303
        rows = await listing(browser)
    assert [row["code"] for row in rows] == ["480"]


@pytest.mark.parametrize("token", [None, UNKNOWN])
async def test_no_or_unknown_credentials_are_401(service, token):
    async with service.client(token) as http:
        response = await http.get("/municipalities")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="taskforce"')
    assert "480" not in response.text


async def test_the_listing_is_audited_per_municipality(service):
    mark = {"X-Forwarded-For": LISTING_CLIENT}
    async with service.client(NORDFYN, headers=mark) as http:
        assert len(await listing(http)) == 1
    async with service.client(headers=mark) as http:
        assert (await http.get("/municipalities")).status_code == 401

    def ours(records: list[Any]) -> list[dict[str, Any]]:
        return [e for r in records if (e := json.loads(r.value))["data"]["client"] == LISTING_CLIENT]

    settings = service.running.runtime.settings
    records = await read_until(settings.kafka_bootstrap_servers, settings.topic(topics.AUDIT),
                               lambda rs: len(ours(rs)) >= 2, timeout=30)
    seen = {(e["data"]["action"], e["data"]["outcome"], e["municipality_code"], e["data"]["route"],
             e["data"]["reason"]) for e in ours(records)}
    assert seen == {("list", 200, "480", "/municipalities", None),
                    ("read", 401, None, "/municipalities", "no_credentials")}


async def test_the_openapi_document_declares_the_route(service):
    async with service.client() as http:
        document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/municipalities"]["get"]
    assert set(operation["responses"]) == {"200", "401", "503"}
    assert {"bearer": []} in operation["security"] and {"session": []} in operation["security"]
    entry = document["components"]["schemas"]["MunicipalityEntry"]
    assert set(entry["required"]) == {"code", "name", "region", "known", "latest_period", "status",
                                      "revision", "as_of"}


# --- the report: a code not in the list, the date the course ended ---------------------

async def test_the_report_flags_a_code_not_in_the_list(service):
    async with service.client(ALL) as http:
        page = (await http.get("/municipalities/999/summaries/2022H1/report")).text
        known = (await http.get("/municipalities/607/summaries/2022H1/report")).text
    assert "Kommunekoden findes ikke i Danmarks Statistiks liste." in page
    assert 'id="ukendt-kommunekode"' in page and "Kommune 999 (kommunekode 999)" in page
    assert "Danmarks Statistiks liste" not in known and "Fredericia Kommune (kommunekode 607)" in known


async def test_after_the_course_ended_the_report_says_when(service):
    async with service.client(NORDFYN) as http:
        after = (await http.get("/municipalities/480/summaries/2022H2/report")).text
        during = (await http.get("/municipalities/480/summaries/2022H1/report")).text
    assert ("<strong>Forløbet er afsluttet den 16. maj 2022 (forløbets måned 4)</strong>, før "
            "2. halvår 2022 begyndte.") in after
    assert "rytmen er" not in after
    assert '<dd id="afslutningsdato">16. maj 2022</dd>' in after
    assert ("<strong>Forløbet er afsluttet den 16. maj 2022 (forløbets måned 4)</strong>. "
            "Intervallerne er opgjort frem til afslutningsdagen") in during
