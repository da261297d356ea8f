from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

import pytest

from schemas.summary import SummaryData
from services.reporting.report import ReportInput, render_report

pytestmark = pytest.mark.unit

Factory = Callable[..., SummaryData]
NBSP = "\xa0"


class Outline(HTMLParser):
    """Collects what the accessibility and self-containment checks need."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[int] = []
        self.ids: list[str] = []
        self.tables = 0
        self.captions = 0
        self.th_without_scope = 0
        self.html_lang: str | None = None
        self.external: list[str] = []
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.html_lang = a.get("lang")
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if a.get("id"):
            self.ids.append(a["id"] or "")
        if tag == "table":
            self.tables += 1
        if tag == "caption":
            self.captions += 1
        if tag == "th" and a.get("scope") not in ("col", "row"):
            self.th_without_scope += 1
        inline = all((value or "").startswith(("#", "data:")) for name, value in attrs
                     if name == "src" or name.endswith("href"))
        if tag in ("script", "iframe", "object", "embed") or (tag in ("link", "img") and not inline):
            self.external.append(tag)
        for name, value in attrs:
            if name == "src" or (name.endswith("href") and not (value or "").startswith(("#", "data:"))):
                self.external.append(f"{tag}[{name}={value}]")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.text.append(data)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    parser.close()
    return parser


def report(summaries: list[SummaryData], period: str = "2022H1", **kw: object) -> str:
    return render_report(ReportInput("480", summaries, period, **kw))  # type: ignore[arg-type]


def test_final_report_shows_danish_figures(history: list[SummaryData]) -> None:
    html = report(history)
    assert "Nordfyns Kommune" in html
    assert "1. halvår 2022" in html
    assert "Endelig" in html
    assert "KLADDE" not in html
    assert "Opgjort pr." in html and "1. juli 2022" in html
    assert f"80{NBSP}%" in html  # share within 24 h
    assert "6,5 timer" in html  # median hours
    assert f"ned fra 85{NBSP}% i 2. halvår 2021" in html  # compared with the previous period
    assert "Måned 18 af 23 planlagte" in html
    assert "<dt>Forløb</dt><dd>I gang, måned 18 af 23</dd>" in html
    assert "I gang" in html  # course status
    assert "2,17" in html and f"83{NBSP}%" in html  # rating and share meeting standard
    assert "Væsentlige fund" in html and "Mindre væsentlige fund" in html
    assert "49 dage" in html and "rytmen er ikke overholdt" in html
    assert "3 af 8" in html
    assert "faldt fra 92 % til 80 %" in html  # the highlight, verbatim


def test_draft_never_looks_final(make_summary: Factory) -> None:
    draft = make_summary("2022H1", "draft", as_of="2022-03-15T10:23:00+01:00")
    html = report([draft])
    assert "<title>KLADDE – " in html
    assert 'class="watermark" aria-hidden="true">KLADDE<' in html
    assert "banner-draft" in html and "KLADDE – ikke endelig" in html
    assert 'class="status-draft"' in html
    assert "Endelig" not in html
    assert "15. marts 2022 kl. 10.23" in html


def test_revised_report_shows_revision(make_summary: Factory) -> None:
    html = report([make_summary("2022H1", "revised", 2)])
    assert "Revideret (revision 2)" in html
    assert "banner-revised" in html
    assert "KLADDE" not in html


def test_hostile_highlight_is_escaped(make_summary: Factory) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    html = report([make_summary(highlights=[hostile, "A & B"])])
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "A &amp; B" in html


def test_charts_cover_every_period_so_far(history: list[SummaryData],
                                          make_summary: Factory) -> None:
    later = make_summary("2022H2", share=0.55)
    html = report([*history, later], "2022H1")
    assert html.count("<svg") == 3
    for label in ("1. halvår 2021", "2. halvår 2021", "1. halvår 2022"):
        assert f"<title>{label}: " in html  # a share point per period
    # Periods after the rendered one are not part of its trend.
    assert "2. halvår 2022" not in html
    assert f"55{NBSP}%" not in html


def test_newest_version_of_a_period_wins(make_summary: Factory) -> None:
    first = make_summary("2022H1", "final", 0, 0.8)
    revised = make_summary("2022H1", "revised", 1, 0.9)
    html = report([revised, first])
    assert "Revideret (revision 1)" in html
    assert f"90{NBSP}%" in html


def test_unknown_period_is_an_error(history: list[SummaryData]) -> None:
    with pytest.raises(LookupError):
        report(history, "2019H1")


def test_nulls_render_as_dash(make_empty: Factory) -> None:
    html = report([make_empty("2021H1")], "2021H1")
    text = "".join(outline(html).text)
    assert "None" not in text
    assert "Kommunen har ikke et Task Force-forløb." in html
    assert "Der er ikke modtaget underretninger i 1. halvår 2021." in html
    assert "Task Force har ikke gennemgået sager i 1. halvår 2021." in html
    assert "Der er endnu ikke vedtaget en udviklingsplan." in html
    assert '<td class="num">–</td>' in html
    assert "<dt>Startdato</dt><dd>–</dd>" in html


def test_phase_means_and_rereview_changes(make_summary: Factory) -> None:
    html = report(
        [make_summary()],
        phase_means={"baseline": {"assessment": 2.0, "intervention": 2.5, "follow_up": None,
                                  "involvement": 3.0},
                     "follow_up": {"assessment": 2.75, "intervention": 3.0, "follow_up": 2.0,
                                   "involvement": 3.5}},
        rereview_changes={"assessment": 0.5, "intervention": -0.25, "follow_up": None,
                          "involvement": 0.0})
    table = html[html.index('id="tabel-faser"'):]
    table = table[:table.index("</table>")]
    assert "Forundersøgelse" in table and "Opfølgning" in table
    assert "Ændring i genvurderede sager" in table
    assert "+0,75" in table  # 2,75 − 2,0
    assert "−0,25" in table
    assert "2,0" in table and "–" in table
    assert "tabel-faser" not in report([make_summary()])


def test_accessible_self_contained_markup(history: list[SummaryData]) -> None:
    html = report(history)
    page = outline(html)
    assert page.html_lang == "da"
    assert page.headings.count(1) == 1 and page.headings[0] == 1
    for before, after in zip(page.headings, page.headings[1:], strict=False):
        assert after <= before + 1, page.headings
    assert page.tables == page.captions and page.tables >= 5
    assert page.th_without_scope == 0
    assert len(page.ids) == len(set(page.ids))
    assert page.external == []
    assert "@media print" in html
    assert "Content-Security-Policy" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "")


def test_report_is_deterministic(history: list[SummaryData]) -> None:
    assert report(history) == report(list(reversed(history)))
