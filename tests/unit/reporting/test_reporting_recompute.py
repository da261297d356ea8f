"""Which periods a batch recomputes (`periods_to_recompute`): what changed, the watermark's move
and the grace decide; a recomputed period drags the next one along (its highlights compare
with it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.periods import Period, utc
from services.reporting.domain.lifecycle import periods_to_recompute

pytestmark = pytest.mark.unit

GRACE = timedelta(days=14)
KNOWN = [Period.parse(name) for name in ("2021H1", "2021H2", "2022H1", "2022H2", "2023H1")]
NAMES = [p.name for p in KNOWN]


def recompute(named: set[str] = frozenset(), *, everything: bool = False, moved_from: datetime | None = None,
              moved: bool = False, also: set[Period] = frozenset(), known: list[Period] = KNOWN) -> list[str]:
    move = (moved_from, datetime(2030, 1, 1, tzinfo=UTC)) if moved else None
    return [p.name for p in periods_to_recompute(known, named, everything=everything, move=move,
                                                 grace=GRACE, also=also)]


def test_nothing_changed_recomputes_nothing() -> None:
    assert recompute() == []


def test_a_named_period_and_the_next_one_only() -> None:
    assert recompute({"2022H1"}) == ["2022H1", "2022H2"]  # 2023H1 compares with 2022H2's unchanged figures
    assert recompute({"2023H1"}) == ["2023H1"]  # the newest: no next one known
    assert recompute({"2019H1"}) == []  # not a period of the municipality


def test_everything_or_a_first_watermark_recomputes_every_period() -> None:
    assert recompute(everything=True) == NAMES
    assert recompute(moved=True, moved_from=None) == NAMES


def test_a_moved_watermark_recomputes_the_periods_whose_grace_it_may_pass() -> None:
    # The old watermark 10 days after 2022H2 ended: 2022H2 is inside its grace, 2022H1 is not.
    old = utc(Period.parse("2022H2").end) + timedelta(days=10)
    assert recompute(moved=True, moved_from=old) == ["2022H2", "2023H1"]
    # exactly at the end of the grace still counts (>=); a microsecond later it does not
    edge = utc(Period.parse("2022H1").end) + GRACE
    assert recompute(moved=True, moved_from=edge)[0] == "2022H1"
    assert recompute(moved=True, moved_from=edge + timedelta(microseconds=1))[0] == "2022H2"


def test_also_is_recomputed_even_unnamed() -> None:
    assert recompute(also={Period.parse("2021H1")}) == ["2021H1", "2021H2"]


instants = st.datetimes(min_value=datetime(2020, 6, 1), max_value=datetime(2024, 6, 1),
                        timezones=st.just(UTC))


@given(named=st.sets(st.sampled_from([*NAMES, "2019H2", "2030H1"])), everything=st.booleans(),
       moved=st.booleans(), moved_from=st.none() | instants,
       also=st.sets(st.sampled_from(KNOWN)), extra=st.sets(st.sampled_from(NAMES)))
def test_properties(named: set[str], everything: bool, moved: bool, moved_from: datetime | None,
                    also: set[Period], extra: set[str]) -> None:
    got = recompute(named, everything=everything, moved=moved, moved_from=moved_from, also=also)
    assert got == sorted(set(got), key=Period.parse)  # oldest first, once each
    wanted = {n for n in named if n in NAMES} | {p.name for p in also}
    assert wanted <= set(got)
    following = {Period.parse(n).next().name for n in wanted} & set(NAMES)
    assert following <= set(got)  # the next period's highlights compare with a changed one
    if everything:
        assert got == NAMES
    if not everything and not moved:  # exactly those: no cascade to the newest period
        assert set(got) == wanted | following
    # more changed never recomputes less
    more = recompute(named | extra, everything=everything, moved=moved, moved_from=moved_from, also=also)
    assert set(got) <= set(more)
