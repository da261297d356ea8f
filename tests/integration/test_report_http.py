"""The committee report and browser sign-in over HTTP, against the real servers.

The reporting service runs in-process against the real Kafka-protocol broker and
MongoDB-protocol server. It is fed `reporting.*` events (the owning services' output) for
Nordfyn (480) across two half-years — 2022H1 past its grace (final), 2022H2 still a draft
with a clear drop in the 24-hour share — and one notification for Fredericia (607). Then:
the report's HTML (Danish figures, status wording, inline SVG), the API's 401/403/404/422,
the browser sign-in with its CSRF-protected form and server-side session, the index scoped to
the signed-in token, log-out (the session ends on the server: a replayed cookie is nobody),
the rate limit on failed sign-ins, hashed and expiring tokens, and the audit trail of every
decision on `taskforce.audit`. One hostile summary, written straight into the store the
service reads, checks that highlights are escaped.
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
from services.common.auth.tokens import digest
from services.reporting.app import create as create_reporting
from tests.support.browser import csrf_token, sign_in
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import Running, running, settings_for

pytestmark = pytest.mark.integration

ALL, NORDFYN, FREDERICIA, UNUSED = "all-token", "nordfyn-token", "fredericia-token", "unknown-token"
REVOKED = "soon-revoked-token"
HASHED, EXPIRED = "hashed-nordfyn-token", "expired-nordfyn-token"
#: A client address of its own for the rate-limit test (uvicorn trusts X-Forwarded-For from
#: the loopback address, as it would from a proxy there); no traffic goes to it.
LIMITED_CLIENT = "203.0.113.7"
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

    def client(self, token: str | None = None, headers: dict[str, str] | None = None,
               **kwargs: Any) -> httpx.AsyncClient:
        bearer = {"Authorization": f"Bearer {token}"} if token else {}
        return self.running.client(headers={**bearer, **(headers or {})}, **kwargs)


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
    tokens.write_text(json.dumps({ALL: "*", NORDFYN: "480", FREDERICIA: "607", REVOKED: "480",
                                  f"sha256:{digest(HASHED)}": "480",
                                  f"sha256:{digest(EXPIRED)}": {"scope": "480", "expires": "2020-01-01"}}))
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
        response = await sign_in(browser, FREDERICIA, "/")
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
        assert "taskforce_session" not in browser.cookies
        assert (await browser.get("/")).headers["location"] == "/login"
        assert (await browser.get(REPORT.format(code="607", period="2022H1"))).status_code == 401
    # The session ended on the server: the old cookie, replayed, is nobody.
    session = cookie.split(";")[0].split("=", 1)[1]
    async with service.client(cookies={"taskforce_session": session}) as replay:
        assert (await replay.get(REPORT.format(code="607", period="2022H1"))).status_code == 401
        assert (await replay.get("/")).headers["location"] == "/login"


async def test_all_scope_index_lists_every_municipality(service):
    async with service.client() as browser:
        assert (await sign_in(browser, ALL)).status_code == 303
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
        response = await sign_in(browser, "not-a-token", "/")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("text/html")
        assert "Ukendt adgangsnøgle." in response.text and 'name="token"' in response.text
        assert "taskforce_session" not in browser.cookies
        assert all(not c.startswith("taskforce_session") for c in response.headers.get_list("set-cookie"))
        empty = await sign_in(browser, "   ")
        assert empty.status_code in (401, 422) and "taskforce_session" not in browser.cookies


async def test_cookie_from_another_secret_or_tampered_is_refused(service):
    async with service.client() as browser:
        response = await sign_in(browser, NORDFYN)
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
        response = await sign_in(browser, NORDFYN, given)
        assert response.status_code == 303
        assert response.headers["location"] == expected
        page = await browser.get("/login", params={"next": given})
    assert f'name="next" value="{htmllib.escape(expected)}"' in page.text


async def test_login_then_next_opens_the_report(service):
    target = REPORT.format(code="480", period="2022H2")
    async with service.client(follow_redirects=True) as browser:
        response = await sign_in(browser, NORDFYN, target)
    assert response.status_code == 200 and str(response.url).endswith(target)
    assert "KLADDE" in response.text


async def test_revoking_a_token_ends_its_browser_sessions(service):
    """Tokens rotate without a restart (the tokens file is re-read), so a revoked token must
    stop working for sessions it opened too, not only for new sign-ins and bearer calls."""
    report = REPORT.format(code="480", period="2022H2")
    async with service.client() as browser:
        assert (await sign_in(browser, REVOKED)).status_code == 303
        assert (await browser.get(report)).status_code == 200
        book = json.loads(service.tokens_file.read_text())
        del book[REVOKED]
        service.tokens_file.write_text(json.dumps(book))
        stat = service.tokens_file.stat()
        os.utime(service.tokens_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        async with service.client(REVOKED) as bearer:
            assert (await bearer.get(report)).status_code == 401
        assert (await sign_in(browser, REVOKED)).status_code == 401
        assert (await browser.get(report)).status_code == 401  # the old session cookie
        assert (await browser.get("/")).headers.get("location") == "/login"


async def test_highlights_use_danish_thousands_separators(service):
    """The report's tables say "1.234,5 timer"; its highlights must say the same."""
    async with service.client(NORDFYN) as http:
        text = text_of((await http.get(REPORT.format(code="480", period="2022H2"))).text)
    assert "1.234,5 timer" in text  # the notifications table
    assert ("Mediantiden fra modtagelse til vurdering af en underretning steg fra 6,5 timer "
            "til 1.234,5 timer.") in text


# --- credentials: before validation, hashed and expiring tokens --------------------------

@pytest.mark.parametrize("path", [REPORT.format(code="abc", period="2022H1"),
                                  REPORT.format(code="480", period="2022H3"),
                                  "/municipalities/%3Cb%3E/summaries", "/municipalities/4800/summaries"])
async def test_no_credentials_is_401_before_the_path_is_validated(service, path):
    async with service.client() as anonymous:
        response = await anonymous.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="taskforce"'
    async with service.client(FREDERICIA) as other:  # a code outside its scope, malformed or not
        refused = await other.get(path)
    assert refused.status_code == 403 and refused.content == b""


async def test_hashed_tokens_work_and_expired_ones_are_refused(service):
    path = "/municipalities/480/summaries/2022H1"
    async with service.client(HASHED) as http:
        assert (await http.get(path)).status_code == 200
        assert (await http.get("/municipalities/607/summaries")).status_code == 403
    async with service.client(EXPIRED) as http:
        response = await http.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="taskforce", error="invalid_token", error_description="token expired"')
    # The file's key is no credential: reading the file gives nobody access.
    async with service.client(f"sha256:{digest(HASHED)}") as http:
        assert (await http.get(path)).status_code == 401
    async with service.client() as browser:
        assert (await sign_in(browser, EXPIRED)).status_code == 401
        assert (await sign_in(browser, HASHED)).status_code == 303
        assert (await browser.get(path)).status_code == 200


# --- the sign-in form: CSRF and the rate limit -------------------------------------------

async def test_the_sign_in_form_needs_its_csrf_token(service):
    async with service.client() as browser:
        form = await browser.get("/login")
        assert form.headers["cache-control"] == "no-store"
        csrf_cookie = next(c for c in form.headers.get_list("set-cookie") if c.startswith("taskforce_csrf="))
        assert "httponly" in csrf_cookie.lower() and "samesite=strict" in csrf_cookie.lower()
        field = csrf_token(form.text)
        missing = await browser.post("/login", data={"token": NORDFYN})
        assert missing.status_code == 403 and missing.headers["content-type"].startswith("text/html")
        assert "Formularen var udløbet" in missing.text and "taskforce_session" not in browser.cookies
        assert "csrf_token" in missing.text  # a fresh form to try again with
        async with service.client() as elsewhere:  # a field from another browser's form
            foreign = csrf_token((await elsewhere.get("/login")).text)
        mismatched = await browser.post("/login", data={"token": NORDFYN, "csrf_token": foreign})
        assert mismatched.status_code == 403
    async with service.client() as cookieless:  # the field without its cookie
        unbound = await cookieless.post("/login", data={"token": NORDFYN, "csrf_token": field})
        assert unbound.status_code == 403
        assert "taskforce_session" not in cookieless.cookies


async def test_failed_sign_ins_are_rate_limited_per_client(service):
    limited = {"X-Forwarded-For": LIMITED_CLIENT}
    async with service.client(headers=limited) as attacker:
        for attempt in range(5):
            assert (await sign_in(attacker, f"guess-{attempt}")).status_code == 401
        blocked = await sign_in(attacker, NORDFYN)  # even the right token, while blocked
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 300
        assert blocked.headers["content-type"].startswith("text/html") and 'name="token"' in blocked.text
        assert "taskforce_session" not in attacker.cookies
    async with service.client() as someone_else:  # another client is not affected
        assert (await sign_in(someone_else, NORDFYN)).status_code == 303


# --- the audit trail ---------------------------------------------------------------------

AUDITED_CLIENT = "198.51.100.9"


async def test_every_decision_is_audited_without_tokens(service):
    """Reads (200/401/403/404), a listing, sign-ins (good and bad) and a sign-out, each an event
    on taskforce.audit keyed by municipality, naming the token by its id and never the token."""
    mark = {"X-Forwarded-For": AUDITED_CLIENT}
    summary = "/municipalities/480/summaries/2022H1"
    async with service.client(NORDFYN, headers=mark) as http:
        assert (await http.get(summary)).status_code == 200
    async with service.client(FREDERICIA, headers=mark) as http:
        assert (await http.get(summary)).status_code == 403
    async with service.client(headers=mark) as http:
        assert (await http.get(summary)).status_code == 401
    async with service.client(EXPIRED, headers=mark) as http:
        assert (await http.get(summary)).status_code == 401
    async with service.client(ALL, headers=mark) as http:
        assert (await http.get("/municipalities/480/summaries/2019H1")).status_code == 404
    async with service.client(headers=mark) as browser:
        assert (await sign_in(browser, "wrong-token")).status_code == 401
        assert (await sign_in(browser, ALL)).status_code == 303
        assert (await browser.get("/")).status_code == 200
        assert (await browser.post("/logout")).status_code == 303

    def ours(records: list[Any]) -> list[tuple[bytes, dict[str, Any]]]:
        return [(r.key, e) for r in records if (e := json.loads(r.value))["data"]["client"] == AUDITED_CLIENT]

    expected = 5 + 2 + 3 + 1  # reads; sign-ins; the index lists 480, 607 and 849; the sign-out
    settings = service.running.runtime.settings
    records = await read_until(settings.kafka_bootstrap_servers, settings.topic(topics.AUDIT),
                               lambda rs: len(ours(rs)) >= expected, timeout=30)
    events = ours(records)
    seen = {(e["data"]["action"], e["data"]["outcome"], e["municipality_code"], e["data"]["principal"]["id"],
             e["data"]["reason"]) for _, e in events}
    nordfyn, fredericia, everyone = (f"token:{digest(t)[:12]}" for t in (NORDFYN, FREDERICIA, ALL))
    assert ("read", 200, "480", nordfyn, None) in seen
    assert ("read", 403, "480", fredericia, "not_in_scope") in seen
    assert ("read", 401, "480", None, "no_credentials") in seen
    assert ("read", 401, "480", f"token:{digest(EXPIRED)[:12]}", "expired") in seen
    assert ("read", 404, "480", everyone, None) in seen
    assert ("sign_in", 401, None, None, "unknown_token") in seen
    assert ("sign_in", 303, None, everyone, None) in seen
    assert {m for a, _, m, _, _ in seen if a == "list"} == {"480", "607", "849"}
    assert ("sign_out", 303, None, everyone, None) in seen
    for key, event in events:
        assert key.decode() == (event["municipality_code"] or "*")
        assert event["event_type"] == "access.audited" and event["source"] == "taskforce.reporting"
        assert event["data"]["service"] == "reporting" and event["data"]["client"] == AUDITED_CLIENT
        if event["data"]["action"] == "read":
            assert event["data"]["route"] == "/municipalities/{code}/summaries/{period}"
            assert event["data"]["period"] in ("2022H1", "2019H1")
    everything = b"".join(r.value for r in records)
    for secret in (NORDFYN, FREDERICIA, ALL, EXPIRED, "wrong-token", digest(NORDFYN)):
        assert secret.encode() not in everything
    async with service.client() as http:
        metrics = (await http.get("/metrics")).text
    assert 'taskforce_audit_events_total{action="read",outcome="403",service="reporting"}' in metrics
    assert "token:" not in metrics and AUDITED_CLIENT not in metrics
