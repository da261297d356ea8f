"""An independent reference computation of the summary figures, straight from EVENTS.md.

Deliberately naive: it takes the raw *valid* input events (dicts, as published) and
recomputes every municipality's figures per period with plain Python. It shares no code
with `services.*` (nor with `schemas.*`), so the fault tests compare the pipeline with a
second, simple reading of the contract rather than with itself.

Rounded figures are returned as `Rounded` values holding the exact fraction: they compare
equal to a float that is the exact value rounded half-to-even *or* half-up (the contract
allows either), so a tie like 6.25 h is not a false alarm.

Readings where the contract leaves room (kept simple and documented here):
- duplicates are events with an `event_id` already seen; the first one counts;
- a notification's receipt and its assessment: the earliest of each counts;
- a `notification.assessed` belongs to its notification's receipt period (only when the
  receipt is unknown to its own `occurred_at`);
- one course, one plan per municipality (the latest adopted as of `as_of` counts);
- `course.planned_end` / `course_id` / `started_on` are null until `course.started`;
- "all zero/null when no plan is adopted": counts 0, `longest_gap_days`/`cadence_ok` null;
  with a plan but no span overlapping the period, `longest_gap_days` is 0;
- (1.1) the cadence ends with the course: once the latest `course.completed` is at or before
  `as_of`, the dates end at its local date (every later date left out, a later plan adoption
  too), and a period whose first day is after that date has null cadence figures.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Copenhagen")
DIMENSIONS = ("assessment", "intervention", "follow_up", "involvement")
STATUSES = ("achieved", "in_progress", "at_risk", "missed", "not_started")
DAY_S = 86_400
GRACE = timedelta(days=14)
INPUT_TYPES = {
    "application.submitted", "application.decided", "course.started", "course.completed",
    "notification.received", "notification.assessed", "case_review.completed",
    "development_plan.adopted", "milestone.updated", "followup.meeting_held",
}
#: The figures the fault tests compare (highlights, status and revision are checked apart).
COMPARED = ("as_of", "course", "notifications", "case_reviews", "development_plan")


# --- exact rounding -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rounded:
    """An exact value and the number of decimals it is published with."""

    exact: Fraction
    digits: int

    def _options(self) -> set[float]:
        with localcontext() as ctx:
            ctx.prec = 60
            value = Decimal(self.exact.numerator) / Decimal(self.exact.denominator)
            quantum = Decimal(1).scaleb(-self.digits)
            return {float(value.quantize(quantum, rounding=mode))
                    for mode in (ROUND_HALF_EVEN, ROUND_HALF_UP)}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rounded):
            return self.exact == other.exact and self.digits == other.digits
        if isinstance(other, bool) or not isinstance(other, int | float):
            return False
        return any(abs(other - option) < 1e-9 for option in self._options())

    def __hash__(self) -> int:
        return hash((self.exact, self.digits))

    def __repr__(self) -> str:
        return repr(min(self._options()))


def _ratio(part: int, whole: int, digits: int = 2) -> Rounded:
    return Rounded(Fraction(part, whole), digits)


# --- time ---------------------------------------------------------------------------------


def parse(ts: str) -> datetime:
    instant = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"naive timestamp in a valid event: {ts}")
    return instant


def local_date(instant: datetime) -> date:
    return instant.astimezone(TZ).date()


def period_of(instant: datetime) -> str:
    local = instant.astimezone(TZ)
    return f"{local.year}H{1 if local.month < 7 else 2}"


def bounds(period: str) -> tuple[datetime, datetime]:
    year, half = int(period[:4]), int(period[5])
    start = datetime(year, 1 if half == 1 else 7, 1, tzinfo=TZ)
    end = datetime(year, 7, 1, tzinfo=TZ) if half == 1 else datetime(year + 1, 1, 1, tzinfo=TZ)
    return start, end


def whole_months(first: date, last: date) -> int:
    months = (last.year - first.year) * 12 + (last.month - first.month)
    return months - 1 if last.day < first.day else months


# --- the computation ----------------------------------------------------------------------


@dataclass
class Ev:
    type: str
    at: datetime
    data: dict[str, Any]


def dedupe(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    unique = []
    for event in events:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            unique.append(event)
    return unique


def reference(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """{(municipality, period): expected figures} for the valid input events given."""
    by_code: dict[str, list[Ev]] = defaultdict(list)
    for event in dedupe(events):
        if event["event_type"] not in INPUT_TYPES:
            continue
        by_code[event["municipality_code"]].append(Ev(event["event_type"], parse(event["occurred_at"]),
                                                      event["data"]))
    result = {}
    for code, evs in by_code.items():
        for period, figures in _municipality(evs).items():
            result[(code, period)] = figures
    return result


def watermarks(events: list[dict[str, Any]]) -> dict[str, datetime]:
    marks: dict[str, datetime] = {}
    for event in events:
        if event["event_type"] in INPUT_TYPES:
            at = parse(event["occurred_at"])
            code = event["municipality_code"]
            marks[code] = max(at, marks.get(code, at))
    return marks


def _municipality(evs: list[Ev]) -> dict[str, dict[str, Any]]:
    watermark = max(e.at for e in evs)
    receipts: dict[str, Ev] = {}
    assessments: dict[str, datetime] = {}
    for e in sorted(evs, key=lambda e: e.at):
        if e.type == "notification.received":
            receipts.setdefault(e.data["notification_id"], e)
        elif e.type == "notification.assessed":
            assessments.setdefault(e.data["notification_id"], e.at)
    periods: set[str] = set()
    for e in evs:
        if e.type == "notification.assessed" and e.data["notification_id"] in receipts:
            periods.add(period_of(receipts[e.data["notification_id"]].at))
        else:
            periods.add(period_of(e.at))
    out = {}
    for period in sorted(periods):
        start, end = bounds(period)
        as_of = min(end, watermark)

        def included(at: datetime, as_of: datetime = as_of, end: datetime = end) -> bool:
            return at < end if as_of == end else at <= as_of

        out[period] = {
            "as_of": as_of,
            "course": _course(evs, as_of, included),
            "notifications": _notifications(receipts, assessments, start, end, as_of),
            "case_reviews": _reviews(evs, start, end),
            "development_plan": _plan(evs, start, end, as_of, included),
        }
    return out


def _course(evs: list[Ev], as_of: datetime, included: Any) -> dict[str, Any]:
    seen = {e.type: e for e in sorted(evs, key=lambda e: e.at) if included(e.at)}
    started, completed = seen.get("course.started"), seen.get("course.completed")
    decided = seen.get("application.decided")
    if completed:
        status = "completed"
    elif started:
        status = "running"
    elif decided:
        status = decided.data["decision"]  # approved | rejected
    elif "application.submitted" in seen:
        status = "applied"
    else:
        status = "none"
    figures: dict[str, Any] = {"status": status, "course_id": None, "started_on": None,
                               "planned_end": None, "month_of_course": None}
    if started:
        started_on = local_date(started.at)
        until = local_date(completed.at) if completed else local_date(as_of)
        figures.update(course_id=started.data["course_id"], started_on=started_on.isoformat(),
                       planned_end=started.data["planned_end"],
                       month_of_course=whole_months(started_on, until) + 1)
    return figures


def _notifications(receipts: dict[str, Ev], assessments: dict[str, datetime], start: datetime,
                   end: datetime, as_of: datetime) -> dict[str, Any]:
    mine = [r for r in receipts.values() if start <= r.at < end and r.at <= as_of]
    delays = []
    overdue = 0
    for receipt in mine:
        assessed = assessments.get(receipt.data["notification_id"])
        if assessed is None:
            overdue += receipt.at + timedelta(seconds=DAY_S) <= as_of
        else:
            delays.append(int((assessed - receipt.at).total_seconds()))
    within = sum(1 for d in delays if d <= DAY_S)
    median = None
    if delays:
        ordered = sorted(delays)
        mid = len(ordered) // 2
        seconds = (Fraction(ordered[mid]) if len(ordered) % 2
                   else Fraction(ordered[mid - 1] + ordered[mid], 2))
        median = Rounded(seconds / 3600, 1)
    return {
        "received": len(mine),
        "assessed": len(delays),
        "assessed_within_24h": within,
        "share_within_24h": _ratio(within, len(mine)) if mine else Rounded(Fraction(0), 2),
        "median_hours_to_assessment": median,
        "overdue_unassessed": overdue,
        "urgent_received": sum(1 for r in mine if r.data["urgent"] is True),
    }


def _reviews(evs: list[Ev], start: datetime, end: datetime) -> dict[str, Any]:
    mine = [e for e in evs if e.type == "case_review.completed" and start <= e.at < end]
    n = len(mine)
    findings = {"major": 0, "minor": 0}
    for review in mine:
        for finding in review.data["legal_findings"]:
            findings[finding["severity"]] += 1
    return {
        "completed": n,
        "baseline": sum(1 for r in mine if r.data["phase"] == "baseline"),
        "follow_up": sum(1 for r in mine if r.data["phase"] == "follow_up"),
        "mean_rating": {d: _ratio(sum(r.data["ratings"][d] for r in mine), n) if n else None
                        for d in DIMENSIONS},
        "share_meeting_standard": {d: _ratio(sum(1 for r in mine if r.data["ratings"][d] >= 3), n)
                                   if n else None for d in DIMENSIONS},
        "legal_findings": findings,
    }


def _plan(evs: list[Ev], start: datetime, end: datetime, as_of: datetime,
          included: Any) -> dict[str, Any]:
    plans = sorted((e for e in evs if e.type == "development_plan.adopted" and included(e.at)),
                   key=lambda e: e.at)
    if not plans:
        return {"milestones_total": 0, **dict.fromkeys(STATUSES, 0), "overdue": 0, "meetings_held": 0,
                "longest_gap_days": None, "cadence_ok": None}
    plan = plans[-1]
    plan_id = plan.data["plan_id"]
    milestones = {m["milestone_id"]: date.fromisoformat(m["due_on"])
                  for goal in plan.data["goals"] for m in goal["milestones"]}
    latest: dict[str, tuple[datetime, str]] = {}
    for e in evs:
        if (e.type == "milestone.updated" and e.data["plan_id"] == plan_id and included(e.at)
                and e.data["milestone_id"] in milestones):
            mid = e.data["milestone_id"]
            if mid not in latest or e.at > latest[mid][0]:
                latest[mid] = (e.at, e.data["status"])
    status = {mid: latest[mid][1] if mid in latest else "not_started" for mid in milestones}
    as_of_date = local_date(as_of)
    meetings = [e for e in evs if e.type == "followup.meeting_held" and e.data["plan_id"] == plan_id]
    start_date, end_date = local_date(start), local_date(end)
    held = sum(1 for m in meetings if start_date <= local_date(m.at) < end_date)
    completions = [e for e in evs if e.type == "course.completed" and included(e.at)]
    last = local_date(max(completions, key=lambda e: e.at).at) if completions else as_of_date
    longest: int | None = None
    if start_date <= last:
        dates = sorted({local_date(plan.at), last,
                        *(local_date(m.at) for m in meetings if included(m.at))})
        spans = [(b - a).days for a, b in itertools.pairwise(d for d in dates if d <= last)
                 if a < end_date and b > start_date]
        longest = max(spans, default=0)
    return {
        "milestones_total": len(milestones),
        **{s: sum(1 for v in status.values() if v == s) for s in STATUSES},
        "overdue": sum(1 for mid, due in milestones.items()
                       if status[mid] != "achieved" and due < as_of_date),
        "meetings_held": held,
        "longest_gap_days": longest,
        "cadence_ok": None if longest is None else longest <= 42,
    }


# --- comparing with what the pipeline published -------------------------------------------


def expected_status(watermark: datetime, period: str) -> set[str]:
    _start, end = bounds(period)
    return {"final", "revised"} if watermark > end + GRACE else {"draft"}


def published_view(data: dict[str, Any]) -> dict[str, Any]:
    """A published summary's compared figures, with `as_of` as an instant."""
    view = {key: data[key] for key in COMPARED}
    view["as_of"] = parse(data["as_of"])
    return view


COUNTS = (("notifications", "received"), ("notifications", "assessed"),
          ("notifications", "urgent_received"), ("case_reviews", "completed"),
          ("development_plan", "meetings_held"), ("development_plan", "milestones_total"))


def differences(expected: dict[tuple[str, str], dict[str, Any]],
                published: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """Mismatches between the reference and the latest published summaries.

    `lost` / `double` add up the shortfall / excess over the event counts (received,
    assessed, urgent, reviews, meetings, milestones); `mismatches` lists every differing
    figure as (municipality, period, path, expected, published).
    """
    lost = double = 0
    mismatches: list[tuple[str, str, str, Any, Any]] = []
    for key in sorted(set(expected) | set(published)):
        want, got = expected.get(key), published.get(key)
        if want is None or got is None:
            mismatches.append((*key, "<summary>", "present" if want else None, "present" if got else None))
            if want is not None:
                lost += sum(want[a][b] for a, b in COUNTS)
            continue
        view = published_view(got)
        for section in COMPARED:
            if section == "as_of":
                if want["as_of"] != view["as_of"]:
                    mismatches.append((*key, "as_of", want["as_of"].isoformat(), got["as_of"]))
                continue
            for name in sorted(set(want[section]) | set(view[section])):
                w, g = want[section].get(name, "<missing>"), view[section].get(name, "<missing>")
                if w != g:
                    mismatches.append((*key, f"{section}.{name}", w, g))
        for a, b in COUNTS:
            delta = view[a][b] - want[a][b]
            lost += max(0, -delta)
            double += max(0, delta)
    return {"lost": lost, "double": double, "mismatches": mismatches}
