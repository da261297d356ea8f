"""A period's notification and review figures, kept up to date row by row.

Recomputing a half-year's figures scans all its rows, and a busy municipality's half-year
holds thousands; the summary is recomputed on most batches that touch the municipality. A
tally is told of each row that enters or leaves the period (a changed row is one of each) and
answers the same figures as `figures_of_rows` without the scan: counts and sums, plus sorted
collections for what needs order (receipts for visibility and overdue counts, durations for
the median and the 24-hour count). They are `sortedcontainers.SortedList`s: adding, removing,
ranking and indexing take logarithmic time however many rows a period holds (a plain sorted
list moves half of itself on every insertion: quadratic in a flood of one half-year).

`figures` answers only while every receipt (or completion) it holds is visible as of the
summary's `as_of` and inside the period; otherwise it answers None and the caller scans the
rows (`figures_of_rows`): that is the exact definition, the tally only its shortcut. The
property tests hold the two equal over random streams of changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sortedcontainers import SortedList

from schemas.events import Phase
from schemas.periods import Period, bounds_micros, micros, visible_before
from schemas.rules import DIMENSIONS
from schemas.summary import CaseReviewFigures, DimensionFigures, FindingCounts, NotificationFigures
from services.reporting.domain.notifications import LIMIT_MICROS
from services.reporting.domain.reviews import MEETS_STANDARD
from services.reporting.domain.rows import NotificationRow, ReviewRow


def _covers(instants: SortedList, period: Period, as_of: datetime) -> bool:
    """Every instant (sorted) lies in the period and is visible as of `as_of`."""
    if not instants:
        return True
    start, _end = bounds_micros(period)
    first: int = instants[0]
    last: int = instants[-1]
    return first >= start and last < visible_before(period, as_of)


class NotificationTally:
    """The notification figures of the rows added and not removed (see the module)."""

    __slots__ = ("durations", "received", "unassessed", "urgent")

    def __init__(self) -> None:
        self.received = SortedList()  # the receipts
        self.durations = SortedList()  # assessed - received of the assessed
        self.unassessed = SortedList()  # the receipts of the not yet assessed
        self.urgent = 0

    def add_all(self, rows: Iterable[NotificationRow]) -> None:
        """`add` for each row, sorting once (a bucket read from the store)."""
        rows = [row for row in rows if row.received is not None]
        self.received.update(row.received for row in rows)
        self.unassessed.update(row.received for row in rows if row.assessed is None)
        self.durations.update(row.assessed - row.received for row in rows  # type: ignore[operator]  # both known here
                              if row.assessed is not None)
        self.urgent += sum(row.urgent for row in rows)

    def add(self, row: NotificationRow) -> None:
        received = row.received
        if received is None:
            return  # counts nowhere until its receipt is known
        self.received.add(received)
        if row.assessed is None:
            self.unassessed.add(received)
        else:
            self.durations.add(row.assessed - received)
        self.urgent += row.urgent

    def remove(self, row: NotificationRow) -> None:
        received = row.received
        if received is None:
            return
        self.received.remove(received)
        if row.assessed is None:
            self.unassessed.remove(received)
        else:
            self.durations.remove(row.assessed - received)
        self.urgent -= row.urgent

    def replace(self, old: NotificationRow, new: NotificationRow) -> None:
        """`remove(old)` then `add(new)`; the receipts are left in place when unchanged (the
        usual change: an assessment arrives)."""
        received = old.received
        if received is None or new.received != received:
            self.remove(old)
            self.add(new)
            return
        if old.assessed is None:
            self.unassessed.remove(received)
        else:
            self.durations.remove(old.assessed - received)
        if new.assessed is None:
            self.unassessed.add(received)
        else:
            self.durations.add(new.assessed - received)
        self.urgent += new.urgent - old.urgent

    def figures(self, period: Period, as_of: datetime) -> NotificationFigures | None:
        """`notifications.figures_of_rows` over the rows, or None when some receipt is not
        inside the period as of `as_of` (then only a scan of the rows says)."""
        if not _covers(self.received, period, as_of):
            return None
        durations = self.durations
        received = len(self.received)
        within: int = durations.bisect_right(LIMIT_MICROS)
        return NotificationFigures(
            received=received,
            assessed=len(durations),
            assessed_within_24h=within,
            share_within_24h=round(within / received, 2) if received else 0.0,
            median_hours_to_assessment=_median_hours(durations),
            overdue_unassessed=self.unassessed.bisect_right(micros(as_of) - LIMIT_MICROS),
            urgent_received=self.urgent,
        )


def _median_hours(durations: SortedList) -> float | None:
    """`round(statistics.median(hours), 1)` of the sorted durations, in hours as
    `figures_of_rows` converts them (so it rounds the same)."""
    n = len(durations)
    if not n:
        return None
    middle = n // 2
    upper: float = durations[middle] / 1_000_000 / 3600
    if n % 2:
        return round(upper, 1)
    lower: float = durations[middle - 1] / 1_000_000 / 3600
    return round((lower + upper) / 2, 1)


class ReviewTally:
    """The case-review figures of the rows added and not removed (see the module)."""

    __slots__ = ("baseline", "completed", "follow_up", "major", "meeting", "minor", "ratings")

    def __init__(self) -> None:
        self.completed = SortedList()  # the completions
        self.baseline = 0
        self.follow_up = 0
        self.ratings = [0] * len(DIMENSIONS)  # per dimension, the sum of the ratings
        self.meeting = [0] * len(DIMENSIONS)  # per dimension, how many meet the standard
        self.major = 0
        self.minor = 0

    def add(self, row: ReviewRow) -> None:
        self.completed.add(row.completed)
        self._count(row, 1)

    def add_all(self, rows: Iterable[ReviewRow]) -> None:
        """`add` for each row, sorting once (a bucket read from the store)."""
        rows = list(rows)
        self.completed.update(row.completed for row in rows)
        for row in rows:
            self._count(row, 1)

    def remove(self, row: ReviewRow) -> None:
        self.completed.remove(row.completed)
        self._count(row, -1)

    def replace(self, old: ReviewRow, new: ReviewRow) -> None:
        """`remove(old)` then `add(new)`, the completions left in place when unchanged."""
        if new.completed != old.completed:
            self.completed.remove(old.completed)
            self.completed.add(new.completed)
        self._count(old, -1)
        self._count(new, 1)

    def _count(self, row: ReviewRow, sign: int) -> None:
        self.baseline += sign * (row.phase == Phase.BASELINE)
        self.follow_up += sign * (row.phase == Phase.FOLLOW_UP)
        for index, rating in enumerate(row.ratings):
            self.ratings[index] += sign * rating
            self.meeting[index] += sign * (rating >= MEETS_STANDARD)
        self.major += sign * row.major
        self.minor += sign * row.minor

    def figures(self, period: Period, as_of: datetime) -> CaseReviewFigures | None:
        """`reviews.figures_of_rows` over the rows, or None when some completion is not
        inside the period as of `as_of`."""
        if not _covers(self.completed, period, as_of):
            return None
        n = len(self.completed)
        means = {d: round(self.ratings[i] / n, 2) if n else None for i, d in enumerate(DIMENSIONS)}
        shares = {d: round(self.meeting[i] / n, 2) if n else None for i, d in enumerate(DIMENSIONS)}
        return CaseReviewFigures(
            completed=n,
            baseline=self.baseline,
            follow_up=self.follow_up,
            mean_rating=DimensionFigures(**means),
            share_meeting_standard=DimensionFigures(**shares),
            legal_findings=FindingCounts(major=self.major, minor=self.minor),
        )
