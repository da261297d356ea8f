"""What an owning service says of its progress per municipality and input topic (1.1).

The pure planning step of `services.common.progress`: what a batch's records carry, which
municipalities get a `reporting.progress` of their own, and which notes change.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.common.progress import MICROSECOND, Note, ProgressLedger, Seen, plan
from services.common.projection_store import MemoryProjectionStore

pytestmark = pytest.mark.unit

N = "taskforce.notifications"
A = "taskforce.applications"
T0 = datetime.fromisoformat("2022-06-30T10:00:00+02:00")
T1 = T0 + timedelta(days=20)


def test_a_first_batch_says_where_it_ends_and_before_it_nothing_but_its_own_start() -> None:
    out = plan({}, {("480", N): Seen({2}, T0, T1)}, {(N, 2): 40}, waiting=set(), taken_over={(N, 2)})
    assert out.after == {("480", N): Note(2, T1, True, 40)}
    assert out.before == {("480", N): Note(2, T0 - MICROSECOND, False, 0)}
    assert out.changed == out.after and out.alone == {}


def test_records_waiting_on_the_partition_leave_the_municipality_behind() -> None:
    out = plan({}, {("480", N): Seen({2}, T0, T1)}, {(N, 2): 40}, waiting={(N, 2)}, taken_over=set())
    assert out.after[("480", N)] == Note(2, T1, False, 40)


def test_through_never_goes_back_and_earlier_records_say_what_held_before() -> None:
    notes = {("480", N): Note(2, T1, True, 30)}
    out = plan(notes, {("480", N): Seen({2}, T0, T0)}, {(N, 2): 40}, waiting=set(), taken_over=set())
    assert out.after[("480", N)] == Note(2, T1, True, 40)
    assert out.before[("480", N)] == Note(2, T1, False, 30)
    assert out.changed == {}  # only caught_up or the partition are stored


def test_topics_of_one_service_are_apart() -> None:
    """Intake's applications may be months ahead of its notifications: each topic says its own."""
    seen = {("480", A): Seen({2}, T1, T1), ("480", N): Seen({2}, T0, T0)}
    out = plan({}, seen, {(A, 2): 3, (N, 2): 40}, waiting={(N, 2)}, taken_over=set())
    assert out.after[("480", A)] == Note(2, T1, True, 3)
    assert out.after[("480", N)] == Note(2, T0, False, 40)


def test_a_partition_that_catches_up_announces_those_it_left_behind() -> None:
    notes = {("480", N): Note(2, T0, False, 10), ("101", N): Note(2, T0, True, 12),
             ("607", N): Note(3, T0, False, 5)}
    out = plan(notes, {("999", N): Seen({2}, T1, T1)}, {(N, 2): 40}, waiting=set(), taken_over=set())
    assert out.alone == {("480", N): Note(2, T0, True, 40)}  # 101 was caught up; 607 is elsewhere
    assert out.changed == {("480", N): Note(2, T0, True, 40), ("999", N): Note(2, T1, True, 40)}


def test_a_partition_falling_behind_while_running_is_not_announced() -> None:
    notes = {("480", N): Note(2, T0, True, 10)}
    out = plan(notes, {("999", N): Seen({2}, T1, T1)}, {(N, 2): 40}, waiting={(N, 2)}, taken_over=set())
    assert out.alone == {}


def test_a_batch_of_dead_letters_only_has_a_known_municipality_carry_the_new_offset() -> None:
    notes = {("480", N): Note(2, T0, True, 10), ("101", N): Note(2, T0, True, 12)}
    out = plan(notes, {}, {(N, 2): 40}, set(), set())
    assert out.alone == {("101", N): Note(2, T0, True, 40)} and out.changed == {}
    assert plan(notes, {("999", N): Seen({2}, T1, T1)}, {(N, 2): 40}, set(), set()).alone == {}


def test_a_partition_taken_over_says_where_it_stands_with_everyone_known_on_it() -> None:
    notes = {("480", N): Note(2, T0, True, 10), ("101", N): Note(2, T0, False, 12)}
    behind = plan(notes, {}, {(N, 2): 40}, waiting={(N, 2)}, taken_over={(N, 2)})
    assert behind.alone == {("480", N): Note(2, T0, False, 40), ("101", N): Note(2, T0, False, 40)}
    assert behind.changed == {("480", N): Note(2, T0, False, 40)}
    done = plan(notes, {}, {(N, 2): 40}, waiting=set(), taken_over={(N, 2)})
    assert done.alone == {("480", N): Note(2, T0, True, 40), ("101", N): Note(2, T0, True, 40)}
    assert done.changed == {("101", N): Note(2, T0, True, 40)}


def test_a_municipality_on_two_partitions_is_caught_up_only_when_both_are() -> None:
    """Records keyed otherwise than by their municipality land elsewhere; both must be done."""
    out = plan({}, {("480", N): Seen({2, 4}, T0, T1)}, {(N, 2): 9, (N, 4): 7}, waiting={(N, 4)},
               taken_over=set())
    assert out.after[("480", N)].caught_up is False


def test_the_ledger_remembers_what_it_said() -> None:
    ledger = ProgressLedger(MemoryProjectionStore())  # planning reads no store
    ledger.recovered = {(N, 2)}
    ledger.plan({("480", N): Seen({2}, T0, T0)}, {(N, 2): 10}, waiting={(N, 2)}, taken_over=set())
    assert ledger.notes[("480", N)] == Note(2, T0, False, 10)
    out = ledger.plan({("999", N): Seen({2}, T1, T1)}, {(N, 2): 20}, set(), set())
    assert out.alone == {("480", N): Note(2, T0, True, 20)}
    assert ledger.notes[("480", N)] == Note(2, T0, True, 20)
    ledger.forget()
    assert ledger.notes == {} and ledger.recovered == set()
