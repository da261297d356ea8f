"""Reference data: Denmark's 98 municipalities, their codes, official names and regions.

The list is Danmarks Statistik's (the municipality codes of the CPR register and of every
public register since the 2007 reform), kept in `schemas/data/municipalities.csv` and read
once. Christiansø (411) is administered by the state and is no municipality. A code the
contract accepts (three digits) but the list lacks stays valid everywhere: it gets a neutral
name and `is_known` is False, so a report can say so.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

#: The five regions, in Danmarks Statistik's order.
REGIONS: tuple[str, ...] = ("Region Hovedstaden", "Region Sjælland", "Region Syddanmark",
                            "Region Midtjylland", "Region Nordjylland")
#: Said wherever a code is not in the list (the committee report, the index).
UNKNOWN_CODE_NOTE = "Kommunekoden findes ikke i Danmarks Statistiks liste"
_DATA = "municipalities.csv"


@dataclass(frozen=True, slots=True)
class Municipality:
    """One municipality: its three-digit code, official Danish name and region."""

    code: str
    name: str
    region: str


@cache
def _load() -> Mapping[str, Municipality]:
    """The list, by code, read from the package data and checked once."""
    text = resources.files("schemas").joinpath("data", _DATA).read_text(encoding="utf-8")
    rows: dict[str, Municipality] = {}
    for row in csv.DictReader(io.StringIO(text)):
        entry = Municipality(code=row["code"], name=row["name"], region=row["region"])
        if not (len(entry.code) == 3 and entry.code.isascii() and entry.code.isdigit()):
            raise ValueError(f"{_DATA}: not a municipality code: {entry.code!r}")
        if entry.region not in REGIONS:
            raise ValueError(f"{_DATA}: unknown region {entry.region!r} for {entry.code}")
        if entry.code in rows:
            raise ValueError(f"{_DATA}: code {entry.code} twice")
        rows[entry.code] = entry
    return MappingProxyType(rows)


def municipalities() -> tuple[Municipality, ...]:
    """All 98 municipalities, by code."""
    return tuple(_load().values())


def municipality(code: str) -> Municipality | None:
    """The municipality with this code, or None when the list has no such code."""
    return _load().get(code)


def is_known(code: str) -> bool:
    """Whether the code is in Danmarks Statistik's list."""
    return code in _load()


def municipality_name(code: str) -> str:
    """The municipality's official Danish name, or a neutral label for a code not in the list."""
    found = _load().get(code)
    return found.name if found is not None else f"Kommune {code}"


def region_of(code: str) -> str | None:
    """The municipality's region, or None for a code not in the list."""
    found = _load().get(code)
    return found.region if found is not None else None


#: Code → official name, for every municipality (read-only; prefer `municipality_name`).
MUNICIPALITY_NAMES: Mapping[str, str] = MappingProxyType({m.code: m.name for m in _load().values()})
