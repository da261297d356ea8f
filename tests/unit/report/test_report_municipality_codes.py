"""The report and the index for a municipality code that Danmarks Statistik's list lacks: the
code stays valid, the name is neutral, and a visible flag says the code is not in the list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from schemas.municipalities import UNKNOWN_CODE_NOTE
from schemas.summary import SummaryData
from services.reporting.report import IndexEntry, ReportInput, render_index, render_report

pytestmark = pytest.mark.unit

Factory = Callable[..., SummaryData]


def entry(code: str) -> IndexEntry:
    return IndexEntry(code, "2022H1", "final", 0, datetime(2022, 7, 1, tzinfo=timezone(timedelta(hours=2))),
                      f"/municipalities/{code}/summaries/2022H1/report",
                      f"/municipalities/{code}/summaries/2022H1")


def test_an_unknown_code_is_flagged_in_the_report(make_summary: Factory) -> None:
    html = render_report(ReportInput("999", [make_summary("2022H1")], "2022H1"))
    assert UNKNOWN_CODE_NOTE == "Kommunekoden findes ikke i Danmarks Statistiks liste"
    assert "Status på Task Force-forløbet i Kommune 999" in html
    assert 'Kommune 999 (kommunekode 999) <span class="flag">ukendt kode</span>' in html
    start = html.index('<p class="banner banner-unknown" role="note" id="ukendt-kommunekode">')
    banner = html[start:html.index("</p>", start)]
    assert f"<strong>{UNKNOWN_CODE_NOTE}.</strong> Koden 999 er gyldig i hændelserne" in banner
    # The figures are there as for any municipality.
    assert 'id="tabel-underretninger"' in html


@pytest.mark.parametrize(("code", "name"), [("480", "Nordfyns Kommune"), ("101", "Københavns Kommune"),
                                            ("400", "Bornholms Regionskommune")])
def test_a_known_code_has_its_name_and_no_flag(make_summary: Factory, code: str, name: str) -> None:
    html = render_report(ReportInput(code, [make_summary("2022H1")], "2022H1"))
    assert f"{name} (kommunekode {code})</dd>" in html
    assert "ukendt-kommunekode" not in html and UNKNOWN_CODE_NOTE not in html
    assert '<span class="flag">' not in html


def test_the_index_flags_an_unknown_code_among_several() -> None:
    html = render_index([entry("999"), entry("480")], "alle kommuner")
    row = html[html.index("Kommune 999 (999)"):]
    row = row[:row.index("</td>")]
    assert f'<span class="flag" title="{UNKNOWN_CODE_NOTE}">ukendt kode</span>' in row
    known = html[html.index("Nordfyns Kommune (480)"):]
    assert "ukendt kode" not in known[:known.index("</td>")]
