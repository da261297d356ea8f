"""Tallies kept row by row give exactly the figures a scan of the period's rows gives.

Random streams of changes to a period's rows (new rows, changed rows, rows moving away,
repeats), read as of random instants, DST changes among them: whenever a tally answers, it
answers what `figures_of_rows` computes from the rows it was told of; and it answers whenever
every row it holds is inside the period as of the instant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.events import Phase
from schemas.periods import Period, as_of, bounds_micros, micros, visible_before
from schemas.rules import DIMENSIONS
from schemas.summary import SummaryStatus
from services.reporting.domain import notifications, reviews
from services.reporting.domain.rows import NotificationRow, ReviewRow
from services.reporting.domain.summary import SummaryInputs, summary_of
from services.reporting.domain.tallies import NotificationTally, ReviewTally

pytestmark = pytest.mark.unit
RowT = TypeVar("RowT")
RowT_contra = TypeVar("RowT_contra", contravariant=True)

H1 = Period(2022, 1)  # the spring DST change (27 March) inside
START, END = bounds_micros(H1)
HOUR = 3_600_000_000
#: Instants in the period (where the replica keeps a row), its edges and DST change, and a
#: few a little outside it.
instants = st.one_of(
    st.integers(START, END - 1),
    st.sampled_from([START, END - 1, END, END - 24 * HOUR, END - 24 * HOUR + 1,
                     micros(datetime(2022, 3, 27, 1, tzinfo=UTC))]),
    st.integers(START - 48 * HOUR, END + 48 * HOUR),
)
notification_rows = st.builds(
    NotificationRow,
    received=st.one_of(instants, instants, st.none()),
    # an offset from the receipt (made absolute below), often near the 24-hour limit
    assessed=st.one_of(st.integers(0, 200 * HOUR), st.integers(20 * HOUR, 28 * HOUR),
                       st.sampled_from([26 * HOUR, 26 * HOUR + 1]), st.none()),
    urgent=st.booleans(),
).map(lambda row: row._replace(assessed=None if row.assessed is None or row.received is None
                                else row.received + row.assessed - 2 * HOUR))
review_rows = st.builds(
    ReviewRow,
    completed=instants,
    phase=st.sampled_from(list(Phase)),
    ratings=st.tuples(*[st.integers(1, 4) for _ in DIMENSIONS]),
    major=st.integers(0, 5),
    minor=st.integers(0, 9),
)
#: A watermark (as_of is min(period end, watermark)): inside the period or past its end.
watermarks = st.one_of(st.integers(START - HOUR, END + HOUR), st.integers(END, END + 30 * 24 * HOUR)).map(
    lambda m: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=m))


def in_period(instant: int | None) -> bool:
    return instant is not None and START <= instant < END


def changes_of(rows: st.SearchStrategy[RowT]) -> st.SearchStrategy[list[tuple[int, RowT | None]]]:
    """(entity, its new row, or None: it left the period), mostly new and changed rows."""
    return st.lists(st.tuples(st.integers(0, 20), st.one_of(rows, rows, st.none())), max_size=40)


class Tally(Protocol[RowT_contra]):
    def add(self, row: RowT_contra, /) -> None: ...
    def remove(self, row: RowT_contra, /) -> None: ...
    def replace(self, old: RowT_contra, new: RowT_contra, /) -> None: ...


def play(tally: Tally[RowT], changes: list[tuple[int, RowT | None]]) -> dict[int, RowT]:
    """Apply (entity, new row or None for gone) in order, as the replica tells its tally.
    Rows need not lie in the period: the replica keeps a row in its receipt's period, but a
    tally must be right (or defer) whatever it is told."""
    rows: dict[int, RowT] = {}
    for entity, row in changes:
        old = rows.pop(entity, None)
        if row is None:
            if old is not None:
                tally.remove(old)
            continue
        rows[entity] = row
        if old is None:
            tally.add(row)
        else:
            tally.replace(old, row)
    return rows


@settings(max_examples=300, deadline=None)
@given(changes=changes_of(notification_rows),
       watermark=watermarks)
@example(changes=[(0, NotificationRow(START, START + 24 * HOUR, True)),
                  (1, NotificationRow(START + 1, START + 1 + 24 * HOUR + 1, False))],
         watermark=datetime(2022, 7, 1, tzinfo=UTC))
def test_a_notification_tally_equals_a_scan_of_its_rows(
    changes: list[tuple[int, NotificationRow | None]], watermark: datetime,
) -> None:
    tally = NotificationTally()
    rows = play(tally, changes)
    at = as_of(H1, watermark)
    answer = tally.figures(H1, at)
    held = [row.received for row in rows.values() if row.received is not None]
    if all(START <= r < visible_before(H1, at) for r in held):
        assert answer is not None
    if answer is not None:
        assert answer == notifications.figures_of_rows(rows.values(), H1, at)


@settings(max_examples=300, deadline=None)
@given(changes=changes_of(review_rows),
       watermark=watermarks)
def test_a_review_tally_equals_a_scan_of_its_rows(
    changes: list[tuple[int, ReviewRow | None]], watermark: datetime,
) -> None:
    tally = ReviewTally()
    rows = play(tally, changes)
    at = as_of(H1, watermark)
    answer = tally.figures(H1, at)
    if all(START <= row.completed < visible_before(H1, at) for row in rows.values()):
        assert answer is not None
    if answer is not None:
        assert answer == reviews.figures_of_rows(rows.values(), H1, at)


def test_an_empty_tally_answers_like_an_empty_period() -> None:
    at = as_of(H1, datetime(2022, 7, 1, tzinfo=UTC))
    assert NotificationTally().figures(H1, at) == notifications.figures_of_rows([], H1, at)
    assert ReviewTally().figures(H1, at) == reviews.figures_of_rows([], H1, at)


def test_a_row_past_as_of_makes_the_tally_defer_to_a_scan() -> None:
    """A receipt after the watermark (while the period is open) is not yet visible: the tally
    cannot leave it out, so it says so instead of answering."""
    tally = NotificationTally()
    tally.add(NotificationRow(START + HOUR, None, False))
    tally.add(NotificationRow(START + 10 * HOUR, None, False))
    early = as_of(H1, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=START + 5 * HOUR))
    assert tally.figures(H1, early) is None
    scanned = notifications.figures_of_rows([NotificationRow(START + HOUR, None, False)], H1, early)
    assert scanned.received == 1


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(notification_rows.filter(lambda row: in_period(row.received)), min_size=1, max_size=60),
       past_end=st.integers(0, 30 * 24 * HOUR))
def test_a_closed_periods_notification_tally_always_answers_as_a_scan(
    rows: list[NotificationRow], past_end: int,
) -> None:
    """The common case: every row in the period, the watermark past its end."""
    tally = NotificationTally()
    for row in rows:
        tally.add(row)
    at = as_of(H1, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=END + past_end))
    assert tally.figures(H1, at) == notifications.figures_of_rows(rows, H1, at)


def test_a_summary_reads_the_tallies_and_scans_rows_only_when_they_defer() -> None:
    closed = datetime(2022, 8, 1, tzinfo=UTC)
    tallied_notes, tallied_reviews = NotificationTally(), ReviewTally()
    tallied_notes.add(NotificationRow(START + HOUR, START + 2 * HOUR, True))
    tallied_reviews.add(ReviewRow(START + HOUR, Phase.BASELINE, (3, 3, 3, 3), 1, 0))
    # The rows say otherwise on purpose: the figures show which was read.
    inputs = SummaryInputs(notifications=(), reviews=(), notification_tally=tallied_notes,
                           review_tally=tallied_reviews)
    data = summary_of(inputs, H1, closed, SummaryStatus.DRAFT, 0)
    assert (data.notifications.received, data.case_reviews.completed) == (1, 1)
    tallied_notes.add(NotificationRow(END + HOUR, None, False))  # outside H1: the tally defers
    scanned = summary_of(inputs, H1, closed, SummaryStatus.DRAFT, 0)
    assert (scanned.notifications.received, scanned.case_reviews.completed) == (0, 1)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(notification_rows, max_size=30), later=st.data(), watermark=watermarks)
def test_a_row_changed_in_place_is_tallied_as_the_new_row(
    rows: list[NotificationRow], later: st.DataObject, watermark: datetime,
) -> None:
    """The usual change keeps the receipt: an assessment arrives (or a flag changes)."""
    tally = NotificationTally()
    current = dict(enumerate(rows))
    for row in rows:
        tally.add(row)
    for index, row in list(current.items()):
        if row.received is None or not later.draw(st.booleans()):
            continue
        assessed = later.draw(st.none() | st.integers(row.received, row.received + 100 * HOUR))
        changed = row._replace(assessed=assessed, urgent=later.draw(st.booleans()))
        tally.replace(row, changed)
        current[index] = changed
    at = as_of(H1, watermark)
    answer = tally.figures(H1, at)
    if answer is not None:
        assert answer == notifications.figures_of_rows(current.values(), H1, at)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(review_rows, min_size=1, max_size=20), changed=review_rows,
       keep_completion=st.booleans())
def test_a_review_changed_in_place_is_tallied_as_the_new_row(
    rows: list[ReviewRow], changed: ReviewRow, keep_completion: bool,
) -> None:
    tally = ReviewTally()
    for row in rows:
        tally.add(row)
    new = changed._replace(completed=rows[0].completed) if keep_completion else changed
    tally.replace(rows[0], new)
    at = as_of(H1, datetime(2023, 1, 1, tzinfo=UTC))
    answer = tally.figures(H1, at)
    if answer is not None:
        assert answer == reviews.figures_of_rows([new, *rows[1:]], H1, at)


@settings(max_examples=100, deadline=None)
@given(notes=st.lists(notification_rows, max_size=30), done=st.lists(review_rows, max_size=30),
       watermark=watermarks)
def test_a_tally_built_at_once_equals_one_built_row_by_row(
    notes: list[NotificationRow], done: list[ReviewRow], watermark: datetime,
) -> None:
    """`add_all` (a bucket read from the store) and `add` per row keep the same figures."""
    at = as_of(H1, watermark)
    for rows, tally_type in ((notes, NotificationTally), (done, ReviewTally)):
        at_once, one_by_one = tally_type(), tally_type()
        at_once.add_all(rows)  # type: ignore[arg-type]  # each tally with rows of its kind
        for row in rows:
            one_by_one.add(row)  # type: ignore[arg-type]  # likewise
        assert at_once.figures(H1, at) == one_by_one.figures(H1, at)
