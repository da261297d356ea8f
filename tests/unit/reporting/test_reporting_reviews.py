"""The `case_reviews` figures, per-phase means and re-review changes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from schemas.events import Phase, Ratings
from schemas.periods import LOCAL_TZ, Period, as_of
from schemas.reporting import CaseReviewState, FindingCounts
from services.reporting.domain.reviews import phase_means, rereview_changes, review_figures

pytestmark = pytest.mark.unit

H1 = Period(2022, 1)
END = H1.end
BASE = datetime(2022, 3, 1, 10, tzinfo=LOCAL_TZ)


def review(ratings: tuple[int, int, int, int], phase: Phase = Phase.BASELINE,
           completed: datetime = BASE, case: str = "case-1", rid: str | None = None,
           major: int = 0, minor: int = 0) -> CaseReviewState:
    a, i, f, v = ratings
    return CaseReviewState(
        review_id=rid or f"r-{case}-{phase.value}-{completed.isoformat()}",
        course_id="c-480-1", case_ref=case, phase=phase,
        ratings=Ratings(assessment=a, intervention=i, follow_up=f, involvement=v),
        legal_findings=FindingCounts(major=major, minor=minor),
        completed_at=completed,
    )


def spec_example() -> list[CaseReviewState]:
    """Six reviews reproducing the figures of the example in EVENTS.md."""
    columns = [(2, 4, 3, 4), (2, 4, 3, 4), (2, 3, 2, 4), (3, 3, 2, 4), (3, 2, 2, 3), (3, 2, 1, 1)]
    phases = [Phase.BASELINE] * 4 + [Phase.FOLLOW_UP] * 2
    findings = [(1, 0), (1, 1), (0, 2), (0, 0), (0, 0), (0, 0)]
    return [review(r, p, BASE + timedelta(days=n), f"case-{n}", major=mj, minor=mn)
            for n, (r, p, (mj, mn)) in enumerate(zip(columns, phases, findings, strict=True))]


def test_the_spec_example() -> None:
    result = review_figures(spec_example(), H1, END)
    assert (result.completed, result.baseline, result.follow_up) == (6, 4, 2)
    assert result.mean_rating.model_dump() == {
        "assessment": 2.5, "intervention": 3.0, "follow_up": 2.17, "involvement": 3.33}
    assert result.share_meeting_standard.model_dump() == {
        "assessment": 0.5, "intervention": 0.67, "follow_up": 0.33, "involvement": 0.83}
    assert result.legal_findings.model_dump() == {"major": 2, "minor": 3}


def test_no_reviews_gives_nulls() -> None:
    result = review_figures([], H1, END)
    assert (result.completed, result.baseline, result.follow_up) == (0, 0, 0)
    assert set(result.mean_rating.model_dump().values()) == {None}
    assert set(result.share_meeting_standard.model_dump().values()) == {None}
    assert result.legal_findings.model_dump() == {"major": 0, "minor": 0}


def test_only_reviews_completed_in_the_period_and_visible_count() -> None:
    reviews = [
        review((4, 4, 4, 4), completed=datetime(2021, 12, 31, 23, 59, tzinfo=LOCAL_TZ), rid="before"),
        review((1, 1, 1, 1), completed=END, rid="at-end", major=5),
        review((2, 2, 2, 2), completed=BASE, rid="in", minor=1),
        review((3, 3, 3, 3), completed=BASE + timedelta(seconds=1), rid="after-as-of"),
    ]
    result = review_figures(reviews, H1, as_of(H1, BASE))
    assert result.completed == 1
    assert result.mean_rating.assessment == 2.0
    assert result.share_meeting_standard.assessment == 0.0
    assert result.legal_findings.model_dump() == {"major": 0, "minor": 1}
    assert review_figures(reviews, H1, END).completed == 2


def test_phase_means() -> None:
    means = phase_means(spec_example(), H1, END)
    assert means["baseline"] == {
        "assessment": 2.25, "intervention": 3.5, "follow_up": 2.5, "involvement": 4.0}
    assert means["follow_up"] == {
        "assessment": 3.0, "intervention": 2.0, "follow_up": 1.5, "involvement": 2.0}
    empty = phase_means([], H1, END)
    assert empty == {"baseline": dict.fromkeys(("assessment", "intervention", "follow_up",
                                                 "involvement")),
                     "follow_up": dict.fromkeys(("assessment", "intervention", "follow_up",
                                                  "involvement"))}


def test_rereview_changes_use_the_latest_follow_up_after_the_baseline() -> None:
    day = timedelta(days=1)
    reviews = [
        # case A: baseline, then two follow-ups; the latest counts: +2 / +1 / 0 / -1
        review((2, 2, 3, 4), Phase.BASELINE, BASE, "A"),
        review((3, 2, 3, 4), Phase.FOLLOW_UP, BASE + 30 * day, "A"),
        review((4, 3, 3, 3), Phase.FOLLOW_UP, BASE + 60 * day, "A"),
        # case B: -1 / +1 / +1 / 0
        review((3, 1, 2, 2), Phase.BASELINE, BASE + day, "B"),
        review((2, 2, 3, 2), Phase.FOLLOW_UP, BASE + 40 * day, "B"),
        # case C: follow-up only; case D: follow-up before its baseline
        review((1, 1, 1, 1), Phase.FOLLOW_UP, BASE, "C"),
        review((4, 4, 4, 4), Phase.FOLLOW_UP, BASE, "D"),
        review((1, 1, 1, 1), Phase.BASELINE, BASE + day, "D"),
    ]
    assert rereview_changes(reviews) == {
        "assessment": 0.5, "intervention": 1.0, "follow_up": 0.5, "involvement": -0.5}
    assert rereview_changes(list(reversed(reviews))) == rereview_changes(reviews)


def test_rereview_changes_none_without_pairs() -> None:
    only_baseline = [review((2, 2, 2, 2), Phase.BASELINE, BASE, "A")]
    expected = dict.fromkeys(("assessment", "intervention", "follow_up", "involvement"))
    assert rereview_changes(only_baseline) == expected
    assert rereview_changes([]) == expected
