"""The committee report and browser sign-in over HTTP, against the real servers.

The reporting service runs in-process against the real Kafka-protocol broker and
MongoDB-protocol server. It is fed `reporting.*` events (the owning services' output) for
Nordfyn (480) across two half-years — 2022H1 past its grace (final), 2022H2 still a draft
with a clear drop in the 24-hour share — and one notification for Fredericia (607). Then:
the report's HTML (Danish figures, status wording, inline SVG), the API's 401/403/404/422,
the browser sign-in with its session cookie, the index scoped to the signed-in token,
log-out and the open-redirect guard. One hostile summary, written straight into the store
the service reads, checks that highlights are escaped.
"""

from __future__ import annotations

import asyncio
import html as htmllib
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from schemas import topics
from services.reporting.app import create as create_reporting
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import Running, running, settings_for

pytestmark = pytest.mark.integration

ALL, NORDFYN, FREDERICIA, UNUSED = "all-token", "nordfyn-token", "fredericia-token", "unknown-token"
REVOKED = "soon-revoked-token"
WATERMARK_480 = "2022-11-20T12:00:00+01:00"
WATERMARK_607 = "2022-03-10T12:00:00+01:00"
HOSTILE = "<script>alert('xss')</script> & <b>fed</b>"


# --- reporting events --------------------------------------------------------------------

def changed(kind: str, entity_id: str, state: dict[str, Any], *, watermark: str = WATERMARK_480,
            version: int = 1, municipality: str = "480", source: str = "taskforce.intake") -> dict[str, Any]:
    """A valid `reporting.<kind>_changed` event carrying the entity's whole state."""
    return {
        "event_id": str(uuid.uuid4()), "event_type": f"reporting.{kind}_changed", "schema_version": 1,
        "occurred_at": watermark, "municipality_code": municipality, "source": source,
        "data": {"entity_id": entity_id, "version": version, "watermark": watermark, "state": state},
    }


def notification(nid: str, received: str, assessed: str | None, *, urgent: bool = False,
                 municipality: str = "480", watermark: str = WATERMARK_480) -> dict[str, Any]:
    return changed("notification", nid, {
        "notification_id": nid, "received_at": received, "urgent": urgent, "reporter": "school",
        "assessed_at": assessed, "outcome": "no_action" if assessed else None,
    }, version=2 if assessed else 1, municipality=municipality, watermark=watermark)


def case_review(rid: str, at: str, ratings: tuple[int, int, int, int], major: int,
                minor: int) -> dict[str, Any]:
    names = ("assessment", "intervention", "follow_up", "involvement")
    return changed("case_review", rid, {
        "review_id": rid, "course_id": "c-480-1", "case_ref": f"sag-{rid}", "phase": "baseline",
        "ratings": dict(zip(names, ratings, strict=True)),
        "legal_findings": {"major": major, "minor": minor}, "completed_at": at,
    }, source="taskforce.analysis")


def scenario() -> list[dict[str, Any]]:
    """Nordfyn's two half-years and one Fredericia notification."""
    course = changed("course", "course", {"applications": [], "courses": [{
        "course_id": "c-480-1", "application_id": None, "started_at": "2022-02-01T09:00:00+01:00",
        "planned_end": "2024-01-31", "completed_at": None}]})
    h1 = [  # 2022H1: 3 of 4 within 24 h (75 %); hours 6, 7, 48, 2 -> median 6,5
        notification("n1", "2022-03-01T10:00:00+01:00", "2022-03-01T16:00:00+01:00"),
        notification("n2", "2022-04-04T08:00:00+02:00", "2022-04-04T15:00:00+02:00"),
        notification("n3", "2022-05-02T08:00:00+02:00", "2022-05-04T08:00:00+02:00"),
        notification("n4", "2022-06-01T08:00:00+02:00", "2022-06-01T10:00:00+02:00", urgent=True),
    ]
    h2 = [  # 2022H2: 1 of 2 within 24 h (50 %); hours 12 and 2457 -> median 1.234,5
        notification("n5", "2022-08-01T08:00:00+02:00", "2022-08-01T20:00:00+02:00"),
        notification("n6", "2022-08-02T08:00:00+02:00", "2022-11-12T16:00:00+01:00"),
    ]
    reviews = [
        case_review("r1", "2022-04-01T10:00:00+02:00", (2, 3, 2, 4), major=1, minor=0),
        case_review("r2", "2022-04-02T10:00:00+02:00", (3, 3, 1, 2), major=0, minor=1),
    ]
    fredericia = [notification("f1", "2022-03-09T10:00:00+01:00", "2022-03-09T12:00:00+01:00",
                               municipality="607", watermark=WATERMARK_607)]
    return [course, *h1, *h2, *reviews, *fredericia]


def hostile_summary() -> dict[str, Any]:
    """A stored summary for Jammerbugt (849) whose highlights carry markup."""
    dims = {"assessment": None, "intervention": None, "follow_up": None, "involvement": None}
    data = {
        "period": "2022H1", "status": "final", "revision": 0, "as_of": "2022-07-01T00:00:00+02:00",
        "course": {"status": "none", "course_id": None, "started_on": None, "planned_end": None,
                   "month_of_course": None},
        "notifications": {"received": 0, "assessed": 0, "assessed_within_24h": 0, "share_within_24h": 0.0,
                          "median_hours_to_assessment": None, "overdue_unassessed": 0,
                          "urgent_received": 0},
        "case_reviews": {"completed": 0, "baseline": 0, "follow_up": 0, "mean_rating": dims,
                         "share_meeting_standard": dims, "legal_findings": {"major": 0, "minor": 0}},
        "development_plan": {"milestones_total": 0, "achieved": 0, "in_progress": 0, "at_risk": 0,
                             "missed": 0, "not_started": 0, "overdue": 0, "meetings_held": 0,
                             "longest_gap_days": None, "cadence_ok": None},
        "highlights": [HOSTILE, '"><img src=x onerror=alert(1)>'],
    }
    return {"_id": "849:2022H1", "municipality_code": "849", "period": "2022H1", "status": "final",
            "revision": 0, "figures_key": "hostile", "data": data, "pending": False, "envelope": "{}"}


# --- the running service ----------------------------------------------------------------

@dataclass
class Service:
    running: Running
    summaries: dict[str, dict[str, Any]]  # "480/2022H1" -> the JSON the API serves
    tokens_file: Path

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.running.client(headers=headers, **kwargs)


def _settled(records: list[Any]) -> bool:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for s in decoded(records):
        latest[(s["municipality_code"], s["data"]["period"])] = s["data"]
    h1, h2, f1 = latest.get(("480", "2022H1")), latest.get(("480", "2022H2")), latest.get(("607", "2022H1"))
    return bool(h1 and h2 and f1 and h1["notifications"]["received"] == 4
                and h1["case_reviews"]["completed"] == 2 and h1["status"] != "draft"
                and h2["notifications"]["assessed"] == 2 and h2["course"]["status"] == "running"
                and f1["notifications"]["received"] == 1)


@pytest.fixture(scope="module")
async def service(stack, tmp_path_factory) -> AsyncIterator[Service]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    tokens = tmp_path_factory.mktemp("report-http") / "tokens.json"
    tokens.write_text(json.dumps({ALL: "*", NORDFYN: "480", FREDERICIA: "607", REVOKED: "480"}))
    settings = settings_for("reporting", stack, prefix, TASKFORCE_TOKENS_FILE=str(tokens),
                            TASKFORCE_SESSION_SECRET="test-secret-" + prefix)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url)
    try:
        async with running(create_reporting, settings) as reporting:
            await produce(stack.bootstrap_servers, prefix + topics.REPORTING, scenario())
            await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, _settled, timeout=60)
            await mongo[settings.database]["summaries"].insert_one(hostile_summary())
            summaries = await _served(reporting)
            yield Service(reporting, summaries, tokens)
    finally:
        await mongo.close()


async def _served(reporting: Running, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """The JSON the API serves, once it shows what the summaries topic showed."""
    deadline = time.monotonic() + timeout
    async with reporting.client(headers={"Authorization": f"Bearer {ALL}"}) as http:
        while True:
            got = {}
            for key in ("480/2022H1", "480/2022H2", "607/2022H1"):
                code, period = key.split("/")
                response = await http.get(f"/municipalities/{code}/summaries/{period}")
                if response.status_code == 200:
                    got[key] = response.json()
            if (len(got) == 3 and got["480/2022H2"]["notifications"]["assessed"] == 2
                    and got["480/2022H1"]["status"] != "draft"):
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"summaries not served: {got}")
            await asyncio.sleep(0.2)


def text_of(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded, whitespace collapsed."""
    body = re.sub(r"<style.*?</style>|<svg.*?</svg>", " ", page, flags=re.S)
    return re.sub(r"[ \t\r\n]+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


REPORT = "/municipalities/{code}/summaries/{period}/report"


# --- the report -------------------------------------------------------------------------

async def test_summaries_hold_the_expected_figures(service):
    h1, h2 = service.summaries["480/2022H1"], service.summaries["480/2022H2"]
    assert h1["status"] in ("final", "revised") and h2["status"] == "draft"
    assert (h1["notifications"]["received"], h1["notifications"]["assessed_within_24h"]) == (4, 3)
    assert h1["notifications"]["median_hours_to_assessment"] == 6.5
    assert h2["notifications"]["share_within_24h"] == 0.5
    assert h2["notifications"]["median_hours_to_assessment"] == 1234.5
    assert h1["case_reviews"]["mean_rating"]["assessment"] == 2.5
    assert ("Andelen af underretninger vurderet inden for 24 timer faldt fra 75 % til 50 %."
            in h2["highlights"])


async def test_draft_report_is_danish_html_with_charts(service):
    async with service.client(NORDFYN) as http:
        response = await http.get(REPORT.format(code="480", period="2022H2"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    text = text_of(page)
    assert "None" not in page and "nan" not in text.split()
    assert "<title>KLADDE – Status på Task Force-forløbet – Nordfyns Kommune, 2. halvår 2022</title>" in page
    assert "Status på Task Force-forløbet i Nordfyns Kommune" in text
    assert "KLADDE – ikke endelig" in text and 'class="watermark"' in page
    assert "2. halvår 2022 (1. juli – 31. december 2022)" in text
    assert "Opgjort pr. 20. november 2022 kl. 12.00" in text
    # Danish numbers: percent with a no-break space, decimal comma, thousands point.
    assert "50\xa0%" in text and "ned fra 75\xa0% i 1. halvår 2022" in text
    assert "1.234,5 timer" in text and "6,5 timer" in text
    assert "I gang, måned 10 af 24" in text
    # The highlight-worthy change, in the committee's words.
    assert "Andelen af underretninger vurderet inden for 24 timer faldt fra 75 % til 50 %." in text
    # Inline SVG charts, self-contained: no external resources, no scripts.
    assert page.count("<svg") >= 3
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page)


async def test_final_report_has_final_wording(service):
    h1 = service.summaries["480/2022H1"]
    async with service.client(ALL) as http:
        page = (await http.get(REPORT.format(code="480", period="2022H1"))).text
    text = text_of(page)
    expected = "Endelig" if h1["status"] == "final" else f"Revideret (revision {h1['revision']})"
    assert f"Status {expected}" in text
    assert "KLADDE" not in page and "None" not in page
    assert "75\xa0%" in text and "6,5 timer" in text
    assert "2,5" in text and "1,5" in text  # mean ratings
    assert page.count("<svg") >= 3


async def test_json_matches_the_report_period_list(service):
    async with service.client(NORDFYN) as http:
        listing = (await http.get("/municipalities/480/summaries")).json()
    assert listing["municipality_code"] == "480"
    assert [row["period"] for row in listing["periods"]] == ["2022H1", "2022H2"]
    assert listing["periods"][1]["status"] == "draft"


# --- access control ---------------------------------------------------------------------

@pytest.mark.parametrize("path", [REPORT.format(code="480", period="2022H2"),
                                  "/municipalities/480/summaries/2022H2", "/municipalities/480/summaries"])
async def test_no_or_unknown_token_is_401(service, path):
    async with service.client() as anonymous:
        response = await anonymous.get(path)
        assert response.status_code == 401
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    async with service.client(UNUSED) as stranger:
        assert (await stranger.get(path)).status_code == 401


@pytest.mark.parametrize("path", [REPORT.format(code="480", period="2022H2"),
                                  REPORT.format(code="480", period="2019H1"),
                                  "/municipalities/480/summaries/2022H2", "/municipalities/480/summaries"])
async def test_other_municipality_is_403_with_empty_body(service, path):
    async with service.client(FREDERICIA) as http:
        response = await http.get(path)
    assert response.status_code == 403
    assert response.content == b""


@pytest.mark.parametrize(("token", "path"), [
    (NORDFYN, REPORT.format(code="480", period="2021H2")),
    (ALL, REPORT.format(code="480", period="2023H1")),
    (FREDERICIA, REPORT.format(code="607", period="2022H2")),
    (ALL, REPORT.format(code="482", period="2022H1")),
    (ALL, "/municipalities/480/summaries/2021H1"),
])
async def test_period_without_summary_is_404(service, token, path):
    async with service.client(token) as http:
        response = await http.get(path)
    assert response.status_code == 404


@pytest.mark.parametrize("path", [
    REPORT.format(code="48", period="2022H1"), REPORT.format(code="4800", period="2022H1"),
    REPORT.format(code="abc", period="2022H1"), REPORT.format(code="480", period="2022H3"),
    REPORT.format(code="480", period="22H1"), REPORT.format(code="480", period="2022h1"),
    REPORT.format(code="480", period="2022H1x"), REPORT.format(code="%34%38%30%0A", period="2022H1"),
    "/municipalities/480/summaries/%3Cscript%3E", "/municipalities/%3Cb%3E/summaries",
    "/municipalities/\u0664\u0668\u0660/summaries",  # Arabic-Indic digits: not a code
    REPORT.format(code="480", period="\uff12\uff10\uff12\uff12H1"),  # full-width digits
])
async def test_malformed_code_or_period_is_422(service, path):
    async with service.client(ALL) as http:
        response = await http.get(path)
    assert response.status_code == 422, response.text
    # FastAPI echoes the bad input, but as JSON, never as a page a browser would render.
    assert response.headers["content-type"] == "application/json"


async def test_highlights_from_the_store_are_escaped(service):
    async with service.client(ALL) as http:
        response = await http.get(REPORT.format(code="849", period="2022H1"))
    assert response.status_code == 200
    page = response.text
    assert "<script" not in page.lower() and "<b>fed</b>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(" in page and "&amp; &lt;b&gt;fed&lt;/b&gt;" in page
    assert HOSTILE in text_of(page)  # shown as text, not run
    assert "Jammerbugt Kommune (kommunekode 849)" in text_of(page)


# --- the browser flow: sign in, index, report, log out ----------------------------------

def session_cookie(response: httpx.Response) -> str:
    headers = response.headers.get_list("set-cookie")
    assert len(headers) == 1, headers
    return headers[0]


async def test_login_sets_a_strict_httponly_cookie_that_opens_index_and_report(service):
    async with service.client() as browser:
        assert (await browser.get("/")).headers["location"] == "/login"
        login_page = await browser.get("/login")
        assert login_page.status_code == 200 and 'name="token"' in login_page.text
        response = await browser.post("/login", data={"token": FREDERICIA, "next": "/"})
        assert response.status_code == 303 and response.headers["location"] == "/"
        cookie = session_cookie(response)
        attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
        assert "httponly" in attributes
        assert attributes["samesite"].lower() == "samesite=strict"
        assert attributes["path"] == "Path=/"
        assert FREDERICIA not in cookie  # the token itself is never put in the cookie

        index = await browser.get("/")
        assert index.status_code == 200 and index.headers["cache-control"] == "no-store"
        text = text_of(index.text)
        assert "kommune 607" in text and "1. halvår 2022" in text
        assert 'href="/municipalities/607/summaries/2022H1/report"' in index.text
        assert "/municipalities/480/" not in index.text and "Nordfyn" not in text
        assert "849" not in index.text

        report = await browser.get(REPORT.format(code="607", period="2022H1"))
        assert report.status_code == 200 and "Fredericia Kommune" in report.text
        refused = await browser.get(REPORT.format(code="480", period="2022H2"))
        assert refused.status_code == 403 and refused.content == b""

        out = await browser.post("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/login"
        cleared = session_cookie(out)
        assert cleared.startswith("taskforce_session=") and "max-age=0" in cleared.lower()
        assert not browser.cookies
        assert (await browser.get("/")).headers["location"] == "/login"
        assert (await browser.get(REPORT.format(code="607", period="2022H1"))).status_code == 401


async def test_all_scope_index_lists_every_municipality(service):
    async with service.client() as browser:
        assert (await browser.post("/login", data={"token": ALL})).status_code == 303
        index = await browser.get("/")
    text = text_of(index.text)
    assert "alle kommuner" in text
    for code, period in (("480", "2022H1"), ("480", "2022H2"), ("607", "2022H1"), ("849", "2022H1")):
        assert f'href="{REPORT.format(code=code, period=period)}"' in index.text
    assert "Nordfyns Kommune (480)" in text and "Fredericia Kommune (607)" in text
    assert "KLADDE – ikke endelig" in text
    assert "<script" not in index.text.lower()


async def test_bad_token_on_login_is_a_401_page(service):
    async with service.client() as browser:
        response = await browser.post("/login", data={"token": "not-a-token", "next": "/"})
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("text/html")
        assert "Ukendt adgangsnøgle." in response.text and 'name="token"' in response.text
        assert not response.headers.get_list("set-cookie") and not browser.cookies
        empty = await browser.post("/login", data={"token": "   "})
        assert empty.status_code in (401, 422) and not browser.cookies


async def test_cookie_from_another_secret_or_tampered_is_refused(service):
    async with service.client() as browser:
        response = await browser.post("/login", data={"token": NORDFYN})
        cookie = browser.cookies["taskforce_session"]
        assert response.status_code == 303
    tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    forged = cookie.replace(cookie.split(".")[0], "eyJzY29wZSI6IioifQ")  # {"scope":"*"}
    for value in (tampered, forged, "", "garbage"):
        async with service.client(cookies={"taskforce_session": value}) as browser:
            assert (await browser.get(REPORT.format(code="480", period="2022H2"))).status_code == 401
            assert (await browser.get("/")).headers.get("location") == "/login"


@pytest.mark.parametrize(("given", "expected"), [
    ("https://evil.example", "/"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
    ("http:/evil.example", "/"), ("javascript:alert(1)", "/"), ("evil.example", "/"),
    ("/\tevil", "/"), ("", "/"),
    ("/municipalities/480/summaries/2022H2/report", "/municipalities/480/summaries/2022H2/report"),
])
async def test_next_allows_only_local_paths(service, given, expected):
    async with service.client() as browser:
        response = await browser.post("/login", data={"token": NORDFYN, "next": given})
        assert response.status_code == 303
        assert response.headers["location"] == expected
        page = await browser.get("/login", params={"next": given})
    assert f'name="next" value="{htmllib.escape(expected)}"' in page.text


async def test_login_then_next_opens_the_report(service):
    target = REPORT.format(code="480", period="2022H2")
    async with service.client(follow_redirects=True) as browser:
        response = await browser.post("/login", data={"token": NORDFYN, "next": target})
    assert response.status_code == 200 and str(response.url).endswith(target)
    assert "KLADDE" in response.text


async def test_revoking_a_token_ends_its_browser_sessions(service):
    """Tokens rotate without a restart (the tokens file is re-read), so a revoked token must
    stop working for sessions it opened too, not only for new sign-ins and bearer calls."""
    report = REPORT.format(code="480", period="2022H2")
    async with service.client() as browser:
        assert (await browser.post("/login", data={"token": REVOKED})).status_code == 303
        assert (await browser.get(report)).status_code == 200
        book = json.loads(service.tokens_file.read_text())
        del book[REVOKED]
        service.tokens_file.write_text(json.dumps(book))
        stat = service.tokens_file.stat()
        os.utime(service.tokens_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        async with service.client(REVOKED) as bearer:
            assert (await bearer.get(report)).status_code == 401
        assert (await browser.post("/login", data={"token": REVOKED})).status_code == 401
        assert (await browser.get(report)).status_code == 401  # the old session cookie
        assert (await browser.get("/")).headers.get("location") == "/login"


async def test_highlights_use_danish_thousands_separators(service):
    """The report's tables say "1.234,5 timer"; its highlights must say the same."""
    async with service.client(NORDFYN) as http:
        text = text_of((await http.get(REPORT.format(code="480", period="2022H2"))).text)
    assert "1.234,5 timer" in text  # the notifications table
    assert ("Mediantiden fra modtagelse til vurdering af en underretning steg fra 6,5 timer "
            "til 1.234,5 timer.") in text
