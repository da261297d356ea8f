from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from services.reporting.report import formatting as fmt

pytestmark = pytest.mark.unit


def test_danish_numbers_and_percentages() -> None:
    assert fmt.percent(0.8) == "80\xa0%"
    assert fmt.percent(0.0) == "0\xa0%"
    assert fmt.percent(0.67) == "67\xa0%"
    assert fmt.decimal(6.5) == "6,5"
    assert fmt.decimal(12) == "12,0"
    assert fmt.number(1234) == "1.234"
    assert fmt.rating(3.0) == "3,0"
    assert fmt.rating(2.17) == "2,17"


def test_signed_changes_use_a_real_minus() -> None:
    assert fmt.signed(0.5) == "+0,5"
    assert fmt.signed(-0.25) == "−0,25"
    assert fmt.signed(0.0) == "0,0"


@pytest.mark.parametrize("formatter", [fmt.number, fmt.decimal, fmt.rating, fmt.signed,
                                       fmt.percent, fmt.long_date, fmt.as_of_text, fmt.days,
                                       fmt.yes_no])
def test_null_is_an_en_dash(formatter: object) -> None:
    assert formatter(None) == "–"  # type: ignore[operator]


def test_dates_in_danish() -> None:
    assert fmt.long_date(date(2022, 7, 1)) == "1. juli 2022"
    assert fmt.period_label("2022H1") == "1. halvår 2022"
    assert fmt.period_label("2021H2") == "2. halvår 2021"
    assert fmt.period_span("2022H1") == "1. januar – 30. juni 2022"
    assert fmt.period_bounds("2022H2") == (date(2022, 7, 1), date(2022, 12, 31))


def test_as_of_in_danish_local_time_with_clock_only_when_not_midnight() -> None:
    midnight = datetime(2022, 7, 1, tzinfo=timezone(timedelta(hours=2)))
    assert fmt.as_of_text(midnight) == "1. juli 2022"
    # 22:30 UTC on 30 June is 00:30 on 1 July in Copenhagen (summer time).
    late = datetime(2022, 6, 30, 22, 30, tzinfo=UTC)
    assert fmt.as_of_text(late) == "1. juli 2022 kl. 00.30"


def test_status_wording() -> None:
    assert fmt.status_label("draft", 0) == "KLADDE – ikke endelig"
    assert fmt.status_label("final", 0) == "Endelig"
    assert fmt.status_label("revised", 2) == "Revideret (revision 2)"
    assert fmt.status_label("weird", 0) == "weird"


def test_planned_months_and_counts() -> None:
    assert fmt.planned_months(date(2021, 2, 1), date(2022, 12, 31)) == 23
    assert fmt.planned_months(date(2021, 2, 15), date(2021, 3, 14)) == 1
    assert fmt.planned_months(None, date(2022, 1, 1)) is None
    assert fmt.count(1, "sag", "sager") == "1 sag"
    assert fmt.count(2, "sag", "sager") == "2 sager"
    assert fmt.days(49) == "49 dage"


def test_change_words() -> None:
    assert fmt.change_words(0.8, 0.92) == "ned fra 92\xa0%"
    assert fmt.change_words(0.92, 0.8) == "op fra 80\xa0%"
    assert fmt.change_words(0.801, 0.8) == "uændret fra 80\xa0%"
    assert fmt.change_words(None, 0.8) is None
    assert fmt.delta_tone(0.8, 0.92, higher_is_better=True) == "bad"
    assert fmt.delta_tone(2, 3, higher_is_better=False) == "good"
