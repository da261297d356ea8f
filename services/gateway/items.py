"""The pure part of the gateway: a request body into items, each item into a verdict.

A body is split into the raw bytes of its items without parsing what is inside them (a JSON
array with the stdlib's `raw_decode` where an item is JSON, a linear scan past one that is
not; JSON Lines by line), so one hostile item — not JSON, nested a thousand deep, a number of
a million digits — gets its own answer and the others theirs. Each item is then judged by the
consumers' own code (`schemas.decode.decode` on the topic its `event_type` belongs on, so the
reasons are the DLQ's, the CPR rule included) and by the principal's scope. Nothing here
quotes a value of an item: answers carry reason codes, value-free details and field
locations, and the `event_id` only when it is a UUID.

CloudEvents 1.0 structured mode maps onto the contract's envelope (`CLOUDEVENT_FIELDS`); the
mapped event is validated like any other.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas import topics
from schemas.common import MAX_DEPTH, MAX_RECORD_BYTES
from schemas.decode import ADAPTERS, Rejection, decode, nested_deeper_than, parse
from schemas.events import INPUT_TYPES

MAX_EVENTS = 1000
MAX_BODY_BYTES = 1024 * 1024
#: Field locations listed per rejected item at most (the detail has the first five too).
MAX_FIELDS = 20

JSON = "application/json"
NDJSON = "application/x-ndjson"
CLOUDEVENT = "application/cloudevents+json"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
MEDIA_TYPES = (JSON, NDJSON, CLOUDEVENT, CLOUDEVENTS_BATCH)

#: CloudEvents attribute → contract envelope field (structured mode, specversion 1.0).
CLOUDEVENT_FIELDS: dict[str, str] = {
    "id": "event_id",
    "type": "event_type",
    "time": "occurred_at",
    "source": "source",
    "municipalitycode": "municipality_code",
    "schemaversion": "schema_version",
    "correlationid": "correlation_id",
    "data": "data",
}
#: CloudEvents attributes read but not mapped: checked (specversion, datacontenttype) or ignored.
CLOUDEVENT_CHECKED = frozenset({"specversion", "datacontenttype", "dataschema", "subject"})

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_OUTSIDE = re.compile(r'["\[\]{},]')
_INSIDE = re.compile(r'["\\]')
_BOM = b"\xef\xbb\xbf"
_EVENT_TYPE = re.compile(rb'"event_type"[ \t\n\r]*:[ \t\n\r]*"([a-z_.]{1,64})"')


class BodyError(Exception):
    """The body as a whole cannot be read as items: 400, 413 or 415, with a value-free message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a request as sent: its JSON bytes (or why there are none), where it was."""

    index: int
    raw: bytes | Rejection
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid event the principal may write: the record to produce."""

    index: int
    line: int | None
    event_id: str
    event_type: str
    topic: str
    municipality: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    """An item that is not produced: a stable reason, a value-free detail, field locations."""

    index: int
    line: int | None
    event_id: str | None
    reason: str
    detail: str
    fields: tuple[str, ...] = ()
    #: The item's municipality when it was valid (for the audit of a scope refusal).
    municipality: str | None = None
    #: Whether the same item may succeed when sent again (the broker did not acknowledge it).
    retry: bool = False


Verdict = Accepted | Refused


# --- bodies --------------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower case, parameters dropped."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def split_body(body: bytes, content_type: str | None, max_events: int = MAX_EVENTS) -> list[Item]:
    """The items of a body by its media type; BodyError when it cannot be read as items."""
    kind = media_type(content_type)
    if kind == JSON:
        return [Item(i, raw) for i, raw in enumerate(split_json_array(body, max_events))]
    if kind == NDJSON:
        return split_ndjson(body, max_events)
    if kind == CLOUDEVENTS_BATCH:
        return [Item(i, from_cloudevent(raw)) for i, raw in enumerate(split_json_array(body, max_events))]
    if kind == CLOUDEVENT:
        return [Item(0, from_cloudevent(body.strip()))]
    raise BodyError(415, f"Content-Type must be one of {', '.join(MEDIA_TYPES)}")


def split_ndjson(body: bytes, max_events: int = MAX_EVENTS) -> list[Item]:
    """Every non-blank line, with its 1-based line number (a leading UTF-8 BOM is ignored)."""
    if body.startswith(_BOM):
        body = body[len(_BOM):]
    items: list[Item] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        value = line.strip()
        if value:
            if len(items) == max_events:
                raise BodyError(413, f"more than {max_events} events in one request")
            items.append(Item(len(items), value, number))
    return items


def split_json_array(body: bytes, max_events: int = MAX_EVENTS) -> list[bytes]:
    """The raw bytes of each element of a top-level JSON array, in order.

    Elements are delimited by the stdlib decoder where they are JSON, and by a linear scan
    (strings, brackets, commas) where they are not, so a bad element is one item, not a bad
    body. Invalid UTF-8 travels through (surrogateescape) to be refused per item.
    """
    text = (body[len(_BOM):] if body.startswith(_BOM) else body).decode("utf-8", "surrogateescape")
    pos = _skip(text, 0)
    if not text.startswith("[", pos):
        raise BodyError(400, "the body is not a JSON array")
    pos = _skip(text, pos + 1)
    items: list[bytes] = []
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            start = pos
            try:
                _value, end = _DECODER.raw_decode(text, pos)
            except (ValueError, RecursionError):
                end = _element_end(text, pos)
            after = _skip(text, end)
            if after < len(text) and text[after] not in ",]":
                end = _element_end(text, start)  # JSON followed by something else: one bad item
                after = _skip(text, end)
            if len(items) == max_events:
                raise BodyError(413, f"more than {max_events} events in one request")
            items.append(text[start:end].rstrip(" \t\n\r").encode("utf-8", "surrogateescape"))
            if after >= len(text):
                raise BodyError(400, "the JSON array is not closed")
            pos = _skip(text, after + 1)
            if text[after] == "]":
                break
    if pos < len(text):
        raise BodyError(400, "something follows the JSON array")
    return items


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _element_end(text: str, pos: int) -> int:
    """Where the element starting at `pos` ends: the next comma or closing bracket outside
    strings and nested brackets (or the end of the text). Linear; no recursion."""
    depth = 0
    while True:
        match = _OUTSIDE.search(text, pos)
        if match is None:
            return len(text)
        char, pos = match.group(), match.start()
        if char == '"':
            pos += 1
            while True:
                inner = _INSIDE.search(text, pos)
                if inner is None:
                    return len(text)
                pos = inner.start() + (2 if inner.group() == "\\" else 1)
                if inner.group() == '"':
                    break
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            if depth == 0:
                return pos
            depth -= 1
        elif depth == 0:  # a comma between elements
            return pos
        pos += 1


# --- CloudEvents ---------------------------------------------------------------------------


def from_cloudevent(raw: bytes) -> bytes | Rejection:
    """A CloudEvents 1.0 structured-mode event as the contract's event (JSON bytes), or why not.

    The CloudEvent itself passes the consumers' first checks (size, UTF-8, nesting, JSON, no
    CPR-like number) before it is mapped; the mapped event is then validated like any other.
    An attribute this mapping does not know is refused (counted, never named).
    """
    obj = parse(topics.APPLICATIONS, raw)
    if isinstance(obj, Rejection):
        return obj
    if not isinstance(obj, dict):
        return Rejection("invalid_cloudevent", "(event): a CloudEvent is a JSON object")
    if obj.get("specversion") != "1.0":
        return Rejection("invalid_cloudevent", "specversion: must be \"1.0\"")
    content_type = obj.get("datacontenttype", JSON)
    if not isinstance(content_type, str) or media_type(content_type) != JSON:
        return Rejection("invalid_cloudevent", "datacontenttype: must be application/json (or absent)")
    unknown = [key for key in obj if key not in CLOUDEVENT_FIELDS and key not in CLOUDEVENT_CHECKED]
    if unknown:
        return Rejection("invalid_cloudevent", f"(event): {len(unknown)} attribute(s) not in the mapping "
                                               "(data_base64 is not supported)")
    event: dict[str, Any] = {"schema_version": 1}
    for attribute, name in CLOUDEVENT_FIELDS.items():
        if attribute in obj:
            event[name] = obj[attribute]
    return json.dumps(event, separators=(",", ":")).encode()


def to_cloudevent(event: dict[str, Any]) -> dict[str, Any]:
    """A contract event as a CloudEvent (the mapping's inverse; for examples and clients)."""
    names = {name: attribute for attribute, name in CLOUDEVENT_FIELDS.items()}
    cloudevent: dict[str, Any] = {"specversion": "1.0", "datacontenttype": JSON}
    for name, value in event.items():
        if value is not None:
            cloudevent[names[name]] = value
    return cloudevent


# --- verdicts ------------------------------------------------------------------------------


def judge(item: Item, may_write: Callable[[str], bool]) -> Verdict:
    """Accept the item, or refuse it with the consumers' reason (or `not_in_scope`)."""
    raw = item.raw
    if isinstance(raw, Rejection):
        return Refused(item.index, item.line, None, raw.reason, raw.detail)
    # The common case first: a valid event, decoded once on the topic its event_type names
    # (found without parsing). Anything else takes the full path below, which gives the
    # same verdict for a valid event and the precise reason for any other.
    guessed = _guess_topic(raw)
    early: Any = None
    if guessed is not None and len(raw) <= MAX_RECORD_BYTES and not nested_deeper_than(raw, MAX_DEPTH):
        early = decode(guessed, raw)
        if not isinstance(early, Rejection) and _input_topic(getattr(early, "event_type", None)) == guessed:
            return _scoped(item, early, guessed, may_write)
    peeked = _peek(raw)
    topic = _input_topic(peeked.get("event_type") if peeked is not None else None)
    event_id = _event_id(peeked)
    if topic is None:
        first = parse(topics.APPLICATIONS, raw)  # every input topic has the same first checks
        if isinstance(first, Rejection):
            return Refused(item.index, item.line, event_id, first.reason, first.detail)
        if not isinstance(first, dict):
            return Refused(item.index, item.line, None, "invalid_event", "value is not a JSON object")
        return Refused(item.index, item.line, event_id, "unknown_event_type",
                       "event_type is missing or not an input event type", ("event_type",))
    result = early if early is not None and topic == guessed else decode(topic, raw)
    if isinstance(result, Rejection):
        fields = _locations(topic, raw) if result.reason == "invalid_event" else ()
        return Refused(item.index, item.line, event_id, result.reason, result.detail, fields)
    return _scoped(item, result, topic, may_write)


def _scoped(item: Item, event: Any, topic: str, may_write: Callable[[str], bool]) -> Verdict:
    """A valid event: accepted when the principal may write for its municipality."""
    code: str = event.municipality_code
    key = str(event.event_id)  # what event_key spells, without the lock of 3.11's cached_property
    if not may_write(code):
        return Refused(item.index, item.line, key, "not_in_scope",
                       "municipality_code: this token may not write for this municipality",
                       ("municipality_code",), municipality=code)
    assert isinstance(item.raw, bytes)
    return Accepted(item.index, item.line, key, str(event.event_type), topic, code, item.raw)


def _guess_topic(raw: bytes) -> str | None:
    """The input topic of the first `"event_type": "<input type>"` in the item's bytes, or None.

    Only a guess (the pair could sit inside `data`): `judge` keeps it only when the event
    decodes on that topic and its own event_type belongs there.
    """
    match = _EVENT_TYPE.search(raw)
    return None if match is None else _input_topic(match.group(1).decode("ascii"))


def _input_topic(event_type: object) -> str | None:
    """The topic of an input event type, or None for anything else."""
    spec = INPUT_TYPES.get(event_type) if isinstance(event_type, str) else None
    return spec[1] if spec is not None else None


def _peek(raw: bytes) -> dict[str, Any] | None:
    """The item as a JSON object when it is one within the limits, else None (no raising)."""
    if len(raw) > MAX_RECORD_BYTES or nested_deeper_than(raw, MAX_DEPTH):
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _event_id(obj: dict[str, Any] | None) -> str | None:
    """The item's `event_id` in canonical form when it is a UUID (nothing else is echoed)."""
    value = obj.get("event_id") if obj is not None else None
    if not isinstance(value, str) or len(value) > 45:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _locations(topic: str, raw: bytes) -> tuple[str, ...]:
    """The locations of the fields that failed validation, spelled as the DLQ's detail spells
    them (an unknown key is `<unknown field>`: the sender's key is never echoed)."""
    adapter = ADAPTERS.get(topic)
    if adapter is None or len(raw) > MAX_RECORD_BYTES:
        return ()
    try:
        adapter.validate_json(raw)
    except ValidationError as error:
        found: list[str] = []
        for entry in error.errors(include_input=False, include_url=False, include_context=False):
            loc = [str(part) for part in entry["loc"]]
            if entry["type"] == "extra_forbidden" and loc:
                loc[-1] = "<unknown field>"
            location = ".".join(loc) or "(event)"
            if location not in found:
                found.append(location)
            if len(found) == MAX_FIELDS:
                break
        return tuple(found)
    except Exception:  # locations are a courtesy; the reason stands without them
        return ()
    return ()


def status_of(verdicts: list[Verdict]) -> int:
    """The status convention: 200 every item accepted (or none sent), 207 some accepted and
    some not, 503 none accepted and some only for want of the broker, 422 none accepted."""
    accepted = sum(isinstance(v, Accepted) for v in verdicts)
    if accepted == len(verdicts):
        return 200
    if accepted:
        return 207
    if any(isinstance(v, Refused) and v.retry for v in verdicts):
        return 503
    return 422
