from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from schemas.summary import SummaryData
from services.reporting.report import charts

pytestmark = pytest.mark.unit

Factory = Callable[..., SummaryData]

PERIOD_LABELS = ("1. halvår 2021", "2. halvår 2021", "1. halvår 2022")


def _ordered(history: list[SummaryData]) -> list[SummaryData]:
    return sorted(history, key=lambda s: s.period)


def _point_titles(svg: str) -> list[str]:
    return re.findall(r'<g id="[^"]*punkt-[^"]*"><title>([^<]*)</title>', svg)


def test_three_trend_charts_with_a_point_per_period(history: list[SummaryData]) -> None:
    result = charts.trend_charts(_ordered(history))
    assert [c.key for c in result] == ["andel-24t", "vurdering", "milepaele"]
    share, ratings, milestones = result

    assert _point_titles(share.svg) == [
        "1. halvår 2021: 92\xa0%", "2. halvår 2021: 85\xa0%", "1. halvår 2022: 80\xa0%"]
    # Four dimensions × three periods.
    rating_points = _point_titles(ratings.svg)
    assert len(rating_points) == 12
    assert "Opfølgning på indsatsen, 1. halvår 2022: 2,17" in rating_points
    # Five milestone states × three periods (stacked bars).
    milestone_points = _point_titles(milestones.svg)
    assert len(milestone_points) == 15
    assert "Opnået, 2. halvår 2021: 2" in milestone_points
    for chart in result:
        for label in PERIOD_LABELS:
            assert label in chart.description
        assert [row[0] for row in chart.rows] == list(PERIOD_LABELS)


def test_charts_are_inline_svg_with_title_and_description(history: list[SummaryData]) -> None:
    for chart in charts.trend_charts(_ordered(history)):
        svg = chart.svg
        assert svg.startswith("<svg")
        assert svg.rstrip().endswith("</svg>")
        assert "<?xml" not in svg and "DOCTYPE" not in svg and "<metadata" not in svg
        assert 'role="img"' in svg
        assert f'aria-labelledby="{chart.key}-titel {chart.key}-beskrivelse"' in svg
        assert f'<title id="{chart.key}-titel">' in svg
        assert f'<desc id="{chart.key}-beskrivelse">' in svg
        assert "<image" not in svg  # vector only, nothing embedded
        ids = re.findall(r'\bid="([^"]+)"', svg)
        assert len(ids) == len(set(ids))
        assert all(i.startswith(f"{chart.key}-") for i in ids)
        for ref in re.findall(r'(?:url\(#|href="#)([^")]+)', svg):
            assert ref in ids


def test_rendering_is_deterministic(history: list[SummaryData]) -> None:
    first = [c.svg for c in charts.trend_charts(_ordered(history))]
    charts.clear_cache()
    second = [c.svg for c in charts.trend_charts(_ordered(history))]
    assert first == second


def test_null_figures_leave_gaps_not_points(make_empty: Factory, make_summary: Factory) -> None:
    summaries = [make_empty("2021H1"), make_summary("2021H2")]
    share, ratings, milestones = charts.trend_charts(summaries)
    # Nothing received in 2021H1: no share point, shown as a dash in the table.
    assert _point_titles(share.svg) == ["2. halvår 2021: 80\xa0%"]
    assert share.rows[0][-1] == "–"
    assert len(_point_titles(ratings.svg)) == 4
    assert "1. halvår 2021 –" in ratings.description
    assert "None" not in ratings.description + share.description + milestones.description

    only_empty = charts.trend_charts([make_empty("2021H1")])
    assert "Ingen sagsgennemgange endnu" in only_empty[1].svg
    assert "Ingen udviklingsplan endnu" in only_empty[2].svg
