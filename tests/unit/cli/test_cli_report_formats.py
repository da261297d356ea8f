"""`taskforce reports --format html|pdf` against an API answered from memory."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from taskforce import cli
from taskforce.summaries_view import Api

pytestmark = pytest.mark.unit

PDF = b"%PDF-1.7 fake"
UNAVAILABLE = ("PDF-udgaven kan ikke dannes på denne server; HTML-rapporten virker. "
               "PDF rendering is not available on this server (no libpango)")


def _fake(monkeypatch: pytest.MonkeyPatch, asked: list[str], *, pdf_works: bool = True) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        asked.append(path)
        if path.endswith("/summaries"):
            return httpx.Response(200, json={"municipality_code": "480", "periods": [
                {"period": p, "status": "final", "revision": 0, "as_of": "2022-07-01T00:00:00+02:00"}
                for p in ("2021H2", "2022H1")]})
        if path.endswith("/report.pdf"):
            if not pdf_works:
                return httpx.Response(503, json={"detail": UNAVAILABLE})
            return httpx.Response(200, content=PDF, headers={"content-type": "application/pdf"})
        if path.endswith("/report"):
            return httpx.Response(200, text="<!doctype html><title>r</title>")
        return httpx.Response(404)

    def client(self: Api) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, transport=httpx.MockTransport(answer))

    monkeypatch.setattr(Api, "client", client)


def _reports(out: Path, *extra: str) -> object:
    return CliRunner().invoke(cli.app, ["reports", "-m", "480", "--out", str(out), "--api",
                                       "http://reporting.test", "--token", "t", *extra])


def test_pdf_format_writes_one_pdf_per_period(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    _fake(monkeypatch, asked)
    result = _reports(tmp_path, "--format", "pdf")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["480-2021H2.pdf", "480-2022H1.pdf"]
    assert (tmp_path / "480-2022H1.pdf").read_bytes() == PDF
    assert "/municipalities/480/summaries/2022H1/report.pdf" in asked


def test_html_stays_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, [])
    result = _reports(tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["480-2021H2.html", "480-2022H1.html"]


def test_without_pdf_support_on_the_server_the_error_says_why(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, [], pdf_works=False)
    result = _reports(tmp_path, "--format", "pdf")
    assert result.exit_code != 0
    assert "503" in result.output and "PDF rendering is not available" in result.output
    assert "no libpango" in result.output
    assert not list(tmp_path.glob("*.pdf"))
    html = _reports(tmp_path, "--format", "html")
    assert html.exit_code == 0, html.output
