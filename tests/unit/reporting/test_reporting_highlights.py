"""Danish highlight sentences."""

from __future__ import annotations

from datetime import datetime

import pytest

from schemas.periods import LOCAL_TZ
from schemas.summary import (
    CaseReviewFigures,
    CourseFigures,
    CourseStatus,
    DevelopmentPlanFigures,
    DimensionFigures,
    FindingCounts,
    NotificationFigures,
    SummaryData,
    SummaryStatus,
)
from services.reporting.domain.highlights import (
    MAX_HIGHLIGHTS,
    highlights,
    hours,
    integer,
    percent,
    rating,
)

pytestmark = pytest.mark.unit

Ratings4 = tuple[float | None, float | None, float | None, float | None]


def summary(*, received: int = 10, share: float = 0.8, median: float | None = 6.5,
            overdue: int = 1, completed: int = 6, findings: tuple[int, int] = (2, 3),
            ratings: Ratings4 = (2.5, 3.0, 2.17, 3.33), total: int = 8, achieved: int = 3,
            gap: int | None = 30, period: str = "2022H1") -> SummaryData:
    dims = ("assessment", "intervention", "follow_up", "involvement")
    return SummaryData(
        period=period, status=SummaryStatus.DRAFT, revision=0,
        as_of=datetime(2022, 7, 1, tzinfo=LOCAL_TZ),
        course=CourseFigures(status=CourseStatus.NONE, course_id=None, started_on=None,
                             planned_end=None, month_of_course=None),
        notifications=NotificationFigures(
            received=received, assessed=received, assessed_within_24h=round(share * received),
            share_within_24h=share, median_hours_to_assessment=median,
            overdue_unassessed=overdue, urgent_received=0),
        case_reviews=CaseReviewFigures(
            completed=completed, baseline=completed, follow_up=0,
            mean_rating=DimensionFigures(**dict(zip(dims, ratings, strict=True))),
            share_meeting_standard=DimensionFigures(**dict.fromkeys(dims)),
            legal_findings=FindingCounts(major=findings[0], minor=findings[1])),
        development_plan=DevelopmentPlanFigures(
            milestones_total=total, achieved=achieved, in_progress=0, at_risk=0, missed=0,
            not_started=total - achieved, overdue=0, meetings_held=2, longest_gap_days=gap,
            cadence_ok=None if gap is None else gap <= 42),
        highlights=[],
    )


@pytest.mark.parametrize(("value", "text"), [(0.92, "92 %"), (0.8, "80 %"), (0.0, "0 %"),
                                             (1.0, "100 %"), (0.29, "29 %")])
def test_percent(value: float, text: str) -> None:
    assert percent(value) == text


def test_danish_number_formats() -> None:
    assert hours(6.5) == "6,5 timer"
    assert hours(24.0) == "24,0 timer"
    assert integer(1234) == "1.234"
    assert integer(7) == "7"
    assert (rating(2.5), rating(3.0), rating(3.33)) == ("2,5", "3,0", "3,33")


def test_the_spec_example_sentence() -> None:
    sentences = highlights(summary(share=0.8), summary(share=0.92))
    assert sentences[0] == (
        "Andelen af underretninger vurderet inden for 24 timer faldt fra 92 % til 80 %.")


def test_rising_and_unchanged_sentences() -> None:
    sentences = highlights(summary(median=6.5, overdue=3), summary(median=5.0, overdue=3))
    assert ("Mediantiden fra modtagelse til vurdering af en underretning steg fra 5,0 timer "
            "til 6,5 timer.") in sentences
    assert ("Andelen af underretninger vurderet inden for 24 timer var uændret på 80 %."
            in sentences)
    # changed figures come first
    assert sentences[0].startswith("Mediantiden")


def test_ratings_milestones_and_findings() -> None:
    now = summary(ratings=(3.0, 3.0, 2.17, 3.33), achieved=5, findings=(1, 1))
    before = summary(ratings=(2.5, 3.0, 2.17, 3.33), achieved=3, findings=(2, 3))
    sentences = highlights(now, before)
    assert sentences[:3] == [
        "Antallet af nåede milepæle i udviklingsplanen steg fra 3 til 5.",
        "Antallet af juridiske fejl i sagsgennemgangene faldt fra 5 til 2.",
        "Den gennemsnitlige bedømmelse af faglig udredning steg fra 2,5 til 3,0.",
    ]
    assert len(sentences) == MAX_HIGHLIGHTS


def test_all_dimensions_have_danish_names() -> None:
    now = summary(ratings=(3.0, 3.5, 3.0, 4.0))
    before = summary(ratings=(2.0, 2.5, 2.0, 3.0))
    joined = " ".join(highlights(now, before))
    for name in ("faglig udredning", "valg af indsats", "opfølgning", "inddragelse"):
        assert f"bedømmelse af {name} steg" in joined


def test_broken_cadence_comes_first() -> None:
    sentences = highlights(summary(gap=49), summary(gap=20))
    assert sentences[0] == "Der gik 49 dage mellem to opfølgningsmøder; målet er højst 42."
    assert not any("opfølgningsmøder" in s for s in highlights(summary(gap=42), None))


def test_missing_figures_are_not_compared() -> None:
    now = summary(received=0, share=0.0, median=None, completed=0, findings=(0, 0),
                  ratings=(None, None, None, None), total=0, achieved=0, gap=None)
    sentences = highlights(now, summary())
    assert sentences == [
        "Antallet af modtagne underretninger faldt fra 10 til 0.",
        "Antallet af uvurderede underretninger over fristen på 24 timer var uændret på 1.",
    ]


def test_plain_statements_without_a_previous_period() -> None:
    assert highlights(summary(gap=49)) == [
        "Der gik 49 dage mellem to opfølgningsmøder; målet er højst 42.",
        "Antallet af modtagne underretninger var 10.",
        "Andelen af underretninger vurderet inden for 24 timer var 80 %.",
        "Mediantiden fra modtagelse til vurdering af en underretning var 6,5 timer.",
        "Antallet af uvurderede underretninger over fristen på 24 timer var 1.",
        "Antallet af gennemførte sagsgennemgange var 6.",
    ]


def test_plain_statements_skip_what_is_not_there() -> None:
    quiet = summary(received=0, share=0.0, median=None, overdue=0, completed=0, total=0,
                    achieved=0, gap=None)
    assert highlights(quiet) == [
        "Antallet af modtagne underretninger var 0.",
        "Antallet af gennemførte sagsgennemgange var 0.",
    ]


def test_deterministic_and_bounded() -> None:
    now = summary(share=0.5, median=9.0, overdue=4, achieved=6, findings=(0, 1),
                  ratings=(1.0, 1.5, 2.0, 2.5), received=20, gap=60)
    first = highlights(now, summary())
    assert first == highlights(now, summary())
    assert len(first) == MAX_HIGHLIGHTS
