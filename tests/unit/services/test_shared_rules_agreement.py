"""Rules that two services apply agree, because both take them from `schemas.rules`.

The re-review change is shown by analysis (`GET /municipalities/{code}/reviews/changes`) and by
the committee report (reporting): for the same reviews, the same numbers (docs/domain.md).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from schemas import rules
from schemas.reporting import CaseReviewState
from services.analysis.domain import rating_changes
from services.followup import domain as followup
from services.reporting.domain import highlights, lifecycle, plan, rows
from services.reporting.domain.reviews import rereview_changes
from services.reporting.report import formatting
from tests.support.reviews import reviews_strategy

pytestmark = pytest.mark.unit


@settings(max_examples=300, deadline=None)
@given(reviews_strategy)
def test_analysis_read_model_and_committee_report_show_the_same_change(
        reviews: list[CaseReviewState]) -> None:
    shared = rules.rereview_changes(reviews)
    analysis = rating_changes(reviews)
    report = rereview_changes(reversed(reviews))
    assert analysis == {"cases_rereviewed": shared.cases, "mean_change": shared.mean_change}
    assert report == analysis["mean_change"]


def test_one_home_for_dimensions_cadence_and_grace() -> None:
    assert rows.DIMENSIONS is formatting.DIMENSIONS is rules.DIMENSIONS
    assert formatting.CADENCE_TARGET_DAYS == rules.CADENCE_DAYS
    assert plan.CADENCE_DAYS == highlights.CADENCE_DAYS == rules.CADENCE_DAYS
    assert lifecycle.DEFAULT_GRACE is rules.DEFAULT_GRACE
    assert followup.latest_wins is rules.latest_wins
