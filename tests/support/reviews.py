"""Case review states for the tests of the re-review change, and a hypothesis strategy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from schemas.events import Phase, Ratings
from schemas.reporting import CaseReviewState, FindingCounts
from schemas.rules import DIMENSIONS

T0 = datetime(2022, 3, 1, 9, 0, tzinfo=UTC)


def review(review_id: str, case: str, phase: Phase, at: datetime,
           ratings: tuple[int, int, int, int]) -> CaseReviewState:
    return CaseReviewState(
        review_id=review_id, course_id="c-480-1", case_ref=case, phase=phase,
        ratings=Ratings(**dict(zip(DIMENSIONS, ratings, strict=True))),
        legal_findings=FindingCounts(major=0, minor=0), completed_at=at)


_offsets = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))])

#: A municipality's review states: few cases, few distinct instants (so ties and follow-ups
#: before, at and after a baseline are common), instants written with different offsets.
reviews_strategy = st.lists(
    st.builds(
        lambda n, case, phase, hours, tz, ratings: review(
            f"r{n}", case, phase, (T0 + timedelta(hours=hours)).astimezone(tz), ratings),
        st.integers(0, 30), st.sampled_from("ABCD"), st.sampled_from(list(Phase)), st.integers(0, 6),
        _offsets, st.tuples(*[st.integers(1, 4)] * 4)),
    max_size=14,
).map(lambda rs: list({r.review_id: r for r in rs}.values()))  # one state per review id
