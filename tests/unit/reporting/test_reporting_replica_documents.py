"""What the reporting replica stores of each state, and what it reads back into memory.

A notification is replicated as its compact row alone; the other kinds as their whole state.
Either way, reading a stored document back (through BSON, as the store returns it) must give
exactly what memory kept when the document was written.
"""

from __future__ import annotations

from typing import Any

import bson
import pytest
from hypothesis import given

from schemas.reporting import CaseReviewState, NotificationState
from services.reporting.domain.rows import NotificationRow, ReviewRow
from services.reporting.replica import KINDS
from tests.unit.reporting.test_reporting_rows import NOTIFICATIONS

pytestmark = pytest.mark.unit

NOTIFICATION = KINDS["reporting.notification_changed"]
REVIEW = KINDS["reporting.case_review_changed"]


def _through_the_store(body: dict[str, Any]) -> dict[str, Any]:
    return bson.decode(bson.encode({"_id": "480:n", **body}))


@given(NOTIFICATIONS)
def test_a_notification_is_stored_as_its_row_and_read_back_unchanged(
    states: list[NotificationState],
) -> None:
    for state in states:
        row = NotificationRow.of(state)
        body = NOTIFICATION.body(state, row)
        assert set(body) == {"row"}  # nothing else of the notification is kept
        assert NOTIFICATION.held_of(_through_the_store(body)) == row


def test_a_notification_stored_whole_by_an_older_version_still_reads_as_its_row() -> None:
    state = NotificationState.model_validate_json(
        '{"notification_id": "n1", "received_at": "2022-03-01T10:00:00+01:00", "urgent": true}')
    stored = {"state": state.model_dump(mode="json")}
    assert NOTIFICATION.held_of(_through_the_store(stored)) == NotificationRow.of(state)


def test_a_case_review_keeps_its_whole_state_and_reads_back_as_its_row() -> None:
    state = CaseReviewState.model_validate_json(
        '{"review_id": "r1", "course_id": "c1", "case_ref": "k1", "phase": "baseline",'
        ' "ratings": {"assessment": 1, "intervention": 2, "follow_up": 3, "involvement": 4},'
        ' "legal_findings": {"major": 1, "minor": 2}, "completed_at": "2022-03-01T10:00:00+01:00"}')
    body = REVIEW.body(state, ReviewRow.of(state))
    assert body == {"state": state.model_dump(mode="json")}
    assert REVIEW.held_of(_through_the_store(body)) == ReviewRow.of(state)


def test_a_small_kind_keeps_and_reads_back_its_whole_state() -> None:
    course = KINDS["reporting.course_changed"]
    state = course.model.model_validate_json(
        '{"applications": [], "courses": [{"course_id": "c1", "application_id": "a1",'
        ' "started_at": "2022-03-01T10:00:00+01:00", "planned_end": "2023-03-01"}]}')
    body = course.body(state, state)
    assert body == {"state": state.model_dump(mode="json")}
    assert course.held_of(_through_the_store(body)) == state
