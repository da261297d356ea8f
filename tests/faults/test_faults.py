"""Nothing lost, nothing counted twice: the four services as processes, under faults.

Every scenario publishes realistic demo events (plus duplicates or hostile records), lets
the pipeline settle (all four consumer groups committed to the end, watched on the broker)
and compares the latest summary per municipality and period on `taskforce.summaries` with
`reference.py`, an independent computation over the raw valid input events.

The privacy scenario runs last and scans what all the others left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import random
import re
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pymongo import MongoClient

from schemas.cpr import CPR_PATTERN, UUID_PATTERN
from taskforce import demo
from tests.faults import harness
from tests.faults.harness import (
    COMMANDS,
    DLQ,
    INPUT_TOPICS,
    REPORTING,
    SERVICES,
    SUMMARIES,
    Cluster,
    event_record,
    latest_summaries,
    produce,
    read_all,
    readyz,
    wait_ready,
    wait_settled,
)
from tests.faults.hostile import Fuzzer
from tests.faults.reference import differences, expected_status, reference, watermarks
from tests.support.browser import sign_in

pytestmark = pytest.mark.faults

SEED = 2019
UUID = re.compile(UUID_PATTERN.pattern)
SETTLE_TIMEOUT = 300.0


# --- shared steps ---------------------------------------------------------------------------


def chunks(items: list[Any], count: int) -> list[list[Any]]:
    size = -(-len(items) // count)
    return [items[i:i + size] for i in range(0, len(items), size)]


async def publish(cluster: Cluster, events: list[dict[str, Any]]) -> None:
    await produce(cluster.stack.bootstrap, [event_record(cluster.prefix, e) for e in events])


def status_errors(latest: dict[tuple[str, str], dict[str, Any]], events: list[dict[str, Any]]) -> list[str]:
    """Status and revision consistent with the watermark: final/revised past end + grace, else draft."""
    marks = watermarks(events)
    errors = []
    for (code, period), data in sorted(latest.items()):
        allowed = expected_status(marks[code], period) if code in marks else {"?"}
        status, revision = data["status"], data["revision"]
        if status not in allowed or (status == "revised") != (revision > 0):
            errors.append(f"{code} {period}: {status} rev {revision}, expected {sorted(allowed)}")
    return errors


async def compare(cluster: Cluster, valid: list[dict[str, Any]], figures: dict[str, Any],
                  watch: Any = None) -> dict[str, Any]:
    """Settle, then compare the latest summaries with the reference; fills `figures`."""
    figures["settle_s"] = await wait_settled(cluster, SETTLE_TIMEOUT, watch)
    latest = await latest_summaries(cluster)
    diff = differences(reference(valid), latest)
    figures.update(lost=diff["lost"], double=diff["double"], mismatches=len(diff["mismatches"]),
                   summaries=len(latest), revised=sum(1 for d in latest.values() if d["status"] == "revised"))
    diff["status_errors"] = status_errors(latest, valid)
    return diff


def assert_equal_to_reference(diff: dict[str, Any]) -> None:
    shown = "\n".join(map(repr, diff["mismatches"][:25]))
    assert not diff["mismatches"], (
        f"{len(diff['mismatches'])} figures differ from the reference "
        f"(lost {diff['lost']}, double {diff['double']}):\n{shown}")
    assert not diff["status_errors"], "\n".join(diff["status_errors"][:25])


async def _ready(proc: harness.ServiceProcess) -> bool:
    async with httpx.AsyncClient() as client:
        return await readyz(client, proc) == 200


async def _metric(proc: harness.ServiceProcess, name: str) -> float:
    """The sum of a Prometheus metric's samples on the process's /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{proc.url}/metrics", timeout=10)).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name)] in " {")


def assert_all_alive(cluster: Cluster) -> None:
    dead = {p.name: p.exits for p in cluster.procs if not p.alive()}
    assert not dead, f"service processes stopped: {dead}"


# --- 1. hard kills --------------------------------------------------------------------------


async def test_hard_kills_lose_and_double_nothing(clusters: Any) -> None:
    started = time.monotonic()
    figures: dict[str, Any] = {}
    harness.FIGURES["1 hard kills"] = figures
    cluster = clusters("kills", TASKFORCE_BATCH_MAX_RECORDS="100")
    # crash_after_write=N: the run dies after its N-th batch write, before the offset commit
    # (the harness's fault, tests/faults/crash_after_write.py). Each start of a service takes
    # the next value from its queue; reporting's is exercised in phase 3.
    hooks = {"intake": [2], "analysis": [1], "followup": [1], "reporting": []}
    hook_crashes: Counter[str] = Counter()
    unexpected: list[str] = []

    def start(proc: harness.ServiceProcess) -> None:
        queue = hooks[proc.service]
        proc.start(crash_after_write=queue.pop(0) if queue else None)

    for service in SERVICES:
        start(cluster.add(service))
    await wait_ready(cluster.procs)

    def supervise() -> None:
        for proc in cluster.procs:
            code = proc.reap()
            if code is None:
                continue
            if code == 137:
                hook_crashes[proc.service] += 1
            else:
                unexpected.append(f"{proc.name} exited with {code}")
            start(proc)

    events = demo.generate(SEED, 0.15)
    rng = random.Random(SEED)
    # Held back for phase 3: each municipality's first follow-up meeting. It arrives when its
    # period is long final, so only a complete recomputation of that period gets it right (a
    # later batch of the municipality re-derives its recent periods only).
    first_meeting: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["event_type"] == "followup.meeting_held":
            first_meeting.setdefault(event["municipality_code"], event)
    tail = [first_meeting[code] for code in sorted(first_meeting)]
    stream = [e for e in events if not any(e is t for t in tail)]
    duplicates = rng.sample(stream, len(stream) // 30)  # same event ids: must count once
    for event in duplicates:
        stream.insert(rng.randrange(len(stream) + 1), event)
    rounds = 2
    pending = chunks(stream, 4 * rounds + 3)
    sigkills: Counter[str] = Counter()
    uncommitted_at_kill: list[int | None] = []

    async def kill(target: str) -> None:
        group = cluster.group(target)
        try:
            lag = await asyncio.wait_for(harness.group_lag(cluster.stack.bootstrap, {group: [
                cluster.topic(t) for t in harness.GROUP_TOPICS[target]]}), 3)
            uncommitted: int | None = lag[group][0]
        except TimeoutError:
            uncommitted = None  # the group is rebalancing: the coordinator answers late
        proc = cluster.get(target)
        if proc.alive():
            proc.kill9()
            uncommitted_at_kill.append(uncommitted)
            sigkills[target] += 1
            start(proc)  # at once: it rejoins the group and resumes from the last commit

    # Phase 1: the crash-after-write hooks fire on the first chunks; reporting is SIGKILLed
    # meanwhile. Chunk by chunk (settling, restarts watched) until every hook has fired.
    await publish(cluster, pending.pop(0))
    await asyncio.sleep(rng.uniform(0.3, 0.8))
    await kill("reporting")
    await wait_settled(cluster, SETTLE_TIMEOUT, watch=supervise)
    while sum(hook_crashes.values()) < 3 and len(pending) > 4 * rounds:
        await publish(cluster, pending.pop(0))
        await wait_settled(cluster, SETTLE_TIMEOUT, watch=supervise)
    rest = [event for chunk in pending for event in chunk]
    pending = chunks(rest, 4 * rounds)
    # Phase 2: rounds of four chunks; during each chunk one service is SIGKILLed at a random
    # moment and restarted at once. (A killed member stays in the group until its session
    # times out, so the restarts of a round overlap instead of queueing.)
    while pending:
        await wait_ready(cluster.procs, timeout=180)
        for target in rng.sample(SERVICES, len(SERVICES)):
            if not pending:
                break
            await publish(cluster, pending.pop(0))
            supervise()
            await asyncio.sleep(rng.uniform(0.05, 0.5) + (0.4 if target == "reporting" else 0))
            await kill(target)
    # Phase 3: reporting's own crash window, after its state write and before its summaries.
    # (a) SIGKILL the moment the held-back meeting's state lands in reporting's store (watched
    #     there: a timing aid only, the verdict still comes from the summaries topic);
    # (b) reporting's crash_after_write=1 on the next one.
    await wait_settled(cluster, SETTLE_TIMEOUT, watch=supervise)
    reporting = cluster.get("reporting")
    window: list[str] = []
    with MongoClient(cluster.stack.mongo_url) as mongo:
        db = mongo[cluster.database("reporting")]
        while tail and not any(w.startswith("hit") for w in window) and len(window) < 3:
            meeting = tail.pop(0)
            code = meeting["municipality_code"]
            before = {d["_id"]: d["data"] for d in db["summaries"].find({"municipality_code": code})}
            count = db["meetings"].count_documents({})
            await publish(cluster, [meeting])
            deadline = time.monotonic() + 120
            while db["meetings"].count_documents({}) == count:
                assert time.monotonic() < deadline, "reporting never stored the held-back meeting"
                await asyncio.sleep(0.001)
            reporting.kill9()
            sigkills["reporting"] += 1
            after = {d["_id"]: d["data"] for d in db["summaries"].find({"municipality_code": code})}
            window.append(f"{'hit' if after == before else 'late'} ({code})")
            start(reporting)
            await wait_settled(cluster, SETTLE_TIMEOUT, watch=supervise)
    reporting.terminate()
    reporting.start(crash_after_write=1)
    await wait_ready([reporting])
    crashed_before = hook_crashes["reporting"]
    await publish(cluster, tail)
    await wait_settled(cluster, SETTLE_TIMEOUT, watch=supervise)
    reporting_hook = hook_crashes["reporting"] > crashed_before
    if not reporting_hook:  # it ignored the hook: restart it plainly for the comparison
        reporting.terminate()
        reporting.start()
        await wait_ready([reporting])

    diff = await compare(cluster, events, figures, watch=supervise)
    assert_all_alive(cluster)
    kills = sum(sigkills.values()) + sum(hook_crashes.values())
    figures.update(kills=kills, seconds=time.monotonic() - started,
                   note=f"SIGKILL {dict(sigkills)} (uncommitted records at each: {uncommitted_at_kill}), "
                        f"crash-after-write {dict(hook_crashes)}, {len(duplicates)} duplicates sent, "
                        f"{figures['revised']} revised summaries; reporting killed between its state "
                        f"and summary writes: {window}")
    assert not unexpected, unexpected
    assert_equal_to_reference(diff)
    assert reporting_hook, ("reporting survived crash_after_write: its crash window between "
                            "state write and commit is not exercised by the hook")
    assert hook_crashes == Counter({"intake": 1, "analysis": 1, "followup": 1, "reporting": 1}), hook_crashes
    assert all(sigkills[s] + hook_crashes[s] >= 3 for s in SERVICES), (sigkills, hook_crashes)


# --- 2. store outage ------------------------------------------------------------------------


async def _through_the_outage(cluster: Cluster, during: list[dict[str, Any]],
                              outage_started: float) -> tuple[float, dict[str, float], dict[str, float]]:
    """Publish during the outage; every service must turn unready (503) and stay alive; after
    ~20 s restart the store on its port and file; every service must be ready again."""
    await publish(cluster, during)
    unready: dict[str, float] = {}
    async with httpx.AsyncClient() as client:
        while time.monotonic() - outage_started < 20 or len(unready) < len(cluster.procs):
            assert_all_alive(cluster)
            for proc in cluster.procs:
                if proc.name not in unready and await readyz(client, proc) == 503:
                    unready[proc.name] = time.monotonic() - outage_started
            assert time.monotonic() - outage_started < 60, f"still answering ready: {unready}"
            await asyncio.sleep(0.25)
        cluster.stack.start_store()
        outage = time.monotonic() - outage_started
        recovered: dict[str, float] = {}
        while len(recovered) < len(cluster.procs):
            assert_all_alive(cluster)
            for proc in cluster.procs:
                if proc.name not in recovered and await readyz(client, proc) == 200:
                    recovered[proc.name] = time.monotonic() - outage_started - outage
            assert time.monotonic() - outage_started - outage < 90, f"not ready again: {recovered}"
            await asyncio.sleep(0.25)
    return outage, unready, recovered


async def test_store_outage_is_survived_and_reported(clusters: Any) -> None:
    started = time.monotonic()
    figures: dict[str, Any] = {"kills": 0}
    harness.FIGURES["2 store outage"] = figures
    cluster = clusters("outage")
    cluster.start_all()
    await wait_ready(cluster.procs)
    events = demo.generate(SEED + 1, 0.1)
    first, during, after = chunks(events, 3)
    await publish(cluster, first)
    outage_started = time.monotonic()
    cluster.stack.stop_store()  # under load: the first third is still being processed
    try:
        outage, unready, recovered = await _through_the_outage(cluster, during, outage_started)
    finally:
        if not cluster.stack.store_running():  # never leave the next scenario without a store
            cluster.stack.start_store()
    await publish(cluster, after)
    diff = await compare(cluster, events, figures)
    assert_all_alive(cluster)
    retries = {proc.service: await _metric(proc, "taskforce_store_retries_total") for proc in cluster.procs}
    figures.update(seconds=time.monotonic() - started,
                   note=f"store down {outage:.0f} s; /readyz 503 after {max(unready.values()):.1f} s "
                        f"at most, 200 again {max(recovered.values()):.1f} s after the restart; "
                        f"retries {retries}")
    assert sum(retries.values()) > 0, "the outage never reached a batch"
    assert_equal_to_reference(diff)


# --- 3. rebalance ---------------------------------------------------------------------------


async def test_rebalance_under_load(clusters: Any) -> None:
    started = time.monotonic()
    figures: dict[str, Any] = {"kills": 0}
    harness.FIGURES["3 rebalance"] = figures
    cluster = clusters("rebalance", TASKFORCE_BATCH_MAX_RECORDS="200")
    cluster.start_all(replicas=2)
    await wait_ready(cluster.procs)  # ready = store answers and partitions assigned: both replicas have some
    events = demo.generate(SEED + 2, 0.15)
    first, during, after = chunks(events, 3)
    await publish(cluster, first)
    # Stop, for each service, the replica that is doing the work (the partitions are keyed by
    # municipality, so one replica may hold most of it), while more events arrive.
    leaving = []
    deadline = time.monotonic() + 120
    for service in SERVICES:
        while True:
            batches = [await _metric(cluster.get(service, r), "taskforce_batch_size_count") for r in (0, 1)]
            if max(batches) > 0:
                break
            assert time.monotonic() < deadline, f"{service}: no batch applied"
            await asyncio.sleep(0.2)
        leaving.append(cluster.get(service, batches.index(max(batches))))
    stops = [asyncio.to_thread(proc.terminate) for proc in leaving]  # graceful: SIGTERM
    codes, _ = await asyncio.gather(asyncio.gather(*stops), publish(cluster, during))
    for proc in leaving:
        proc.start()
    await publish(cluster, after)
    await wait_ready(cluster.procs, timeout=180)  # rejoined: partitions split again
    diff = await compare(cluster, events, figures)
    assert_all_alive(cluster)
    figures.update(seconds=time.monotonic() - started,
                   note=f"8 processes; the busy replica of each stopped (exit codes {codes}) "
                        "and restarted under load")
    assert all(code == 0 for code in codes), f"graceful stop failed: {codes}"
    assert_equal_to_reference(diff)


# --- 4. hostile input -----------------------------------------------------------------------


def _headers(record: Any) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}


async def test_hostile_input_goes_to_the_dlq_and_nothing_else_changes(clusters: Any) -> None:
    started = time.monotonic()
    figures: dict[str, Any] = {"kills": 0}
    harness.FIGURES["4 hostile input, fuzzed"] = figures
    cluster = clusters("hostile")
    cluster.start_all()
    await wait_ready(cluster.procs)
    valid = demo.generate(SEED + 3, 0.05)
    hostile = list(Fuzzer(valid, SEED).records(10_000, [*INPUT_TOPICS, COMMANDS]))
    rng = random.Random(SEED + 3)
    mixed: list[tuple[str, Any]] = [("valid", e) for e in valid]
    for record in hostile:  # interleaved; the valid events keep their order
        mixed.insert(rng.randrange(len(mixed) + 1), ("invalid", record))
    outgoing = [event_record(cluster.prefix, item) if kind == "valid"
                else (cluster.prefix + item.topic, item.key, item.value) for kind, item in mixed]
    placed = await produce(cluster.stack.bootstrap, outgoing)
    where = {(m.topic.removeprefix(cluster.prefix), m.partition, m.offset):
             item.kind if kind == "invalid" else kind for (kind, item), m in zip(mixed, placed, strict=True)}
    invalid_at = {pos for pos, kind in where.items() if kind != "valid"}

    # Larger than the producer's and broker's default limit (1 MiB), sent with a raised limit.
    oversized = dict(valid[-1], event_id="0f0e0d0c-0b0a-4908-8706-050403020100")
    oversized["data"] = dict(oversized["data"], blob="x" * (2 * 1024 * 1024))
    big_note = ""
    try:
        [big] = await produce(cluster.stack.bootstrap, [event_record(cluster.prefix, oversized)],
                              max_request_size=8 * 1024 * 1024)
    except KafkaError as exc:  # the broker refused it: the producer must say so clearly
        big_note = f"2 MiB record refused by the broker: {type(exc).__name__}"
        assert "size" in type(exc).__name__.lower() or "large" in str(exc).lower(), repr(exc)
    else:
        big_at = (big.topic.removeprefix(cluster.prefix), big.partition, big.offset)
        invalid_at.add(big_at)
        big_note = "2 MiB record accepted by the broker"

    diff = await compare(cluster, valid, figures)
    assert_all_alive(cluster)
    dlq = await read_all(cluster.stack.bootstrap, cluster.topic(DLQ))
    dead: dict[tuple[str, int, int], dict[str, str]] = {}
    for record in dlq:
        headers = _headers(record)
        dead[(headers.get("original_topic", "?"), int(headers.get("original_partition", -1)),
              int(headers.get("original_offset", -1)))] = headers
    missing = sorted(invalid_at - set(dead))
    wrongly = sorted(pos for pos in dead if where.get(pos) == "valid")
    unnamed = [pos for pos, headers in dead.items() if not headers.get("reason")]
    reasons = Counter(h.get("reason") for h in dead.values())
    if big_note.endswith("accepted by the broker"):
        big_headers = dead.get(big_at, {})
        big_note += (f"; DLQ: {'yes' if big_headers else 'NO'}, "
                     f"truncated from {big_headers.get('value_truncated_from')}")
    figures.update(dlq=f"{len(dlq)} / {len(invalid_at)}", seconds=time.monotonic() - started,
                   sent=len(outgoing) + (1 if big_note.endswith("accepted by the broker") else 0),
                   restarts=sum(1 for p in cluster.procs if not p.alive()),
                   note=f"{len(valid)} valid; reasons {dict(reasons)}; {big_note}")
    missing_kinds = Counter(where.get(pos, "oversized") for pos in missing)
    assert not missing, f"{len(missing)} invalid records not in the DLQ, e.g. {missing[:10]} {missing_kinds}"
    assert not wrongly, f"{len(wrongly)} valid records sent to the DLQ, e.g. {wrongly[:10]}"
    assert not unnamed, f"DLQ records without a reason: {unnamed[:10]}"
    assert len(dlq) >= len(invalid_at)
    assert_equal_to_reference(diff)


# --- 7. poison records and outputs the broker refuses ---------------------------------------

#: Follow-up's producer is limited to this, so one valid plan makes a state it cannot send.
SMALL_REQUEST_BYTES = 64 * 1024


Poison = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]], str]


def _poison_records(prefix: str) -> list[Poison]:
    """(topic, key, value, headers, DLQ reason) of records that once stopped a consumer or
    came near it: nested 600 deep around an escaped CPR, a tombstone, binary with binary
    headers, a 5 KB key, a full-width CPR, a value over 256 KiB."""
    deep = b'{"a":' * 600 + b'"\\u0030101901234"' + b"}" * 600
    template = demo.generate(SEED + 7, 0.01)[0]
    spelled = dict(template, event_id="0f0e0d0c-0b0a-4908-8706-050403020101",
                   source="dubu ０１０１９０ １２３４")
    big = dict(template, event_id="0f0e0d0c-0b0a-4908-8706-050403020102", correlation_id="c" * 300_000)
    records = []
    for topic in INPUT_TOPICS:
        records += [
            (topic, b"480", deep, [], "invalid_json"),
            (topic, b"480", None, [], "invalid_json"),
            (topic, b"480", b"\xff\xfe 0101901234 \x00" * 50, [("h", b"\x00\xff" * 100)], "invalid_encoding"),
            (topic, b"480" + b"\x00" * 5000 + b"0101901234", b"{}", [], "unknown_event_type"),
        ]
    topic = harness.TOPIC_OF_TYPE[template["event_type"]]
    records += [(topic, b"480", json.dumps(spelled, ensure_ascii=False).encode(), [], "cpr_number"),
                (topic, b"480", json.dumps(big).encode(), [], "invalid_event")]
    return [(prefix + t, k, v, h, reason) for t, k, v, h, reason in records]


def _plan_too_large_to_report() -> dict[str, Any]:
    """A valid plan (within every limit) whose state outgrows `SMALL_REQUEST_BYTES`, for a
    municipality the demo does not have, so the other summaries are unaffected."""
    goals = [{"goal_id": f"goal-{g}", "title": "Mål " + "m" * 150,
              "milestones": [{"milestone_id": f"m-{g}-{n}", "title": "Delmål " + "d" * 150,
                              "due_on": "2023-06-30"} for n in range(200)]} for g in range(2)]
    return {"event_id": "0f0e0d0c-0b0a-4908-8706-050403020103", "event_type": "development_plan.adopted",
            "schema_version": 1, "occurred_at": "2022-03-01T10:00:00+01:00", "municipality_code": "999",
            "source": "fault.tests", "data": {"plan_id": "plan-999", "course_id": "c-999", "goals": goals}}


async def test_poison_records_and_refused_outputs_stop_nothing(clusters: Any) -> None:
    started = time.monotonic()
    figures: dict[str, Any] = {"kills": 0}
    harness.FIGURES["7 poison, refused outputs"] = figures
    cluster = clusters("poison")
    cluster.start_all(followup={"TASKFORCE_PRODUCER_MAX_REQUEST_BYTES": str(SMALL_REQUEST_BYTES)})
    await wait_ready(cluster.procs)
    valid = demo.generate(SEED + 7, 0.05)
    poison = _poison_records(cluster.prefix)
    plan = _plan_too_large_to_report()
    producer = AIOKafkaProducer(bootstrap_servers=cluster.stack.bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        half = len(valid) // 2
        records = [event_record(cluster.prefix, e) for e in valid[:half]]
        records += [(topic, key, value, headers) for topic, key, value, headers, _ in poison]
        records += [event_record(cluster.prefix, e) for e in [plan, *valid[half:]]]
        for topic, key, value, *headers in records:
            await producer.send(topic, value, key=key, headers=headers[0] if headers and headers[0] else None)
        await producer.flush()
    finally:
        await producer.stop()

    diff = await compare(cluster, valid, figures)
    dead = [_headers(r) for r in await read_all(cluster.stack.bootstrap, cluster.topic(DLQ))]
    stopped = [p.name for p in cluster.procs if not p.alive()]
    reasons = Counter(h.get("reason") for h in dead)
    wanted = Counter(reason for *_, reason in poison) + Counter(output_too_large=1)
    refused = [h for h in dead if h.get("reason") == "output_too_large"]
    figures.update(sent=len(valid) + len(poison) + 1, dlq=f"{len(dead)} / {sum(wanted.values())}",
                   restarts=len(stopped), seconds=time.monotonic() - started,
                   note=f"poison reasons {dict(reasons)}; follow-up's plan state refused at "
                        f"{refused[0].get('original_size') if refused else '?'} bytes "
                        f"(limit {SMALL_REQUEST_BYTES})")
    assert not stopped, f"service processes stopped: {stopped}"
    assert reasons == wanted, f"DLQ reasons {dict(reasons)}, wanted {dict(wanted)}"
    assert [h["original_topic"] for h in refused] == [REPORTING]
    assert int(refused[0]["original_size"]) > SMALL_REQUEST_BYTES
    assert_equal_to_reference(diff)


# --- 8. a flood of valid events ------------------------------------------------------------

#: `make test` floods with 50,000 meetings; `make test-flood` with 1,000,000 (FLOOD_EVENTS).
FLOOD_EVENTS = int(os.environ.get("FLOOD_EVENTS", "50000"))
#: What each service may grow by under the flood (resident memory, after its first tenth).
FLOOD_RSS_GROWTH_MB = 40


def _rss_mb(proc: harness.ServiceProcess) -> float:
    """Resident memory of a service process, from /proc."""
    assert proc.process is not None
    for line in Path(f"/proc/{proc.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _flood(count: int) -> list[dict[str, Any]]:
    """A plan, then `count` follow-up meetings on it over two years (one municipality)."""
    start = datetime(2022, 1, 3, 8, tzinfo=UTC)
    plan = {"event_id": str(uuid.UUID(int=1, version=4)), "event_type": "development_plan.adopted",
            "schema_version": 1, "occurred_at": "2022-01-03T09:00:00+01:00", "municipality_code": "480",
            "source": "fault.flood", "data": {"plan_id": "plan-flood", "course_id": "c-flood", "goals": [
                {"goal_id": "g", "title": "Mål", "milestones": [
                    {"milestone_id": "m", "title": "Delmål", "due_on": "2023-06-30"}]}]}}
    step = timedelta(days=730) / count
    meetings = [{"event_id": str(uuid.UUID(int=n + 2, version=4)), "event_type": "followup.meeting_held",
                 "schema_version": 1, "occurred_at": (start + step * n).isoformat(),
                 "municipality_code": "480", "source": "fault.flood",
                 "data": {"plan_id": "plan-flood", "cases_rereviewed": n % 5}} for n in range(count)]
    return [plan, *meetings]


async def test_a_flood_of_valid_events_stays_within_memory(clusters: Any) -> None:
    started = time.monotonic()
    figures: dict[str, Any] = {"kills": 0}
    harness.FIGURES[f"8 flood of {FLOOD_EVENTS:,} meetings"] = figures
    cluster = clusters("flood")
    cluster.start_all()
    await wait_ready(cluster.procs)
    events = _flood(FLOOD_EVENTS)
    tenth = len(events) // 10
    await publish(cluster, events[:tenth])
    await wait_settled(cluster, SETTLE_TIMEOUT)
    warm = {p.service: _rss_mb(p) for p in cluster.procs}
    await publish(cluster, events[tenth:])
    peaks = dict(warm)

    def watch() -> None:
        for proc in cluster.procs:
            peaks[proc.service] = max(peaks[proc.service], _rss_mb(proc))

    diff = await compare(cluster, events, figures, watch=watch)
    growth = {service: round(peaks[service] - warm[service]) for service in warm}
    stopped = [p.name for p in cluster.procs if not p.alive()]
    figures.update(sent=len(events), dlq="0 / 0", restarts=len(stopped), seconds=time.monotonic() - started,
                   note=f"RSS growth after the first tenth, MB: {growth} (bound {FLOOD_RSS_GROWTH_MB})")
    assert not stopped, f"service processes stopped: {stopped}"
    assert max(growth.values()) <= FLOOD_RSS_GROWTH_MB, growth
    assert_equal_to_reference(diff)


# --- 6. access ------------------------------------------------------------------------------


def _raw_get(port: int, path: str, token: str | None = None, header: str | None = None) -> tuple[int, bytes]:
    """A GET with the path sent exactly as given (no client-side normalisation of ../)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        if header is not None:
            connection.putheader("Authorization", header)
        elif token is not None:
            connection.putheader("Authorization", f"Bearer {token}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


async def test_access_is_per_municipality_and_parameters_are_safe(clusters: Any) -> None:
    started = time.monotonic()
    figures: dict[str, Any] = {"kills": 0}
    harness.FIGURES["6 access"] = figures
    tokens = {"tok-480-nordfyn": "480", "tok-607-fredericia": "607", "tok-all-admin": "*"}
    cluster = clusters("access", tokens=tokens)
    cluster.start_all()
    await wait_ready(cluster.procs)
    events = demo.generate(SEED + 4, 0.01)
    await publish(cluster, events)
    await wait_settled(cluster, SETTLE_TIMEOUT)
    port = cluster.get("reporting").port
    periods = {code: sorted(p for c, p in reference(events) if c == code) for code in ("480", "607")}
    p480, p607 = periods["480"][-1], periods["607"][-1]
    own, other = "tok-480-nordfyn", "tok-607-fredericia"
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    checks = 0

    async def expect(path: str, allowed: set[int], token: str | None = None, header: str | None = None,
                     empty: bool = False) -> bytes:
        nonlocal checks
        checks += 1
        status, body = await asyncio.to_thread(_raw_get, port, path, token, header)
        statuses[status] += 1
        if status not in allowed or (empty and body):
            problems.append(f"GET {path[:80]} ({token or header}): {status} {body[:120]!r}, "
                            f"expected {allowed}" + (" and an empty body" if empty else ""))
        return body

    paths_480 = ["/municipalities/480/summaries", f"/municipalities/480/summaries/{p480}",
                 f"/municipalities/480/summaries/{p480}/report"]
    paths_607 = ["/municipalities/607/summaries", f"/municipalities/607/summaries/{p607}",
                 f"/municipalities/607/summaries/{p607}/report"]
    for path in paths_480:
        await expect(path, {200}, own)
        await expect(path, {403}, other, empty=True)
        await expect(path, {401})
        await expect(path, {401}, "not-a-token")
        for header in ("Bearer", "Bearer ", "Basic dG9rLTQ4MC1ub3JkZnlu", "tok-480-nordfyn",
                       "Token tok-480-nordfyn"):
            await expect(path, {401}, header=header)
    for path in paths_607:
        await expect(path, {403}, own, empty=True)
        await expect(path, {200}, other)
    await expect("/municipalities/480/summaries/2049H1", {404}, own)
    # Traversal and injection in the code and period: refused (404/422), never 500, never data.
    long = "4" * 4000
    codes = ["..", "../607", "..%2f607", "%2e%2e", "%2e%2e%2f607", "480;drop", "480%3Bdrop", "$ne",
             quote('{"$ne":null}'), "%24ne", long, "480%00", "48", "4800", "%34%38%30%2f..", "*", "%2a",
             quote("４８０"), "480%20", "-480", "0x1E0"]
    period_values = ["2022H3", "2022H0", "2022h1", "../../607/summaries/2022H1", "..%2f..%2f607%2fsummaries",
                     "%2e%2e", "2022H1;drop", "$ne", quote('{"$ne":null}'), "H" * 4000, "2022H1%00",
                     "22H1", "2022-H1", quote("２０２２H1"), "2022H1%0a", "%2e"]
    for code in codes:
        await expect(f"/municipalities/{code}/summaries", {404, 422}, "tok-all-admin")
        await expect(f"/municipalities/{code}/summaries/{p480}", {404, 422}, "tok-all-admin")
    for value in period_values:
        await expect(f"/municipalities/480/summaries/{value}", {404, 422}, "tok-all-admin")
        await expect(f"/municipalities/480/summaries/{value}/report", {404, 422}, "tok-all-admin")
    # With one municipality's token, no path reaches another's data.
    for path in ("/municipalities/480/../607/summaries", "/municipalities/480/%2e%2e/607/summaries",
                 "/municipalities/480%2f..%2f607/summaries",
                 f"/municipalities/480/summaries/../../607/summaries/{p607}",
                 f"/municipalities/607/summaries/{p607}?code=480",
                 "/municipalities/607/summaries?municipality=480",
                 "//municipalities/607/summaries", "/municipalities/607/summaries/"):
        await expect(path, {403, 404, 422, 307}, own)
    # The owning services' read models: the same rules, checked before the path is validated.
    for service, route in (("intake", "notifications/overdue"), ("analysis", "reviews/changes"),
                           ("followup", "plan/status")):
        service_port = cluster.get(service).port
        cases = (("480", own, {200, 404}, False), ("607", own, {403}, True), ("480", None, {401}, False),
                 ("48x", None, {401}, False), ("48x", own, {403}, True),
                 ("48x", "tok-all-admin", {422}, False))
        for code, token, allowed, empty in cases:
            checks += 1
            status, body = await asyncio.to_thread(_raw_get, service_port, f"/municipalities/{code}/{route}",
                                                   token)
            statuses[status] += 1
            if status not in allowed or (empty and body):
                problems.append(f"{service} {code}/{route} ({token}): {status}, expected {allowed}")
    # Browser sessions: a signed-in 607 user gets nothing of 480's; a forged cookie is nobody.
    async with httpx.AsyncClient(base_url=cluster.get("reporting").url, follow_redirects=False,
                                 timeout=30) as browser:
        login = await sign_in(browser, other, "/")
        checks += 1
        if login.status_code != 303 or not browser.cookies:
            problems.append(f"POST /login with a valid token: {login.status_code}, no session cookie")
        for path in paths_480:
            checks += 1
            answer = await browser.get(path)
            if answer.status_code != 403 or answer.content:
                problems.append(f"session of 607 on {path}: {answer.status_code} {answer.content[:80]!r}")
        index = await browser.get("/")
        checks += 1
        if index.status_code != 200 or "/municipalities/480/" in index.text:
            problems.append(f"index for a 607 session: {index.status_code}, lists 480: "
                            f"{'/municipalities/480/' in index.text}")
        wrong = await sign_in(browser, "guess", "/")
        checks += 1
        if wrong.status_code != 401:
            problems.append(f"POST /login with an unknown token: {wrong.status_code}")
        name = next(iter(login.cookies), "taskforce_session")
        genuine = login.cookies.get(name, "")
        # Tampered copies that always differ from the genuine cookie: its tail (the
        # signature) and its first character (the signed payload).
        tail = "xx" if not genuine.endswith("xx") else "yy"
        head = "A" if not genuine.startswith("A") else "B"
        for cookie in ("forged", genuine[:-2] + tail, head + genuine[1:]):
            browser.cookies.clear()
            browser.cookies.set(name, cookie)
            checks += 1
            answer = await browser.get(paths_607[1])
            if answer.status_code != 401:
                problems.append(f"forged session cookie: {answer.status_code}")
    figures.update(seconds=time.monotonic() - started,
                   note=f"{checks} requests, {len(problems)} unexpected answers; statuses {dict(statuses)}")
    assert not problems, "\n".join(problems[:40])


# --- 5. privacy (last: scans what every scenario above left behind) --------------------------


def _strings(value: Any) -> Iterator[str]:
    """Every string in a decoded value (keys too); bytes as text and, when JSON, decoded too."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
        yield text
        with contextlib.suppress(ValueError, RecursionError):
            yield from _strings(json.loads(text))
    elif isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _has_cpr(value: Any) -> bool:
    """A CPR-like number by the 1.1 definition (digits after NFKC), in any string the value
    holds or decodes to. UUIDs are spared wherever they stand: ids like "480:<event id>" are
    ours, made from fields that validation only lets through when they are exactly a UUID."""
    return any(CPR_PATTERN.search(unicodedata.normalize("NFKC", UUID.sub(" ", text)))
               for text in _strings(value))


async def test_no_cpr_number_is_kept_anywhere(fault_servers: harness.Servers) -> None:
    started = time.monotonic()
    clusters_seen = [c for c in harness.CLUSTERS if c.stack is fault_servers]
    if not any(c.run_dir.name == "hostile" for c in clusters_seen):
        pytest.skip("scans what the other fault scenarios left behind: run the whole module")
    figures: dict[str, Any] = {}
    harness.FIGURES["5 privacy"] = figures
    hits: list[str] = []
    client: MongoClient[dict[str, Any]] = MongoClient(fault_servers.mongo_url,
                                                      serverSelectionTimeoutMS=10_000)
    documents = 0
    try:
        for db_name in client.list_database_names():
            db = client[db_name]
            for collection in db.list_collection_names():
                for doc in db[collection].find():
                    documents += 1
                    if _has_cpr(doc):
                        hits.append(f"mongo {db_name}.{collection} {doc.get('_id')!r}")
    finally:
        client.close()
    logs = [p for c in clusters_seen for p in c.log_files()]
    for path in logs:
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if _has_cpr(line):
                hits.append(f"log {path.name}:{number}")
    records = 0
    for cluster in clusters_seen:
        for topic in (DLQ, REPORTING, SUMMARIES):
            for record in await read_all(fault_servers.bootstrap, cluster.topic(topic)):
                records += 1
                if _has_cpr([record.value or b"", record.key or b"", *(v for _, v in record.headers or ())]):
                    hits.append(f"topic {cluster.topic(topic)} {record.partition}@{record.offset}")
    # Positive control: the scan does find the CPR numbers the hostile scenario sent.
    hostile = next(c for c in clusters_seen if c.run_dir.name == "hostile")
    control = 0
    for topic in INPUT_TOPICS:
        for record in await read_all(fault_servers.bootstrap, hostile.topic(topic)):
            control += _has_cpr([record.value or b"", record.key or b""])
    figures.update(cpr_hits=len(hits), seconds=time.monotonic() - started,
                   note=f"scanned {documents} documents, {len(logs)} log files, {records} topic records; "
                        f"control: {control} CPR-bearing records found on the hostile input topics")
    assert control > 0, "the scan found no CPR even in the hostile input: the scan is broken"
    assert not hits, f"{len(hits)} CPR-like numbers kept: {hits[:20]}"
