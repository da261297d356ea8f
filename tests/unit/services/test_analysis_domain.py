"""Analysis's pure rules: a review's state, corrections (latest wins), rating changes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import CaseReviewCompleted, Phase
from schemas.reporting import CaseReviewState, FindingCounts
from schemas.rules import DIMENSIONS
from services.analysis.domain import apply_review, rating_changes, review_state

pytestmark = pytest.mark.unit


def review(review_id: str, at: str, phase: str, ratings: tuple[int, int, int, int], case: str = "case-1",
           findings: tuple[str, ...] = (), event_id: str | None = None) -> CaseReviewCompleted:
    return CaseReviewCompleted.model_validate_json(json.dumps({
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": "case_review.completed",
        "schema_version": 1,
        "occurred_at": at,
        "municipality_code": "480",
        "source": "taskforce.reviews",
        "data": {
            "review_id": review_id, "course_id": "c-480-1", "case_ref": case, "phase": phase,
            "ratings": dict(zip(DIMENSIONS, ratings, strict=True)),
            "legal_findings": [{"code": f"LF{i}", "severity": s} for i, s in enumerate(findings)],
        },
    }))


def fold(events: list[CaseReviewCompleted]) -> CaseReviewState | None:
    state = None
    for event in events:
        state = apply_review(state, event)
    return state


# --- review_state --------------------------------------------------------------------------


def test_review_state_counts_findings_by_severity() -> None:
    event = review("r1", "2022-03-01T10:00:00+01:00", "baseline", (1, 2, 3, 4), case="case-7",
                   findings=("major", "minor", "minor", "major", "minor"))
    state = review_state(event)
    assert state.legal_findings == FindingCounts(major=2, minor=3)
    assert (state.review_id, state.course_id, state.case_ref, state.phase) == ("r1", "c-480-1", "case-7",
                                                                            Phase.BASELINE)
    assert (state.ratings.assessment, state.ratings.intervention,
            state.ratings.follow_up, state.ratings.involvement) == (1, 2, 3, 4)
    assert state.completed_at == datetime.fromisoformat("2022-03-01T10:00:00+01:00")


@pytest.mark.parametrize(("findings", "major", "minor"), [
    ((), 0, 0),
    (("minor",), 0, 1),
    (("major",), 1, 0),
    (("major",) * 4, 4, 0),
])
def test_review_state_finding_counts(findings: tuple[str, ...], major: int, minor: int) -> None:
    state = review_state(review("r1", "2022-03-01T10:00:00+01:00", "follow_up", (3, 3, 3, 3),
                                findings=findings))
    assert state.legal_findings == FindingCounts(major=major, minor=minor)


# --- apply_review --------------------------------------------------------------------------

CORRECTIONS = [
    review("r1", "2022-03-01T10:00:00+01:00", "baseline", (1, 1, 1, 1)),
    review("r1", "2022-03-02T10:00:00+01:00", "baseline", (2, 2, 2, 2), findings=("minor",)),
    review("r1", "2022-03-03T10:00:00+01:00", "baseline", (3, 2, 2, 2), findings=("major",)),
    review("r1", "2022-03-03T10:00:00+01:00", "baseline", (2, 3, 2, 2)),   # same instant, other content
    review("r1", "2022-03-03T09:00:00+00:00", "baseline", (2, 2, 3, 2)),   # same instant, other offset
    review("r1", "2022-02-20T10:00:00+01:00", "baseline", (4, 4, 4, 4)),
]


def test_apply_review_latest_wins() -> None:
    old, new = CORRECTIONS[0], CORRECTIONS[1]
    assert apply_review(apply_review(None, old), new) == review_state(new)
    assert apply_review(apply_review(None, new), old) == review_state(new)
    assert apply_review(None, old) == review_state(old)


def test_apply_review_replaying_the_same_event_changes_nothing() -> None:
    state = apply_review(None, CORRECTIONS[1])
    assert apply_review(state, CORRECTIONS[1]) == state


@settings(max_examples=150, deadline=None)
@given(st.permutations(CORRECTIONS), st.lists(st.sampled_from(CORRECTIONS), max_size=4))
def test_apply_review_is_independent_of_order(order: list[CaseReviewCompleted],
                                              again: list[CaseReviewCompleted]) -> None:
    expected = fold(CORRECTIONS)
    state = fold([*order, *again])
    assert state == expected
    assert state is not None and expected is not None
    assert state.model_dump_json() == expected.model_dump_json()
    assert state.completed_at == max(e.occurred_at for e in CORRECTIONS)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(range(len(CORRECTIONS))), min_size=1, unique=True), st.randoms())
def test_apply_review_subsets_are_independent_of_order(chosen: list[int], rnd: Any) -> None:
    events = [CORRECTIONS[i] for i in chosen]
    shuffled = list(events)
    rnd.shuffle(shuffled)
    a, b = fold(events), fold(shuffled)
    assert a is not None and b is not None
    assert a.model_dump_json() == b.model_dump_json()


def eager_apply_review(state: CaseReviewState | None, event: CaseReviewCompleted) -> CaseReviewState:
    """The rule as first written: both (completed_at, JSON) keys built for every comparison."""
    new = CaseReviewState(
        review_id=event.data.review_id, course_id=event.data.course_id, case_ref=event.data.case_ref,
        phase=event.data.phase, ratings=event.data.ratings,
        legal_findings=FindingCounts(
            major=sum(f.severity == "major" for f in event.data.legal_findings),
            minor=sum(f.severity == "minor" for f in event.data.legal_findings)),
        completed_at=event.occurred_at)
    if state is None:
        return new
    if (new.completed_at, new.model_dump_json()) > (state.completed_at, state.model_dump_json()):
        return new
    return state


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["2022-03-01T09:00:00+01:00", "2022-03-01T08:00:00+00:00", "2022-03-01T10:00:00+02:00",
                     "2022-03-01T09:00:00.5+01:00", "2022-03-02T09:00:00+01:00"]),
    st.sampled_from(["baseline", "follow_up"]),
    st.tuples(*[st.integers(1, 4)] * 4),
    st.lists(st.sampled_from(["major", "minor"]), max_size=3).map(tuple),
), min_size=1, max_size=5))
def test_apply_review_equals_the_eager_rule(cases: list[tuple[Any, ...]]) -> None:
    events = [review("r1", at, phase, ratings, findings=findings) for at, phase, ratings, findings in cases]
    lazy = eager = None
    for event in events:
        lazy, eager = apply_review(lazy, event), eager_apply_review(eager, event)
        assert lazy == eager
        assert lazy.model_dump_json() == eager.model_dump_json()
        assert list(lazy.__dict__.items()) == list(eager.__dict__.items())
        assert lazy.legal_findings.model_fields_set == eager.legal_findings.model_fields_set


# --- rating_changes ------------------------------------------------------------------------


def state(review_id: str, at: str, phase: str, ratings: tuple[int, int, int, int], case: str
          ) -> CaseReviewState:
    return review_state(review(review_id, at, phase, ratings, case=case))


REVIEWS = [
    # case A: two baselines (the earliest counts), two follow-ups (the latest counts);
    # listed so that neither the first nor the last seen is the right one
    state("a-b2", "2022-03-10T10:00:00+01:00", "baseline", (4, 4, 4, 4), "A"),
    state("a-f2", "2022-11-01T10:00:00+01:00", "follow_up", (3, 3, 3, 4), "A"),
    state("a-b1", "2022-03-01T10:00:00+01:00", "baseline", (1, 2, 2, 3), "A"),
    state("a-f1", "2022-09-01T10:00:00+02:00", "follow_up", (2, 2, 3, 3), "A"),
    # case B: one of each -> deltas (0, +1, +2, +1)
    state("b-f", "2022-10-01T10:00:00+02:00", "follow_up", (2, 3, 3, 3), "B"),
    state("b-b", "2022-04-01T10:00:00+02:00", "baseline", (2, 2, 1, 2), "B"),
    # case C: baseline only; case D: follow-up only -> neither counts
    state("c-b", "2022-04-02T10:00:00+02:00", "baseline", (1, 1, 1, 1), "C"),
    state("d-f", "2022-10-02T10:00:00+02:00", "follow_up", (4, 4, 4, 4), "D"),
    # case E: deltas (-1, 0, 0, 0)
    state("e-b", "2022-04-03T10:00:00+02:00", "baseline", (4, 4, 4, 4), "E"),
    state("e-f", "2022-10-03T10:00:00+02:00", "follow_up", (3, 4, 4, 4), "E"),
]


def test_rating_changes_hand_computed() -> None:
    # A: latest follow-up (3,3,3,4) - earliest baseline (1,2,2,3) = (+2, +1, +1, +1)
    # B: (0, +1, +2, +1); E: (-1, 0, 0, 0)
    # means: assessment 1/3, intervention 2/3, follow_up 3/3, involvement 2/3
    assert rating_changes(REVIEWS) == {
        "cases_rereviewed": 3,
        "mean_change": {"assessment": 0.33, "intervention": 0.67, "follow_up": 1.0, "involvement": 0.67},
    }


def test_rating_changes_two_cases_rereviewed_one_only_baseline() -> None:
    reviews = [r for r in REVIEWS if r.case_ref in ("A", "B", "C")]
    # A (+2, +1, +1, +1), B (0, +1, +2, +1)
    assert rating_changes(reviews) == {
        "cases_rereviewed": 2,
        "mean_change": {"assessment": 1.0, "intervention": 1.0, "follow_up": 1.5, "involvement": 1.0},
    }


@pytest.mark.parametrize("cases", [(), ("C",), ("D",), ("C", "D")])
def test_rating_changes_none_when_no_case_has_both_phases(cases: tuple[str, ...]) -> None:
    reviews = [r for r in REVIEWS if r.case_ref in cases]
    assert rating_changes(reviews) == {"cases_rereviewed": 0, "mean_change": dict.fromkeys(DIMENSIONS)}


@settings(max_examples=100, deadline=None)
@given(st.permutations(REVIEWS))
def test_rating_changes_independent_of_order_without_ties(order: list[CaseReviewState]) -> None:
    assert rating_changes(order) == rating_changes(REVIEWS)


def test_rating_changes_leave_out_follow_ups_not_after_the_first_baseline() -> None:
    # docs/domain.md, *Re-review change*: a follow-up completed before (or at) the case's
    # first baseline re-reviews nothing. Until the rule moved to schemas.rules, this read
    # model counted case F (as +3 everywhere) while the committee report did not.
    early = [state("f-f", "2022-02-01T10:00:00+01:00", "follow_up", (4, 4, 4, 4), "F"),
             state("f-b", "2022-03-01T10:00:00+01:00", "baseline", (1, 1, 1, 1), "F"),
             state("g-b", "2022-03-01T10:00:00+01:00", "baseline", (2, 2, 2, 2), "G"),
             state("g-f", "2022-03-01T10:00:00+01:00", "follow_up", (3, 3, 3, 3), "G")]
    assert rating_changes(early) == {"cases_rereviewed": 0, "mean_change": dict.fromkeys(DIMENSIONS)}
    assert rating_changes([*REVIEWS, *early]) == rating_changes(REVIEWS)


def test_rating_changes_accepts_a_generator() -> None:
    assert rating_changes(r for r in REVIEWS)["cases_rereviewed"] == 3


def test_rating_changes_ties_do_not_depend_on_order() -> None:
    tied = [
        state("x-b1", "2022-03-01T10:00:00+01:00", "baseline", (1, 1, 1, 1), "X"),
        state("x-b2", "2022-03-01T10:00:00+01:00", "baseline", (3, 3, 3, 3), "X"),
        state("x-f", "2022-09-01T10:00:00+02:00", "follow_up", (4, 4, 4, 4), "X"),
    ]
    assert rating_changes(tied) == rating_changes(list(reversed(tied)))
