"""Building blocks shared by every model of the contract."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

#: The contract's limits (1.1): beyond any of them an event is invalid, so no valid event can
#: make the platform write a record or document that a broker or store refuses.
MAX_STRING_LENGTH = 200
MAX_SOURCE_LENGTH = 100
MAX_LIST_ITEMS = 200
MAX_RECORD_BYTES = 256 * 1024
#: Internal topics carry our own records: a plan's state may outgrow its input a little, but
#: never the producer's request limit (1 MiB), which is also what a consumer accepts on them.
MAX_INTERNAL_RECORD_BYTES = 1024 * 1024
#: No valid event nests deeper than 6 (a plan's milestone); deeper input is refused before
#: any parser that recurses sees it.
MAX_DEPTH = 32

MunicipalityCode = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{3}$"),
    Field(description="Three-digit Danish municipality code (kommunekode), e.g. \"480\".",
          examples=["480"]),
]
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_STRING_LENGTH),
]
#: Free text (a title): 1–200 characters.
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STRING_LENGTH)]
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
    source: str = Field(min_length=1, max_length=MAX_SOURCE_LENGTH,
                        description="The publishing system, e.g. \"dubu.nordfyn\".",
                        examples=["dubu.nordfyn"])
    correlation_id: str | None = Field(default=None, max_length=MAX_STRING_LENGTH,
                                       description="Optional id tying related events together.")

    @cached_property
    def event_key(self) -> str:
        """`event_id` as text, spelled once per event (a UUID spells itself anew each time).

        Not a field: no part of the contract, the JSON or the model's equality.
        """
        return str(self.event_id)
