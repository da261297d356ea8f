"""The publishing decision: draft, final, revised, republish."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from schemas.periods import Period
from schemas.summary import SummaryStatus
from services.reporting.domain.lifecycle import (
    Decision,
    Published,
    decide,
    finalisable_by_progress,
    grace_passed,
    is_open,
    waits_for_holds,
)

pytestmark = pytest.mark.unit

H1 = Period(2022, 1)
GRACE = timedelta(days=14)
DRAFT, FINAL, REVISED = SummaryStatus.DRAFT, SummaryStatus.FINAL, SummaryStatus.REVISED
EARLY = datetime.fromisoformat("2022-06-01T12:00:00+02:00")
AT_GRACE = datetime.fromisoformat("2022-07-15T00:00:00+02:00")  # exactly end + 14 days
PAST_GRACE = AT_GRACE + timedelta(microseconds=1)


def run(previous: Published | None, *, changed: bool = False, watermark: datetime = EARLY,
        final: bool = False, republish: bool = False) -> Decision | None:
    return decide(previous, changed, watermark, H1, GRACE, final, republish)


def test_grace_must_be_passed_not_reached() -> None:
    assert not grace_passed(AT_GRACE, H1, GRACE)
    assert grace_passed(PAST_GRACE, H1, GRACE)
    assert grace_passed(datetime.fromisoformat("2022-07-14T22:00:00.000001Z"), H1, GRACE)


def test_first_publication_is_a_draft() -> None:
    assert run(None) == Decision(DRAFT, 0)
    assert run(None, watermark=AT_GRACE) == Decision(DRAFT, 0)


def test_first_publication_after_the_grace_is_final() -> None:
    assert run(None, watermark=PAST_GRACE) == Decision(FINAL, 0)


def test_first_publication_on_request_is_final() -> None:
    assert run(None, final=True) == Decision(FINAL, 0)


def test_draft_is_republished_only_when_a_figure_changed() -> None:
    assert run(Published(DRAFT, 0)) is None
    assert run(Published(DRAFT, 0), changed=True) == Decision(DRAFT, 0)
    assert run(Published(DRAFT, 0), republish=True) == Decision(DRAFT, 0)


def test_draft_becomes_final_by_grace_or_command() -> None:
    assert run(Published(DRAFT, 0), watermark=PAST_GRACE) == Decision(FINAL, 0)
    assert run(Published(DRAFT, 0), final=True) == Decision(FINAL, 0)
    assert run(Published(DRAFT, 0), changed=True, final=True) == Decision(FINAL, 0)


def test_a_late_change_after_final_is_revised() -> None:
    assert run(Published(FINAL, 0), changed=True, watermark=PAST_GRACE) == Decision(REVISED, 1)
    assert run(Published(REVISED, 1), changed=True, watermark=PAST_GRACE) == Decision(REVISED, 2)
    # a change made final by command and a change before the grace both revise too
    assert run(Published(FINAL, 0), changed=True) == Decision(REVISED, 1)


def test_final_without_change_publishes_nothing() -> None:
    assert run(Published(FINAL, 0), watermark=PAST_GRACE) is None
    assert run(Published(FINAL, 0), final=True) is None
    assert run(Published(REVISED, 3)) is None


def test_republish_repeats_status_and_revision() -> None:
    assert run(Published(FINAL, 0), republish=True) == Decision(FINAL, 0)
    assert run(Published(REVISED, 2), republish=True, final=True) == Decision(REVISED, 2)
    assert run(Published(REVISED, 2), republish=True, changed=True) == Decision(REVISED, 3)


H2 = Period(2022, 2)


@pytest.mark.parametrize(("published", "expected"), [
    (None, True), (Published(DRAFT, 0), True), (Published(DRAFT, 3), True),
    (Published(FINAL, 0), False), (Published(REVISED, 2), False),
])
def test_open_means_never_published_or_a_draft(published: Published | None, expected: bool) -> None:
    assert is_open(published) is expected


def test_holds_are_asked_only_for_an_open_period_past_its_grace_without_a_request() -> None:
    draft = Published(DRAFT, 0)
    assert waits_for_holds(draft, PAST_GRACE, H1, GRACE, final_requested=False)
    assert waits_for_holds(None, PAST_GRACE, H1, GRACE, final_requested=False)
    assert not waits_for_holds(draft, AT_GRACE, H1, GRACE, final_requested=False)  # grace not passed
    assert not waits_for_holds(draft, PAST_GRACE, H1, GRACE, final_requested=True)  # a request finalises
    assert not waits_for_holds(Published(FINAL, 0), PAST_GRACE, H1, GRACE, final_requested=False)


def test_progress_may_finalise_open_periods_past_their_grace_only() -> None:
    h1_final = {H1.name: Published(FINAL, 0)}
    late = datetime.fromisoformat("2023-01-20T00:00:00+01:00")  # past H2's end + 14 days as well
    assert finalisable_by_progress([H1, H2], {}, PAST_GRACE, GRACE) == {H1}  # H2 not past its grace
    assert finalisable_by_progress([H1, H2], h1_final, late, GRACE) == {H2}
    assert finalisable_by_progress([H1, H2], {H2.name: Published(DRAFT, 1)}, late, GRACE) == {H1, H2}
    assert finalisable_by_progress([H1], {}, AT_GRACE, GRACE) == set()
