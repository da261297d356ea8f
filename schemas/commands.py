"""Commands on `taskforce.commands`: ask the reporting service for a summary."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import EnvelopeFields, Frozen


class SummaryRequestedData(Frozen):
    period: str = Field(pattern=r"^[0-9]{4}H[12]$", description="Half-year, e.g. \"2022H1\".",
                        examples=["2022H1"])
    final: bool = Field(description="true finalises the period now; false republishes the draft.")


class SummaryRequested(EnvelopeFields):
    """Ask for a period's summary; commands do not move the watermark."""

    event_type: Literal["summary.requested"]
    data: SummaryRequestedData
