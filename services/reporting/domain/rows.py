"""Compact, UTC-normalised rows of the voluminous states, for figures computed again and again.

A half-year's notifications are filtered and measured on every batch that touches the
half-year. Converting each state's instants once, when the state arrives, to whole UTC
microseconds (`periods.micros`) turns that into integer comparisons; the figures are the
same as over the states (the state-level functions are defined through these rows).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import NamedTuple

from schemas.events import Phase
from schemas.periods import micros
from schemas.reporting import CaseReviewState, MeetingState, NotificationState
from schemas.rules import DIMENSIONS


class NotificationRow(NamedTuple):
    received: int | None
    assessed: int | None
    urgent: bool

    @property
    def instant(self) -> int | None:
        """What places it in a period: its receipt, or its assessment while that is unknown."""
        return self.received if self.received is not None else self.assessed

    @classmethod
    def of(cls, state: NotificationState) -> NotificationRow:
        received, assessed = state.received_at, state.assessed_at
        return cls(
            None if received is None else micros(received),
            None if assessed is None else micros(assessed),
            state.urgent is True,
        )


class ReviewRow(NamedTuple):
    """A review's figures; `ratings` in the order of `schemas.rules.DIMENSIONS`."""

    completed: int
    phase: Phase
    ratings: tuple[int, ...]
    major: int
    minor: int

    @property
    def instant(self) -> int:
        return self.completed

    @classmethod
    def of(cls, state: CaseReviewState) -> ReviewRow:
        return cls(
            micros(state.completed_at),
            state.phase,
            tuple(int(getattr(state.ratings, d)) for d in DIMENSIONS),
            state.legal_findings.major,
            state.legal_findings.minor,
        )


class MeetingDay(NamedTuple):
    """A plan's follow-up meetings on one local date: how many, and when the last was held.

    The figures read no more of meetings than this (the dates for the cadence, how many fall
    in the period), so memory holds one per (plan, date), not one per meeting: a flood of
    meetings costs nothing beyond the dates it spans.
    """

    plan_id: str
    held_on: date
    last_at: datetime
    count: int = 1  # type: ignore[assignment]  # a field named like tuple.count, on purpose: `day.count`

    @classmethod
    def of(cls, meeting: MeetingState) -> MeetingDay:
        return cls(meeting.plan_id, meeting.held_on, meeting.held_at)

    def adding(self, other: MeetingDay) -> MeetingDay:
        """Both days' meetings (of the same plan and date) in one."""
        return self._replace(last_at=max(self.last_at, other.last_at), count=self.count + other.count)


def add_day(days: dict[tuple[str, date], MeetingDay], day: MeetingDay) -> None:
    """Gather `day` into `days`, kept per (plan, local date)."""
    key = (day.plan_id, day.held_on)
    known = days.get(key)
    days[key] = day if known is None else known.adding(day)


def meeting_days(meetings: Iterable[MeetingState | MeetingDay]) -> dict[tuple[str, date], MeetingDay]:
    """Meetings gathered per (plan, local date)."""
    days: dict[tuple[str, date], MeetingDay] = {}
    for item in meetings:
        add_day(days, item if isinstance(item, MeetingDay) else MeetingDay.of(item))
    return days
