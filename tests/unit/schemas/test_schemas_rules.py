"""The contract's shared rules (`schemas.rules`): dimensions, cadence, grace, latest wins and
the re-review change (docs/domain.md, *Re-review change*)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import product
from statistics import mean

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Phase
from schemas.reporting import CaseReviewState
from schemas.rules import (
    CADENCE_DAYS,
    DEFAULT_GRACE,
    DIMENSIONS,
    GRACE_DAYS,
    latest_wins,
    rereview_changes,
)
from schemas.summary import DevelopmentPlanFigures, DimensionFigures
from tests.support.reviews import T0, review, reviews_strategy

pytestmark = pytest.mark.unit

# --- constants -----------------------------------------------------------------------------


def test_the_four_dimensions_in_the_contracts_order() -> None:
    assert DIMENSIONS == ("assessment", "intervention", "follow_up", "involvement")
    assert tuple(DimensionFigures.model_fields) == DIMENSIONS


def test_cadence_and_grace() -> None:
    assert CADENCE_DAYS == 42
    assert str(CADENCE_DAYS) in (DevelopmentPlanFigures.model_fields["cadence_ok"].description or "")
    assert GRACE_DAYS == 14 and timedelta(days=GRACE_DAYS) == DEFAULT_GRACE


# --- latest wins ---------------------------------------------------------------------------


def _state(at: datetime, ratings: tuple[int, int, int, int]) -> CaseReviewState:
    return review("r1", "A", Phase.BASELINE, at, ratings)


_facts = st.lists(st.tuples(st.integers(0, 3), st.tuples(*[st.integers(1, 4)] * 4)), min_size=1, max_size=6)


def _fold(facts: list[tuple[int, tuple[int, int, int, int]]]) -> CaseReviewState:
    state: CaseReviewState | None = None
    for hours, ratings in facts:
        at = T0 + timedelta(hours=hours)
        state = latest_wins(state, None if state is None else state.completed_at, at,
                            lambda at=at, ratings=ratings: _state(at, ratings))
    assert state is not None
    return state


@settings(max_examples=200, deadline=None)
@given(_facts, st.randoms(use_true_random=False))
def test_latest_wins_is_the_maximum_by_instant_then_json(
        facts: list[tuple[int, tuple[int, int, int, int]]], rnd: object) -> None:
    shuffled = list(facts)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    states = [_state(T0 + timedelta(hours=h), r) for h, r in facts]
    expected = max(states, key=lambda s: (s.completed_at, s.model_dump_json()))
    assert _fold(facts) == expected == _fold(shuffled)


def test_latest_wins_builds_the_new_state_only_when_needed() -> None:
    current = _state(T0, (1, 1, 1, 1))

    def never() -> CaseReviewState:
        raise AssertionError("built")

    assert latest_wins(current, current.completed_at, T0 - timedelta(seconds=1), never) is current


# --- the re-review change ------------------------------------------------------------------


def test_a_follow_up_at_or_before_the_first_baseline_is_no_re_review() -> None:
    day = timedelta(days=1)
    reviews = [
        # A: a follow-up before its baseline and one at the same instant: no re-review
        review("a-f0", "A", Phase.FOLLOW_UP, T0 - day, (4, 4, 4, 4)),
        review("a-f1", "A", Phase.FOLLOW_UP, T0, (4, 4, 4, 4)),
        review("a-b", "A", Phase.BASELINE, T0, (1, 1, 1, 1)),
        # B: the latest follow-up is before a later baseline, but after the first: counts
        review("b-b1", "B", Phase.BASELINE, T0, (1, 2, 3, 4)),
        review("b-f", "B", Phase.FOLLOW_UP, T0 + day, (2, 2, 2, 2)),
        review("b-b2", "B", Phase.BASELINE, T0 + 2 * day, (4, 4, 4, 4)),
        # C: only the follow-up after the baseline counts, not the later-listed earlier one
        review("c-f2", "C", Phase.FOLLOW_UP, T0 + 3 * day, (3, 3, 3, 3)),
        review("c-b", "C", Phase.BASELINE, T0 + day, (2, 2, 2, 2)),
        review("c-f1", "C", Phase.FOLLOW_UP, T0, (1, 1, 1, 1)),
    ]
    # B: (+1, 0, -1, -2); C: (+1, +1, +1, +1)
    assert rereview_changes(reviews) == (2, {"assessment": 1.0, "intervention": 0.5,
                                             "follow_up": 0.0, "involvement": -0.5})
    assert rereview_changes([r for r in reviews if r.case_ref == "A"]) == (0, dict.fromkeys(DIMENSIONS))


def test_the_instant_not_the_offset_decides() -> None:
    plus_two = timezone(timedelta(hours=2))
    baseline = review("b", "A", Phase.BASELINE, T0, (1, 1, 1, 1))
    # 10:30+02:00 is 08:30Z: before the baseline at 09:00Z, though its wall clock is later
    early = review("f", "A", Phase.FOLLOW_UP, datetime(2022, 3, 1, 10, 30, tzinfo=plus_two), (4, 4, 4, 4))
    assert rereview_changes([baseline, early]).cases == 0
    late = review("f", "A", Phase.FOLLOW_UP, datetime(2022, 3, 1, 11, 30, tzinfo=plus_two), (4, 4, 4, 4))
    assert rereview_changes([baseline, late]).cases == 1


def reference(reviews: list[CaseReviewState]) -> tuple[int, dict[str, float | None]]:
    """docs/domain.md's definition, spelled out case by case with no shortcuts."""
    deltas: list[list[int]] = []
    for case in sorted({r.case_ref for r in reviews}):
        mine = [r for r in reviews if r.case_ref == case]
        baselines = [r for r in mine if r.phase == Phase.BASELINE]
        if not baselines:
            continue
        first = min(baselines, key=lambda r: (r.completed_at.timestamp(), r.review_id))
        after = [r for r in mine if r.phase == Phase.FOLLOW_UP
                 and r.completed_at.timestamp() > first.completed_at.timestamp()]
        if after:
            last = max(after, key=lambda r: (r.completed_at.timestamp(), r.review_id))
            deltas.append([getattr(last.ratings, d) - getattr(first.ratings, d) for d in DIMENSIONS])
    return len(deltas), {d: round(mean(x[i] for x in deltas), 2) if deltas else None
                         for i, d in enumerate(DIMENSIONS)}


@settings(max_examples=300, deadline=None)
@given(reviews_strategy, st.randoms(use_true_random=False))
def test_rereview_changes_match_the_definition_in_any_order(
        reviews: list[CaseReviewState], rnd: object) -> None:
    got = rereview_changes(reviews)
    assert (got.cases, got.mean_change) == reference(reviews)
    shuffled = list(reviews)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert rereview_changes(iter(shuffled)) == got
    assert all(isinstance(v, float) for v in got.mean_change.values() if v is not None)


def test_every_rating_pair_is_a_plain_difference() -> None:
    for before, after in product(range(1, 5), repeat=2):
        reviews = [review("b", "A", Phase.BASELINE, T0, (before,) * 4),
                   review("f", "A", Phase.FOLLOW_UP, T0 + timedelta(days=42), (after,) * 4)]
        assert rereview_changes(reviews).mean_change == dict.fromkeys(DIMENSIONS, float(after - before))
