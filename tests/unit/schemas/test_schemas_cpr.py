"""The CPR guard (`schemas.cpr`), and rejection details that never carry the rejected value.

EVENTS.md 1.1: six digits forming a day 01–31 and a month 01–12, an optional separator
(`-`, `/`, `.`, space), four digits, no digit directly before or after; digits after NFKC; in
every string and key however the JSON spells it; a string exactly a canonical UUID is not
searched. The DLQ keeps the value with every CPR-like number masked; nothing of a payload is
logged.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import topics
from schemas.cpr import CPR_PATTERN, _may_hold_one, contains_cpr, mask_cpr
from schemas.decode import Rejection, decode
from tests.support.cpr import spelled_cpr
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
_ASCII_CPR = re.compile(CPR_PATTERN.pattern.encode())


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
        "barn_0101901234",  # glued to letters: the 1.1 rule has no word boundary
        "CPR0101901234",
        "010190 1234",
        "010190/1234",
        "010190.1234",
        "x-311299-9999-y",
        "290200\u00a01111",  # a no-break space is a space after NFKC
        "０１０１９０１２３４",  # full-width digits
        "０１０１９０－１２３４",  # a full-width hyphen
        "ref:\u3000010190\u30001234",  # ideographic spaces around and between
    ],
)
def test_the_spellings_of_the_contract_are_cpr_like(text: str) -> None:
    event = with_value(valid("notification.received"), ("data", "child_ref"), text)
    assert reason_for("notification.received", event) == "cpr_number"


@pytest.mark.parametrize(
    "text",
    [
        "ref-12345678901",  # the contract's own near misses
        "1234567-1234",
        "123456789012",  # 12 digits
        "01019012345",  # 11 digits: a digit after
        "90101901234",  # a digit before
        "320190-1234",  # no day 32
        "000190-1234",  # no day 00
        "011390-1234",  # no month 13
        "010090-1234",  # no month 00
        "010190--1234",  # one separator at most
        "010190_1234",  # not a separator
        "010190:1234",
        "٠١٠١٩٠١٢٣٤",  # Arabic-Indic digits stay so under NFKC: not 0-9
        "c0a8f2e1-1d2b-4c3d-8e9f-3110851234fe",  # exactly a UUID: not searched
        "C0A8F2E1-1D2B-4C3D-8E9F-3110851234FE",
        "2022-03-01T09:30:00+01:00",
        "+45 12 34 56 78",
    ],
)
def test_near_misses_are_not_taken_for_a_cpr(text: str) -> None:
    assert not contains_cpr(encode({"text": text}))
    event = with_value(valid("notification.received"), ("data", "child_ref"), text)
    assert reason_for("notification.received", event) == "ok"


@pytest.mark.parametrize(
    "text",
    [
        "x c0a8f2e1-1d2b-4c3d-8e9f-3110851234fe",  # more than a UUID: searched
        "c0a8f2e1-1d2b-4c3d-8e9f-3110851234fe ",
        '"c0a8f2e1-1d2b-4c3d-8e9f-3110851234fe"',  # quotes inside the string
        "c0a8f2e1-1d2b-4c3d-8e9f-3110851234fe c0a8f2e1-1d2b-4c3d-8e9f-3110851234fe",
        "ｃ0a8f2e1-1d2b-4c3d-8e9f-3110851234fe",  # only a UUID after normalisation
    ],
)
def test_only_a_string_that_is_exactly_a_uuid_is_spared(text: str) -> None:
    event = with_value(valid("notification.received"), ("data", "child_ref"), text)
    assert reason_for("notification.received", event) == "cpr_number"


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

_NOTIFICATION = encode(with_value(valid("notification.received"), ("data", "child_ref"), "barn-8f3a"))
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
    "fullwidth-digits": _NOTIFICATION.replace(b'"barn-8f3a"', '"０１０１９０１２３４"'.encode()),
    "escaped-fullwidth-digits": _NOTIFICATION.replace(b'"barn-8f3a"', b'"\\uff10101901234"'),
    "escaped-separator": _NOTIFICATION.replace(b'"barn-8f3a"', b'"010190\\u002f1234"'),
    "after-an-escaped-backslash": _NOTIFICATION.replace(b'"barn-8f3a"', b'"x\\\\0101901234"'),
    "escaped-uuid-spelling-kept-searching-outside": _NOTIFICATION.replace(
        b'"barn-8f3a"', b'"\\u0063 0a8f2e1-1d2b-4c3d-8e9f-3110851234fe"'),
    "in-a-key-with-escapes": _NOTIFICATION.replace(b'"child_ref"', b'"\\u0030101901234": 1, "child_ref"'),
}




@pytest.mark.parametrize("name", sorted(_HIDDEN_CPRS))
def test_a_cpr_hidden_from_the_byte_scan_is_still_cpr_number(name: str) -> None:
    raw = _HIDDEN_CPRS[name]
    assert raw != _NOTIFICATION  # the replacement found its place
    result = decode(topics.NOTIFICATIONS, raw)
    assert isinstance(result, Rejection) and result.reason == "cpr_number"


# --- contains_cpr and mask_cpr ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (encode({"a": f"x {CPR_DASHED}"}), True),
        (encode({"a": [{"b": CPR_PLAIN}]}), True),
        (encode({CPR_PLAIN: 1}), True),
        (encode({"a": 1101901234}), False),  # a number is not a string
        (encode({"a": "123456789012"}), False),
        (encode({"a": "c0a8f2e1-1d2b-4c3d-8e9f-3110851234fe"}), False),
        (encode({"a": "c0a8f2e1-1d2b-4c3d-8e9f-3110851234fe"}, ensure_ascii=True), False),
        (encode({"a": "æ c0a8f2e1-1d2b-4c3d-8e9f-3110851234fe"}), True),
        (encode(valid("case_review.completed")), False),
        (b'{"a":' * 5000 + b'"\\u0030101901234"' + b"}" * 5000, True),  # depth does not matter
    ],
)
def test_contains_cpr(raw: bytes, expected: bool) -> None:
    assert contains_cpr(raw) is expected


@pytest.mark.parametrize("raw", [b"", encode(valid("development_plan.adopted")), b"123456789012 12345-1234",
                                 b"\xff\xfe binary \x00", b'"\\"',
                                 "æøå 12345678-1234-1234-1234-123456789012".encode()])
def test_mask_cpr_leaves_values_without_a_cpr_alone(raw: bytes) -> None:
    assert mask_cpr(raw) == raw


def _assert_masked(raw: bytes, masked: bytes) -> None:
    assert len(masked) == len(raw)
    assert not _ASCII_CPR.search(masked)
    for match in _ASCII_CPR.finditer(raw):
        run = masked[match.start():match.end()]
        assert run == bytes(c if c in b"-/. " else b"X"[0] for c in match[0])
    outside = _ASCII_CPR.sub(lambda m: b"\0" * len(m[0]), raw)
    assert all(a == b for a, b in zip(outside, masked, strict=True) if a != 0)


@pytest.mark.parametrize(
    "raw",
    [
        CPR_DASHED.encode(),
        CPR_PLAIN.encode(),
        encode({"child_ref": f"barn {CPR_DASHED}", "note": f"{CPR_PLAIN}; 311299-9999 og 123456789012"}),
        f"{CPR_PLAIN}-{CPR_PLAIN} æ {CPR_DASHED} 010190/1234 010190.1234".encode(),
        b"[1010901234, 2902001111]",  # numbers too: masked in what is passed on
    ],
)
def test_mask_cpr_masks_every_cpr_and_keeps_the_length(raw: bytes) -> None:
    _assert_masked(raw, mask_cpr(raw))


def test_mask_cpr_masks_escaped_and_full_width_digits_one_x_each() -> None:
    raw = '{"a": "\\u0030101901234", "０１０１９０ １２３４": "\\uff10101901234"}'.encode()
    masked = mask_cpr(raw)
    assert json.loads(masked) == {"a": "X" * 10, "XXXXXX XXXX": "X" * 10}


def test_mask_cpr_keeps_invalid_utf8_as_it_was() -> None:
    raw = b"\xff\xfe" + CPR_PLAIN.encode() + b"\x00\xc3"
    assert mask_cpr(raw) == b"\xff\xfe" + b"X" * 10 + b"\x00\xc3"


@settings(max_examples=50, deadline=None)
@given(
    before=st.binary(max_size=30),
    cpr=st.from_regex(rb"\A(0[1-9]|[12][0-9]|3[01])(0[1-9]|1[0-2])[0-9]{2}[-/. ]?[0-9]{4}\Z"),
    after=st.binary(max_size=30),
)
def test_mask_cpr_masks_any_embedded_cpr(before: bytes, cpr: bytes, after: bytes) -> None:
    raw = before + b" " + cpr + b" " + after
    masked = mask_cpr(raw)
    assert cpr not in masked
    assert not _ASCII_CPR.search(masked)


@pytest.mark.parametrize(
    "raw",
    [
        # An escaped backslash, then the escape \u1111, then 131111: decoded, a letter and six
        # digits; spelled, "1111131111" (found by make fuzz in CI).
        rb"MM\\\u1111131111)",
        rb'{"a": "\\\u1111131111"}',
        # Full-width digits joined to ASCII ones: decoded, one run of twenty; spelled, ten.
        r"\u00e5 １１１１１３１１１１1111131111 x".encode(),
        "１１１１１３１１１１1111131111".encode(),
    ],
)
def test_mask_cpr_masks_what_either_reading_finds(raw: bytes) -> None:
    masked = mask_cpr(raw)
    assert not spelled_cpr(masked)
    assert mask_cpr(masked) == masked


def test_a_quoted_uuid_is_spared_by_the_spelled_reading_too() -> None:
    raw = '{"id": "ab111111-1111-4111-8111-111111111111", "t": "å"}'.encode()
    assert mask_cpr(raw) == raw
    assert mask_cpr(raw.replace(b'"ab', b'"x ab')) != raw.replace(b'"ab', b'"x ab')


_MIXED = st.lists(st.sampled_from(["1", "3", "0", "-", " ", "\\", "\\u", "\\u0031", "\\uff11",
                                   "１", "３", "½", "å", '"', "u", "x"]), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=_MIXED)
def test_masking_leaves_no_cpr_by_either_reading_and_is_idempotent(text: str) -> None:
    raw = text.encode()
    masked = mask_cpr(raw)
    assert not spelled_cpr(masked)
    assert mask_cpr(masked) == masked
    assert len(masked) <= len(raw)


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


_NOISE = st.lists(st.sampled_from(list(b"0123456789-/. _aZ:+\",{}T")), max_size=30).map(bytes)


@settings(max_examples=200, deadline=None)
@given(_NOISE, st.lists(st.tuples(_NOISE, _NOISE), max_size=3), _NOISE)
def test_the_shape_prefilter_never_hides_a_cpr(head: bytes, runs: list[tuple[bytes, bytes]],
                                               tail: bytes) -> None:
    """The cheap byte-shape test may say "maybe" more often than the pattern, never less."""
    raw = head + b"".join(a + b"0101901234"[: len(b) % 11] + b for a, b in runs) + tail
    assert _may_hold_one(raw) or not _ASCII_CPR.search(raw)
    assert _may_hold_one(b"x010190/1234y") and _may_hold_one(b"010190 1234")
