"""A deterministic demo scenario: the five seed municipalities' Task Force courses as events.

The dates and reasons of each course come from the municipality's press release in
`shared/seeds/` (see `MUNICIPALITIES`, where every assumption beyond the seed is marked).
Everything else — notifications, case reviews, the development plan and its follow-up — is
synthetic, drawn from random generators seeded by `seed`, so the same seed always gives
byte-identical output. Each municipality and each part of its course has its own generator,
so the notification `volume` changes the notifications and nothing else.

The scenario carries problems a committee should see:

* Nordfyns: the share of notifications assessed within 24 hours drops in 2021H1;
* Slagelse: a follow-up meeting slips over the summer of 2021 (a gap of about 9–10 weeks);
* every plan has milestones that slip past their due date, are missed or stall;
* about 1.5 % of assessments are listed before their notification's receipt, and in each
  plan one older milestone update is listed after a newer one (out-of-order delivery);
* a few notifications are never assessed.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import random
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from schemas import topics
from schemas.common import SCHEMA_VERSION
from schemas.events import INPUT_TYPES
from schemas.rules import DIMENSIONS
from taskforce.feed import CSV_COLUMNS

TZ = ZoneInfo("Europe/Copenhagen")
DEFAULT_SEED = 2019
#: Nothing in the scenario happens after this instant; courses still running stay open.
SCENARIO_END = datetime(2024, 5, 31, 18, 0, tzinfo=TZ)
#: The CSV example file `write_feeds` adds (the first application events, as CSV rows).
CSV_SAMPLE_NAME = "taskforce.applications.sample.csv"
CSV_SAMPLE_ROWS = 10

DECISION_SOURCE = "socialstyrelsen.taskforce"
REVIEW_SOURCE = "taskforce.sagsgennemgang"

#: Statistics Denmark 2022: schools 21 %, health services 19.6 %, police/courts 12.5 %.
REPORTER_SHARES: tuple[tuple[str, float], ...] = (
    ("school", 21.0),
    ("health", 19.6),
    ("police", 12.5),
    ("social_services", 13.9),
    ("daycare", 9.0),
    ("family", 8.0),
    ("anonymous", 7.0),
    ("other", 9.0),
)
OUTCOMES = ("no_action", "advice_and_guidance", "child_investigation_opened",
            "immediate_measure", "referred_elsewhere")
_OUTCOME_WEIGHTS = (25, 35, 22, 3, 15)
_URGENT_OUTCOME_WEIGHTS = (5, 20, 45, 25, 5)
#: 152,700 notifications about 85,300 children: about 44 % concern a child already known.
REPEAT_CHILD_SHARE = 0.44
NEVER_ASSESSED_SHARE = 0.004
OUT_OF_ORDER_SHARE = 0.015

_REPORTER_NAMES = tuple(name for name, _ in REPORTER_SHARES)
_REPORTER_CUM = tuple(itertools.accumulate(share for _, share in REPORTER_SHARES))
_DAYS_PER_HALF_YEAR = 182.6
_WEEKDAY_FACTOR = (1.3, 1.3, 1.3, 1.3, 1.3, 0.2, 0.15)
_MONTH_FACTOR = {7: 0.6, 8: 0.9, 12: 0.85}
_MEAN_DAY_FACTOR = (sum(_WEEKDAY_FACTOR) / 7) * (
    sum(_MONTH_FACTOR.get(m, 1.05) for m in range(1, 13)) / 12
)

#: Ankestyrelsen's legal findings: (code, share of them that are major).
LEGAL_FINDINGS: tuple[tuple[str, float], ...] = (
    ("sel50.frist", 0.05),           # child investigation not finished within 4 months
    ("sel48.boernesamtale", 0.3),    # no conversation with the child
    ("sel140.handleplan", 0.25),     # no action plan
    ("sel70.opfoelgning", 0.1),      # follow-up on the intervention not in time
    ("sel155.underretning", 0.1),    # notification not assessed within 24 hours
    ("fvl19.partshoering", 0.15),    # parents not heard before the decision
    ("fvl22.begrundelse", 0.05),     # decision without reasons
    ("sel68.afgoerelse", 0.4),       # decision on a measure without legal basis
)
_FATES = ("on_time", "late", "missed", "stalled")


@dataclass(frozen=True, slots=True)
class GoalSpec:
    """A goal of a development plan and its milestones' titles (due dates are drawn)."""

    title: str
    milestones: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MunicipalityProfile:
    """One municipality's course: facts from its press release plus tuned synthetic traits."""

    code: str
    slug: str
    reasons: tuple[str, ...]
    submitted_at: datetime
    decided_at: datetime
    expected_start: date
    started_at: datetime
    planned_end: date
    baseline_window: tuple[date, date]
    plan_adopted_at: datetime
    goals: tuple[GoalSpec, ...]
    rating_means: tuple[float, float, float, float]
    notifications_per_half_year: int
    yearly_growth: float = 0.0
    late_share: float = 0.07
    late_share_by_period: tuple[tuple[str, float], ...] = ()
    rating_spread: float = 0.7
    improvement: float = 0.7
    fate_weights: tuple[float, float, float, float] = (0.55, 0.2, 0.12, 0.13)
    cadence_break_after: date | None = None

    @property
    def completed_at(self) -> datetime:
        return _wall(self.planned_end, 15 * 3600)

    @property
    def completed(self) -> bool:
        return self.completed_at <= SCENARIO_END

    @property
    def cutoff(self) -> int:
        """The last instant of the municipality's events: course end or scenario end."""
        return int(min(self.completed_at, SCENARIO_END).timestamp())

    def late_share_in(self, period: str) -> float:
        return dict(self.late_share_by_period).get(period, self.late_share)


def _at(day: str, hour: int, minute: int = 0) -> datetime:
    d = date.fromisoformat(day)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=TZ)


MUNICIPALITIES: tuple[MunicipalityProfile, ...] = (
    MunicipalityProfile(
        code="480",
        slug="nordfyn",
        # "stigning i sagsantal og -tyngde samt antal underretninger ... behov for et
        # fagligt løft på myndighedsområdet"
        reasons=("rising_caseload", "rising_notifications", "competence_gap"),
        submitted_at=_at("2019-11-21", 10),       # "I november 2019" (day assumed)
        decided_at=_at("2019-12-17", 11),         # "den 17. december 2019 sagt ja"
        expected_start=date(2020, 2, 1),          # "starter i februar"
        started_at=_at("2020-02-03", 9),
        planned_end=date(2022, 1, 31),            # "forventes at vare cirka 2 år"
        baseline_window=(date(2020, 3, 2), date(2020, 5, 29)),
        plan_adopted_at=_at("2020-06-23", 14),
        goals=(
            GoalSpec("Styrket kvalitet i de børnefaglige undersøgelser", (
                "Fælles skabelon for børnefaglige undersøgelser taget i brug",
                "Alle rådgivere har gennemført kursus i udredning",
                "Stikprøve viser at fristen på fire måneder overholdes",
            )),
            GoalSpec("Rettidig håndtering af underretninger", (
                "Fast underretningsteam etableret",
                "Ledelsesinformation om vurdering inden for 24 timer hver måned",
            )),
            GoalSpec("Systematisk opfølgning på indsatser", (
                "Opfølgningsplan for alle foranstaltninger",
                "Kvartalsvis ledelsestilsyn med opfølgningen",
            )),
            GoalSpec("Fagligt løft på myndighedsområdet", (
                "Kompetenceudviklingsplan vedtaget",
                "Model for faglig sparring implementeret",
            )),
        ),
        rating_means=(2.3, 2.5, 2.0, 2.4),
        notifications_per_half_year=380,
        yearly_growth=0.12,
        late_share=0.06,
        late_share_by_period=(("2021H1", 0.3),),
        improvement=0.9,
    ),
    MunicipalityProfile(
        code="849",
        slug="jammerbugt",
        # "styrke kvaliteten i sagsbehandlingen", "opkvalificere sig", kompetenceudvikling
        reasons=("quality_concerns", "competence_gap"),
        submitted_at=_at("2019-11-08", 10),       # new application round, autumn 2019 (assumed)
        decided_at=_at("2019-12-17", 11, 30),     # approval assumed in the same round
        expected_start=date(2020, 4, 1),          # "kan arbejdet gå i gang i 2020"
        started_at=_at("2020-04-01", 9),
        planned_end=date(2021, 11, 30),           # "ca. 20 måneder"
        baseline_window=(date(2020, 4, 20), date(2020, 7, 3)),
        plan_adopted_at=_at("2020-09-01", 14),
        goals=(
            GoalSpec("Styrket faglig ledelse", (
                "Model for faglig ledelse og sparring beskrevet",
                "Månedligt ledelsestilsyn med udvalgte sager",
            )),
            GoalSpec("Kvalitet i den konkrete sagsbehandling", (
                "Ensartede skabeloner for handleplaner",
                "Fælles praksis for børnesamtaler",
            )),
            GoalSpec("Kompetenceudvikling for rådgivere", (
                "Kursus i systematisk sagsbehandling gennemført",
                "Introduktionsforløb for nye rådgivere",
            )),
        ),
        rating_means=(2.6, 2.6, 2.3, 2.5),
        notifications_per_half_year=420,
        late_share=0.08,
    ),
    MunicipalityProfile(
        code="482",
        slug="langeland",
        # "ikke alle sager har den tilstrækkelige kvalitet"
        reasons=("quality_concerns",),
        submitted_at=_at("2021-12-02", 11, 45),   # early December, sent before 12 o'clock
        decided_at=_at("2022-01-20", 10),         # "nu vendt tilbage" (day assumed)
        expected_start=date(2022, 9, 1),          # "kan igangsættes i efteråret 2022"
        started_at=_at("2022-09-01", 9),
        planned_end=date(2024, 8, 30),            # about two years (assumed)
        baseline_window=(date(2022, 9, 19), date(2022, 12, 9)),
        plan_adopted_at=_at("2023-02-07", 14),
        goals=(
            GoalSpec("Tilstrækkelig kvalitet i alle sager", (
                "Kvalitetsstandard for sagsbehandlingen vedtaget",
                "Intern sagsaudit hvert kvartal",
            )),
            GoalSpec("Kompetenceudvikling efter Task Forcens anbefalinger", (
                "Kompetenceudviklingsplan vedtaget",
                "Alle rådgivere har gennemført kursus i børnesamtalen",
            )),
            GoalSpec("Opfølgning til det politiske niveau", (
                "Halvårlig status til udvalget",
                "Ledelsesinformation om sagernes kvalitet",
            )),
            GoalSpec("Koordinering mellem kommunen og Task Forcen", (
                "Fast koordineringsgruppe etableret",
            )),
        ),
        rating_means=(2.0, 2.3, 2.0, 2.2),
        notifications_per_half_year=330,
        late_share=0.05,
        late_share_by_period=(("2022H2", 0.14), ("2023H1", 0.1), ("2023H2", 0.07)),
        improvement=0.8,
    ),
    MunicipalityProfile(
        code="607",
        slug="fredericia",
        # improving the quality of casework in Familieafdelingen (reason inferred)
        reasons=("quality_concerns",),
        submitted_at=_at("2020-11-12", 10),       # not in the seed (assumed)
        decided_at=_at("2020-12-15", 11),         # not in the seed (assumed)
        expected_start=date(2021, 6, 1),          # "startede i juni 2021"
        started_at=_at("2021-06-01", 9),
        planned_end=date(2023, 5, 31),            # about two years
        # the analysis report reached Børne- og Skoleudvalget on 26 January 2022
        baseline_window=(date(2021, 9, 1), date(2021, 11, 26)),
        plan_adopted_at=_at("2022-03-08", 14),
        goals=(
            GoalSpec("Skriftlige procedurer", (
                "Procedure for børnefaglige undersøgelser beskrevet",
                "Procedure for opfølgning beskrevet",
                "Procedurerne godkendt og implementeret",
            )),
            GoalSpec("Fælles forståelse af god kvalitet", (
                "Kvalitetsstandard drøftet i alle teams",
                "Første kvalitetsmåling gennemført",
            )),
            GoalSpec("Samarbejde med dagtilbud og skoler", (
                "Samarbejdsmodel med skolerne aftalt",
                "Fast kontaktperson i alle dagtilbud",
            )),
            GoalSpec("Juridisk kvalitet", (
                "Opfølgning på Ankestyrelsens juridiske bemærkninger",
                "Tjekliste for partshøring og begrundelse",
            )),
        ),
        # good assessments and strong involvement of the child and the parents
        rating_means=(3.1, 2.8, 2.5, 3.4),
        notifications_per_half_year=480,
        late_share=0.02,                          # "underretninger bliver håndteret hurtigt"
        improvement=0.5,
    ),
    MunicipalityProfile(
        code="330",
        slug="slagelse",
        # "ønsker at styrke kvaliteten i sagsbehandlingen ... derfor søgte Slagelse"
        reasons=("quality_concerns",),
        submitted_at=_at("2019-11-14", 10),       # "tilbage i 2019" (day assumed)
        decided_at=_at("2019-12-17", 13),         # assumed
        expected_start=date(2020, 3, 1),          # "opstart af forløbet i 2020"
        started_at=_at("2020-03-02", 9),
        planned_end=date(2022, 2, 28),            # "de seneste to år"
        baseline_window=(date(2020, 3, 16), date(2020, 6, 12)),
        plan_adopted_at=_at("2020-08-18", 14),
        goals=(
            GoalSpec("Styring og fælles faglig retning", (
                "Fælles faglig retning beskrevet",
                "Ledelsesinformation om sagsforløb",
            )),
            GoalSpec("Ensartede arbejdsgange og metoder", (
                "Arbejdsgange for underretninger og undersøgelser beskrevet",
                "Metode for systematisk sagsbehandling implementeret",
            )),
            GoalSpec("Rammer for faglig sparring", (
                "Sparringsmodel i alle teams",
                "Kompetenceudvikling for ledere gennemført",
            )),
            GoalSpec("Inddragelse og hurtig hjælp", (
                "Børnesamtale i alle undersøgelser",
                "Kortere ventetid på indsatser",
            )),
        ),
        # high professional skill but no common direction: uneven ratings
        rating_means=(2.8, 2.3, 2.1, 2.2),
        rating_spread=0.95,
        notifications_per_half_year=600,
        late_share=0.06,
        late_share_by_period=(("2020H1", 0.1), ("2020H2", 0.08)),
        fate_weights=(0.45, 0.2, 0.15, 0.2),      # "selvom vi ikke er i mål"
        cadence_break_after=date(2021, 6, 15),    # a meeting slips over the summer
    ),
)


# --- time helpers -------------------------------------------------------------------------


def _wall(day: date, seconds: int) -> datetime:
    """The local wall-clock time `seconds` after midnight of `day`, as an aware datetime."""
    hours, rest = divmod(seconds, 3600)
    return datetime(day.year, day.month, day.day, hours, rest // 60, rest % 60, tzinfo=TZ)


def _epoch(day: date, seconds: int) -> int:
    return int(_wall(day, seconds).timestamp())


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, TZ).isoformat(timespec="seconds")


def _period(epoch: int) -> str:
    local = datetime.fromtimestamp(epoch, TZ)
    return f"{local.year}H{1 if local.month < 7 else 2}"


def _half_year_start(day: date) -> date:
    return date(day.year, 1 if day.month < 7 else 7, 1)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _weekday_on_or_before(day: date) -> date:
    return day - timedelta(days=max(0, day.weekday() - 4))


def _weekday_on_or_after(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7 if day.weekday() > 4 else 0)


def _month_end(day: date) -> date:
    following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _office_hours(rng: random.Random, day: date, first: int = 9, last: int = 15) -> int:
    return _epoch(day, rng.randint(first * 3600, last * 3600))


# --- collecting events --------------------------------------------------------------------


@dataclass(slots=True)
class _Record:
    publish_at: int
    seq: int
    event_type: str
    occurred_at: int
    code: str
    source: str
    correlation_id: str | None
    data: dict[str, Any]


class _Sink:
    """Collects one municipality's events, dropping any after its cutoff."""

    def __init__(self, profile: MunicipalityProfile, counter: Iterator[int]) -> None:
        self.profile = profile
        self.cutoff = profile.cutoff
        self.counter = counter
        self.records: list[_Record] = []

    def emit(self, event_type: str, at: int, data: dict[str, Any], source: str,
             correlation_id: str | None = None, publish_at: int | None = None) -> bool:
        if at > self.cutoff:
            return False
        self.records.append(_Record(
            publish_at=at if publish_at is None else publish_at, seq=next(self.counter),
            event_type=event_type, occurred_at=at, code=self.profile.code, source=source,
            correlation_id=correlation_id, data=data,
        ))
        return True


# --- the scenario -------------------------------------------------------------------------


def generate(seed: int = DEFAULT_SEED, volume: float = 1.0) -> list[dict[str, Any]]:
    """The scenario's events as JSON-ready dicts, in publishing order.

    Publishing order is `occurred_at` order, except that about 1.5 % of assessments come
    just before the receipt of their notification, and one older milestone update per plan
    comes after a newer one. `volume` scales the number of notifications (1.0: 300–600 per
    municipality and half-year).
    """
    if not math.isfinite(volume) or volume < 0:
        raise ValueError("volume must be a finite number >= 0")
    counter = itertools.count()
    records: list[_Record] = []
    for profile in MUNICIPALITIES:
        records.extend(_municipality(profile, seed, volume, counter))
    records.sort(key=lambda r: (r.publish_at, r.seq))
    ids = random.Random(f"{seed}:event-ids")
    return [_envelope(record, ids) for record in records]


def _envelope(record: _Record, ids: random.Random) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=ids.getrandbits(128), version=4)),
        "event_type": record.event_type,
        "schema_version": SCHEMA_VERSION,
        "occurred_at": _iso(record.occurred_at),
        "municipality_code": record.code,
        "source": record.source,
    }
    if record.correlation_id is not None:
        event["correlation_id"] = record.correlation_id
    event["data"] = record.data
    return event


def _municipality(profile: MunicipalityProfile, seed: int, volume: float,
                  counter: Iterator[int]) -> list[_Record]:
    def rng(part: str) -> random.Random:
        return random.Random(f"{seed}:{profile.code}:{part}")

    sink = _Sink(profile, counter)
    _course(sink, profile)
    _notifications(sink, profile, rng("notifications"), volume)
    plan_id = _plan(sink, profile, rng("plan"))
    meetings = _meeting_dates(profile, rng("meetings"))
    _reviews_and_meetings(sink, profile, plan_id, meetings, rng("reviews"))
    return sink.records


def _course(sink: _Sink, p: MunicipalityProfile) -> None:
    application_id, course_id = f"a-{p.code}-1", f"c-{p.code}-1"
    own = f"esdh.{p.slug}"
    sink.emit("application.submitted", int(p.submitted_at.timestamp()),
              {"application_id": application_id, "reasons": list(p.reasons)}, own, application_id)
    sink.emit("application.decided", int(p.decided_at.timestamp()),
              {"application_id": application_id, "decision": "approved",
               "expected_start": p.expected_start.isoformat()}, DECISION_SOURCE, application_id)
    sink.emit("course.started", int(p.started_at.timestamp()),
              {"course_id": course_id, "application_id": application_id,
               "planned_end": p.planned_end.isoformat()}, DECISION_SOURCE, application_id)
    if p.completed:
        sink.emit("course.completed", int(p.completed_at.timestamp()),
                  {"course_id": course_id}, DECISION_SOURCE, application_id)


# --- notifications ------------------------------------------------------------------------


class _Children:
    """Pseudonymous child refs ("b-480-004711"); some children are notified about again."""

    def __init__(self, code: str, rng: random.Random) -> None:
        self.code = code
        self.rng = rng
        self.refs: list[str] = []
        self.number = rng.randint(1000, 9000)

    def pick(self) -> str:
        if self.refs and self.rng.random() < REPEAT_CHILD_SHARE:
            return self.refs[self.rng.randrange(max(0, len(self.refs) - 500), len(self.refs))]
        self.number += self.rng.randint(1, 3)
        ref = f"b-{self.code}-{self.number:06d}"
        self.refs.append(ref)
        return ref


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, count, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _notifications(sink: _Sink, p: MunicipalityProfile, rng: random.Random,
                   volume: float) -> None:
    first = _half_year_start(p.started_at.date())
    last = datetime.fromtimestamp(sink.cutoff, TZ).date()
    per_day = p.notifications_per_half_year * volume / _DAYS_PER_HALF_YEAR / _MEAN_DAY_FACTOR
    children = _Children(p.code, rng)
    number = 0
    for day in _days(first, last):
        growth = (1 + p.yearly_growth) ** ((day - first).days / 365.25)
        factor = _WEEKDAY_FACTOR[day.weekday()] * _MONTH_FACTOR.get(day.month, 1.05)
        for _ in range(_poisson(rng, per_day * factor * growth)):
            number += 1
            _notification(sink, p, rng, day, f"u-{p.code}-{number:06d}", children.pick())


def _receipt_second(rng: random.Random, day: date, reporter: str) -> int:
    office = day.weekday() < 5 and (reporter != "police" or rng.random() < 0.5)
    if office and rng.random() < 0.88:
        return rng.randint(8 * 3600, 16 * 3600 - 1)
    return rng.randint(0, 86_399)


def _assessment_delay(rng: random.Random, urgent: bool, late_share: float) -> int | None:
    """Seconds from receipt to assessment; None for the few never assessed."""
    if rng.random() < NEVER_ASSESSED_SHARE:
        return None
    if rng.random() < (late_share / 3 if urgent else late_share):
        return 86_400 + 60 + int(min(rng.expovariate(1 / 30), 200) * 3600)
    if urgent:
        return int(rng.uniform(0.1, 4.0) * 3600)
    return int(min(rng.lognormvariate(math.log(5.0), 0.9), 23.5) * 3600)


def _notification(sink: _Sink, p: MunicipalityProfile, rng: random.Random, day: date,
                  notification_id: str, child_ref: str) -> None:
    reporter = rng.choices(_REPORTER_NAMES, cum_weights=_REPORTER_CUM)[0]
    urgent = rng.random() < (0.25 if reporter == "police" else 0.08)
    received = _epoch(day, _receipt_second(rng, day, reporter))
    source = f"dubu.{p.slug}"
    data = {"notification_id": notification_id, "child_ref": child_ref,
            "reporter": reporter, "urgent": urgent}
    if not sink.emit("notification.received", received, data, source):
        return
    delay = _assessment_delay(rng, urgent, p.late_share_in(_period(received)))
    if delay is None:
        return
    weights = _URGENT_OUTCOME_WEIGHTS if urgent else _OUTCOME_WEIGHTS
    outcome = rng.choices(OUTCOMES, weights=weights)[0]
    early = rng.random() < OUT_OF_ORDER_SHARE
    sink.emit("notification.assessed", received + delay,
              {"notification_id": notification_id, "outcome": outcome}, source,
              publish_at=received - 1 if early else None)


# --- development plan and milestones ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PlannedMilestone:
    milestone_id: str
    title: str
    due_on: date


def _plan(sink: _Sink, p: MunicipalityProfile, rng: random.Random) -> str:
    plan_id = f"p-{p.code}-1"
    adopted = p.plan_adopted_at.date()
    goals, milestones = _goals(p, rng)
    source = f"udviklingsplan.{p.slug}"
    sink.emit("development_plan.adopted", int(p.plan_adopted_at.timestamp()),
              {"plan_id": plan_id, "course_id": f"c-{p.code}-1", "goals": goals}, source)
    fates = _fates(rng, p, len(milestones))
    timelines = []
    for milestone, fate in zip(milestones, fates, strict=True):
        steps = [(_office_hours(rng, day), status)
                 for day, status in _milestone_timeline(rng, adopted, milestone.due_on, fate)]
        timelines.append((milestone, [s for s in steps if s[0] <= sink.cutoff]))
    stale = [i for i, (_, steps) in enumerate(timelines) if len(steps) >= 2]
    stale_index = rng.choice(stale) if stale else -1
    for index, (milestone, steps) in enumerate(timelines):
        for position, (at, status) in enumerate(steps):
            late_delivery = steps[-1][0] + 60 if index == stale_index and position == 0 else None
            sink.emit("milestone.updated", at,
                      {"plan_id": plan_id, "milestone_id": milestone.milestone_id,
                       "status": status}, source, publish_at=late_delivery)
    return plan_id


def _goals(p: MunicipalityProfile,
           rng: random.Random) -> tuple[list[dict[str, Any]], list[_PlannedMilestone]]:
    adopted = p.plan_adopted_at.date()
    first, last = adopted + timedelta(days=75), p.planned_end - timedelta(days=20)
    count = sum(len(goal.milestones) for goal in p.goals)
    span = (last - first).days
    dues = [_month_end(first + timedelta(days=int(span * (i + 0.5) / count
                                                  + rng.randint(-20, 20))))
            for i in range(count)]
    rng.shuffle(dues)
    goals: list[dict[str, Any]] = []
    planned: list[_PlannedMilestone] = []
    for goal_no, goal in enumerate(p.goals, start=1):
        own_dues = sorted(dues[len(planned):len(planned) + len(goal.milestones)])
        items = []
        for title, due in zip(goal.milestones, own_dues, strict=True):
            milestone = _PlannedMilestone(f"ms-{p.code}-{len(planned) + 1:02d}", title,
                                          min(due, last))
            planned.append(milestone)
            items.append({"milestone_id": milestone.milestone_id, "title": title,
                          "due_on": milestone.due_on.isoformat()})
        goals.append({"goal_id": f"g-{p.code}-{goal_no}", "title": goal.title,
                      "milestones": items})
    return goals, planned


def _fates(rng: random.Random, p: MunicipalityProfile, count: int) -> list[str]:
    """Each milestone's fate; every plan has at least one late and one missed milestone."""
    fates = [rng.choices(_FATES, weights=p.fate_weights)[0] for _ in range(count)]
    for wanted in ("late", "missed"):
        on_time = [i for i, fate in enumerate(fates) if fate == "on_time"]
        if wanted not in fates and len(on_time) > 1:
            fates[rng.choice(on_time)] = wanted
    return fates


def _milestone_timeline(rng: random.Random, adopted: date, due: date,
                        fate: str) -> list[tuple[date, str]]:
    lead = max(14, (due - adopted).days)
    steps = [(adopted + timedelta(days=rng.randint(7, max(8, lead // 2))), "in_progress")]
    if fate == "on_time":
        done = _weekday_on_or_before(due - timedelta(days=rng.randint(0, 30)))
        steps.append((done, "achieved"))
    elif fate == "late":
        steps.append((due - timedelta(days=rng.randint(5, 20)), "at_risk"))
        steps.append((due + timedelta(days=rng.randint(14, 60)), "achieved"))
    elif fate == "missed":
        steps.append((due - timedelta(days=rng.randint(5, 20)), "at_risk"))
        steps.append((due + timedelta(days=rng.randint(1, 10)), "missed"))
        if rng.random() < 0.4:
            steps.append((due + timedelta(days=rng.randint(60, 150)), "achieved"))
    else:
        steps.append((due + timedelta(days=rng.randint(10, 40)), "at_risk"))
    return _increasing(steps)


def _increasing(steps: list[tuple[date, str]]) -> list[tuple[date, str]]:
    """Move steps forward so each falls on a weekday strictly after the one before."""
    result: list[tuple[date, str]] = []
    for day, status in steps:
        if result and day <= result[-1][0]:
            day = result[-1][0] + timedelta(days=1)
        result.append((_weekday_on_or_after(day), status))
    return result


# --- case reviews and follow-up meetings --------------------------------------------------


def _meeting_dates(p: MunicipalityProfile, rng: random.Random) -> list[date]:
    """Follow-up meetings every 6 weeks (35–42 days) after adoption, one slipped if set."""
    end = min(p.planned_end, SCENARIO_END.date())
    previous = p.plan_adopted_at.date()
    dates: list[date] = []
    while True:
        gap = rng.randint(35, 42)
        breaks = p.cadence_break_after
        if breaks is not None and previous < breaks <= previous + timedelta(days=gap):
            gap = rng.randint(64, 70)
        following = _weekday_on_or_before(previous + timedelta(days=gap))
        if following >= end:
            return dates
        dates.append(following)
        previous = following


def _ratings(rng: random.Random, p: MunicipalityProfile) -> dict[str, int]:
    return {dim: max(1, min(4, round(rng.gauss(mean, p.rating_spread))))
            for dim, mean in zip(DIMENSIONS, p.rating_means, strict=True)}


def _improved(rng: random.Random, ratings: Mapping[str, int], progress: float,
              improvement: float) -> dict[str, int]:
    """A re-review: mostly the same or better, more often better as the plan progresses."""
    up = min(0.8, 0.15 + 0.55 * progress * improvement / 0.7)
    result = {}
    for dim, rating in ratings.items():
        draw = rng.random()
        change = 1 if draw < up else (-1 if draw > 0.94 else 0)
        result[dim] = max(1, min(4, rating + change))
    return result


def _findings(rng: random.Random, weights: tuple[int, ...],
              major_factor: float) -> list[dict[str, str]]:
    count = rng.choices(range(len(weights)), weights=weights)[0]
    chosen = rng.sample(LEGAL_FINDINGS, count)
    return [{"code": code, "severity": "major" if rng.random() < share * major_factor
             else "minor"} for code, share in chosen]


def _review(sink: _Sink, p: MunicipalityProfile, at: int, number: int, case_ref: str,
            phase: str, ratings: dict[str, int], findings: list[dict[str, str]],
            correlation_id: str | None = None) -> None:
    sink.emit("case_review.completed", at, {
        "review_id": f"r-{p.code}-{number:03d}", "course_id": f"c-{p.code}-1",
        "case_ref": case_ref, "phase": phase, "ratings": ratings, "legal_findings": findings,
    }, REVIEW_SOURCE, correlation_id)


def _baseline(sink: _Sink, p: MunicipalityProfile, rng: random.Random) -> dict[str, dict[str, int]]:
    first, last = p.baseline_window
    count = rng.randint(15, 25)
    cases: dict[str, dict[str, int]] = {}
    for number, case_no in enumerate(sorted(rng.sample(range(1000, 10000), count)), start=1):
        day = _weekday_on_or_before(first + timedelta(days=rng.randint(0, (last - first).days)))
        case_ref = f"sag-{p.code}-{case_no}"
        cases[case_ref] = _ratings(rng, p)
        _review(sink, p, _office_hours(rng, day), number, case_ref, "baseline",
                dict(cases[case_ref]), _findings(rng, (40, 35, 18, 7), 1.0))
    return cases


def _reviews_and_meetings(sink: _Sink, p: MunicipalityProfile, plan_id: str,
                          meetings: list[date], rng: random.Random) -> None:
    cases = _baseline(sink, p, rng)
    number = len(cases)
    adopted = p.plan_adopted_at.date()
    course_days = max(1, (p.planned_end - adopted).days)
    for meeting_no, day in enumerate(meetings, start=1):
        meeting_id = f"fm-{p.code}-{meeting_no:02d}"
        wanted = 0 if rng.random() < 0.1 else rng.randint(2, 4)
        progress = (day - adopted).days / course_days
        for case_ref in rng.sample(sorted(cases), min(wanted, len(cases))):
            number += 1
            cases[case_ref] = _improved(rng, cases[case_ref], progress, p.improvement)
            _review(sink, p, _office_hours(rng, day, 8, 11), number, case_ref, "follow_up",
                    dict(cases[case_ref]), _findings(rng, (70, 25, 5), 0.5), meeting_id)
        sink.emit("followup.meeting_held", _epoch(day, 13 * 3600 + rng.randint(0, 5400)),
                  {"plan_id": plan_id, "cases_rereviewed": min(wanted, len(cases))},
                  f"udviklingsplan.{p.slug}", meeting_id)


# --- files --------------------------------------------------------------------------------


def topic_of(event: Mapping[str, Any]) -> str:
    """The input topic an event belongs on, by its `event_type`."""
    return INPUT_TYPES[event["event_type"]][1]


def to_json_line(event: Mapping[str, Any]) -> str:
    """One compact JSON line (UTF-8 text, no trailing newline)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def write_feeds(events: Iterable[Mapping[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Write one JSON Lines file per input topic, plus a small CSV example; return the paths.

    The keys are the file names: `<topic>.jsonl` for each of the four input topics (written
    even when empty) and `CSV_SAMPLE_NAME`, which repeats the first application events as
    CSV rows (same event ids: publishing it as well is a harmless duplicate).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {topic: [] for topic in topics.INPUT_TOPICS}
    samples: list[Mapping[str, Any]] = []
    for event in events:
        topic = topic_of(event)
        lines[topic].append(to_json_line(event) + "\n")
        if topic == topics.APPLICATIONS and len(samples) < CSV_SAMPLE_ROWS:
            samples.append(event)
    paths: dict[str, Path] = {}
    for topic, topic_lines in lines.items():
        path = out / f"{topic}.jsonl"
        path.write_bytes("".join(topic_lines).encode("utf-8"))
        paths[path.name] = path
    sample = out / CSV_SAMPLE_NAME
    sample.write_bytes(_csv_text(samples).encode("utf-8"))
    paths[sample.name] = sample
    return paths


def _csv_text(events: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for event in events:
        row = []
        for column in CSV_COLUMNS:
            value = event.get(column)
            if column == "data":
                row.append(to_json_line(value or {}))
            else:
                row.append("" if value is None else str(value))
        writer.writerow(row)
    return buffer.getvalue()
