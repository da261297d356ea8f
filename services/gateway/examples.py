"""One valid example event per input event type, for the OpenAPI document: the contract
catalogue's own examples (`schemas/catalogue.py`), the ones `taskforce schema` shows."""

from __future__ import annotations

from typing import Any

from schemas.catalogue import BY_TYPE, CATALOGUE


def example_event(event_type: str) -> dict[str, Any]:
    """A valid event of the input type, as a municipal system would send it (a fresh copy)."""
    spec = BY_TYPE[event_type]
    if spec.kind != "input":
        raise KeyError(f"{event_type} is not sent by municipal systems")
    return spec.example


def event_types() -> list[str]:
    """The event types municipal systems send, sorted."""
    return sorted(spec.event_type for spec in CATALOGUE if spec.kind == "input")
