"""Danish highlight sentences for the committee, from a small table of phrase templates.

With a previous period, each figure in `COMPARED` becomes a "steg"/"faldt"/"var uændret på"
sentence; without one, the figures in `PLAIN` are stated. A broken meeting cadence always
comes first; a course that ended before the period has no cadence figures (1.1) and so no
alert, and in the period it ends in the alert says the gap ran up to its end. Changed
figures come before unchanged ones; at most `MAX_HIGHLIGHTS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from schemas.rules import CADENCE_DAYS
from schemas.summary import CourseStatus, SummaryData

MAX_HIGHLIGHTS = 6

TEMPLATES: dict[str, str] = {
    "up": "{subject} steg fra {old} til {new}.",
    "down": "{subject} faldt fra {old} til {new}.",
    "same": "{subject} var uændret på {new}.",
    "plain": "{subject} var {new}.",
    "cadence": "Der gik {days} dage mellem to opfølgningsmøder; målet er højst {limit}.",
    "cadence_ended": "Det længste interval i opfølgningen frem til forløbets afslutning var "
                     "{days} dage; målet er højst {limit}.",
}

DIMENSION_NAMES: dict[str, str] = {
    "assessment": "faglig udredning",
    "intervention": "valg af indsats",
    "follow_up": "opfølgning",
    "involvement": "inddragelse",
}


def integer(value: float) -> str:
    """Danish thousands separator: 1234 -> "1.234"."""
    return f"{round(value):,}".replace(",", ".")


def percent(ratio: float) -> str:
    return f"{round(ratio * 100)} %"


def hours(value: float) -> str:
    """One decimal, Danish separators: 1234.5 -> "1.234,5 timer"."""
    return f"{value:,.1f}".replace(",", "\x00").replace(".", ",").replace("\x00", ".") + " timer"


def rating(value: float) -> str:
    """Up to two decimals, at least one: 2.5 -> "2,5", 3.33 -> "3,33", 3.0 -> "3,0"."""
    text = f"{value:.2f}"
    return (text[:-1] if text.endswith("0") else text).replace(".", ",")


Extract = Callable[[SummaryData], float | None]


@dataclass(frozen=True)
class Figure:
    subject: str
    value: Extract
    show: Callable[[float], str]


def _share(s: SummaryData) -> float | None:
    return s.notifications.share_within_24h if s.notifications.received else None


def _achieved(s: SummaryData) -> float | None:
    return s.development_plan.achieved if s.development_plan.milestones_total else None


def _findings(s: SummaryData) -> float | None:
    found = s.case_reviews.legal_findings
    return found.major + found.minor if s.case_reviews.completed else None


def _mean(dimension: str) -> Extract:
    return lambda s: getattr(s.case_reviews.mean_rating, dimension)


SHARE = Figure("Andelen af underretninger vurderet inden for 24 timer", _share, percent)
MEDIAN = Figure("Mediantiden fra modtagelse til vurdering af en underretning",
                lambda s: s.notifications.median_hours_to_assessment, hours)
OVERDUE = Figure("Antallet af uvurderede underretninger over fristen på 24 timer",
                 lambda s: s.notifications.overdue_unassessed, integer)
OVERDUE_ANY = Figure(OVERDUE.subject, lambda s: s.notifications.overdue_unassessed or None,
                     integer)
"""Stated without a previous period only when there are any."""
RECEIVED = Figure("Antallet af modtagne underretninger",
                  lambda s: s.notifications.received, integer)
ACHIEVED = Figure("Antallet af nåede milepæle i udviklingsplanen", _achieved, integer)
FINDINGS = Figure("Antallet af juridiske fejl i sagsgennemgangene", _findings, integer)
REVIEWS = Figure("Antallet af gennemførte sagsgennemgange",
                 lambda s: s.case_reviews.completed, integer)
RATINGS = tuple(Figure(f"Den gennemsnitlige bedømmelse af {name}", _mean(dim), rating)
                for dim, name in DIMENSION_NAMES.items())

COMPARED: tuple[Figure, ...] = (SHARE, MEDIAN, OVERDUE, ACHIEVED, FINDINGS, *RATINGS, RECEIVED)
PLAIN: tuple[Figure, ...] = (RECEIVED, SHARE, MEDIAN, OVERDUE_ANY, REVIEWS, ACHIEVED)


def _compare(figure: Figure, old: float, new: float) -> tuple[bool, str]:
    """(changed, sentence); figures equal as displayed count as unchanged."""
    before, after = figure.show(old), figure.show(new)
    key = "same" if before == after else ("up" if new > old else "down")
    return key != "same", TEMPLATES[key].format(subject=figure.subject, old=before, new=after)


def highlights(current: SummaryData, previous: SummaryData | None = None) -> list[str]:
    """At most `MAX_HIGHLIGHTS` sentences, in a deterministic order."""
    alerts: list[str] = []
    gap = current.development_plan.longest_gap_days
    if gap is not None and gap > CADENCE_DAYS:  # None: no plan, or the course ended
        ended = current.course.status is CourseStatus.COMPLETED
        template = TEMPLATES["cadence_ended" if ended else "cadence"]
        alerts.append(template.format(days=integer(gap), limit=CADENCE_DAYS))
    if previous is None:
        statements = [TEMPLATES["plain"].format(subject=figure.subject, new=figure.show(new))
                      for figure in PLAIN if (new := figure.value(current)) is not None]
        return [*alerts, *statements][:MAX_HIGHLIGHTS]
    changed: list[str] = []
    unchanged: list[str] = []
    for figure in COMPARED:
        old, new = figure.value(previous), figure.value(current)
        if old is not None and new is not None:
            moved, sentence = _compare(figure, old, new)
            (changed if moved else unchanged).append(sentence)
    return [*alerts, *changed, *unchanged][:MAX_HIGHLIGHTS]
