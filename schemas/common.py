"""Building blocks shared by every model of the contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

#: A Danish personal ID number (CPR), with or without the dash. Matched in every string.
CPR_PATTERN = re.compile(r"\b\d{6}-?\d{4}\b")

MunicipalityCode = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{3}$"),
    Field(description="Three-digit Danish municipality code (kommunekode), e.g. \"480\".",
          examples=["480"]),
]
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
]
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999

#: Instants no real event can have, and whose UTC or local conversion could overflow, are
#: refused: the UTC year must lie in 1900–2999. Checked by the validator itself (it compares
#: instants, offsets included), not by a Python callback per timestamp.
Timestamp = Annotated[
    AwareDatetime,
    Field(ge=datetime(EARLIEST_YEAR, 1, 1, tzinfo=UTC), lt=datetime(LATEST_YEAR + 1, 1, 1, tzinfo=UTC),
          description="RFC 3339 date-time with an explicit offset; naive times are invalid.",
          examples=["2022-03-01T09:30:00+01:00"]),
]


class Frozen(BaseModel):
    """Base for every contract model: immutable, strict JSON types, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class EnvelopeFields(Frozen):
    """The envelope fields every event carries besides `event_type` and `data`."""

    event_id: UUID = Field(description="Unique per event; a repeated id is a duplicate.")
    schema_version: int = Field(ge=SCHEMA_VERSION, le=SCHEMA_VERSION,
                                description="Contract version, 1 for this contract.")
    occurred_at: Timestamp
    municipality_code: MunicipalityCode
    source: str = Field(min_length=1, max_length=100,
                        description="The publishing system, e.g. \"dubu.nordfyn\".",
                        examples=["dubu.nordfyn"])
    correlation_id: str | None = Field(default=None, max_length=200,
                                       description="Optional id tying related events together.")

    @cached_property
    def event_key(self) -> str:
        """`event_id` as text, spelled once per event (a UUID spells itself anew each time).

        Not a field: no part of the contract, the JSON or the model's equality.
        """
        return str(self.event_id)


def find_cpr(value: Any) -> bool:
    """True when any string (key or value) nested in a decoded JSON value looks like a CPR."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if CPR_PATTERN.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
