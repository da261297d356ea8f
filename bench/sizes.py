"""How big each of the 98 municipalities is, and splitting a national volume between them.

The national workload (bench/national.py) gives each municipality a share of the national
figures in proportion to its population. `schemas/data/municipalities.csv` has codes, names
and regions but no population, so the sizes are here: inhabitants in thousands, approximately
Danmarks Statistik's FOLK1A around 1 January 2024, rounded to the nearest thousand (at least
2). Written down from general knowledge, not fetched from Statistikbanken: they may be a few
per cent off, which is immaterial for a benchmark that only needs realistic proportions — from
Copenhagen (~11 % of the country) down to the island municipalities (Læsø, Fanø, Samsø, Ærø).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: Inhabitants in thousands per municipality code (see the module's docstring).
POPULATION_THOUSANDS: Mapping[str, int] = {
    "101": 660, "147": 104, "151": 49, "153": 36, "155": 15, "157": 75, "159": 70, "161": 24,
    "163": 30, "165": 28, "167": 54, "169": 52, "173": 57, "175": 42, "183": 23, "185": 44,
    "187": 17, "190": 41, "201": 26, "210": 41, "217": 64, "219": 53, "223": 25, "230": 58,
    "240": 44, "250": 46, "253": 51, "259": 63, "260": 31, "265": 90, "269": 24, "270": 42,
    "306": 33, "316": 73, "320": 38, "326": 49, "329": 36, "330": 80, "336": 24, "340": 30,
    "350": 29, "360": 40, "370": 84, "376": 60, "390": 46, "400": 39, "410": 40, "420": 41,
    "430": 52, "440": 24, "450": 33, "461": 207, "479": 59, "480": 30, "482": 12, "492": 6,
    "510": 56, "530": 27, "540": 74, "550": 37, "561": 116, "563": 4, "573": 50, "575": 43,
    "580": 59, "607": 52, "615": 97, "621": 95, "630": 121, "657": 90, "661": 59, "665": 19,
    "671": 21, "706": 43, "707": 37, "710": 50, "727": 24, "730": 100, "740": 99, "741": 4,
    "746": 65, "751": 367, "756": 42, "760": 56, "766": 48, "773": 20, "779": 46, "787": 43,
    "791": 98, "810": 36, "813": 58, "820": 36, "825": 2, "840": 31, "846": 41, "849": 38,
    "851": 222, "860": 64,
}


def by_size() -> list[str]:
    """Every code, largest first (ties by code), so a choice of municipalities is reproducible."""
    return sorted(POPULATION_THOUSANDS, key=lambda code: (-POPULATION_THOUSANDS[code], code))


def chosen(count: int) -> list[str]:
    """`count` municipalities spread evenly over the size ranking (all 98 for 98), by size.

    Rank i * 98 / count for i < count: a small choice still runs from the largest to
    small ones, instead of only the largest.
    """
    ranking = by_size()
    if not 1 <= count <= len(ranking):
        raise ValueError(f"between 1 and {len(ranking)} municipalities, not {count}")
    return [ranking[i * len(ranking) // count] for i in range(count)]


def apportion(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """`total` split in proportion to `weights`, summing to exactly `total` (largest remainder,
    ties by key, so the split is deterministic)."""
    if total < 0:
        raise ValueError("a negative total")
    whole = sum(weights.values())
    if whole <= 0:
        raise ValueError("no weight to split by")
    exact = {key: total * weight / whole for key, weight in weights.items()}
    shares = {key: int(value) for key, value in exact.items()}
    left = total - sum(shares.values())
    order: Sequence[str] = sorted(exact, key=lambda key: (shares[key] - exact[key], key))
    for key in order[:left]:
        shares[key] += 1
    return shares
