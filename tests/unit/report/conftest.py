"""Fixed summaries for the report tests, built from the JSON form like the topic carries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from schemas.summary import SummaryData

SummaryFactory = Callable[..., SummaryData]


def summary_dict(period: str = "2022H1", status: str = "final", revision: int = 0,
                 share: float = 0.8) -> dict[str, Any]:
    return {
        "period": period,
        "status": status,
        "revision": revision,
        "as_of": "2022-07-01T00:00:00+02:00",
        "course": {"status": "running", "course_id": "c-480-1", "started_on": "2021-02-01",
                   "planned_end": "2022-12-31", "month_of_course": 18},
        "notifications": {"received": 10, "assessed": 9, "assessed_within_24h": 8,
                          "share_within_24h": share, "median_hours_to_assessment": 6.5,
                          "overdue_unassessed": 1, "urgent_received": 2},
        "case_reviews": {
            "completed": 6, "baseline": 4, "follow_up": 2,
            "mean_rating": {"assessment": 2.5, "intervention": 3.0, "follow_up": 2.17,
                            "involvement": 3.33},
            "share_meeting_standard": {"assessment": 0.5, "intervention": 0.67,
                                       "follow_up": 0.33, "involvement": 0.83},
            "legal_findings": {"major": 2, "minor": 3}},
        "development_plan": {"milestones_total": 8, "achieved": 3, "in_progress": 2,
                             "at_risk": 1, "missed": 1, "not_started": 1, "overdue": 2,
                             "meetings_held": 4, "longest_gap_days": 49, "cadence_ok": False},
        "highlights": ["Andelen af underretninger vurderet inden for 24 timer faldt fra "
                       "92 % til 80 %."],
    }


def empty_dict(period: str = "2021H1", status: str = "final") -> dict[str, Any]:
    """No course, nothing received, no reviews, no plan: every nullable figure null."""
    nulls = {"assessment": None, "intervention": None, "follow_up": None, "involvement": None}
    return {
        "period": period, "status": status, "revision": 0,
        "as_of": "2021-07-01T00:00:00+02:00",
        "course": {"status": "none", "course_id": None, "started_on": None,
                   "planned_end": None, "month_of_course": None},
        "notifications": {"received": 0, "assessed": 0, "assessed_within_24h": 0,
                          "share_within_24h": 0.0, "median_hours_to_assessment": None,
                          "overdue_unassessed": 0, "urgent_received": 0},
        "case_reviews": {"completed": 0, "baseline": 0, "follow_up": 0,
                         "mean_rating": nulls, "share_meeting_standard": nulls,
                         "legal_findings": {"major": 0, "minor": 0}},
        "development_plan": {"milestones_total": 0, "achieved": 0, "in_progress": 0,
                             "at_risk": 0, "missed": 0, "not_started": 0, "overdue": 0,
                             "meetings_held": 0, "longest_gap_days": None,
                             "cadence_ok": None},
        "highlights": [],
    }


def build(data: dict[str, Any], **changes: Any) -> SummaryData:
    """A SummaryData from the dict, with top-level or nested ("notifications__received") edits."""
    data = json.loads(json.dumps(data))
    for key, value in changes.items():
        target = data
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return SummaryData.model_validate_json(json.dumps(data))


@pytest.fixture
def make_summary() -> SummaryFactory:
    """make_summary(period, status, revision, share, **edits) -> SummaryData.

    Nested edits use a double underscore: ``notifications__received=0``.
    """

    def factory(period: str = "2022H1", status: str = "final", revision: int = 0,
                share: float = 0.8, **changes: Any) -> SummaryData:
        return build(summary_dict(period, status, revision, share), **changes)

    return factory


@pytest.fixture
def history() -> list[SummaryData]:
    """Three periods, deliberately out of order, the newest the one usually rendered."""
    return [
        build(summary_dict("2022H1", "final", 0, 0.8)),
        build(summary_dict("2021H1", "final", 0, 0.92), development_plan__achieved=1,
              development_plan__not_started=3),
        build(summary_dict("2021H2", "final", 0, 0.85), development_plan__achieved=2,
              development_plan__not_started=2),
    ]


@pytest.fixture
def make_empty() -> SummaryFactory:
    """make_empty(period, status, **edits) -> a SummaryData with every nullable figure null."""

    def factory(period: str = "2021H1", status: str = "final", **changes: Any) -> SummaryData:
        return build(empty_dict(period, status), **changes)

    return factory
