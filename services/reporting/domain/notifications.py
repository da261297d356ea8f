"""The `notifications` figures: receipts in the period and how fast they were assessed."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta

from schemas.periods import Period, bounds_micros, micros, visible_before
from schemas.reporting import NotificationState
from schemas.summary import NotificationFigures
from services.reporting.domain.rows import NotificationRow

ASSESSMENT_LIMIT = timedelta(hours=24)
LIMIT_MICROS = ASSESSMENT_LIMIT // timedelta(microseconds=1)


def notification_figures(
    notifications: Iterable[NotificationState], period: Period, as_of: datetime,
) -> NotificationFigures:
    """Figures over notifications received in the period (see `figures_of_rows`)."""
    return figures_of_rows(map(NotificationRow.of, notifications), period, as_of)


def figures_of_rows(
    rows: Iterable[NotificationRow], period: Period, as_of: datetime,
) -> NotificationFigures:
    """Figures over the notifications whose receipt lies in the period, visible as of `as_of`.

    An assessment counts whenever it occurred (deliberately not filtered by `as_of`): a
    notification received on 30 June and assessed on 1 July counts as assessed for H1.
    Durations are real elapsed time (UTC microseconds), so DST changes do not count.
    """
    start, _end = bounds_micros(period)
    top = visible_before(period, as_of)
    limit = micros(as_of)
    received = [r for r in rows if r.received is not None and start <= r.received < top]
    # (`r.received is not None` again below: always true here; it tells the type checker so)
    durations = [r.assessed - r.received for r in received
                 if r.assessed is not None and r.received is not None]
    within = sum(1 for d in durations if d <= LIMIT_MICROS)
    overdue = sum(1 for r in received
                  if r.assessed is None and r.received is not None and r.received + LIMIT_MICROS <= limit)
    # As timedelta.total_seconds() / 3600 computes it, so the median rounds the same way.
    hours = [d / 1_000_000 / 3600 for d in durations]
    return NotificationFigures(
        received=len(received),
        assessed=len(durations),
        assessed_within_24h=within,
        share_within_24h=round(within / len(received), 2) if received else 0.0,
        median_hours_to_assessment=round(statistics.median(hours), 1) if hours else None,
        overdue_unassessed=overdue,
        urgent_received=sum(1 for r in received if r.urgent),
    )
