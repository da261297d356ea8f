"""Rules of the contract that more than one service (or the CLI) applies, each in one place.

Pure and dependency-free beyond the contract's models: services never import each other, so a
rule two of them need lives here (docs/domain.md, docs/contract.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import NamedTuple, TypeVar

from schemas.common import Frozen
from schemas.events import Phase, Ratings
from schemas.periods import utc
from schemas.reporting import CaseReviewState

#: The four rated dimensions of a case review, in the contract's order: assessment,
#: intervention, follow_up, involvement (the fields of `Ratings`).
DIMENSIONS: tuple[str, ...] = tuple(Ratings.model_fields)

#: The Task Force follows up every 6 weeks: a gap between follow-ups longer than this many
#: days breaks the cadence (`cadence_ok` is `longest_gap_days <= CADENCE_DAYS`).
CADENCE_DAYS = 42

#: Days after a period's end before its summary is final, by default (`TASKFORCE_GRACE_DAYS`).
GRACE_DAYS = 14
DEFAULT_GRACE = timedelta(days=GRACE_DAYS)

M = TypeVar("M", bound=Frozen)


def latest_wins(current: M | None, current_at: datetime | None, new_at: datetime,
                new: Callable[[], M]) -> M:
    """Of a fact's current state and a re-sent fact, the latest by `occurred_at` (a re-sent
    fact is a correction); a tie goes to the greater state by its JSON, so the result never
    depends on arrival order. `new` builds the re-sent fact's state, only when it is needed.
    """
    if current is None or current_at is None:
        return new()
    # (at, JSON) > (at, JSON), the JSON only spelled on a tie
    if new_at != current_at:
        return new() if new_at > current_at else current
    candidate = new()
    return candidate if candidate.model_dump_json() > current.model_dump_json() else current


class RereviewChanges(NamedTuple):
    """The re-review change (docs/domain.md, *Re-review change*)."""

    cases: int
    """Cases with a baseline review and a follow-up review completed after it."""
    mean_change: dict[str, float | None]
    """Per dimension, the mean of (latest follow-up − earliest baseline), 2 decimals; None
    when no case qualifies."""


def rereview_changes(reviews: Iterable[CaseReviewState]) -> RereviewChanges:
    """The re-review change over the reviews, in any order (docs/domain.md).

    Per case: its earliest baseline review and its latest follow-up review completed strictly
    after that baseline (earliest and latest by completion instant, ties by review id). A
    case without such a pair does not count. The one definition behind the analysis read
    model and the committee report.
    """
    baselines: dict[str, tuple[datetime, str, CaseReviewState]] = {}
    follow_ups: dict[str, list[tuple[datetime, str, CaseReviewState]]] = {}
    for review in reviews:
        entry = (utc(review.completed_at), review.review_id, review)
        key = review.case_ref
        if review.phase is Phase.BASELINE:
            known = baselines.get(key)
            if known is None or entry[:2] < known[:2]:
                baselines[key] = entry
        else:
            follow_ups.setdefault(key, []).append(entry)
    pairs: list[tuple[CaseReviewState, CaseReviewState]] = []
    for key, (first_at, _id, first) in baselines.items():
        later = [entry for entry in follow_ups.get(key, ()) if entry[0] > first_at]
        if later:
            pairs.append((first, max(later, key=lambda entry: entry[:2])[2]))
    changes: dict[str, float | None] = {}
    for dimension in DIMENSIONS:
        deltas = [float(getattr(after.ratings, dimension) - getattr(before.ratings, dimension))
                  for before, after in pairs]
        changes[dimension] = round(sum(deltas) / len(deltas), 2) if deltas else None
    return RereviewChanges(len(pairs), changes)
