"""The municipalities' reference data: Danmarks Statistik's 98 codes, names and regions."""

from __future__ import annotations

from collections import Counter

import pytest

from schemas import municipalities as ref
from taskforce import demo

pytestmark = pytest.mark.unit


def test_there_are_98_with_unique_three_digit_codes() -> None:
    rows = ref.municipalities()
    codes = [m.code for m in rows]
    assert len(rows) == 98 and len(set(codes)) == 98
    assert all(len(c) == 3 and c.isascii() and c.isdigit() for c in codes)
    assert codes == sorted(codes)
    assert len({m.name for m in rows}) == 98


def test_five_regions_with_their_counts() -> None:
    counts = Counter(m.region for m in ref.municipalities())
    assert counts == {"Region Hovedstaden": 29, "Region Sjælland": 17, "Region Syddanmark": 22,
                      "Region Midtjylland": 19, "Region Nordjylland": 11}
    assert tuple(counts) == ref.REGIONS  # by code, the regions come in DST's order


@pytest.mark.parametrize(("code", "name", "region"), [
    ("101", "Københavns Kommune", "Region Hovedstaden"),
    ("147", "Frederiksberg Kommune", "Region Hovedstaden"),
    ("260", "Halsnæs Kommune", "Region Hovedstaden"),
    ("253", "Greve Kommune", "Region Sjælland"),
    ("330", "Slagelse Kommune", "Region Sjælland"),
    ("400", "Bornholms Regionskommune", "Region Hovedstaden"),
    ("480", "Nordfyns Kommune", "Region Syddanmark"),
    ("482", "Langeland Kommune", "Region Syddanmark"),
    ("492", "Ærø Kommune", "Region Syddanmark"),
    ("607", "Fredericia Kommune", "Region Syddanmark"),
    ("615", "Horsens Kommune", "Region Midtjylland"),
    ("751", "Aarhus Kommune", "Region Midtjylland"),
    ("773", "Morsø Kommune", "Region Nordjylland"),
    ("779", "Skive Kommune", "Region Midtjylland"),
    ("820", "Vesthimmerlands Kommune", "Region Nordjylland"),
    ("849", "Jammerbugt Kommune", "Region Nordjylland"),
    ("851", "Aalborg Kommune", "Region Nordjylland"),
    ("860", "Hjørring Kommune", "Region Nordjylland"),
])
def test_known_municipalities(code: str, name: str, region: str) -> None:
    assert ref.municipality(code) == ref.Municipality(code, name, region)
    assert ref.municipality_name(code) == name and ref.region_of(code) == region
    assert ref.is_known(code)


@pytest.mark.parametrize("code", ["411", "000", "999", "100", "481"])  # 411: Christiansø
def test_a_code_not_in_the_list_keeps_a_neutral_name(code: str) -> None:
    assert not ref.is_known(code)
    assert ref.municipality(code) is None and ref.region_of(code) is None
    assert ref.municipality_name(code) == f"Kommune {code}"


def test_the_demo_municipalities_are_all_in_the_list() -> None:
    assert all(ref.is_known(profile.code) for profile in demo.MUNICIPALITIES)
    assert {p.code: ref.municipality_name(p.code) for p in demo.MUNICIPALITIES} == {
        "330": "Slagelse Kommune", "480": "Nordfyns Kommune", "482": "Langeland Kommune",
        "607": "Fredericia Kommune", "849": "Jammerbugt Kommune"}


def test_the_names_mapping_is_read_only_and_complete() -> None:
    assert len(ref.MUNICIPALITY_NAMES) == 98 and ref.MUNICIPALITY_NAMES["480"] == "Nordfyns Kommune"
    with pytest.raises(TypeError):
        ref.MUNICIPALITY_NAMES["999"] = "x"  # type: ignore[index]
