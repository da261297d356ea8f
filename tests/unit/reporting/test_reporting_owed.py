"""What is owed a recomputation while the consumer is behind, and when it becomes due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.owed import Move, OwedSummaries, Touched, merge_moves

pytestmark = pytest.mark.unit

P0, P1 = ("taskforce.reporting", 0), ("taskforce.reporting", 1)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def owed(max_delay: float = 1.0) -> OwedSummaries:
    return OwedSummaries(max_delay)


def test_owed_while_records_wait_on_its_partition_and_due_once_it_is_caught_up() -> None:
    summaries = owed()
    summaries.add("480", Touched(periods={"2024H1"}), (None, at(1)), P0, now=0.0)
    assert summaries.due({P0}, waiting={P0}, now=0.1) == {}
    summaries.add("480", Touched(periods={"2024H2"}, correlation_id="c2"), (at(1), at(5)), P0, now=0.2)
    assert list(summaries.due({P0}, waiting=set(), now=0.3)) == ["480"]
    owed_480 = summaries["480"]
    assert owed_480.touched.periods == {"2024H1", "2024H2"}
    assert owed_480.touched.correlation_id == "c2"
    assert owed_480.move == (None, at(5))
    assert owed_480.since == 0.0  # owed since the first batch, not the last


def test_one_partition_caught_up_leaves_the_others_owed() -> None:
    summaries = owed()
    summaries.add("480", Touched(periods={"2024H1"}), None, P0, now=0.0)
    summaries.add("101", Touched(periods={"2024H1"}), None, P1, now=0.0)
    # P1's records still wait (it is not in this batch: they come with a later one)
    assert list(summaries.due({P0}, waiting=set(), now=0.1)) == ["480"]


def test_everything_is_due_on_a_command_or_once_one_has_waited_max_delay() -> None:
    summaries = owed(max_delay=1.0)
    summaries.add("480", Touched(), None, P0, now=0.0)
    summaries.add("101", Touched(), None, P1, now=0.5)
    assert summaries.due({P0, P1}, waiting={P0, P1}, now=0.9) == {}
    assert sorted(summaries.due({P0, P1}, waiting={P0, P1}, now=0.9, everything=True)) == ["101", "480"]
    assert sorted(summaries.due({P0}, waiting={P0}, now=1.0)) == ["101", "480"]


def test_no_delay_means_due_after_every_batch() -> None:
    summaries = owed(max_delay=0.0)
    summaries.add("480", Touched(), None, P0, now=5.0)
    assert list(summaries.due({P0}, waiting={P0}, now=5.0)) == ["480"]


def test_a_municipality_of_unknown_partition_is_never_held_back() -> None:
    summaries = owed()
    summaries.add("480", Touched(), None, None, now=0.0)
    assert list(summaries.due({P0}, waiting={P0}, now=0.0)) == ["480"]
    assert summaries.to_note({}) == {}


def test_notes_are_stored_once_for_those_not_due_and_settled_ones_are_forgotten() -> None:
    summaries = owed()
    summaries.add("480", Touched(), None, P0, now=0.0)
    summaries.add("101", Touched(), None, P1, now=0.0)
    due = summaries.due({P0, P1}, waiting={P1}, now=0.1)
    assert list(due) == ["480"]
    notes = summaries.to_note(due)
    assert notes == {"101": P1}
    summaries.mark_noted(notes)
    assert summaries.to_note(due) == {}
    summaries.settle(due)
    assert len(summaries) == 1 and summaries["101"].noted
    summaries.clear()  # partitions moved while the recomputation ran
    summaries.settle(due)
    assert len(summaries) == 0


settled_moves = st.tuples(st.integers(0, 50), st.integers(0, 50)).map(
    lambda pair: (at(min(pair)), at(max(pair))))
moves = st.one_of(st.none(), settled_moves, st.integers(0, 50).map(lambda h: (None, at(h))))
touches = st.builds(
    Touched,
    periods=st.sets(st.sampled_from(["2023H2", "2024H1", "2024H2"])),
    everything=st.booleans(),
    final=st.sets(st.sampled_from(["2023H2", "2024H1"])),
    republish=st.sets(st.sampled_from(["2024H1"])),
)


@given(st.lists(st.tuples(touches, moves), min_size=1, max_size=6), st.randoms())
def test_what_is_owed_covers_every_batch_in_any_order_and_with_repeats(
    batches: list[tuple[Touched, Move | None]], rnd: object,
) -> None:
    """Merged in any order, with batches applied twice (a retried batch), what is owed is the
    same: every period any batch touched, and a move from the earliest before to the latest after."""
    def merged(order: list[tuple[Touched, Move | None]]) -> tuple[object, ...]:
        summaries = owed()
        for touched, move in order:
            summaries.add("480", touched, move, P0, now=0.0)
        result = summaries["480"]
        return (result.touched.periods, result.touched.everything, result.touched.final,
                result.touched.republish, result.move)

    shuffled = batches + batches[:2]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert merged(batches) == merged(shuffled)
    periods, everything, _final, _republish, move = merged(batches)
    assert periods == set().union(*(t.periods for t, _ in batches))
    assert everything == any(t.everything for t, _ in batches)
    given_moves = [m for _, m in batches if m is not None]
    if not given_moves:
        assert move is None
    else:
        assert move is not None and move[1] == max(m[1] for m in given_moves)
        befores = [m[0] for m in given_moves]
        assert move[0] == (None if None in befores else min(b for b in befores if b is not None))


def test_merge_moves_keeps_either_when_the_other_is_none() -> None:
    assert merge_moves(None, None) is None
    assert merge_moves((at(1), at(2)), None) == (at(1), at(2))
    assert merge_moves(None, (None, at(2))) == (None, at(2))
