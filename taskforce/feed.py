"""Read the publisher's input files into validated records ready to send, or rejections.

Two formats, chosen by the file's suffix:

* JSON Lines (`.jsonl`, `.ndjson`): one event per line, exactly as it is to be sent; blank
  lines are skipped, a UTF-8 byte-order mark on the first line is ignored.
* CSV (`.csv`): a header naming one column per envelope field (`event_id`, `event_type`,
  `schema_version`, `occurred_at`, `municipality_code`, `source`, `correlation_id`, `data`;
  `correlation_id` may be left out), then one event per row. `data` holds a JSON object;
  `schema_version` becomes an integer only when it is all ASCII digits (anything else stays
  a string, so validation rejects it); an empty `correlation_id` is omitted. The record sent
  is a compact JSON re-serialisation of the row.

Every record is checked exactly as the consuming services will check it
(`schemas.decode.decode` on the topic its `event_type` belongs to), so a bad line is
reported here, with its line number, instead of travelling to the dead-letter topic. A
rejection never quotes the rejected line: it could hold a CPR number.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import topics
from schemas.decode import Rejection, decode, parse
from schemas.events import INPUT_TYPES

#: The CSV columns, in the order the re-serialised JSON carries them.
CSV_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "municipality_code",
    "source",
    "correlation_id",
    "data",
)
OPTIONAL_CSV_COLUMNS = frozenset({"correlation_id"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
CSV_SUFFIXES = frozenset({".csv"})

_BOM = b"\xef\xbb\xbf"
_ASCII_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class FeedLine:
    """A valid event: where it was in the file, and the Kafka record to send."""

    line_no: int
    topic: str
    key: bytes
    value: bytes
    event_type: str


@dataclass(frozen=True, slots=True)
class FeedError:
    """A rejected line: a stable reason code and a detail that quotes nothing of the line."""

    line_no: int
    reason: str
    detail: str


FeedItem = FeedLine | FeedError


def feed_format(path: str | Path) -> str:
    """`"jsonl"` or `"csv"` by the file's suffix; ValueError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise ValueError(f"unsupported feed file suffix {suffix!r}: use .jsonl, .ndjson or .csv")


def read_feed(path: str | Path) -> Iterator[FeedItem]:
    """Every non-blank line (JSONL) or row (CSV) of `path`, in order, as FeedLine or FeedError.

    Raises ValueError at once for an unsupported suffix; OSError (file missing or unreadable)
    surfaces when iteration starts.
    """
    if feed_format(path) == "jsonl":
        return _read_jsonl(Path(path))
    return _read_csv(Path(path))


def check_record(line_no: int, value: bytes) -> FeedItem:
    """Validate one JSON record `value` as the consumers will; the line number is for reports."""
    obj = parse(topics.APPLICATIONS, value)  # every input topic has the same first checks
    if isinstance(obj, Rejection):
        return FeedError(line_no, obj.reason, obj.detail)
    if not isinstance(obj, dict):
        return FeedError(line_no, "invalid_event", "value is not a JSON object")
    event_type = obj.get("event_type")
    if not isinstance(event_type, str) or (spec := INPUT_TYPES.get(event_type)) is None:
        return FeedError(line_no, "unknown_event_type",
                         "event_type is missing or not a known input event type")
    topic = spec[1]
    result = decode(topic, value)
    if isinstance(result, Rejection):
        return FeedError(line_no, result.reason, result.detail)
    key = str(getattr(result, "municipality_code", "")).encode()
    return FeedLine(line_no, topic, key, value, event_type)


# --- JSON Lines ---------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterator[FeedItem]:
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = raw[len(_BOM):] if line_no == 1 and raw.startswith(_BOM) else raw
            value = line.strip()
            if value:
                yield check_record(line_no, value)


# --- CSV ----------------------------------------------------------------------------------


def _read_csv(path: Path) -> Iterator[FeedItem]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield FeedError(raw[: exc.start].count(b"\n") + 1, "invalid_encoding", "file is not UTF-8")
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = _csv_rows(reader)
    header_item = next(rows, None)
    if header_item is None:
        return
    header_line, header = header_item
    if isinstance(header, FeedError):
        yield header
        return
    problem = _header_problem(header)
    if problem:
        yield FeedError(header_line, "invalid_csv_header", problem)
        return
    for line_no, row in rows:
        if isinstance(row, FeedError):
            yield row
            return
        yield _csv_record(line_no, header, row)


def _csv_rows(reader: Any) -> Iterator[tuple[int, list[str] | FeedError]]:
    """Non-blank rows with the line they start on; a parse error ends the file."""
    previous_end = 0
    while True:
        line_no = previous_end + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield line_no, FeedError(line_no, "invalid_csv", "the CSV cannot be parsed here")
            return
        previous_end = reader.line_num
        if any(cell.strip() for cell in row):
            yield line_no, row


def _header_problem(header: list[str]) -> str:
    names = [name.strip() for name in header]
    missing = [c for c in CSV_COLUMNS if c not in names and c not in OPTIONAL_CSV_COLUMNS]
    problems = []
    if missing:
        problems.append("missing column(s): " + ", ".join(missing))
    unexpected = sum(1 for name in names if name not in CSV_COLUMNS)
    if unexpected:
        problems.append(f"{unexpected} unexpected column(s)")
    if len(set(names)) != len(names):
        problems.append("a column appears twice")
    return "; ".join(problems)


def _csv_record(line_no: int, header: list[str], row: list[str]) -> FeedItem:
    if len(row) != len(header):
        return FeedError(line_no, "invalid_csv_row",
                         f"row has {len(row)} fields, the header {len(header)}")
    cells = {name.strip(): cell for name, cell in zip(header, row, strict=True)}
    event = _csv_event(cells)
    if isinstance(event, str):
        return FeedError(line_no, "invalid_json", event)
    value = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return check_record(line_no, value)


def _csv_event(cells: dict[str, str]) -> dict[str, Any] | str:
    """The event a row describes, or what is wrong with its `data` column."""
    try:
        data = json.loads(cells["data"])
    except RecursionError:
        return "the data column is nested too deeply"
    except ValueError:
        return "the data column is not JSON"
    event: dict[str, Any] = {}
    for column in CSV_COLUMNS:
        cell = cells.get(column, "")
        if column == "data":
            event[column] = data
        elif column == "schema_version":
            event[column] = int(cell) if _ASCII_DIGITS.fullmatch(cell) else cell
        elif column == "correlation_id":
            if cell:
                event[column] = cell
        else:
            event[column] = cell
    return event
