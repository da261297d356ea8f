"""The CPR guard, `mask_cpr`, and rejection details that never carry the rejected value.

EVENTS.md: a CPR-like number `\\b\\d{6}-?\\d{4}\\b` in any string makes an event invalid; the
DLQ keeps the value with CPR-like numbers masked; nothing of a payload is logged.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import topics
from schemas.common import CPR_PATTERN, find_cpr
from schemas.decode import _CPR_BYTES, Rejection, _may_hide_cpr, contains_cpr, decode, mask_cpr
from tests.unit.schemas.examples import (
    CPR_DASHED,
    CPR_PLAIN,
    DECODABLE,
    Path,
    encode,
    string_paths,
    topic_of,
    valid,
    with_value,
)

pytestmark = pytest.mark.unit

CPRS = [CPR_DASHED, CPR_PLAIN]
_ASCII_CPR = re.compile(rb"\b\d{6}-?\d{4}\b")


def rejection(event_type: str, event: Any, topic: str | None = None) -> Rejection | None:
    result = decode(topic or topic_of(event_type), encode(event))
    return result if isinstance(result, Rejection) else None


def reason_for(event_type: str, event: Any) -> str:
    found = rejection(event_type, event)
    return found.reason if found else "ok"


# --- a CPR in any string ------------------------------------------------------------------


@pytest.mark.parametrize("cpr", CPRS)
@pytest.mark.parametrize("event_type", DECODABLE)
def test_a_cpr_in_any_string_field_is_cpr_number(event_type: str, cpr: str) -> None:
    """Every string of the example - envelope, ids, refs, titles, codes, enum values, dates -
    in turn holds a CPR, alone or inside text; each is rejected and the detail stays clean."""
    event = valid(event_type)
    wrong: list[tuple[Path, str, str]] = []
    for path in string_paths(event):
        for text in (cpr, f"ref {cpr}", f"{cpr}/x"):
            found = rejection(event_type, with_value(event, path, text))
            if found is None or found.reason != "cpr_number" or cpr in found.detail:
                wrong.append((path, text, found.reason if found else "ok"))
    assert not wrong


@pytest.mark.parametrize("cpr", CPRS)
@pytest.mark.parametrize(
    ("event_type", "path"),
    [
        ("notification.received", ("data", "child_ref")),
        ("case_review.completed", ("data", "case_ref")),
        ("case_review.completed", ("data", "legal_findings", 0, "code")),
        ("development_plan.adopted", ("data", "goals", 0, "title")),
        ("development_plan.adopted", ("data", "goals", 0, "milestones", 1, "title")),
        ("course.started", ("source",)),
        ("milestone.updated", ("correlation_id",)),
        ("reporting.case_review_changed", ("data", "state", "case_ref")),
        ("reporting.plan_changed", ("data", "state", "milestones", 0, "title")),
    ],
)
def test_a_cpr_in_a_named_field_is_cpr_number(event_type: str, path: Path, cpr: str) -> None:
    event = with_value(valid(event_type), path, f"Sag vedr. {cpr}, se journal")
    assert reason_for(event_type, event) == "cpr_number"


@pytest.mark.parametrize("cpr", CPRS)
def test_a_cpr_as_a_key_is_cpr_number(cpr: str) -> None:
    event = with_value(valid("notification.received"), ("data", cpr), "x")
    assert reason_for("notification.received", event) == "cpr_number"


@pytest.mark.parametrize(
    "text",
    [
        "123456789012",  # 12 digits
        "12345678901",  # 11 digits
        "ref-1234567890123",
        "12345-1234",
        "1234567-1234",
        "010190--1234",
        "010190 1234",
        "a0101901234",  # no word boundary: not CPR-like by the contract's pattern
        "0101901234b",
        "_010190-1234",
        "12345678-1234-1234-1234-123456789012",  # a UUID made of digits
        "3b2f8a64-0d3c-4a8e-9a7e-2f4d8f6b9c10",
        "2022-03-01T09:30:00+01:00",
        "+45 12 34 56 78",
    ],
)
def test_near_misses_are_not_taken_for_a_cpr(text: str) -> None:
    assert not CPR_PATTERN.search(text)
    event = with_value(valid("notification.received"), ("data", "child_ref"), text)
    assert reason_for("notification.received", event) == "ok"


@pytest.mark.parametrize("event_type", DECODABLE)
def test_the_event_ids_are_not_taken_for_a_cpr(event_type: str) -> None:
    event = valid(event_type, event_id="12345678-1234-1234-1234-123456789012",
                  correlation_id="99999999-0000-0000-0000-123456789012")
    assert reason_for(event_type, event) == "ok"


def test_a_cpr_like_json_number_is_not_a_string() -> None:
    # Out of range for the field, but a number: it must not be taken for a CPR.
    event = with_value(valid("followup.meeting_held"), ("data", "cases_rereviewed"), 1101901234)
    assert reason_for("followup.meeting_held", event) == "invalid_event"


# --- the CPR check comes before the others ------------------------------------------------


def test_the_cpr_check_comes_before_type_topic_version_and_validation() -> None:
    cpr_event = valid("notification.received", correlation_id=CPR_DASHED)
    cases: list[tuple[str, Any]] = [
        (topics.NOTIFICATIONS, {**cpr_event, "event_type": "notification.deleted"}),
        (topics.MILESTONES, cpr_event),
        (topics.NOTIFICATIONS, {**cpr_event, "schema_version": 2}),
        (topics.NOTIFICATIONS, {**cpr_event, "municipality_code": "48"}),
        (topics.NOTIFICATIONS, [CPR_PLAIN]),
        (topics.NOTIFICATIONS, CPR_PLAIN),
        ("taskforce.elsewhere", cpr_event),
    ]
    for topic, value in cases:
        result = decode(topic, encode(value))
        assert isinstance(result, Rejection) and result.reason == "cpr_number", (topic, value)


def test_bytes_that_are_not_json_are_not_called_cpr() -> None:
    assert decode(topics.NOTIFICATIONS, b"{child_ref: 010190-1234").reason == "invalid_json"  # type: ignore[union-attr]
    assert decode(topics.NOTIFICATIONS, b'{"x": "010190-1234\xff"}').reason == "invalid_encoding"  # type: ignore[union-attr]


# --- known holes in the byte-level pre-filter ---------------------------------------------

_NOTIFICATION = encode(valid("notification.received"))
_HIDDEN_CPRS = {
    # a JSON escape right before the digits: the bytes read `\n0101901234`, where `n` is a
    # word character, so the byte pattern finds no word boundary; the decoded string has one
    "escape-before": _NOTIFICATION.replace(b'"barn-8f3a"', b'"barn\\n0101901234"'),
    "tab-before": _NOTIFICATION.replace(b'"barn-8f3a"', b'"\\t010190-1234"'),
    # digits written as \\u escapes decode to a CPR the bytes never show
    "unicode-escaped-digits": _NOTIFICATION.replace(b'"barn-8f3a"', b'"\\u0030101901234"'),
    # the first of two equal keys is dropped by json.loads before the strings are searched
    "duplicate-key": _NOTIFICATION.replace(b'"child_ref": "barn-8f3a"',
                                           b'"child_ref": "0101901234", "child_ref": "barn-8f3a"'),
    # common.find_cpr (Python str regex) calls fullwidth digits a CPR; the ASCII byte scan does not
    "fullwidth-digits": _NOTIFICATION.replace(b'"barn-8f3a"', '"０１０１９０１２３４"'.encode()),
}




@pytest.mark.parametrize("name", sorted(_HIDDEN_CPRS))
def test_a_cpr_hidden_from_the_byte_scan_is_still_cpr_number(name: str) -> None:
    raw = _HIDDEN_CPRS[name]
    result = decode(topics.NOTIFICATIONS, raw)
    assert isinstance(result, Rejection) and result.reason == "cpr_number"


# --- contains_cpr and mask_cpr ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (encode({"a": f"x {CPR_DASHED}"}), True),
        (encode({"a": [{"b": CPR_PLAIN}]}), True),
        (encode({CPR_PLAIN: 1}), True),
        (b"not json " + CPR_PLAIN.encode(), True),
        (encode({"a": 1101901234}), False),
        (encode({"a": "123456789012"}), False),
        (encode(valid("case_review.completed")), False),
    ],
)
def test_contains_cpr(raw: bytes, expected: bool) -> None:
    assert contains_cpr(raw) is expected


@pytest.mark.parametrize("raw", [b"", encode(valid("development_plan.adopted")), b"123456789012 12345-1234",
                                 b"\xff\xfe binary \x00",
                                 "æøå 12345678-1234-1234-1234-123456789012".encode()])
def test_mask_cpr_leaves_values_without_a_cpr_alone(raw: bytes) -> None:
    assert mask_cpr(raw) == raw


_MASK_BUG = "schemas/decode.py:62 mask_cpr builds bytes(...) from a generator of bytes objects, not ints: " \
            "any CPR-like run raises TypeError (so services/common/dlq.py dead_letter() crashes on it)"


def _assert_masked(raw: bytes, masked: bytes) -> None:
    assert len(masked) == len(raw)
    assert not _ASCII_CPR.search(masked)
    for match in _ASCII_CPR.finditer(raw):
        run = masked[match.start():match.end()]
        assert run == bytes(b"-"[0] if c == b"-"[0] else b"X"[0] for c in match[0])
    outside = _ASCII_CPR.sub(lambda m: b"\0" * len(m[0]), raw)
    assert all(a == b for a, b in zip(outside, masked, strict=True) if a != 0)


@pytest.mark.parametrize(
    "raw",
    [
        CPR_DASHED.encode(),
        CPR_PLAIN.encode(),
        encode({"child_ref": f"barn {CPR_DASHED}", "note": f"{CPR_PLAIN}; 311299-9999 og 123456789012"}),
        f"{CPR_PLAIN}-{CPR_PLAIN} æ {CPR_DASHED}".encode(),
    ],
)
def test_mask_cpr_masks_every_cpr_and_keeps_the_length(raw: bytes) -> None:
    _assert_masked(raw, mask_cpr(raw))


@settings(max_examples=50, deadline=None)
@given(
    before=st.binary(max_size=30),
    cpr=st.from_regex(rb"\A\d{6}-?\d{4}\Z"),
    after=st.binary(max_size=30),
)
def test_mask_cpr_masks_any_embedded_cpr(before: bytes, cpr: bytes, after: bytes) -> None:
    raw = before + b" " + cpr + b" " + after
    _assert_masked(raw, mask_cpr(raw))


# --- a rejection's detail never carries the rejected value -------------------------------

HOSTILE = "<script>alert('pwn')</script>\u202e'; DROP TABLE events;--"

HOSTILE_PLACES: list[tuple[str, Path]] = [
    ("notification.received", ("data", "reporter")),
    ("notification.received", ("data", "urgent")),
    ("notification.received", ("municipality_code",)),
    ("notification.received", ("event_id",)),
    ("notification.received", ("occurred_at",)),
    ("notification.received", ("schema_version",)),
    ("notification.received", ("data",)),
    ("case_review.completed", ("data", "ratings", "assessment")),
    ("case_review.completed", ("data", "legal_findings", 0, "severity")),
    ("development_plan.adopted", ("data", "goals", 0, "milestones", 0, "due_on")),
    ("summary.requested", ("data", "period")),
    ("reporting.milestone_changed", ("data", "state", "history", 0, "effective_at")),
]


@pytest.mark.parametrize(("event_type", "path"), HOSTILE_PLACES)
def test_the_detail_never_contains_a_hostile_value(event_type: str, path: Path) -> None:
    found = rejection(event_type, with_value(valid(event_type), path, HOSTILE))
    assert found is not None and found.reason == "invalid_event"
    assert "<script>" not in found.detail and "DROP TABLE" not in found.detail
    assert len(found.detail) <= 1000


@pytest.mark.parametrize("field", ["source", "correlation_id"])
def test_the_detail_of_a_too_long_string_does_not_echo_it(field: str) -> None:
    found = rejection("notification.received", valid("notification.received", **{field: HOSTILE * 10}))
    assert found is not None and found.reason == "invalid_event"
    assert "<script>" not in found.detail


def test_the_detail_of_an_unknown_type_does_not_echo_it() -> None:
    found = rejection("notification.received", valid("notification.received", event_type=HOSTILE))
    assert found is not None and found.reason == "unknown_event_type"
    assert "<script>" not in found.detail




@pytest.mark.parametrize("where", ["data", "envelope"])
def test_the_detail_never_contains_a_hostile_key(where: str) -> None:
    event = valid("notification.received")
    target = event["data"] if where == "data" else event
    target[HOSTILE] = 1
    found = rejection("notification.received", event)
    assert found is not None and found.reason == "invalid_event"
    assert "<script>" not in found.detail




def test_the_detail_of_an_unsupported_version_does_not_echo_it() -> None:
    found = rejection("notification.received", valid("notification.received", schema_version=1101901234))
    assert found is not None and found.reason == "unsupported_schema_version"
    assert "1101901234" not in found.detail


def test_find_cpr_looks_into_keys_lists_and_nested_objects() -> None:
    assert find_cpr({"a": [{"b": {"c": f"x {CPR_PLAIN}"}}]})
    assert find_cpr({CPR_DASHED: None})
    assert not find_cpr({"a": [1101901234, None, True, 1.5, "123456789012"]})
    assert not find_cpr(json.loads(encode(valid("case_review.completed"))))



_NOISE = st.lists(st.sampled_from(list(b"0123456789-_ aZ:.+\",{}T")), max_size=30).map(bytes)
_DIGITS = st.text("0123456789", min_size=1, max_size=12).map(str.encode)


@given(_NOISE, st.lists(st.tuples(_DIGITS, st.sampled_from([b"", b"-"]), _DIGITS), max_size=3), _NOISE)
def test_the_shape_prefilter_never_hides_a_visible_cpr(
    head: bytes, runs: list[tuple[bytes, bytes, bytes]], tail: bytes,
) -> None:
    """The cheap byte-shape test may say "maybe" more often than the regex, never less."""
    raw = head + b" ".join(a + dash + b for a, dash, b in runs) + tail
    assert _may_hide_cpr(raw) == bool(_CPR_BYTES.search(raw))
