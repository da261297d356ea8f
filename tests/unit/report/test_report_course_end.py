"""The committee report once the course has ended (contract 1.1): no cadence verdict for a
period after the end, and the verdict "frem til forløbets afslutning" in the period it ends;
the date it ended on when the caller gives it (the API reads it from the course's state)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from schemas.summary import SummaryData
from services.reporting.report import ReportInput, render_report
from services.reporting.report import formatting as fmt

pytestmark = pytest.mark.unit

Factory = Callable[..., SummaryData]
COMPLETED = {"course__status": "completed", "course__month_of_course": 13}


def report(summaries: list[SummaryData], period: str) -> str:
    return render_report(ReportInput("480", summaries, period))


def section(html: str, start: str, end: str) -> str:
    """The markup from `start` to the next `end`."""
    part = html[html.index(start):]
    return part[:part.index(end)]


def ended_after(make_summary: Factory, period: str = "2023H2", **edits: object) -> SummaryData:
    return make_summary(period, as_of="2024-01-01T00:00:00+01:00", highlights=[],
                        development_plan__longest_gap_days=None,
                        development_plan__cadence_ok=None, **{**COMPLETED, **edits})


def test_a_period_after_the_end_says_the_course_has_ended(make_summary: Factory) -> None:
    html = report([ended_after(make_summary)], "2023H2")
    plan = section(html, 'id="h-opfoelgning"', "</table>")
    assert ("Forløbet er afsluttet i måned 13</strong>, før 2. halvår 2023 begyndte. Der følges "
            "ikke op på udviklingsplanen efter forløbets afslutning, så rytmen vurderes ikke "
            "for halvåret.") in plan
    assert "rytmen er" not in html  # no verdict
    card = section(html, "Opfølgning hver 6. uge</span>", "</li>")
    assert '<span class="card-value">Forløbet er afsluttet</span>' in card
    assert "Længste interval" not in card and "Overholdt" not in card
    assert "Afsluttet i måned 13. Der følges ikke op efter afslutningen" in card
    table = section(html, 'id="tabel-opfoelgning"', "</table>")
    assert "Forløbet er afsluttet" in table and "Nej" not in table


def test_the_previous_periods_verdict_stays_beside_the_ended_one(make_summary: Factory) -> None:
    before = make_summary("2023H1", **COMPLETED)  # 49 days, not kept, up to the end
    html = report([before, ended_after(make_summary)], "2023H2")
    table = section(html, 'id="tabel-opfoelgning"', "</table>")
    assert "Forløbet er afsluttet" in table and "Nej" in table and "49 dage" in table


def test_without_the_month_it_still_says_so(make_summary: Factory) -> None:
    html = report([ended_after(make_summary, course__month_of_course=None,
                               course__started_on=None)], "2023H2")
    assert "<strong>Forløbet er afsluttet</strong>, før 2. halvår 2023 begyndte." in html


def test_the_period_it_ends_in_keeps_its_verdict_up_to_the_end(make_summary: Factory) -> None:
    html = report([make_summary("2022H1", **COMPLETED)], "2022H1")
    plan = section(html, 'id="h-opfoelgning"', "</table>")
    assert ("Det længste interval mellem to opfølgninger frem til forløbets afslutning var "
            "49 dage") in plan
    assert "rytmen er ikke overholdt" in plan
    assert "Forløbet er afsluttet i måned 13</strong>. Intervallerne er opgjort frem til" in plan
    assert "før 1. halvår 2022 begyndte" not in html
    card = section(html, "Opfølgning hver 6. uge</span>", "</li>")
    assert "Ikke overholdt" in card and "Længste interval frem til forløbets afslutning" in card


def test_a_running_course_is_unchanged(make_summary: Factory) -> None:
    html = report([make_summary("2022H1")], "2022H1")
    assert "Forløbet er afsluttet" not in html
    assert "Det længste interval mellem to opfølgninger var 49 dage" in html


def test_an_ended_course_without_a_plan_says_there_is_no_plan(make_empty: Factory) -> None:
    html = report([make_empty("2023H2", course__status="completed")], "2023H2")
    assert "Der er endnu ikke vedtaget en udviklingsplan." in html
    assert "før 2. halvår 2023 begyndte" not in html


def test_course_ended_wording() -> None:
    assert fmt.course_ended(13) == "Forløbet er afsluttet i måned 13"
    assert fmt.course_ended(None) == fmt.COURSE_ENDED == "Forløbet er afsluttet"


# --- when the course ended: the date, when the caller knows it ---------------------------

ENDED_ON = date(2023, 3, 14)


def report_on(summaries: list[SummaryData], period: str, ended_on: date | None) -> str:
    return render_report(ReportInput("480", summaries, period, course_completed_on=ended_on))


def test_a_period_after_the_end_says_on_which_date(make_summary: Factory) -> None:
    html = report_on([ended_after(make_summary)], "2023H2", ENDED_ON)
    plan = section(html, 'id="h-opfoelgning"', "</table>")
    assert ("<strong>Forløbet er afsluttet den 14. marts 2023 (forløbets måned 13)</strong>, før "
            "2. halvår 2023 begyndte.") in plan
    assert "rytmen er" not in html and "Overholdt" not in html
    card = section(html, "Opfølgning hver 6. uge</span>", "</li>")
    assert '<span class="card-value">Forløbet er afsluttet</span>' in card
    assert "Afsluttet den 14. marts 2023 (måned 13). Der følges ikke op efter afslutningen" in card
    facts = section(html, 'id="h-forloeb"', "</dl>")
    assert '<dt>Afslutningsdato</dt><dd id="afslutningsdato">14. marts 2023</dd>' in facts


def test_the_period_it_ends_in_says_the_date_beside_its_verdict(make_summary: Factory) -> None:
    html = report_on([make_summary("2022H1", **COMPLETED)], "2022H1", date(2022, 5, 31))
    plan = section(html, 'id="h-opfoelgning"', "</table>")
    assert "frem til forløbets afslutning var 49 dage" in plan and "rytmen er ikke overholdt" in plan
    assert ("<strong>Forløbet er afsluttet den 31. maj 2022 (forløbets måned 13)</strong>. "
            "Intervallerne er opgjort frem til afslutningsdagen") in plan


def test_the_date_without_the_month(make_summary: Factory) -> None:
    html = report_on([ended_after(make_summary, course__month_of_course=None,
                                  course__started_on=None)], "2023H2", ENDED_ON)
    assert "<strong>Forløbet er afsluttet den 14. marts 2023</strong>, før 2. halvår 2023" in html
    card = section(html, "Opfølgning hver 6. uge</span>", "</li>")
    assert "Afsluttet den 14. marts 2023. Der følges" in card


def test_a_date_is_ignored_while_the_summary_says_running(make_summary: Factory) -> None:
    html = report_on([make_summary("2022H1")], "2022H1", ENDED_ON)
    assert "Forløbet er afsluttet" not in html and "14. marts 2023" not in html
    assert "Afslutningsdato" not in html


def test_an_ended_course_without_a_plan_still_shows_its_date(make_empty: Factory) -> None:
    html = report_on([make_empty("2023H2", course__status="completed")], "2023H2", ENDED_ON)
    assert "Der er endnu ikke vedtaget en udviklingsplan." in html
    assert '<dd id="afslutningsdato">14. marts 2023</dd>' in html


def test_course_ended_wording_with_a_date() -> None:
    assert fmt.course_ended(24, date(2022, 1, 31)) == (
        "Forløbet er afsluttet den 31. januar 2022 (forløbets måned 24)")
    assert fmt.course_ended(None, date(2022, 1, 31)) == "Forløbet er afsluttet den 31. januar 2022"
