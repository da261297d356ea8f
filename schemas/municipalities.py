"""Reference data: the municipalities of the seed press releases."""

from __future__ import annotations

MUNICIPALITY_NAMES: dict[str, str] = {
    "330": "Slagelse Kommune",
    "480": "Nordfyns Kommune",
    "482": "Langeland Kommune",
    "607": "Fredericia Kommune",
    "849": "Jammerbugt Kommune",
}


def municipality_name(code: str) -> str:
    """The municipality's Danish name, or a neutral label for a code we have no name for."""
    return MUNICIPALITY_NAMES.get(code, f"Kommune {code}")
