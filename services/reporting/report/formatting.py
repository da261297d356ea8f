"""Danish wording and number/date formats for the committee report (Babel, locale da_DK).

Every formatter takes ``None`` and renders it as an en dash, so a missing figure can never
show up as "None" in a report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_date
from babel.dates import format_time as _babel_time
from babel.numbers import format_decimal, format_percent

from schemas.rules import CADENCE_DAYS, DIMENSIONS
from schemas.summary import CourseStatus, SummaryStatus

LOCALE = "da_DK"
TIMEZONE = ZoneInfo("Europe/Copenhagen")
NULL = "–"

_PERIOD = re.compile(r"^(\d{4})H([12])$")

DIMENSION_LABELS: dict[str, str] = {
    "assessment": "Faglig udredning",
    "intervention": "Valg af indsats",
    "follow_up": "Opfølgning på indsatsen",
    "involvement": "Inddragelse af barn og forældre",
}
MILESTONE_STATES: tuple[str, ...] = ("achieved", "in_progress", "at_risk", "missed", "not_started")
MILESTONE_LABELS: dict[str, str] = {
    "achieved": "Opnået",
    "in_progress": "I gang",
    "at_risk": "I risiko",
    "missed": "Ikke nået",
    "not_started": "Ikke påbegyndt",
}
COURSE_LABELS: dict[str, str] = {
    CourseStatus.APPLIED: "Ansøgt",
    CourseStatus.APPROVED: "Godkendt, ikke startet",
    CourseStatus.REJECTED: "Afvist",
    CourseStatus.RUNNING: "I gang",
    CourseStatus.COMPLETED: "Afsluttet",
    CourseStatus.NONE: "Intet forløb",
}
#: The follow-up cadence: every six weeks (`schemas.rules.CADENCE_DAYS`).
CADENCE_TARGET_DAYS = CADENCE_DAYS
#: Said instead of a cadence verdict once the course has ended (contract 1.1).
COURSE_ENDED = "Forløbet er afsluttet"


def number(value: int | float | None) -> str:
    """A count or plain number: 1.234 / 6,5."""
    return NULL if value is None else format_decimal(value, locale=LOCALE)


def decimal(value: float | None, places: int = 1) -> str:
    """A number with a fixed count of decimals: 6,5 / 12,0."""
    if value is None:
        return NULL
    pattern = "#,##0." + "0" * places if places > 0 else "#,##0"
    return format_decimal(value, format=pattern, locale=LOCALE)


def rating(value: float | None) -> str:
    """A mean rating on the 1–4 scale, at least one and at most two decimals: 3,0 / 2,17."""
    if value is None:
        return NULL
    return format_decimal(value, format="#,##0.0#", locale=LOCALE)


def signed(value: float | None) -> str:
    """A change with its sign: +0,5 / −0,25 / 0,0."""
    if value is None:
        return NULL
    text = format_decimal(abs(value), format="#,##0.0#", locale=LOCALE)
    if value > 0:
        return "+" + text
    if value < 0:
        return "−" + text
    return text


def percent(value: float | None) -> str:
    """A share as a whole percentage with Danish spacing: 80 %."""
    return NULL if value is None else format_percent(value, format="#,##0\xa0%", locale=LOCALE)


def long_date(value: date | None) -> str:
    """1. juli 2022."""
    return NULL if value is None else _babel_date(value, format="long", locale=LOCALE)


def local(value: datetime) -> datetime:
    """The Danish local time of an aware timestamp."""
    return value.astimezone(TIMEZONE)


def as_of_text(value: datetime | None) -> str:
    """The "Opgjort pr." moment in Danish local time; the clock only when not midnight."""
    if value is None:
        return NULL
    moment = local(value)
    text = long_date(moment.date())
    if (moment.hour, moment.minute) != (0, 0):
        text += " kl. " + _babel_time(moment.time(), format="HH.mm", locale=LOCALE)
    return text


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of a half-year period such as 2022H1."""
    match = _PERIOD.match(period)
    if match is None:
        raise ValueError(f"not a half-year period: {period!r}")
    year, half = int(match.group(1)), int(match.group(2))
    if half == 1:
        return date(year, 1, 1), date(year, 6, 30)
    return date(year, 7, 1), date(year, 12, 31)


def period_label(period: str) -> str:
    """2022H1 -> 1. halvår 2022."""
    match = _PERIOD.match(period)
    if match is None:
        return period
    return f"{match.group(2)}. halvår {match.group(1)}"


def period_short(period: str) -> str:
    """A compact two-line label for chart axes: 2022 / 1. halvår."""
    match = _PERIOD.match(period)
    if match is None:
        return period
    return f"{match.group(1)}\n{match.group(2)}. halvår"


def period_span(period: str) -> str:
    """1. januar – 30. juni 2022."""
    start, end = period_bounds(period)
    return f"{_babel_date(start, format='d. MMMM', locale=LOCALE)} – {long_date(end)}"


def status_label(status: SummaryStatus | str, revision: int) -> str:
    """The publication status as the committee reads it (an unknown status as given)."""
    try:
        status = SummaryStatus(status)
    except ValueError:
        return str(status)
    if status is SummaryStatus.DRAFT:
        return "KLADDE – ikke endelig"
    if status is SummaryStatus.REVISED:
        return f"Revideret (revision {revision})"
    return "Endelig" if revision == 0 else f"Endelig (revision {revision})"


def course_label(status: CourseStatus | str) -> str:
    return COURSE_LABELS.get(CourseStatus(status), str(status))


def course_ended(month_of_course: int | None, on: date | None = None) -> str:
    """"Forløbet er afsluttet den 31. januar 2022 (forløbets måned 24)" with the date when it
    is known, "Forløbet er afsluttet i måned 13" without it; each part left out when unknown."""
    if on is not None:
        month = "" if month_of_course is None else f" (forløbets måned {number(month_of_course)})"
        return f"{COURSE_ENDED} den {long_date(on)}{month}"
    if month_of_course is None:
        return COURSE_ENDED
    return f"{COURSE_ENDED} i måned {number(month_of_course)}"


def yes_no(value: bool | None) -> str:
    if value is None:
        return NULL
    return "Ja" if value else "Nej"


def count(value: int | None, singular: str, plural: str) -> str:
    """1 sag / 2 sager / – ."""
    if value is None:
        return NULL
    return f"{number(value)} {singular if value == 1 else plural}"


def days(value: int | None) -> str:
    return count(value, "dag", "dage")


def planned_months(started_on: date | None, planned_end: date | None) -> int | None:
    """The month of the course the planned end falls in (same counting as month_of_course)."""
    if started_on is None or planned_end is None or planned_end < started_on:
        return None
    months = (planned_end.year - started_on.year) * 12 + planned_end.month - started_on.month
    if planned_end.day < started_on.day:
        months -= 1
    return months + 1


def change_words(current: float | None, previous: float | None,
                 fmt: Callable[[float | None], str] = percent) -> str | None:
    """A short comparison with the previous period, e.g. "op fra 72 %", or None."""
    if current is None or previous is None:
        return None
    if fmt(current) == fmt(previous):
        return f"uændret fra {fmt(previous)}"
    return f"{'op' if current > previous else 'ned'} fra {fmt(previous)}"


def delta_tone(current: float | None, previous: float | None, *,
               higher_is_better: bool) -> str:
    """CSS tone of a change: good, bad or neutral."""
    if current is None or previous is None or current == previous:
        return "neutral"
    return "good" if (current > previous) == higher_is_better else "bad"


__all__ = [
    "CADENCE_TARGET_DAYS",
    "COURSE_ENDED",
    "DIMENSIONS",
    "DIMENSION_LABELS",
    "LOCALE",
    "MILESTONE_LABELS",
    "MILESTONE_STATES",
    "NULL",
    "as_of_text",
    "change_words",
    "count",
    "course_ended",
    "course_label",
    "days",
    "decimal",
    "delta_tone",
    "long_date",
    "number",
    "percent",
    "period_bounds",
    "period_label",
    "period_short",
    "period_span",
    "planned_months",
    "rating",
    "signed",
    "status_label",
    "yes_no",
]
