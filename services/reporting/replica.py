"""The reporting service's replica of entity states, watermarks, the owning services'
progress and published summaries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pymongo import UpdateOne

from schemas.periods import Period
from schemas.reporting import (
    CaseReviewState,
    CourseState,
    MeetingState,
    MilestoneState,
    NotificationState,
    PlanState,
)
from services.common.store import upsert_guarded, upsert_newer
from services.common.watermarks import raise_watermarks, read_watermark, stamp, unstamp
from services.reporting.domain.lifecycle import Progress
from services.reporting.domain.plan import plans_that_count
from services.reporting.domain.rows import MeetingDay, NotificationRow, ReviewRow, add_day
from services.reporting.domain.summary import MunicipalityInputs, SummaryInputs, event_instants
from services.reporting.domain.tallies import NotificationTally, ReviewTally
from services.reporting.owed import Partition
from services.reporting.row_cache import Bucket, RowCache, Tally
from services.reporting.stored import StoredSummary

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase


@dataclass(frozen=True, eq=False)
class Kind:
    """One kind of replicated state. Compared and hashed by identity: there is one of each
    (`KINDS`), and a batch looks a kind up per state (a value hash would hash every field)."""

    collection: str
    model: type[BaseModel]
    #: For the voluminous kinds, looked up per period: the compact row the figures read
    #: (built from a state by its `of`).
    row: type[NotificationRow] | type[ReviewRow] | None = None
    #: Replicate the row alone, not the state: for a kind whose other fields nothing here
    #: reads back (the row's fields must be plain BSON values: ints, bools, None).
    row_only: bool = False
    #: For the voluminous kinds: what keeps a period's figures as its rows change.
    tally: Callable[[], Tally] | None = None

    @property
    def by_period(self) -> bool:
        return self.row is not None

    def body(self, state: BaseModel, held: Any) -> dict[str, Any]:
        """What the replica document keeps of a state (`held`: what memory keeps of it)."""
        if self.row_only:
            return {"row": list(held)}
        return {"state": state.model_dump(mode="json")}

    def held_of(self, doc: dict[str, Any]) -> Any:
        """What memory keeps of a stored document: its row for the voluminous kinds, else its
        state (a row-only kind's document written by an older version still holds its state)."""
        if self.row is not None and self.row_only and "row" in doc:
            return self.row(*doc["row"])
        state = self.model.model_validate(doc["state"], strict=False)
        return self.row.of(state) if self.row is not None else state  # type: ignore[arg-type]  # self.model is the row's state type


KINDS: dict[str, Kind] = {
    "reporting.course_changed": Kind("courses", CourseState),
    # Only the row: the figures read nothing else of a notification, and intake keeps the whole
    # of it. It is also most of the replica's writes, one per event: the document is 43 % of the
    # bytes it had with the whole state (about 120 instead of 280 in the benchmark).
    "reporting.notification_changed": Kind("notifications", NotificationState, NotificationRow,
                                           row_only=True, tally=NotificationTally),
    "reporting.case_review_changed": Kind("reviews", CaseReviewState, ReviewRow, tally=ReviewTally),
    "reporting.plan_changed": Kind("plans", PlanState),
    "reporting.milestone_changed": Kind("milestones", MilestoneState),
    "reporting.meeting_changed": Kind("meetings", MeetingState),
}
NOTIFICATIONS = KINDS["reporting.notification_changed"]
REVIEWS = KINDS["reporting.case_review_changed"]
MEETINGS = KINDS["reporting.meeting_changed"]
PLANS = KINDS["reporting.plan_changed"]
MILESTONES = KINDS["reporting.milestone_changed"]
#: Kept in memory whole. Not all plans are: only those that can be current (each half-year's
#: last, `plans_that_count`) with their milestones; meetings are kept per plan and day.
SMALL_KINDS = [kind for kind in KINDS.values()
               if not kind.by_period and kind not in (MEETINGS, PLANS, MILESTONES)]
BY_PERIOD_KINDS = [kind for kind in KINDS.values() if kind.by_period]
SUMMARIES = "summaries"
MUNICIPALITIES = "municipalities"
#: One note per municipality whose summaries are owed a recomputation, with the partition its
#: states come from (see `services.reporting.owed`).
OWED = "owed_summaries"
#: One document per (municipality, period) with events. (Not an $addToSet array: the
#: embedded store ignores $addToSet on a missing field, and plain upserts work everywhere.)
PERIODS = "periods"
#: (1.1) One document per (municipality, input topic): the owning service's progress there.
PROGRESS = "progress"
#: (1.1) One document per input partition: the greatest offset before which its service has
#: said it applied the partition (from any municipality's progress).
APPLIED = "input_applied"
#: (1.1) One note per (municipality, topic) where the municipality's finalisation waits for a
#: topic it has no progress on, with the partition its states come from (see
#: `SummaryProcessor._release_held`).
HELD = "held_summaries"


def inputs_of(kind: Kind, state: BaseModel) -> MunicipalityInputs:
    """A one-entity input, to ask which instants (and periods) the state records."""
    field = {
        "courses": "course", "notifications": "notifications", "reviews": "reviews",
        "plans": "plans", "milestones": "milestones", "meetings": "meetings",
    }[kind.collection]
    return MunicipalityInputs(**{field: state if field == "course" else (state,)})  # type: ignore[arg-type]  # the kind's model is the field's type


def periods_of(kind: Kind, state: BaseModel) -> set[str]:
    return {Period.of(t).name for t in event_instants(inputs_of(kind, state))}


#: The bound of the rows kept in memory when none is given (`RowCache`; the service passes
#: TASKFORCE_REPLICA_CACHE_MB, 128 by default: some 330,000 rows, two national half-years).
CACHE_BYTES = 128 * 1024 * 1024


@dataclass
class MunicipalityView:
    """One municipality's replica as this process last wrote or read it.

    Holds what every recomputation needs besides the voluminous rows: the watermark, the
    periods with events, the stored summaries, the small states (course, plans, milestones)
    in full and the meetings per plan and day.
    """

    watermark: datetime | None
    periods: set[str]
    summaries: dict[str, StoredSummary]
    states: dict[str, dict[str, BaseModel]]
    #: The meetings, per (plan, local date): what the figures read of them, bounded by the
    #: dates they span, not by how many there are.
    meeting_days: dict[tuple[str, date], MeetingDay] = field(default_factory=dict)
    #: A plan was written: which plans count (and so which milestones are kept) is read again
    #: from the store before the next summary.
    plans_stale: bool = False
    #: Per input topic, the owning service's progress with the municipality (exact in memory;
    #: the store may hold an earlier `through`, see `Replica.save_progress`).
    progress: dict[str, Progress] = field(default_factory=dict)


class Replica:
    """Version-guarded upserts of states; what a recomputation reads, kept in memory.

    A batch must not re-read a municipality's half-year from the store to recompute it:
    each municipality's view and the rows of recently used (kind, municipality, period)
    buckets are kept in memory and updated with every write. That is only valid while this
    process owns the municipality's partition, the one place its replica is written:
    `forget()` runs on every rebalance, and everything is read again when next needed.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]], cache_bytes: int = CACHE_BYTES) -> None:
        self.db = db
        self._views: dict[str, MunicipalityView] = {}
        self._row_cache = RowCache(cache_bytes)

    def forget(self) -> None:
        self._views.clear()
        self._row_cache.clear()

    async def view(self, code: str) -> MunicipalityView:
        """The municipality's view, read from the store the first time it is needed."""
        view = self._views.get(code)
        if view is None:
            states: dict[str, dict[str, BaseModel]] = {}
            for kind in SMALL_KINDS:
                cursor = self.db[kind.collection].find({"municipality_code": code}, {"state": 1})
                states[kind.collection] = {d["_id"]: kind.held_of(d) async for d in cursor}
            await self._load_plans(code, states)
            cursor = self.db[PERIODS].find({"municipality_code": code}, {"period": 1})
            periods = {d["period"] async for d in cursor}
            cursor = self.db[PROGRESS].find({"municipality_code": code})
            progress = {d["topic"]: Progress(unstamp(d["through"]) if d.get("through") else None,
                                             d["caught_up"], d.get("partition"), d.get("offset"))
                        async for d in cursor}
            days: dict[tuple[str, date], MeetingDay] = {}
            cursor = self.db[MEETINGS.collection].find({"municipality_code": code}, {"state": 1})
            async for doc in cursor:  # folded as read: a flood of meetings is never held whole
                state = doc["state"]
                add_day(days, MeetingDay(state["plan_id"], date.fromisoformat(state["held_on"]),
                                         datetime.fromisoformat(state["held_at"])))
            view = MunicipalityView(
                watermark=await read_watermark(self.db[MUNICIPALITIES], code),
                periods=periods,
                summaries=await self.summaries(code),
                states=states,
                meeting_days=days,
                progress=progress,
            )
            self._views[code] = view
        return view

    async def _load_plans(self, code: str, states: dict[str, dict[str, BaseModel]]) -> None:
        """The plans that can be current, and their milestones, read from the store (a flood
        of plans or of milestone ids is streamed past, never held)."""
        plans: list[PlanState] = []
        async for doc in self.db[PLANS.collection].find({"municipality_code": code}, {"state": 1}):
            plans = [*plans_that_count([*plans, PLANS.held_of(doc)]).values()]
        states[PLANS.collection] = {f"{code}:{plan.plan_id}": plan for plan in plans}
        states[MILESTONES.collection] = {}
        if plans:
            cursor = self.db[MILESTONES.collection].find(
                {"municipality_code": code, "state.plan_id": {"$in": [plan.plan_id for plan in plans]}},
                {"state": 1})
            wanted = _milestones_of(plans)
            async for doc in cursor:
                milestone = MILESTONES.held_of(doc)
                if (milestone.plan_id, milestone.milestone_id) in wanted:
                    states[MILESTONES.collection][doc["_id"]] = milestone

    def _remember(self, kind: Kind, docs: list[dict[str, Any]], held: dict[str, Any]) -> None:
        if kind is MEETINGS:
            self._remember_meetings(docs, held)
            return
        if kind is PLANS:
            for doc in docs:
                if (view := self._views.get(doc["municipality_code"])) is not None:
                    view.plans_stale = True
            return
        if kind is MILESTONES:
            self._remember_milestones(docs, held)
            return
        if not kind.by_period:
            for doc in docs:
                view = self._views.get(doc["municipality_code"])
                if view is not None:
                    view.states[kind.collection][doc["_id"]] = held[doc["_id"]]
            return
        for doc in docs:
            doc_id = doc["_id"]
            self._row_cache.written((kind.collection, doc["municipality_code"], doc["period"]),
                                    doc_id, held[doc_id])

    def _remember_milestones(self, docs: list[dict[str, Any]], held: dict[str, Any]) -> None:
        """Keep a milestone of a plan that counts (one of another plan is read back if its plan
        comes to count)."""
        wanted: dict[str, set[tuple[str, str]]] = {}  # per municipality, built once per call
        for doc in docs:
            code = doc["municipality_code"]
            view = self._views.get(code)
            if view is None:
                continue
            if code not in wanted:
                wanted[code] = _milestones_of(view.states[PLANS.collection].values())  # type: ignore[arg-type]  # PlanStates
            milestone = held[doc["_id"]]
            if (milestone.plan_id, milestone.milestone_id) in wanted[code]:
                view.states[MILESTONES.collection][doc["_id"]] = milestone

    def _remember_meetings(self, docs: list[dict[str, Any]], held: dict[str, Any]) -> None:
        """Count each meeting written for the first time into its day.

        A meeting is one event, so follow-up never gives it a version past 1 (a redelivery is
        always among the ids it remembers): a written version 1 is a meeting this replica has
        not had, and an equal version is refused before it gets here, so each counts once.
        """
        for doc in docs:
            view = self._views.get(doc["municipality_code"])
            if view is None or doc["version"] != 1:
                continue
            add_day(view.meeting_days, MeetingDay.of(held[doc["_id"]]))

    async def _bucket(self, kind: Kind, code: str, period: str) -> Bucket:
        """The bucket's rows and tally, read from the store unless in memory."""
        assert kind.row is not None and kind.tally is not None
        key = (kind.collection, code, period)
        bucket = self._row_cache.get(key)
        if bucket is not None:
            return bucket
        cursor = self.db[kind.collection].find({"municipality_code": code, "period": period},
                                               {"row": 1, "state": 1})
        return self._row_cache.put(key, {d["_id"]: kind.held_of(d) async for d in cursor}, kind.tally)

    async def keep_rows(self, code: str, periods: Iterable[str]) -> None:
        """Have the periods' rows in memory (read once, then kept up to date by every write),
        so a recomputation owed for later does not read them back whole from the store."""
        for name in periods:
            for kind in BY_PERIOD_KINDS:
                await self._bucket(kind, code, name)

    async def summary_inputs(self, code: str, period: Period) -> SummaryInputs:
        """What the period's summary is computed from (see `SummaryInputs`)."""
        view = await self.view(code)
        if view.plans_stale:
            await self._load_plans(code, view.states)
            view.plans_stale = False
        courses = list(view.states["courses"].values())
        notifications = await self._bucket(NOTIFICATIONS, code, period.name)
        reviews = await self._bucket(REVIEWS, code, period.name)
        return SummaryInputs(
            course=courses[0] if courses else None,  # type: ignore[arg-type]  # states held as BaseModel: a CourseState
            notifications=notifications.rows.values(),
            reviews=reviews.rows.values(),
            notification_tally=notifications.tally,  # type: ignore[arg-type]  # this kind's tally is a NotificationTally
            review_tally=reviews.tally,  # type: ignore[arg-type]  # and this one's a ReviewTally
            plans=list(view.states["plans"].values()),  # type: ignore[arg-type]  # PlanStates, likewise
            milestones=list(view.states["milestones"].values()),  # type: ignore[arg-type]  # MilestoneStates
            meetings=list(view.meeting_days.values()),
        )

    async def setup(self) -> None:
        for kind in KINDS.values():
            await self.db[kind.collection].create_index([("municipality_code", 1), ("period", 1)])
        await self.db[SUMMARIES].create_index([("municipality_code", 1)])
        await self.db[SUMMARIES].create_index([("pending", 1)])
        await self.db[PERIODS].create_index([("municipality_code", 1)])
        await self.db[OWED].create_index([("topic", 1), ("partition", 1)])
        await self.db[PROGRESS].create_index([("municipality_code", 1)])
        await self.db[PROGRESS].create_index([("topic", 1), ("caught_up", 1)])
        await self.db[APPLIED].create_index([("topic", 1)])
        await self.db[HELD].create_index([("held_topic", 1)])
        await self.db[HELD].create_index([("municipality_code", 1)])

    async def upsert_states(
        self, kind: Kind, docs: list[dict[str, Any]], held: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Write each state unless the replica has its version or a newer one.

        Returns the documents actually written. An older or equal version makes the upsert
        collide with the existing `_id` (duplicate key), which is how "not newer" is detected
        in one round trip. `held` is what memory keeps of each document, by `_id`: its row
        for the voluminous kinds, else its state model.
        """
        written = await self._upsert(kind, docs)
        self._remember(kind, written, held)
        return written

    async def _upsert(self, kind: Kind, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stale = await upsert_newer(self.db[kind.collection], docs)
        return [d for i, d in enumerate(docs) if i not in stale] if stale else docs

    async def raise_watermarks(
        self, marks: dict[str, datetime]
    ) -> dict[str, tuple[datetime | None, datetime]]:
        """Raise each municipality's watermark; returns (before, after) per municipality."""
        moves = await raise_watermarks(self.db[MUNICIPALITIES], marks)
        for code, (_before, after) in moves.items():
            if code in self._views:
                self._views[code].watermark = after
        return moves

    async def add_periods(self, periods: dict[str, set[str]]) -> None:
        """Note the periods that have events, *before* their states are written.

        So a period that is not noted has no states in the store: its buckets start empty in
        memory instead of being read back after the first write.
        """
        new = {code: names - (await self.view(code)).periods for code, names in periods.items()}
        ops = [UpdateOne({"_id": f"{m}:{p}"}, {"$set": {"municipality_code": m, "period": p}}, upsert=True)
               for m, names in new.items() for p in sorted(names)]
        if ops:
            await self.db[PERIODS].bulk_write(ops, ordered=False)
        for code, names in new.items():
            self._views[code].periods |= names
            for name in names:
                for kind in KINDS.values():
                    if kind.tally is not None and (kind.collection, code, name) not in self._row_cache:
                        self._row_cache.put((kind.collection, code, name), {}, kind.tally)

    async def note_owed(self, notes: dict[str, Partition]) -> None:
        """Store that these municipalities' summaries are owed, with their partitions."""
        await self.db[OWED].bulk_write(
            [UpdateOne({"_id": code}, {"$set": {"topic": topic, "partition": partition}}, upsert=True)
             for code, (topic, partition) in notes.items()], ordered=False)

    async def owed_on(self, partitions: set[Partition]) -> dict[str, Partition]:
        """The stored notes of owed summaries on these partitions."""
        query = {"$or": [{"topic": topic, "partition": partition} for topic, partition in sorted(partitions)]}
        return {d["_id"]: (d["topic"], d["partition"]) async for d in self.db[OWED].find(query)}

    async def settle_owed(self, codes: list[str] | None) -> None:
        """Remove the notes of these municipalities (None: of all)."""
        if codes is None:
            await self.db[OWED].delete_many({})
        elif codes:
            await self.db[OWED].delete_many({"_id": {"$in": codes}})

    async def save_progress(self, progress: dict[tuple[str, str], Progress]) -> None:
        """Keep each (municipality, topic)'s progress in memory, and in the store when
        `caught_up` or the partition changed, or `through` moved to another half-year.

        So a service that keeps up costs no write here per batch. What the store holds is then
        at most a little behind in `through` and `offset`: after partitions move that can hold
        a period a little longer (until the next record, or the partition's offset said by
        another municipality's record, `applied`), never finalise one early.
        """
        ops = []
        for (code, topic), new in sorted(progress.items()):
            view = await self.view(code)
            old = view.progress.get(topic)
            view.progress[topic] = new
            if (old is not None and old.caught_up == new.caught_up and old.partition == new.partition
                    and (new.through is None or (old.through is not None
                                                 and Period.of(old.through) == Period.of(new.through)))):
                continue
            ops.append(UpdateOne({"_id": f"{code}/{topic}"}, {"$set": {
                "municipality_code": code, "topic": topic, "caught_up": new.caught_up,
                "through": stamp(new.through) if new.through is not None else None,
                "partition": new.partition, "offset": new.offset}}, upsert=True))
        if ops:
            await self.db[PROGRESS].bulk_write(ops, ordered=False)

    async def behind_anywhere(self, topic: str) -> bool:
        """Whether the topic's service last said, for some municipality, that it is behind."""
        return await self.db[PROGRESS].find_one({"topic": topic, "caught_up": False}, {"_id": 1}) is not None

    async def raise_applied(self, offsets: dict[tuple[str, int], int]) -> None:
        """Raise each input partition's applied offset (a guarded upsert: another replica may
        raise it too, and a lower one is refused)."""
        await upsert_guarded(self.db[APPLIED], [
            ({"_id": f"{topic}/{partition}", "offset": {"$lt": offset}},
             {"topic": topic, "partition": partition, "offset": offset})
            for (topic, partition), offset in sorted(offsets.items())])

    async def applied(self, topic: str) -> dict[int, int]:
        """Per partition of the input topic, the greatest offset its service said it applied."""
        return {d["partition"]: d["offset"] async for d in self.db[APPLIED].find({"topic": topic})}

    async def note_held(self, notes: dict[str, tuple[set[str], Partition]]) -> None:
        """Store that these municipalities wait for topics they have no progress on (code →
        (topics, the partition its states come from))."""
        if notes:
            await self.db[HELD].bulk_write(
                [UpdateOne({"_id": f"{code}/{held}"}, {"$set": {
                    "municipality_code": code, "held_topic": held, "topic": topic, "partition": partition}},
                    upsert=True)
                 for code, (topics, (topic, partition)) in sorted(notes.items()) for held in sorted(topics)],
                ordered=False)

    async def settle_held(self, codes: Iterable[str]) -> None:
        """Remove the notes of these municipalities."""
        codes = sorted(codes)
        if codes:
            await self.db[HELD].delete_many({"municipality_code": {"$in": codes}})

    async def held_notes(self) -> dict[str, set[str]]:
        """Every municipality noted as waiting, with the topics it waits for."""
        notes: dict[str, set[str]] = {}
        async for doc in self.db[HELD].find({}, {"municipality_code": 1, "held_topic": 1}):
            notes.setdefault(doc["municipality_code"], set()).add(doc["held_topic"])
        return notes

    async def held_on(self, topics: Iterable[str], partitions: set[Partition] | None) -> dict[str, Partition]:
        """The municipalities waiting for any of the topics, on these partitions (None: any)."""
        cursor = self.db[HELD].find({"held_topic": {"$in": sorted(topics)}})
        return {d["municipality_code"]: (d["topic"], d["partition"]) async for d in cursor
                if partitions is None or (d["topic"], d["partition"]) in partitions}

    async def municipality_codes(self) -> list[str]:
        return sorted([d["_id"] async for d in self.db[MUNICIPALITIES].find({}, {"_id": 1})])

    async def reviews(self, code: str) -> list[CaseReviewState]:
        cursor = self.db["reviews"].find({"municipality_code": code}, {"state": 1})
        return [CaseReviewState.model_validate(d["state"], strict=False) async for d in cursor]

    async def summaries(self, code: str) -> dict[str, StoredSummary]:
        """The municipality's stored summaries, by period."""
        cursor = self.db[SUMMARIES].find({"municipality_code": code})
        return {d["period"]: StoredSummary.of_document(d) async for d in cursor}

    async def all_summaries(self) -> list[StoredSummary]:
        """Every stored summary, without the highlights (for lists)."""
        cursor = self.db[SUMMARIES].find({}, {"data.highlights": 0})
        return [StoredSummary.of_document(d) async for d in cursor]

    async def save_summaries(self, summaries: list[StoredSummary]) -> None:
        if summaries:
            await self.db[SUMMARIES].bulk_write(
                [UpdateOne({"_id": s.id}, {"$set": s.document()}, upsert=True) for s in summaries],
                ordered=False)
        for summary in summaries:
            self._keep_summary(summary)

    async def mark_published(self, summaries: list[StoredSummary]) -> None:
        if summaries:
            await self.db[SUMMARIES].update_many({"_id": {"$in": [s.id for s in summaries]}},
                                                 {"$set": {"pending": False}})
        for summary in summaries:
            self._keep_summary(summary.sent())

    def _keep_summary(self, summary: StoredSummary) -> None:
        view = self._views.get(summary.municipality_code)
        if view is not None:
            view.summaries[summary.period] = summary

    async def pending(self) -> list[StoredSummary]:
        """The summaries saved but not yet sent (a crash came between)."""
        return [StoredSummary.of_document(d) async for d in self.db[SUMMARIES].find({"pending": True})]


def _milestones_of(plans: Iterable[PlanState]) -> set[tuple[str, str]]:
    """(plan id, milestone id) of every milestone the plans name."""
    return {(plan.plan_id, milestone.milestone_id) for plan in plans for milestone in plan.milestones}

