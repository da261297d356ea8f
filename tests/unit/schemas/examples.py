"""The contract's event types and a valid event of each, from `schemas.catalogue`, and helpers
to vary them.

The examples are plain JSON data (what a producer puts on the topic), built fresh on every
call so that a test can mutate its copy freely.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from schemas.catalogue import BY_TYPE, CATALOGUE

Json = Any
Path = tuple[str | int, ...]

#: Every event type with its model and the topic it travels on (a view of the catalogue).
EVENT_TYPES: dict[str, tuple[type[BaseModel], str]] = {
    spec.event_type: (spec.model, spec.topic) for spec in CATALOGUE
}
#: The types the services consume through `schemas.decode.decode`: all but the platform's output.
DECODABLE = [spec.event_type for spec in CATALOGUE if spec.decodable]

CPR_DASHED = "010190-1234"
CPR_PLAIN = "0101901234"

#: Set on every `valid` event, so that the tests cover the optional envelope field too.
CORRELATION_ID = "corr-42"


def topic_of(event_type: str) -> str:
    return BY_TYPE[event_type].topic


def valid(event_type: str, /, **envelope: Json) -> dict[str, Json]:
    """A fresh valid event of `event_type`: the catalogue's example with `correlation_id` set;
    keyword arguments replace envelope fields."""
    event: dict[str, Json] = BY_TYPE[event_type].example
    event["correlation_id"] = CORRELATION_ID
    event.update(envelope)
    return event


def encode(event: Json, *, ensure_ascii: bool = False) -> bytes:
    return json.dumps(event, ensure_ascii=ensure_ascii).encode("utf-8")


def with_value(event: Json, path: Path, value: Json) -> Json:
    """A copy of `event` with the value at `path` replaced."""
    out = copy.deepcopy(event)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def without(event: Json, path: Path) -> Json:
    """A copy of `event` with the key at `path` removed."""
    out = copy.deepcopy(event)
    target = out
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return out


def string_paths(value: Json, prefix: Path = ()) -> Iterator[Path]:
    """The path of every string leaf of a JSON value."""
    if isinstance(value, str):
        yield prefix
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_paths(item, (*prefix, index))
