"""Properties of `schemas.decode.decode` over generated input (hypothesis).

Any valid `notification.received` round-trips; any text in `child_ref` is either accepted
as is or rejected with a reason; no bytes, on any topic, make an exception escape decode.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas import topics
from schemas.cpr import CPR_PATTERN
from schemas.decode import Rejection, decode
from schemas.events import NotificationReceived, Reporter
from tests.unit.schemas.examples import DECODABLE, encode, string_paths, topic_of, valid, with_value

pytestmark = pytest.mark.unit

REASONS = {"invalid_json", "invalid_encoding", "cpr_number", "unknown_event_type", "wrong_topic",
           "unsupported_schema_version", "invalid_event", "undecodable"}
ALL_TOPICS = [topics.APPLICATIONS, topics.NOTIFICATIONS, topics.CASE_REVIEWS, topics.MILESTONES,
              topics.COMMANDS, topics.REPORTING, topics.SUMMARIES, topics.DLQ, "taskforce.elsewhere"]
_ASCII_CPR = re.compile(CPR_PATTERN.pattern.encode())
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _no_cpr(text: str) -> bool:
    """The contract's reading: digits after NFKC of each character, so `¼` (`1⁄4`) ends in one."""
    normalised = "".join(unicodedata.normalize("NFKC", char) for char in text)
    return CPR_PATTERN.search(normalised) is None


def texts(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Any Unicode text (no surrogates) of the given length that holds no CPR-like number."""
    return st.text(min_size=min_size, max_size=max_size).filter(_no_cpr)


# RFC 3339 offsets are whole minutes below 24 hours; keep the instant inside what Python can
# convert to UTC and local time (see test_events' timestamp-range test for the edges).
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
timestamps = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31),
                          timezones=offsets)


@st.composite
def notifications(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(draw(st.uuids())),
        "event_type": "notification.received",
        "schema_version": 1,
        "occurred_at": draw(timestamps).isoformat(),
        "municipality_code": draw(st.from_regex(r"\A[0-9]{3}\Z")),
        "source": draw(texts(1, 100)),
        "data": {
            "notification_id": draw(texts(1, 200)),
            "child_ref": draw(texts(1, 200)),
            "reporter": draw(st.sampled_from([r.value for r in Reporter])),
            "urgent": draw(st.booleans()),
        },
    }
    correlation = draw(st.one_of(st.just("absent"), st.none(), texts(0, 200)))
    if correlation != "absent":
        event["correlation_id"] = correlation
    return event


@FAST
@given(event=notifications(), ensure_ascii=st.booleans())
def test_any_valid_notification_received_round_trips(event: dict[str, Any], ensure_ascii: bool) -> None:
    result = decode(topics.NOTIFICATIONS, encode(event, ensure_ascii=ensure_ascii))
    assert isinstance(result, NotificationReceived), result
    assert str(result.event_id) == event["event_id"]
    sent_at = datetime.fromisoformat(event["occurred_at"])
    assert result.occurred_at == sent_at and result.occurred_at.utcoffset() == sent_at.utcoffset()
    assert result.municipality_code == event["municipality_code"]
    assert result.source == event["source"]
    assert result.correlation_id == event.get("correlation_id")
    assert result.data.model_dump(mode="json") == event["data"]
    # and what the platform would write back out decodes to the same event
    again = decode(topics.NOTIFICATIONS, result.model_dump_json().encode())
    assert again == result


@FAST
@given(text=st.one_of(
    st.text(max_size=250),
    st.from_regex(r"\A.{0,4}[0-9]{6}-?[0-9]{4}.{0,4}\Z"),
    st.sampled_from(["", " ", "\x00", "\u202e", "\ufeff", "\\", '"', "</script>", "0" * 201]),
))
@example(text="\u00bc0101000000")  # NFKC: 1⁄4 then ten digits, so the 4 stands before them
@example(text="0101000000\u00bd")  # and ½ (1⁄2) starts with a digit after them
@example(text="\uff10\uff11\uff10\uff11\uff19\uff10\uff11\uff12\uff13\uff14")  # full-width
def test_any_text_in_child_ref_is_accepted_as_is_or_rejected(text: str) -> None:
    event = with_value(valid("notification.received"), ("data", "child_ref"), text)
    fits = 1 <= len(text) <= 200
    for ensure_ascii in (False, True):
        raw = encode(event, ensure_ascii=ensure_ascii)
        result = decode(topics.NOTIFICATIONS, raw)
        if isinstance(result, Rejection):
            if result.reason == "cpr_number":
                assert not _no_cpr(text)
            else:
                assert result.reason == "invalid_event" and not fits
        else:
            assert isinstance(result, NotificationReceived)
            assert result.data.child_ref == text and fits
            assert _no_cpr(text)  # a CPR never gets through, however the bytes spell it


def _never_raises(topic: str, raw: bytes) -> None:
    result = decode(topic, raw)
    assert isinstance(result, BaseModel | Rejection)
    if isinstance(result, Rejection):
        assert result.reason in REASONS and isinstance(result.detail, str)


@FAST
@given(raw=st.binary(max_size=400), topic=st.sampled_from(ALL_TOPICS))
def test_arbitrary_bytes_never_raise(raw: bytes, topic: str) -> None:
    _never_raises(topic, raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@FAST
@given(event_type=st.sampled_from(DECODABLE), data=st.data())
def test_a_valid_event_with_any_value_swapped_in_never_raises(event_type: str, data: st.DataObject) -> None:
    event = valid(event_type)
    path = data.draw(st.sampled_from([*string_paths(event), ("schema_version",), ("data",)]))
    value = data.draw(json_values)
    topic = data.draw(st.sampled_from([topic_of(event_type), *ALL_TOPICS]))
    _never_raises(topic, encode(with_value(event, path, value)))


@FAST
@given(event_type=st.sampled_from(DECODABLE), data=st.data())
def test_a_valid_event_with_bytes_spliced_in_never_raises(event_type: str, data: st.DataObject) -> None:
    raw = encode(valid(event_type))
    at = data.draw(st.integers(min_value=0, max_value=len(raw)))
    cut = data.draw(st.integers(min_value=0, max_value=8))
    insert = data.draw(st.binary(max_size=12) | st.sampled_from([b'"', b"\\", b"0101901234", b"\xff", b"}"]))
    _never_raises(topic_of(event_type), raw[:at] + insert + raw[at + cut:])


@FAST
@given(value=json_values)
def test_any_json_value_is_rejected_without_raising(value: Any) -> None:
    for topic in (topics.NOTIFICATIONS, topics.REPORTING):
        _never_raises(topic, json.dumps(value).encode())
