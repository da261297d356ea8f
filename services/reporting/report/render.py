"""Render the committee report, the index of reports and the sign-in page as HTML.

Pure functions of their inputs: no clock, no I/O. Templates are
Jinja2 with autoescaping on; the only markup inserted unescaped is our own CSS and the SVG
from :mod:`.charts` (whose text matplotlib and :func:`markupsafe.escape` escape).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from schemas.municipalities import UNKNOWN_CODE_NOTE, is_known, municipality_name
from schemas.summary import CourseStatus, SummaryData, SummaryStatus
from services.reporting.report import formatting as fmt
from services.reporting.report.charts import Chart, trend_charts

TEMPLATES = Path(__file__).parent / "templates"
_CODE = re.compile(r"\d{3}")

PhaseMeans = Mapping[str, Mapping[str, float | None]]
Changes = Mapping[str, float | None]


@dataclass(frozen=True)
class ReportInput:
    """What one committee report needs.

    ``summaries``: all periods of the municipality so far, any order (later periods than
    ``period`` are ignored; of several versions of one period the newest counts).
    ``phase_means``: per phase ("baseline"/"follow_up") and dimension, the mean rating for
    ``period``. ``rereview_changes``: per dimension, the re-review change (docs/domain.md,
    `schemas.rules.rereview_changes`). ``course_completed_on``: the local date
    on which the course that ``period``'s summary reports completed, when the caller knows it
    (the figures carry only the month of the course it ended in); used only when that summary
    says the course has completed.
    """

    municipality_code: str
    summaries: Sequence[SummaryData]
    period: str
    phase_means: PhaseMeans | None = None
    rereview_changes: Changes | None = None
    course_completed_on: date | None = None


@dataclass(frozen=True)
class IndexEntry:
    """One row of the index: a period's latest summary and where to read it."""

    municipality_code: str
    period: str
    status: SummaryStatus | str
    revision: int
    as_of: datetime | None
    report_url: str
    json_url: str


@dataclass(frozen=True)
class KeyFigure:
    label: str
    value: str
    note: str | None
    tone: str


@dataclass(frozen=True)
class PhaseRow:
    label: str
    baseline: str
    follow_up: str
    difference: str
    change: str


# --- public API -------------------------------------------------------------------------

def render_report(inp: ReportInput) -> str:
    """One self-contained HTML document (inline CSS and SVG, no external resources)."""
    history = _history(inp.summaries, inp.period)
    current = history[-1]
    previous = history[-2] if len(history) > 1 else None
    ended_on = inp.course_completed_on if _course_ended(current) else None
    return _env().get_template("report.html.j2").render(
        css=_css(),
        s=current,
        prev=previous,
        code=inp.municipality_code,
        name=municipality_name(inp.municipality_code),
        known=is_known(inp.municipality_code),
        status_text=fmt.status_label(current.status, current.revision),
        draft=current.status is SummaryStatus.DRAFT,
        revised=current.status is SummaryStatus.REVISED,
        key_figures=_key_figures(current, previous, ended_on),
        notification_rows=_notification_rows(current, previous),
        milestone_rows=_milestone_rows(current, previous),
        followup_rows=_followup_rows(current, previous),
        plan_adopted=_plan_adopted(current),
        course_ended=_course_ended(current),
        cadence_ended=_cadence_ended(current),
        ended_on=ended_on,
        ended_text=fmt.course_ended(current.course.month_of_course, ended_on),
        has_course=current.course.status is not CourseStatus.NONE,
        planned_months=fmt.planned_months(current.course.started_on,
                                          current.course.planned_end),
        phase=_phase_table(inp.phase_means, inp.rereview_changes),
        charts={chart.key: chart for chart in _charts(history)},
    )


def render_login(error: str | None = None, next_url: str = "/", csrf_token: str = "") -> str:
    """The sign-in page: a form POSTing ``token`` (and hidden ``next`` and ``csrf_token``) to
    ``/login``.

    ``next_url`` is kept only when it is a local path ("/..."), never another site.
    """
    return _env().get_template("login.html.j2").render(
        css=_css(), error=error, next_url=safe_next(next_url), csrf_token=csrf_token)


def render_index(entries: Sequence[IndexEntry], scope_label: str) -> str:
    """The list of periods with status, links to each report and its JSON, and log out."""
    rows = sorted(entries, key=lambda e: e.period, reverse=True)
    rows = sorted(rows, key=lambda e: e.municipality_code)
    return _env().get_template("index.html.j2").render(
        css=_css(), entries=rows, scope_label=scope_label,
        several=len({e.municipality_code for e in rows}) > 1)


def safe_next(next_url: str | None) -> str:
    """A redirect target after sign-in: a local absolute path, otherwise "/"."""
    if (not next_url or not next_url.startswith("/") or next_url.startswith("//")
            or "\\" in next_url or any(ord(c) < 32 for c in next_url)):
        return "/"
    return next_url


# --- view model -------------------------------------------------------------------------

def _history(summaries: Sequence[SummaryData], period: str) -> list[SummaryData]:
    """The newest version of each period up to and including ``period``, oldest first."""
    newest: dict[str, SummaryData] = {}
    for summary in summaries:
        held = newest.get(summary.period)
        if held is None or _version(summary) > _version(held):
            newest[summary.period] = summary
    if period not in newest:
        raise LookupError(f"no summary for period {period!r}")
    return [newest[p] for p in sorted(newest) if p <= period]


def _version(summary: SummaryData) -> tuple[int, bool, datetime]:
    return summary.revision, summary.status is not SummaryStatus.DRAFT, summary.as_of


def _charts(history: Sequence[SummaryData]) -> list[Chart]:
    return trend_charts(history)


def _since(prev: SummaryData | None) -> str:
    return f" i {fmt.period_label(prev.period)}" if prev is not None else ""


def _key_figures(s: SummaryData, prev: SummaryData | None,
                 ended_on: date | None = None) -> list[KeyFigure]:
    n, plan = s.notifications, s.development_plan
    share = n.share_within_24h if n.received else None
    prev_share = (prev.notifications.share_within_24h
                  if prev is not None and prev.notifications.received else None)
    share_note = fmt.change_words(share, prev_share)
    figures = [KeyFigure(
        "Underretninger vurderet inden for 24 timer", fmt.percent(share),
        share_note + _since(prev) if share_note else (
            None if n.received else "Ingen underretninger modtaget"),
        fmt.delta_tone(share, prev_share, higher_is_better=True))]

    prev_overdue = prev.notifications.overdue_unassessed if prev is not None else None
    overdue_note = fmt.change_words(n.overdue_unassessed, prev_overdue, fmt.number)
    figures.append(KeyFigure(
        "Ikke vurderet efter mere end 24 timer", fmt.number(n.overdue_unassessed),
        overdue_note + _since(prev) if overdue_note else None,
        "good" if n.overdue_unassessed == 0 else "bad"))

    if _plan_adopted(s):
        prev_achieved = prev.development_plan.achieved if prev is not None else None
        note = fmt.change_words(plan.achieved, prev_achieved, fmt.number)
        figures.append(KeyFigure(
            "Milepæle i udviklingsplanen opnået",
            f"{fmt.number(plan.achieved)} af {fmt.number(plan.milestones_total)}",
            note + _since(prev) if note else None,
            fmt.delta_tone(plan.achieved, prev_achieved, higher_is_better=True)))
        figures.append(_cadence_figure(s, ended_on))
    else:
        figures.append(KeyFigure("Udviklingsplan", "Ikke vedtaget", None, "neutral"))
    return figures


def _cadence_figure(s: SummaryData, ended_on: date | None = None) -> KeyFigure:
    """The cadence verdict; once the course has ended before the period, that instead."""
    plan = s.development_plan
    label = "Opfølgning hver 6. uge"
    if _cadence_ended(s):
        return KeyFigure(label, fmt.COURSE_ENDED,
                         _ended_note(s, ended_on) + "Der følges ikke op efter afslutningen", "neutral")
    cadence = {True: "Overholdt", False: "Ikke overholdt", None: fmt.NULL}[plan.cadence_ok]
    until = " frem til forløbets afslutning" if _course_ended(s) else ""
    note = (f"Længste interval{until} {fmt.days(plan.longest_gap_days)} "
            f"(mål: højst {fmt.CADENCE_TARGET_DAYS})" if plan.longest_gap_days is not None
            else None)
    return KeyFigure(label, cadence, note,
                     {True: "good", False: "bad", None: "neutral"}[plan.cadence_ok])


def _ended_note(s: SummaryData, ended_on: date | None) -> str:
    """"Afsluttet den 31. januar 2022 (måned 24). " with what is known of when the course
    ended (the date, the month of the course), else ""."""
    month = s.course.month_of_course
    if ended_on is not None:
        in_month = "" if month is None else f" (måned {fmt.number(month)})"
        return f"Afsluttet den {fmt.long_date(ended_on)}{in_month}. "
    return "" if month is None else f"Afsluttet i måned {fmt.number(month)}. "


Row = tuple[str, str, str | None]


def _notification_rows(s: SummaryData, prev: SummaryData | None) -> list[Row]:
    def cells(x: SummaryData) -> list[str]:
        n = x.notifications
        share = fmt.percent(n.share_within_24h) if n.received else fmt.NULL
        median = (fmt.NULL if n.median_hours_to_assessment is None
                  else f"{fmt.decimal(n.median_hours_to_assessment)} timer")
        return [fmt.number(n.received), fmt.number(n.assessed),
                fmt.number(n.assessed_within_24h), share, median,
                fmt.number(n.overdue_unassessed), fmt.number(n.urgent_received)]

    labels = ["Modtaget i halvåret", "Heraf vurderet", "Vurderet inden for 24 timer",
              "Andel vurderet inden for 24 timer", "Mediantid fra modtagelse til vurdering",
              "Ikke vurderet og over 24 timer gamle", "Akutte underretninger"]
    return _rows(labels, cells, s, prev)


def _milestone_rows(s: SummaryData, prev: SummaryData | None) -> list[Row]:
    def cells(x: SummaryData) -> list[str]:
        p = x.development_plan
        return [*(fmt.number(getattr(p, st)) for st in fmt.MILESTONE_STATES),
                fmt.number(p.milestones_total), fmt.number(p.overdue)]

    labels = [*(fmt.MILESTONE_LABELS[st] for st in fmt.MILESTONE_STATES), "I alt",
              "Over frist (ikke opnået)"]
    return _rows(labels, cells, s, prev)


def _followup_rows(s: SummaryData, prev: SummaryData | None) -> list[Row]:
    def cells(x: SummaryData) -> list[str]:
        p = x.development_plan
        verdict = (fmt.COURSE_ENDED if _cadence_ended(x)
                   else {True: "Ja", False: "Nej", None: fmt.NULL}[p.cadence_ok])
        return [fmt.number(p.meetings_held), fmt.days(p.longest_gap_days), verdict]

    labels = ["Opfølgningsmøder i halvåret", "Længste interval mellem opfølgninger",
              f"Rytmen overholdt (højst {fmt.CADENCE_TARGET_DAYS} dage)"]
    return _rows(labels, cells, s, prev)


def _rows(labels: list[str], cells: Callable[[SummaryData], list[str]], s: SummaryData,
          prev: SummaryData | None) -> list[Row]:
    now = cells(s)
    before = cells(prev) if prev is not None else [None] * len(labels)
    return list(zip(labels, now, before, strict=True))


def _plan_adopted(s: SummaryData) -> bool:
    plan = s.development_plan
    return plan.milestones_total > 0 or plan.longest_gap_days is not None


def _course_ended(s: SummaryData) -> bool:
    """The course has completed as of the summary's as_of."""
    return s.course.status is CourseStatus.COMPLETED


def _cadence_ended(s: SummaryData) -> bool:
    """The course ended before the period began: a plan, but no cadence figures (1.1)."""
    return (_course_ended(s) and _plan_adopted(s)
            and s.development_plan.longest_gap_days is None)


def _phase_table(means: PhaseMeans | None, changes: Changes | None) -> dict[str, Any] | None:
    """Baseline vs follow-up per dimension, and the re-reviewed cases' change, if given."""
    if not means and not changes:
        return None
    means = means or {}
    changes = changes or {}
    rows: list[PhaseRow] = []
    for dim in fmt.DIMENSIONS:
        base = (means.get("baseline") or {}).get(dim)
        follow = (means.get("follow_up") or {}).get(dim)
        diff = follow - base if base is not None and follow is not None else None
        rows.append(PhaseRow(fmt.DIMENSION_LABELS[dim], fmt.rating(base), fmt.rating(follow),
                             fmt.signed(None if diff is None else round(diff, 2)),
                             fmt.signed(changes.get(dim))))
    return {"rows": rows, "means": bool(means), "changes": bool(changes)}


# --- plumbing ---------------------------------------------------------------------------

@cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update({
        "num": fmt.number, "dec": fmt.decimal, "pct": fmt.percent, "rating": fmt.rating,
        "date": fmt.long_date, "as_of": fmt.as_of_text, "period": fmt.period_label,
        "span": fmt.period_span, "course": fmt.course_label, "count": fmt.count,
        "status": lambda e: fmt.status_label(e.status, e.revision),
        "status_key": _status_key,
    })
    env.globals.update({"DIMENSIONS": fmt.DIMENSIONS, "DIMENSION_LABELS": fmt.DIMENSION_LABELS,
                        "NULL": fmt.NULL, "CADENCE_TARGET_DAYS": fmt.CADENCE_TARGET_DAYS,
                        "municipality_name": municipality_name, "is_known": is_known,
                        "UNKNOWN_CODE_NOTE": UNKNOWN_CODE_NOTE})
    return env


def _status_key(entry: IndexEntry) -> str:
    try:
        return SummaryStatus(entry.status).value
    except ValueError:
        return "unknown"


@cache
def _css() -> Markup:
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    if "</" in css:
        raise ValueError("report.css must not contain '</'")
    return Markup(css)
