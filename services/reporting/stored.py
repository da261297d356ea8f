"""A period's summary as the reporting store keeps it: the last one published, or about to be.

One typed record instead of a dict passed around: the processor builds it, the replica
stores and caches it, the HTTP routes read it. The document's field names are those of
earlier versions, so stores written before this record existed read back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from schemas.summary import SummaryData, SummaryStatus
from services.reporting.domain.lifecycle import Published


@dataclass(frozen=True, slots=True)
class StoredSummary:
    municipality_code: str
    period: str
    status: SummaryStatus
    revision: int
    #: `summary.figures_key` of the figures: an unchanged key is not published again.
    figures_key: str
    #: The published `SummaryData`, as JSON (highlights may be left out when read for a list).
    data: dict[str, Any]
    #: The record's value as published, kept so a crash before the send republishes the very
    #: same bytes (and event id).
    envelope: str
    #: Saved but not yet sent: republished on restart.
    pending: bool = True
    #: The W3C traceparent the summary's record continues, if any.
    trace: str | None = None

    @property
    def id(self) -> str:
        return f"{self.municipality_code}:{self.period}"

    @property
    def as_of(self) -> str:
        return str(self.data["as_of"])

    @property
    def published(self) -> Published:
        return Published(self.status, self.revision)

    def summary(self) -> SummaryData:
        """The figures as the contract's model (validated again: the store is not trusted)."""
        return SummaryData.model_validate(self.data, strict=False)

    def sent(self) -> StoredSummary:
        return replace(self, pending=False)

    def document(self) -> dict[str, Any]:
        return {
            "_id": self.id, "municipality_code": self.municipality_code, "period": self.period,
            "status": self.status.value, "revision": self.revision, "figures_key": self.figures_key,
            "data": self.data, "pending": self.pending, "envelope": self.envelope, "trace": self.trace,
        }

    @classmethod
    def of_document(cls, doc: dict[str, Any]) -> StoredSummary:
        return cls(
            municipality_code=doc["municipality_code"], period=doc["period"],
            status=SummaryStatus(doc["status"]), revision=doc["revision"],
            figures_key=doc["figures_key"], data=doc["data"], envelope=doc["envelope"],
            pending=bool(doc.get("pending", False)), trace=doc.get("trace"),
        )
