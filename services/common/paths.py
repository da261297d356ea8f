"""Path parameters every service's HTTP routes share (validated: a bad one is a 422)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MunicipalityCode = Annotated[str, Path(pattern=r"^[0-9]{3}$", description="Three-digit municipality code")]
PeriodName = Annotated[str, Path(pattern=r"^[0-9]{4}H[12]$", description="Half-year, e.g. 2022H1")]
