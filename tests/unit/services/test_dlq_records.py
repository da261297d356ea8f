"""Dead letters always fit: under the broker's limit and the producer's own request limit."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)

from schemas.decode import Rejection
from services.common.dlq import MAX_DETAIL_CHARS, dead_letter, unpublishable, value_limit
from services.common.records import OutRecord, permanent_reason
from services.common.settings import Settings
from tests.support.cpr import spelled_cpr
from tests.support.records import Record

pytestmark = pytest.mark.unit


def settings(**env: str) -> Settings:
    return Settings(TASKFORCE_SERVICE="intake", TASKFORCE_TOPIC_PREFIX="p.", **env)  # type: ignore[arg-type]


@pytest.mark.parametrize(("limit", "fits"), [(None, 256 * 1024), ("65536", 65536 - 8 * 1024)])
def test_a_dead_letter_fits_the_producers_request_limit(limit: str | None, fits: int) -> None:
    chosen = settings(**({"TASKFORCE_PRODUCER_MAX_REQUEST_BYTES": limit} if limit else {}))
    value = b'{"child_ref": "0101901234", "x": "' + b"y" * 400_000 + b'"}'
    letter = dead_letter(Record("p.taskforce.notifications", value, b"k" * 5000, 2, 7),  # type: ignore[arg-type]
                         Rejection("invalid_event", "too large"), chosen)
    assert value_limit(chosen) == fits and len(letter.value) == fits
    assert letter.headers["value_truncated_from"] == str(len(value))
    assert letter.headers["key_truncated_from"] == "5000" and len(letter.key) == 1024
    assert b"0101901234" not in letter.value and b"XXXXXXXXXX" in letter.value
    assert letter.headers["original_topic"] == "taskforce.notifications"
    assert (letter.headers["original_partition"], letter.headers["original_offset"]) == ("2", "7")


def test_a_long_detail_cut_to_its_limit_shows_no_cpr() -> None:
    """Cutting an eleven-digit run to ten would make it CPR-like: the cut detail is masked too."""
    detail = "d" * (MAX_DETAIL_CHARS - 10) + "01019012345"
    letter = dead_letter(Record("p.taskforce.notifications", b"{}", b"k"),  # type: ignore[arg-type]
                         Rejection("invalid_event", detail), settings())
    shown = letter.headers["reason_detail"]
    assert len(shown) == MAX_DETAIL_CHARS and not spelled_cpr(shown.encode())


def test_an_unpublishable_output_keeps_what_says_where_it_was_going() -> None:
    chosen = settings(TASKFORCE_PRODUCER_MAX_REQUEST_BYTES="65536")
    out = OutRecord("p.taskforce.reporting", b"480", b"z" * 100_000)
    letter = unpublishable(out, "output_too_large", MessageSizeTooLargeError(), chosen)
    assert letter.topic == "p.taskforce.dlq" and letter.key == b"480"
    assert letter.headers["reason"] == "output_too_large"
    assert letter.headers["original_topic"] == "taskforce.reporting"
    assert letter.headers["original_size"] == "100000" and len(letter.value) == value_limit(chosen)


@pytest.mark.parametrize(("error", "reason"), [
    (MessageSizeTooLargeError(), "output_too_large"),
    (TopicAuthorizationFailedError(), "output_not_authorized"),
    (NotLeaderForPartitionError(), None),  # a leader moving is transient
    (TimeoutError(), None),
    (ValueError(), None),
])
def test_kafka_errors_are_classified(error: BaseException, reason: str | None) -> None:
    assert permanent_reason(error) == reason
