"""Reading the publisher's feed files: JSON Lines and CSV, line numbers, rejection reasons."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import topics
from schemas.decode import Rejection, decode
from taskforce import demo
from taskforce.feed import CSV_COLUMNS, FeedError, FeedLine, check_record, read_feed
from tests.unit.schemas.examples import encode, topic_of, valid, with_value

pytestmark = pytest.mark.unit

CPR_TEXT = "010190-1234"

RECEIVED: dict[str, Any] = {
    "event_id": "6f1d2c4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
    "event_type": "notification.received",
    "schema_version": 1,
    "occurred_at": "2022-03-01T09:30:00+01:00",
    "municipality_code": "480",
    "source": "dubu.nordfyn",
    "data": {"notification_id": "u-480-000001", "child_ref": "b-480-004711",
             "reporter": "school", "urgent": False},
}
SUBMITTED: dict[str, Any] = {
    "event_id": "0c9e5f4a-1b2d-4e3f-8a5b-6c7d8e9f0a1b",
    "event_type": "application.submitted",
    "schema_version": 1,
    "occurred_at": "2019-11-21T10:00:00+01:00",
    "municipality_code": "480",
    "source": "esdh.nordfyn",
    "correlation_id": "a-480-1",
    "data": {"application_id": "a-480-1", "reasons": ["rising_caseload"]},
}


def line(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False)


def changed(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**event, **fields}


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def csv_text(rows: list[list[str]], header: tuple[str, ...] = CSV_COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def csv_row(event: dict[str, Any]) -> list[str]:
    return [json.dumps(event["data"]) if c == "data" else str(event.get(c, ""))
            for c in CSV_COLUMNS]


# --- JSON Lines ---------------------------------------------------------------------------


def test_valid_jsonl_lines_become_records(tmp_path: Path) -> None:
    path = write(tmp_path, "feed.jsonl", f"{line(RECEIVED)}\n{line(SUBMITTED)}\n")
    first, second = read_feed(path)
    assert first == FeedLine(1, topics.NOTIFICATIONS, b"480", line(RECEIVED).encode(),
                             "notification.received")
    assert isinstance(second, FeedLine)
    assert (second.line_no, second.topic, second.event_type) == (
        2, topics.APPLICATIONS, "application.submitted")
    assert json.loads(second.value) == SUBMITTED


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    text = f"\n{line(RECEIVED)}\r\n   \r\n\n{line(SUBMITTED)}\n\n"
    items = list(read_feed(write(tmp_path, "feed.ndjson", text)))
    assert [(type(i), i.line_no) for i in items] == [(FeedLine, 2), (FeedLine, 5)]
    assert items[0].value == line(RECEIVED).encode()


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "feed.jsonl", b"\xef\xbb\xbf" + line(RECEIVED).encode() + b"\n")
    (item,) = read_feed(path)
    assert isinstance(item, FeedLine)


def test_bad_lines_are_reported_with_line_number_and_reason(tmp_path: Path) -> None:
    bad_lines = [
        line(RECEIVED),                                                       # 1 ok
        '{"event_type": "notification.received", ',                           # 2
        line(changed(RECEIVED, event_type="notification.deleted")),           # 3
        line(changed(RECEIVED, source="")),                                   # 4
        line(changed(RECEIVED, data={**RECEIVED["data"], "urgent": "true"})),  # 5
        line(changed(RECEIVED, schema_version=2)),                            # 6
        "[1, 2, 3]",                                                          # 7
        line(changed(RECEIVED, occurred_at="2022-03-01T09:30:00")),           # 8
        line({k: v for k, v in RECEIVED.items() if k != "event_type"}),       # 9
        line(changed(RECEIVED, municipality_code=480)),                       # 10
    ]
    items = list(read_feed(write(tmp_path, "feed.jsonl", "\n".join(bad_lines) + "\n")))
    assert [i.line_no for i in items] == list(range(1, 11))
    assert isinstance(items[0], FeedLine)
    reasons = [(i.line_no, i.reason) for i in items[1:] if isinstance(i, FeedError)]
    assert reasons == [
        (2, "invalid_json"),
        (3, "unknown_event_type"),
        (4, "invalid_event"),
        (5, "invalid_event"),
        (6, "unsupported_schema_version"),
        (7, "invalid_event"),
        (8, "invalid_event"),
        (9, "unknown_event_type"),
        (10, "invalid_event"),
    ]


def test_invalid_utf8_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "feed.jsonl", b'{"event_type": "\xff\xfe"}\n' + line(RECEIVED).encode())
    first, second = read_feed(path)
    assert isinstance(first, FeedError) and first.reason == "invalid_encoding"
    assert isinstance(second, FeedLine) and second.line_no == 2


def test_a_cpr_number_is_rejected_and_never_quoted(tmp_path: Path) -> None:
    event = changed(RECEIVED, data={**RECEIVED["data"], "child_ref": CPR_TEXT})
    (item,) = read_feed(write(tmp_path, "feed.jsonl", line(event)))
    assert isinstance(item, FeedError) and item.reason == "cpr_number"
    assert "0101" not in item.detail and "1234" not in item.detail


def test_an_unknown_type_with_a_secret_is_not_quoted(tmp_path: Path) -> None:
    event = changed(RECEIVED, event_type="secret-type-ZQX")
    (item,) = read_feed(write(tmp_path, "feed.jsonl", line(event)))
    assert isinstance(item, FeedError) and item.reason == "unknown_event_type"
    assert "ZQX" not in item.detail


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["source", "correlation_id", "event_id", "occurred_at"]),
       prefix=st.text(max_size=10), dash=st.booleans())
def test_errors_never_carry_a_cpr_from_the_line(field: str, prefix: str, dash: bool) -> None:
    cpr = "311299-4321" if dash else "3112994321"
    value = line(changed(RECEIVED, **{field: f"{prefix} {cpr}"})).encode()
    item = check_record(7, value)
    assert isinstance(item, FeedError)
    assert item.reason == "cpr_number"
    assert "4321" not in item.detail and "311299" not in item.detail


def test_unsupported_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="suffix"):
        read_feed(write(tmp_path, "feed.txt", line(RECEIVED)))


# --- CSV ----------------------------------------------------------------------------------


def test_csv_rows_are_reserialised_compactly(tmp_path: Path) -> None:
    text = csv_text([csv_row(RECEIVED), csv_row(SUBMITTED)])
    first, second = read_feed(write(tmp_path, "feed.csv", text))
    assert isinstance(first, FeedLine) and isinstance(second, FeedLine)
    assert (first.line_no, second.line_no) == (2, 3)
    assert json.loads(first.value) == RECEIVED  # empty correlation_id omitted
    assert "correlation_id" not in json.loads(first.value)
    assert json.loads(second.value) == SUBMITTED
    assert first.value == json.dumps(RECEIVED, separators=(",", ":")).encode()
    assert (first.topic, first.key) == (topics.NOTIFICATIONS, b"480")


def test_csv_without_correlation_column_and_with_blank_rows(tmp_path: Path) -> None:
    header = tuple(c for c in CSV_COLUMNS if c != "correlation_id")
    row = [json.dumps(RECEIVED["data"]) if c == "data" else str(RECEIVED[c]) for c in header]
    text = csv_text([row, [], ["", "", "", "", "", "", ""], row], header=header)
    items = list(read_feed(write(tmp_path, "feed.csv", text)))
    assert [(type(i), i.line_no) for i in items] == [(FeedLine, 2), (FeedLine, 5)]


def test_bad_csv_rows_are_reported(tmp_path: Path) -> None:
    version_text = csv_row(RECEIVED)
    version_text[CSV_COLUMNS.index("schema_version")] = "1.0"
    bad_json = csv_row(RECEIVED)
    bad_json[CSV_COLUMNS.index("data")] = "{not json"
    multi_line = csv_row(RECEIVED)
    multi_line[CSV_COLUMNS.index("data")] = json.dumps(RECEIVED["data"], indent=1)
    wrong_type = csv_row(SUBMITTED)
    wrong_type[CSV_COLUMNS.index("data")] = '{"application_id": "a-1", "reasons": "other"}'
    rows = [version_text, bad_json, csv_row(RECEIVED)[:5], multi_line, wrong_type,
            csv_row(RECEIVED)]
    items = list(read_feed(write(tmp_path, "feed.csv", csv_text(rows))))
    summary = [(i.line_no, getattr(i, "reason", "ok")) for i in items]
    assert summary == [
        (2, "invalid_event"),
        (3, "invalid_json"),
        (4, "invalid_csv_row"),
        (5, "ok"),
        (11, "invalid_event"),
        (12, "ok"),
    ]


def test_csv_with_a_bad_header_stops_at_once(tmp_path: Path) -> None:
    header = ("event_id", "event_type", "occurred_at", "municipality_code", "source", "data",
              "extra")
    items = list(read_feed(write(tmp_path, "feed.csv", csv_text([["x"] * 7], header=header))))
    assert len(items) == 1
    (error,) = items
    assert isinstance(error, FeedError)
    assert (error.line_no, error.reason) == (1, "invalid_csv_header")
    assert "schema_version" in error.detail and "1 unexpected" in error.detail


def test_empty_files_yield_nothing(tmp_path: Path) -> None:
    assert list(read_feed(write(tmp_path, "empty.csv", ""))) == []
    assert list(read_feed(write(tmp_path, "empty.jsonl", "\n\n"))) == []


# --- the demo's files read back -----------------------------------------------------------


def test_demo_feeds_read_back_clean(tmp_path: Path) -> None:
    events = demo.generate(11, volume=0.03)
    paths = demo.write_feeds(events, tmp_path)
    read = {name: list(read_feed(path)) for name, path in paths.items()}
    assert all(isinstance(i, FeedLine) for items in read.values() for i in items)
    for topic in topics.INPUT_TOPICS:
        items = read[f"{topic}.jsonl"]
        assert {i.topic for i in items} <= {topic}
        assert len(items) == sum(demo.topic_of(e) == topic for e in events)
    sample = read[demo.CSV_SAMPLE_NAME]
    assert 1 <= len(sample) <= demo.CSV_SAMPLE_ROWS
    applications = [e for e in events if demo.topic_of(e) == topics.APPLICATIONS]
    assert [json.loads(i.value) for i in sample] == applications[: len(sample)]


def _hostile_lines() -> list[tuple[str, bytes]]:
    """(event type, line) pairs a publisher must refuse as the services do (contract 1.1)."""
    plan = valid("development_plan.adopted")
    goal = plan["data"]["goals"][0]
    many_goals = with_value(plan, ("data", "goals"), [goal] * 201)
    notification = valid("notification.received")
    child_ref = ("data", "child_ref")
    return [
        ("notification.received", encode(with_value(notification, child_ref, "x" * 201))),
        ("notification.received", encode(with_value(notification, ("source",), "s" * 101))),
        ("notification.received", encode(with_value(notification, child_ref, "barn_0101901234"))),
        ("notification.received", encode(with_value(notification, child_ref, "０１０１９０ １２３４"))),
        ("development_plan.adopted", encode(many_goals)),
        ("development_plan.adopted", encode(with_value(plan, ("data", "course_id"), "c" * 300_000))),
        ("notification.received", b'{"a":' * 600 + b"1" + b"}" * 600),
    ]


@pytest.mark.parametrize(("event_type", "line"), _hostile_lines())
def test_a_publisher_refuses_what_the_services_refuse_with_the_same_reason(event_type: str,
                                                                           line: bytes) -> None:
    by_service = decode(topic_of(event_type), line)
    by_publisher = check_record(1, line)
    assert isinstance(by_service, Rejection) and isinstance(by_publisher, FeedError)
    assert (by_publisher.reason, by_publisher.detail) == (by_service.reason, by_service.detail)
