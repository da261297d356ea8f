"""Turn a raw Kafka record value into a contract model, or a reason to reject it.

The order of checks is fixed: the value must be within the topic's size limit, UTF-8 JSON
nested no deeper than `MAX_DEPTH`, must contain no CPR-like number in any string or key
(`schemas.cpr`), must be of an event type that belongs on the topic, and must then validate
strictly against that type's model. No check recurses on the input's depth or raises. A
rejection names a stable `reason` code and a detail built from field locations and messages
only, never from the rejected values, so it can be logged and put in DLQ headers without
leaking what the record carried.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.catalogue import BY_TYPE, TOPICS, on_topic, payload, topics_of
from schemas.common import MAX_DEPTH, MAX_INTERNAL_RECORD_BYTES, MAX_RECORD_BYTES
from schemas.cpr import contains_cpr

#: Brackets outside strings, and whole string literals to step over (unrolled: no backtracking).
_NESTING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)

#: What may arrive on each topic that carries a type of the contract (`schemas.catalogue`):
#: its one model, or its models' union discriminated by `event_type`.
ADAPTERS: dict[str, TypeAdapter[Any]] = {topic: TypeAdapter(payload(topic)) for topic in TOPICS}
#: Their compiled validators, called directly on the fast path: `TypeAdapter.validate_json` is
#: a Python wrapper around the same call, a tenth of a small record's validation.
_VALIDATORS = {topic: adapter.validator for topic, adapter in ADAPTERS.items()}
_TYPES_ON_TOPIC: dict[str, frozenset[str]] = {
    topic: frozenset(spec.event_type for spec in on_topic(topic)) for topic in TOPICS
}
_KNOWN_TYPES = frozenset(BY_TYPE)
#: The topics only the platform's services write: its internal events and its output.
_PLATFORM_TOPICS = frozenset(topics_of("internal", "output"))


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record was refused: a stable code and a value-free explanation."""

    reason: str
    detail: str


def max_record_bytes(topic: str) -> int:
    """The largest record value accepted on `topic`: the contract's 256 KiB on the topics others
    write to, the internal bound on those only the platform writes (`_PLATFORM_TOPICS`)."""
    return MAX_INTERNAL_RECORD_BYTES if topic in _PLATFORM_TOPICS else MAX_RECORD_BYTES


def nested_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether `raw` opens more than `limit` arrays or objects at once (strings skipped).

    A linear scan, so that no parser that recurses on depth ever sees such a value.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for token in _NESTING.finditer(raw):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif bracket in (b"]", b"}"):
            depth = max(depth - 1, 0)
    return False


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        loc = list(item["loc"])
        if item["type"] == "extra_forbidden" and loc:
            loc[-1] = "<unknown field>"  # the sender's key: never echo it
        location = ".".join(str(p) for p in loc) or "(event)"
        parts.append(f"{location}: {item['msg']}")
        if len(parts) == 5:
            break
    return "; ".join(parts)[:1000]


def decode(topic: str, raw: bytes | None) -> BaseModel | Rejection:
    """Decode one record value from `topic` into its model, or say why not. Never raises.

    The fast path validates straight from bytes (pydantic's Rust parser); only a failure, or
    a CPR hit, pays for a second parse to find the precise reason. An error no check foresaw
    still ends as a rejection (`undecodable`), so one record can never stop a consumer.
    """
    try:
        return _decode(topic, raw)
    except Exception as exc:  # last resort; each check above is meant to be total on its own
        return Rejection("undecodable", f"value could not be decoded ({type(exc).__name__})")


def _decode(topic: str, raw: bytes | None) -> BaseModel | Rejection:
    validator = _VALIDATORS.get(topic)
    if raw is not None and validator is not None and len(raw) <= max_record_bytes(topic):
        try:
            event: BaseModel = validator.validate_json(raw)  # one of the topic's event models
        except (ValidationError, RecursionError):
            pass
        else:
            if contains_cpr(raw):
                return Rejection("cpr_number", "a string contains a CPR-like number")
            return event
    return _diagnose(topic, raw, ADAPTERS.get(topic))


def parse(topic: str, raw: bytes | None) -> Any:
    """The checks before a value's type is known, in the order `decode` makes them: within
    the topic's size limit, UTF-8, nested no deeper than `MAX_DEPTH`, JSON, free of CPR-like
    numbers. Returns the parsed JSON value, or the `Rejection`. (Publishers check with this
    too, so they refuse what the services would, with the same reason.)"""
    if raw is None:
        return Rejection("invalid_json", "record has no value")
    if len(raw) > max_record_bytes(topic):
        return Rejection("invalid_event", f"(event): record value is over the limit of "
                                          f"{max_record_bytes(topic) // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection("invalid_encoding", "value is not UTF-8")
    if nested_deeper_than(raw, MAX_DEPTH):
        return Rejection("invalid_json", f"value is nested deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return Rejection("invalid_json", f"value is not JSON ({type(exc).__name__})")
    except RecursionError:  # not reached below MAX_DEPTH; kept so no input can raise here
        return Rejection("invalid_json", "value is nested too deeply")
    if contains_cpr(raw):
        return Rejection("cpr_number", "a string contains a CPR-like number")
    return obj


def _diagnose(topic: str, raw: bytes | None, adapter: TypeAdapter[Any] | None) -> Rejection:
    obj = parse(topic, raw)
    if isinstance(obj, Rejection):
        return obj
    if not isinstance(obj, dict):
        return Rejection("invalid_event", "value is not a JSON object")
    event_type = obj.get("event_type")
    if not isinstance(event_type, str) or event_type not in _KNOWN_TYPES:
        return Rejection("unknown_event_type", "event_type is missing or not a known type")
    if adapter is None or event_type not in _TYPES_ON_TOPIC.get(topic, frozenset()):
        return Rejection("wrong_topic", f"{event_type} does not belong on {topic}")
    version = obj.get("schema_version")
    expected = BY_TYPE[event_type].schema_version
    if isinstance(version, int) and not isinstance(version, bool) and version != expected:
        return Rejection("unsupported_schema_version", f"schema_version is not {expected}")
    try:
        adapter.validate_json(raw)  # type: ignore[arg-type]  # not None: parse() rejected None above
    except ValidationError as exc:
        return Rejection("invalid_event", _describe(exc))
    except RecursionError:
        return Rejection("invalid_json", "value is nested too deeply")
    return Rejection("invalid_event", "value failed validation")
