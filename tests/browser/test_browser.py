"""A person's visit in real headless Chromium: sign in, the index, a draft report, log out.

The reporting service runs in-process against the real Kafka-protocol broker and
MongoDB-protocol server, fed `reporting.*` events for Nordfyn (480) across 2022H1 (past its
grace: final) and 2022H2 (a draft). Chromium types the token, clicks, follows the links,
and must see no console error, uncaught exception or blocked resource on the way.
Screenshots land in `screenshots/` at the repository root (ignored by git), or in the folder
TASKFORCE_SCREENSHOTS names: `make screenshots` writes the README's, in docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import topics
from services.reporting.app import create as create_reporting
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import Running, running, settings_for

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / os.environ.get("TASKFORCE_SCREENSHOTS", "screenshots")  # relative: to ROOT
TOKEN = "nordfyn-browser-token"
WATERMARK = "2022-11-20T12:00:00+01:00"
REPORT_H2 = "/municipalities/480/summaries/2022H2/report"


# --- Nordfyn's two half-years as reporting events ---------------------------------------

def changed(kind: str, entity_id: str, state: dict[str, Any], source: str,
            version: int = 1) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "event_type": f"reporting.{kind}_changed", "schema_version": 1,
        "occurred_at": WATERMARK, "municipality_code": "480", "source": source,
        "data": {"entity_id": entity_id, "version": version, "watermark": WATERMARK, "state": state},
    }


def notification(nid: str, received: str, assessed: str | None, urgent: bool = False) -> dict[str, Any]:
    return changed("notification", nid, {
        "notification_id": nid, "received_at": received, "urgent": urgent, "reporter": "school",
        "assessed_at": assessed, "outcome": "no_action" if assessed else None}, "taskforce.intake")


def review(rid: str, case: str, at: str, phase: str, ratings: tuple[int, int, int, int],
           major: int = 0, minor: int = 0) -> dict[str, Any]:
    names = ("assessment", "intervention", "follow_up", "involvement")
    return changed("case_review", rid, {
        "review_id": rid, "course_id": "c-480-1", "case_ref": case, "phase": phase,
        "ratings": dict(zip(names, ratings, strict=True)),
        "legal_findings": {"major": major, "minor": minor}, "completed_at": at}, "taskforce.analysis")


def milestone(mid: str, *changes: tuple[str, str]) -> dict[str, Any]:
    history = [{"status": status, "effective_at": at, "event_id": f"{mid}-{i}"}
               for i, (status, at) in enumerate(changes)]
    return changed("milestone", f"p1/{mid}", {"plan_id": "p1", "milestone_id": mid, "history": history},
                   "taskforce.followup", version=len(changes))


def planned(mid: str, goal: str, title: str, due: str) -> dict[str, str]:
    return {"milestone_id": mid, "goal_id": goal, "title": title, "due_on": due}


def meeting(mid: str, at: str, on: str, rereviewed: int) -> dict[str, Any]:
    return changed("meeting", mid, {"meeting_id": mid, "plan_id": "p1", "held_at": at, "held_on": on,
                                    "cases_rereviewed": rereviewed}, "taskforce.followup")


def scenario() -> list[dict[str, Any]]:
    course = changed("course", "course", {"applications": [], "courses": [{
        "course_id": "c-480-1", "application_id": None, "started_at": "2022-02-01T09:00:00+01:00",
        "planned_end": "2024-01-31", "completed_at": None}]}, "taskforce.intake", version=2)
    plan = changed("plan", "p1", {
        "plan_id": "p1", "course_id": "c-480-1", "adopted_at": "2022-03-01T10:00:00+01:00",
        "adopted_on": "2022-03-01", "milestones": [
            planned("m1", "g1", "Ny visitationsprocedure", "2022-06-01"),
            planned("m2", "g1", "Kurser i udredning", "2022-09-30"),
            planned("m3", "g2", "Faste opfølgningsmøder", "2022-12-15"),
        ]}, "taskforce.followup")
    return [
        course, plan,
        notification("n1", "2022-03-01T10:00:00+01:00", "2022-03-01T16:00:00+01:00"),
        notification("n2", "2022-04-04T08:00:00+02:00", "2022-04-04T15:00:00+02:00"),
        notification("n3", "2022-05-02T08:00:00+02:00", "2022-05-04T08:00:00+02:00"),
        notification("n4", "2022-06-01T08:00:00+02:00", "2022-06-01T10:00:00+02:00", urgent=True),
        notification("n5", "2022-08-01T08:00:00+02:00", "2022-08-01T20:00:00+02:00"),
        notification("n6", "2022-08-02T08:00:00+02:00", "2022-11-12T16:00:00+01:00"),
        notification("n7", "2022-11-10T08:00:00+01:00", None),
        review("r1", "sag-1", "2022-04-01T10:00:00+02:00", "baseline", (2, 3, 2, 4), major=1),
        review("r2", "sag-2", "2022-04-02T10:00:00+02:00", "baseline", (3, 3, 1, 2), minor=1),
        review("r3", "sag-1", "2022-10-03T10:00:00+02:00", "follow_up", (3, 3, 3, 4)),
        review("r4", "sag-2", "2022-10-04T10:00:00+02:00", "follow_up", (3, 4, 2, 3)),
        milestone("m1", ("in_progress", "2022-03-15T10:00:00+01:00"),
                  ("achieved", "2022-05-20T10:00:00+02:00")),
        milestone("m2", ("in_progress", "2022-04-01T10:00:00+02:00"),
                  ("at_risk", "2022-08-15T10:00:00+02:00")),
        meeting("mt1", "2022-04-12T10:00:00+02:00", "2022-04-12", 0),
        meeting("mt2", "2022-05-24T10:00:00+02:00", "2022-05-24", 1),
        meeting("mt3", "2022-07-05T10:00:00+02:00", "2022-07-05", 1),
        meeting("mt4", "2022-09-20T10:00:00+02:00", "2022-09-20", 2),
    ]


def settled(records: list[Any]) -> bool:
    latest = {s["data"]["period"]: s["data"] for s in decoded(records)}
    h1, h2 = latest.get("2022H1"), latest.get("2022H2")
    return bool(h1 and h2 and h1["status"] != "draft" and h1["notifications"]["received"] == 4
                and h1["case_reviews"]["completed"] == 2 and h1["development_plan"]["meetings_held"] == 2
                and h2["notifications"]["received"] == 3 and h2["notifications"]["assessed"] == 2
                and h2["case_reviews"]["completed"] == 2 and h2["development_plan"]["meetings_held"] == 2
                and h2["development_plan"]["at_risk"] == 1 and h2["course"]["status"] == "running")


async def served(reporting: Running, timeout: float = 30.0) -> None:
    """Wait until the HTTP API shows what the summaries topic showed."""
    deadline = time.monotonic() + timeout
    async with reporting.client(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        while True:
            with_h2 = await http.get("/municipalities/480/summaries/2022H2")
            if with_h2.status_code == 200 and with_h2.json()["development_plan"]["at_risk"] == 1:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"2022H2 not served: {with_h2.status_code} {with_h2.text[:300]}")
            await asyncio.sleep(0.2)


# --- the visit --------------------------------------------------------------------------

VISIBLE = """(sel) => [...document.querySelectorAll(sel)].filter(e => {
  const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
}).length"""


CLIPPED_CHART_TEXT = """[...document.querySelectorAll('figure.chart-figure')].flatMap(f => {
  const svg = f.querySelector('svg').getBoundingClientRect();
  return [...f.querySelectorAll('svg text')].filter(t => {
    const r = t.getBoundingClientRect();
    return r.width > 0 && (r.left < svg.left - 1 || r.top < svg.top - 1
                           || r.right > svg.right + 1 || r.bottom > svg.bottom + 1);
  }).map(t => f.id + ': ' + t.textContent.trim());
})"""


async def visible_count(page, selector: str) -> int:
    return await page.evaluate(f"({VISIBLE})({json.dumps(selector)})")


@pytest.fixture(scope="module")
async def reporting(stack, tmp_path_factory) -> AsyncIterator[Running]:
    """The reporting service with Nordfyn's two half-years served, for the module's tests."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    tokens = tmp_path_factory.mktemp("browser") / "tokens.json"
    tokens.write_text(json.dumps({TOKEN: "480"}))
    settings = settings_for("reporting", stack, prefix, TASKFORCE_TOKENS_FILE=str(tokens),
                            TASKFORCE_SESSION_SECRET="browser-test-" + prefix)
    async with running(create_reporting, settings) as service:
        await produce(stack.bootstrap_servers, prefix + topics.REPORTING, scenario())
        await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, settled, timeout=60)
        await served(service)
        yield service


async def test_sign_in_open_draft_report_and_log_out(browser, reporting):
    base = reporting.base_url
    page = browser

    # Not signed in: the index sends the browser to the sign-in page.
    await page.goto(base + "/")
    assert await page.evaluate("location.pathname") == "/login"
    assert await page.evaluate("document.title") == "Log ind – Task Force-halvårsstatus"
    assert await page.evaluate("document.querySelector('h1').innerText") == "Log ind"
    assert await page.evaluate("document.documentElement.lang") == "da"
    await page.screenshot(SCREENSHOTS / "login.png", full_page=False)

    # A wrong key: the form comes back with the error, and no session.
    await page.type_into("#token", "forkert-nøgle")
    await page.press_enter()
    assert await page.evaluate("document.querySelector('#login-fejl').innerText") == \
        "Ukendt adgangsnøgle."
    assert await page.evaluate("document.querySelector('#token').getAttribute('aria-invalid')") == "true"
    cookies = (await page.send("Network.getCookies", {"urls": [base]}))["cookies"]
    assert cookies == []

    # The right key, submitted with a mouse click on the button.
    clean = page.mark()
    await page.type_into("#token", TOKEN)
    await page.click("form button[type=submit]")
    assert await page.evaluate("location.pathname") == "/"
    assert await page.evaluate("document.title") == "Halvårsstatus – kommune 480"
    assert await page.evaluate("document.querySelector('h1').innerText") == \
        "Halvårsstatus til det politiske udvalg"
    cookies = (await page.send("Network.getCookies", {"urls": [base]}))["cookies"]
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == \
        [("taskforce_session", True, "Strict")]
    assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
    links = await page.evaluate(
        "[...document.querySelectorAll('a[href$=\"/report\"]')].map(a => a.getAttribute('href'))")
    assert links == [REPORT_H2, "/municipalities/480/summaries/2022H1/report"]
    index_text = await page.evaluate("document.body.innerText")
    assert "KLADDE – ikke endelig" in index_text and "2. halvår 2022" in index_text
    await page.screenshot(SCREENSHOTS / "index.png", until="main")

    # The draft report, reached by clicking its link.
    await page.click(f'a[href="{REPORT_H2}"]')
    assert await page.evaluate("location.pathname") == REPORT_H2
    assert await page.evaluate("document.title") == \
        "KLADDE – Status på Task Force-forløbet – Nordfyns Kommune, 2. halvår 2022"
    assert await page.evaluate("document.querySelector('h1').innerText") == \
        "Status på Task Force-forløbet i Nordfyns Kommune"
    assert await page.evaluate("document.querySelector('#status').innerText") == "KLADDE – ikke endelig"
    assert await visible_count(page, ".banner-draft") == 1
    assert await visible_count(page, ".watermark") == 1
    charts = await page.evaluate(
        "[...document.querySelectorAll('figure.chart-figure svg')].map(s => {"
        " const r = s.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height),"
        " s.querySelectorAll('path, line, rect, use').length]; })")
    assert len(charts) == 3, charts
    assert all(w >= 200 and h >= 100 and shapes > 5 for w, h, shapes in charts), charts
    clipped = await page.evaluate(CLIPPED_CHART_TEXT)
    text = await page.evaluate("document.body.innerText")
    assert "None" not in text and "undefined" not in text and "NaN" not in text
    for phrase in ("Nøgletal", "Hovedpunkter", "Underretninger", "Kvaliteten i sagsbehandlingen",
                   "Udviklingsplan og opfølgning", "1.234,5 timer", "ned fra 75\xa0% i 1. halvår 2022"):
        assert phrase in text, phrase
    assert await page.evaluate("document.querySelector('#opgjort').innerText") == \
        "20. november 2022 kl. 12.00"
    await page.screenshot(SCREENSHOTS / "report-top.png", full_page=False)
    shot = await page.screenshot(SCREENSHOTS / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000

    assert page.problems(clean) == []

    # Log out from the index: back to the sign-in page, and the report is closed again.
    await page.goto(base + "/")
    await page.click("form[action='/logout'] button")
    assert await page.evaluate("location.pathname") == "/login"
    assert (await page.send("Network.getCookies", {"urls": [base]}))["cookies"] == []
    async with httpx.AsyncClient(base_url=base) as anonymous:
        assert (await anonymous.get(REPORT_H2)).status_code == 401
    await page.goto(base + REPORT_H2)
    assert "authentication required" in await page.evaluate("document.body.innerText")

    # The collector itself works: a console error raised now is seen.
    probe = page.mark()
    await page.evaluate("console.error('probe from the test')")
    await asyncio.sleep(0.2)
    assert any("probe from the test" in p for p in page.problems(probe)), page.problems(probe)

    # Every word in the charts is drawn inside its chart, none cut off at the edge.
    assert clipped == [], f"chart text cut off at the chart's edge: {clipped}"


# --- accessibility: axe-core's WCAG 2.0/2.1 A and AA rules; the keyboard alone --------------

FOCUS_RING = "getComputedStyle(document.activeElement).outlineStyle !== 'none'"


async def tab_to(page, target: str, most: int = 15) -> None:
    """Press Tab until `target` (as Page.focused names it) has the focus."""
    seen = []
    for _ in range(most):
        await page.press_tab()
        seen.append(await page.focused())
        if seen[-1] == target:
            assert await page.evaluate(FOCUS_RING), f"{target} has the focus but no visible focus ring"
            return
    raise AssertionError(f"Tab never reached {target}: {seen}")


async def test_keyboard_only_sign_in_and_every_page_passes_axe(browser, reporting, axe_source):
    page = browser
    await page.goto(reporting.base_url + "/login")
    assert await page.axe_violations(axe_source) == []

    # Keyboard only: Tab to the field, type, Enter. A wrong key first: the error page passes too.
    await tab_to(page, "input#token")
    await page.type_text("forkert-nøgle")
    await page.press_enter()
    assert await page.evaluate("location.pathname") == "/login"
    assert await page.evaluate("document.querySelector('#login-fejl').innerText") == "Ukendt adgangsnøgle."
    assert await page.axe_violations(axe_source) == []
    await tab_to(page, "input#token")
    await page.type_text(TOKEN)
    await page.press_enter()
    assert await page.evaluate("location.pathname") == "/"

    assert await page.axe_violations(axe_source) == []
    await tab_to(page, f"a[{REPORT_H2}]")
    await page.press_enter()
    assert await page.evaluate("location.pathname") == REPORT_H2
    assert await page.evaluate("document.querySelector('#status').innerText") == "KLADDE – ikke endelig"
    assert await page.axe_violations(axe_source) == []

    await page.goto(reporting.base_url + "/municipalities/480/summaries/2022H1/report")
    assert "KLADDE" not in await page.evaluate("document.body.innerText")
    assert await page.axe_violations(axe_source) == []


# --- the report as PDF ----------------------------------------------------------------------

def _images_and_fonts(reader: Any) -> tuple[int, list[str]]:
    """Raster images drawn anywhere (form XObjects searched too), and the fonts not embedded."""
    images, bare, seen = 0, [], set()

    def walk(resources: Any) -> None:
        nonlocal images
        if resources is None or id(resources) in seen:
            return
        seen.add(id(resources))
        resources = resources.get_object()
        for xobject in (resources.get("/XObject") or {}).values():
            xobject = xobject.get_object()
            if xobject.get("/Subtype") == "/Image":
                images += 1
            elif xobject.get("/Subtype") == "/Form":
                walk(xobject.get("/Resources"))
        for font in (resources.get("/Font") or {}).values():
            font = font.get_object()
            for part in [font, *(d.get_object() for d in font.get("/DescendantFonts", []))]:
                descriptor = part.get("/FontDescriptor")
                if descriptor is not None and not any(
                        key in descriptor.get_object() for key in ("/FontFile", "/FontFile2", "/FontFile3")):
                    bare.append(str(part.get("/BaseFont")))

    for pdf_page in reader.pages:
        walk(pdf_page.get("/Resources"))
    return images, bare


async def test_the_report_as_pdf_reads_back(reporting, tmp_path):
    from services.reporting.report import pdf as report_pdf

    if report_pdf.unavailable() is not None:
        pytest.skip(f"PDFs cannot be rendered here: {report_pdf.unavailable()}")
    pypdf = pytest.importorskip("pypdf", reason="the PDF is read back with pypdf (the dev extra)")
    async with reporting.client(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        draft = await http.get(REPORT_H2 + ".pdf", timeout=60)
        final = await http.get("/municipalities/480/summaries/2022H1/report.pdf", timeout=60)
    assert draft.status_code == final.status_code == 200
    assert draft.headers["content-type"] == "application/pdf"

    reader = pypdf.PdfReader(io.BytesIO(draft.content))
    assert reader.metadata.title == \
        "KLADDE – Status på Task Force-forløbet – Nordfyns Kommune, 2. halvår 2022"
    root = reader.trailer["/Root"]
    assert root["/Lang"] == "da" and bool(root["/MarkInfo"]["/Marked"]) and "/StructTreeRoot" in root
    assert bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    pages = [p.extract_text() for p in reader.pages]
    assert len(pages) >= 2
    assert [i for i, text in enumerate(pages, 1) if "KLADDE" not in text] == []
    assert all(f"Side {i} af {len(pages)}" in text for i, text in enumerate(pages, 1))
    whole = " ".join(pages)
    for phrase in ("Status på Task Force-forløbet i Nordfyns Kommune", "2. halvår 2022", "Nøgletal",
                   "Underretninger", "1.234,5 timer", "Tallene bag figuren",
                   "Inden for 24 timer"):  # the last is the chart's axis label: text, not pixels
        assert phrase in whole, phrase
    images, bare = _images_and_fonts(reader)
    assert images == 0 and bare == [], (images, bare)  # vector charts, every font embedded

    final_pages = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(final.content)).pages]
    assert final_pages and not any("KLADDE" in text for text in final_pages)

    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("no pdftoppm (Debian's poppler-utils; `make test-browser` installs it): "
                    "the PDF's first page is not rendered to a PNG")
    source = tmp_path / "report.pdf"
    source.write_bytes(draft.content)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        pdftoppm, "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(source),
        str(SCREENSHOTS / "report-pdf"), stderr=asyncio.subprocess.PIPE)
    _, errors = await process.communicate()
    assert process.returncode == 0, errors.decode(errors="replace")
    shot = SCREENSHOTS / "report-pdf.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
