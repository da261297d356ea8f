"""The committee report as PDF over HTTP (`…/report.pdf`), against the real servers.

The reporting service runs in-process against the real Kafka-protocol broker and
MongoDB-protocol server, fed `reporting.*` events for Nordfyn (480): 2022H1 past its grace
(final) and 2022H2 a draft. The PDF is read back with pypdf: title, language, tagging, text,
"KLADDE" on every page of the draft and on none of the final. Access is the HTML report's
(401 without a principal, 403 for another municipality, a browser session works), and where
WeasyPrint or Pango is missing the route answers 503 with a clear message while the HTML
report still works.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from schemas import topics
from services.reporting.app import create as create_reporting
from services.reporting.report import pdf as report_pdf
from tests.support.browser import sign_in
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import Running, running, settings_for

pytestmark = pytest.mark.integration

NORDFYN, FREDERICIA = "pdf-nordfyn-token", "pdf-fredericia-token"
WATERMARK = "2022-11-20T12:00:00+01:00"
PDF = "/municipalities/{code}/summaries/{period}/report.pdf"
DRAFT, FINAL = PDF.format(code="480", period="2022H2"), PDF.format(code="480", period="2022H1")

if report_pdf.unavailable() is not None:
    pytest.skip(f"PDFs cannot be rendered here: {report_pdf.unavailable()}", allow_module_level=True)
pypdf = pytest.importorskip("pypdf", reason="the PDF is read back with pypdf (the dev extra)")


def changed(kind: str, entity_id: str, state: dict[str, Any], version: int = 1) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "event_type": f"reporting.{kind}_changed", "schema_version": 1,
        "occurred_at": WATERMARK, "municipality_code": "480", "source": "taskforce.intake",
        "data": {"entity_id": entity_id, "version": version, "watermark": WATERMARK, "state": state},
    }


def notification(nid: str, received: str, assessed: str) -> dict[str, Any]:
    return changed("notification", nid, {
        "notification_id": nid, "received_at": received, "urgent": False, "reporter": "school",
        "assessed_at": assessed, "outcome": "no_action"}, version=2)


def scenario() -> list[dict[str, Any]]:
    course = changed("course", "course", {"applications": [], "courses": [{
        "course_id": "c-480-1", "application_id": None, "started_at": "2022-02-01T09:00:00+01:00",
        "planned_end": "2024-01-31", "completed_at": None}]})
    return [course,
            notification("n1", "2022-03-01T10:00:00+01:00", "2022-03-01T16:00:00+01:00"),
            notification("n2", "2022-05-02T08:00:00+02:00", "2022-05-04T08:00:00+02:00"),
            notification("n3", "2022-08-01T08:00:00+02:00", "2022-08-01T20:00:00+02:00")]


def _settled(records: list[Any]) -> bool:
    latest = {s["data"]["period"]: s["data"] for s in decoded(records)}
    h1, h2 = latest.get("2022H1"), latest.get("2022H2")
    return bool(h1 and h2 and h1["status"] != "draft" and h1["notifications"]["received"] == 2
                and h2["notifications"]["received"] == 1)


@pytest.fixture(scope="module")
async def reporting(stack, tmp_path_factory) -> AsyncIterator[Running]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    tokens = tmp_path_factory.mktemp("report-pdf") / "tokens.json"
    tokens.write_text(json.dumps({NORDFYN: "480", FREDERICIA: "607"}))
    settings = settings_for("reporting", stack, prefix, TASKFORCE_TOKENS_FILE=str(tokens),
                            TASKFORCE_SESSION_SECRET="pdf-secret-" + prefix)
    async with running(create_reporting, settings) as service:
        await produce(stack.bootstrap_servers, prefix + topics.REPORTING, scenario())
        await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, _settled, timeout=60)
        deadline = time.monotonic() + 30
        async with service.client(headers={"Authorization": f"Bearer {NORDFYN}"}) as http:
            while (await http.get("/municipalities/480/summaries/2022H2")).status_code != 200:
                assert time.monotonic() < deadline, "2022H2 not served"
                await asyncio.sleep(0.2)
        yield service


@pytest.fixture(scope="module")
async def pdfs(reporting) -> dict[str, bytes]:
    """The draft's and the final's PDF, fetched once for the module (rendering takes seconds)."""
    got = {}
    async with reporting.client(headers={"Authorization": f"Bearer {NORDFYN}"}) as http:
        for name, path in (("draft", DRAFT), ("final", FINAL)):
            response = await http.get(path, timeout=60)
            assert response.status_code == 200, response.text[:300]
            assert response.headers["content-type"] == "application/pdf"
            assert response.headers["cache-control"] == "no-store"
            code, period = path.split("/")[2], path.split("/")[4]
            assert response.headers["content-disposition"] == f'inline; filename="{code}-{period}.pdf"'
            got[name] = response.content
    return got


def pages_text(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


async def test_draft_pdf_is_a_tagged_danish_document_with_kladde_on_every_page(pdfs):
    reader = pypdf.PdfReader(io.BytesIO(pdfs["draft"]))
    assert pdfs["draft"].startswith(b"%PDF-")
    assert reader.metadata.title == \
        "KLADDE – Status på Task Force-forløbet – Nordfyns Kommune, 2. halvår 2022"
    root = reader.trailer["/Root"]
    assert root["/Lang"] == "da" and bool(root["/MarkInfo"]["/Marked"]) and "/StructTreeRoot" in root
    assert len(reader.pages) >= 1
    texts = pages_text(pdfs["draft"])
    assert all("KLADDE" in text for text in texts), [i for i, t in enumerate(texts) if "KLADDE" not in t]
    whole = " ".join(texts)
    assert "Nordfyns Kommune" in whole and "2. halvår 2022" in whole and "Nøgletal" in whole
    assert f"Side 1 af {len(texts)}" in texts[0]


async def test_final_pdf_has_no_kladde(pdfs):
    reader = pypdf.PdfReader(io.BytesIO(pdfs["final"]))
    assert reader.metadata.title == "Status på Task Force-forløbet – Nordfyns Kommune, 1. halvår 2022"
    texts = pages_text(pdfs["final"])
    assert not any("KLADDE" in text for text in texts)
    assert "Endelig" in " ".join(texts) or "Revideret" in " ".join(texts)


@pytest.mark.parametrize("path", [DRAFT, PDF.format(code="480", period="2019H1")])
async def test_no_or_unknown_token_is_401(reporting, path):
    async with reporting.client() as anonymous:
        response = await anonymous.get(path)
        assert response.status_code == 401
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    async with reporting.client(headers={"Authorization": "Bearer not-a-token"}) as stranger:
        assert (await stranger.get(path)).status_code == 401


async def test_other_municipality_is_403_and_missing_period_404(reporting):
    async with reporting.client(headers={"Authorization": f"Bearer {FREDERICIA}"}) as http:
        refused = await http.get(DRAFT)
        assert refused.status_code == 403 and refused.content == b""
    async with reporting.client(headers={"Authorization": f"Bearer {NORDFYN}"}) as http:
        assert (await http.get(PDF.format(code="480", period="2021H1"))).status_code == 404


async def test_a_browser_session_opens_the_pdf(reporting, pdfs):
    async with reporting.client() as browser:
        assert (await sign_in(browser, NORDFYN, "/")).status_code == 303
        response = await browser.get(FINAL, timeout=60)
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")


async def test_without_weasyprint_or_pango_the_pdf_is_503_and_html_still_works(reporting, monkeypatch):
    monkeypatch.setattr(report_pdf, "_weasyprint", lambda: "WeasyPrint cannot load Pango: no libpango")
    async with reporting.client(headers={"Authorization": f"Bearer {NORDFYN}"}) as http:
        response = await http.get(DRAFT)
        html = await http.get(DRAFT.removesuffix(".pdf"))
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "PDF-udgaven kan ikke dannes" in detail and "PDF rendering is not available" in detail
    assert "no libpango" in detail and "HTML" in detail
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
