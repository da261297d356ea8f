"""When to publish a summary, and with which status and revision.

draft -> final once the watermark passes the period end plus a grace (or on request);
after that, only a change of figures publishes again, as `revised` with revision + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.summary import SummaryStatus
from services.reporting.domain.periods import Period, utc

DEFAULT_GRACE = timedelta(days=14)


@dataclass(frozen=True)
class Published:
    """What was last published for a period."""

    status: SummaryStatus
    revision: int


@dataclass(frozen=True)
class Decision:
    """What to publish now."""

    status: SummaryStatus
    revision: int


def grace_passed(watermark: datetime, period: Period, grace: timedelta = DEFAULT_GRACE) -> bool:
    """The watermark is strictly past the period end plus the grace (in real time)."""
    return utc(watermark) > utc(period.end) + grace


def decide(
    previous: Published | None,
    figures_changed: bool,
    watermark: datetime,
    period: Period,
    grace: timedelta,
    final_requested: bool,
    republish_requested: bool,
) -> Decision | None:
    """The next publication for a period, or None when there is nothing to publish.

    `figures_changed` compares with the last publication (ignored when there is none);
    `republish_requested` republishes the current status even when nothing changed.
    """
    finalise = final_requested or grace_passed(watermark, period, grace)
    if previous is None:
        return Decision(SummaryStatus.FINAL if finalise else SummaryStatus.DRAFT, 0)
    if previous.status == SummaryStatus.DRAFT:
        if finalise:
            return Decision(SummaryStatus.FINAL, 0)
        if figures_changed or republish_requested:
            return Decision(SummaryStatus.DRAFT, previous.revision)
        return None
    if figures_changed:
        return Decision(SummaryStatus.REVISED, previous.revision + 1)
    if republish_requested:
        return Decision(previous.status, previous.revision)
    return None
