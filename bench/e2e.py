"""The end-to-end phase: the national replay through all four services, to the last summary.

Fresh servers; the whole replay (bench/national.py) is published first, as a history waiting
on the topics; then intake, analysis, follow-up and reporting start as processes
(`python -m services.<name>`, unchanged) and digest it. The replay is done when every
municipality's summary for the period of its last event is as of that event and shows all of
the period's events (`national.Expected`), and every consumer group has committed all of its
input. The CPU of each process (from /proc) is read when intake's first commit is seen and at
the end; the window between them is the one the other phases use (start-up left out).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from rich.console import Console

from bench import national
from bench.harness import (
    TMP,
    BackgroundReader,
    Offsets,
    Process,
    Stack,
    child_env,
    create_topics,
    fresh_stack,
    produce,
    read_topic,
    start_process,
)
from bench.phases import PREFIX, SERVICE_INPUTS, measure_one
from bench.proc import cpu_seconds, load_average, machine_cpu_ticks, peak_rss_mb, steal_share
from bench.stats import cpu_bound, ratio
from bench.store_profile import StoreProfile
from bench.workload import Record
from schemas import topics

SERVICES = tuple(SERVICE_INPUTS)
#: The input topics of the three owning services: a replayed record is one of these.
OWNED = {"intake": SERVICE_INPUTS["intake"], "analysis": SERVICE_INPUTS["analysis"],
         "followup": SERVICE_INPUTS["followup"]}
STORE = "mongodb"
POLL_S = 0.1


def timeout_for(records: int) -> float:
    return 300 + records / 200


class LatestSummaries(BackgroundReader):
    """Reads `taskforce.summaries` until each municipality's summary shows what it expects."""

    def __init__(self, stack: Stack, expected: dict[str, national.Expected]) -> None:
        self.topic = PREFIX + topics.SUMMARIES
        self.consumer = AIOKafkaConsumer(self.topic, **stack.connection.client_args(), group_id=None,
                                         auto_offset_reset="earliest", fetch_max_wait_ms=50)
        self.expected = expected
        self.pending = set(expected)
        self.seen = 0

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    self.seen += 1
                    code = record.key.decode() if record.key else ""
                    if code in self.pending and self.expected[code].met_by(json.loads(record.value)):
                        self.pending.discard(code)


@dataclass
class Snapshot:
    """CPU seconds of every process involved, at one moment."""

    t: float
    processes: dict[str, float]
    servers: dict[str, float]
    bench: float

    @classmethod
    def take(cls, processes: list[Process], stack: Stack) -> Snapshot:
        return cls(time.monotonic(), {p.name: cpu_seconds(p.pid) for p in processes}, stack.server_cpu(),
                   time.process_time())


async def _all_committed(groups: dict[str, Offsets]) -> bool:
    """Whether every group has committed its input up to the end offsets as they stand now."""
    for offsets in groups.values():
        ends = await offsets.consumer.end_offsets(offsets.partitions)
        if await offsets.committed() < sum(ends.values()):
            return False
    return True


async def _end_total(offsets: Offsets) -> int:
    return sum((await offsets.consumer.end_offsets(offsets.partitions)).values())


def _inputs(replay: national.Replay) -> dict[str, list[Record]]:
    """The replay's records per owning service (its input topics), in publishing order."""
    return {name: [r for r in replay.records if r[0] in owned] for name, owned in OWNED.items()}


async def run_replay(replay: national.Replay, console: Console) -> tuple[dict[str, Any], list[Record]]:
    """Publish the replay, run the four services on it until done; figures and the reporting
    records the owning services emitted (the reporting service's input)."""
    records = len(replay.records)
    with fresh_stack("e2e") as stack:
        await create_topics(stack, PREFIX)
        console.log(f"e2e: publishing the national replay, {records:,} records")
        published = time.monotonic()
        await produce(stack.connection, PREFIX, replay.records)
        publish_s = time.monotonic() - published
        console.log(f"  published in {publish_s:.1f} s; starting intake, analysis, followup, reporting")
        watcher = LatestSummaries(stack, replay.expected)
        await watcher.start()
        processes: list[Process] = []
        profile = StoreProfile(stack.mongo.process.pid, TMP / "e2e" / "store-profile.txt")
        try:
            async with contextlib.AsyncExitStack() as exits:
                groups = {name: await exits.enter_async_context(
                    Offsets(stack.connection, PREFIX + name, [PREFIX + t for t in inputs]))
                    for name, inputs in SERVICE_INPUTS.items()}
                load_before, ticks_before = load_average(), machine_cpu_ticks()
                started = time.monotonic()
                for name in SERVICES:
                    label = f"e2e-{name}"
                    processes.append(start_process(label, ["-m", f"services.{name}"],
                                                   child_env(stack, PREFIX, label)))
                first: Snapshot | None = None
                complete = False
                deadline, next_log = started + timeout_for(records), started + 30
                while True:
                    for process in processes:
                        process.check()
                    now = time.monotonic()
                    if first is None and await groups["intake"].committed() > 0:
                        first = Snapshot.take(processes, stack)
                        profile.start()
                    if first is not None and not watcher.pending and await _all_committed(groups):
                        complete = True
                        break
                    if now > deadline:
                        console.log(f"[red]e2e: not done after {now - started:.0f} s; municipalities "
                                    f"without their final summary: {sorted(watcher.pending)[:20]}")
                        break
                    if now > next_log:
                        console.log(f"  {now - started:.0f} s: intake {await groups['intake'].committed():,} "
                                    f"committed, {len(watcher.pending)} municipalities to go, "
                                    f"{watcher.seen:,} summaries read")
                        next_log = now + 30
                    await asyncio.sleep(POLL_S)
                last = Snapshot.take(processes, stack)
                store_profile = profile.stop()
                load_after, ticks_after = load_average(), machine_cpu_ticks()
                reporting_records = await _end_total(groups["reporting"])
                peaks = {p.name.removeprefix("e2e-"): round(peak_rss_mb(p.pid), 1) for p in processes}
        finally:
            for process in processes:
                process.stop()
            await watcher.stop()
        captured = await read_topic(stack.connection, PREFIX, topics.REPORTING)
    first = first or last
    window = last.t - first.t
    cpu = {name.removeprefix("e2e-"): last.processes[name] - first.processes[name] for name in last.processes}
    cpu.update({f"{name} (server)": last.servers[name] - first.servers.get(name, 0.0)
                for name in last.servers})
    figures: dict[str, Any] = {
        **replay.scale(),
        "complete": complete,
        "missing_summaries": sorted(watcher.pending),
        "publish_s": round(publish_s, 1),
        "seconds": round(window, 2),
        "seconds_with_startup": round(last.t - started, 2),
        "records_per_s": round(records / window, 1) if window > 0 else None,
        "records_per_s_with_startup": round(records / (last.t - started), 1),
        "cpu_s_per_record": {name: round(seconds / records, 7) for name, seconds in cpu.items()},
        "cpu_s_per_record_total": round(sum(cpu.values()) / records, 7),
        "bench_cpu_s_per_record": round((last.bench - first.bench) / records, 7),
        "cpu_cores_busy": round(sum(cpu.values()) / window, 2) if window > 0 else None,
        "reporting_records": reporting_records,
        "summaries_read": watcher.seen,
        "peak_rss_mb": peaks,
        "load_before": load_before,
        "load_after": load_after,
        "steal_share": steal_share(ticks_before, ticks_after),
        "store_profile": store_profile or {"unavailable": profile.error or "no samples"},
    }
    return figures, captured


def reference_from_throughput(services: dict[str, Any]) -> dict[str, Any] | None:
    """The raw consumers' CPU per event (and the store's under them) from the throughput phase
    of the same run, when it measured all four; its best raw run per service."""
    if not all(services.get(name) for name in SERVICES):
        return None
    raw_cpu, store = {}, {}
    for name in SERVICES:
        figures = services[name]
        raw_cpu[name] = figures["raw_cpu_s_per_event"]
        best = max(figures["runs"]["raw"], key=lambda run: run.get("events_per_s") or 0.0)
        store[name] = (best.get("server_cpu_s_per_event") or {}).get(STORE, 0.0)
    return {"source": "the throughput phase of this run (its workload: 5 municipalities, "
                      f"BENCH_EVENTS={services['intake']['events']:,}), not this replay",
            "raw_cpu_s_per_event": raw_cpu, "store_cpu_s_per_event": store}


async def reference_on_replay(inputs: dict[str, list[Record]], console: Console) -> dict[str, Any] | None:
    """The raw consumers (bench.raw) on this replay's own inputs, each on fresh servers; None
    when one of them failed (the e2e figures stand without the bound)."""
    raw_cpu, store = {}, {}
    for name, records in inputs.items():
        console.log(f"e2e raw reference: raw-{name} on {len(records):,} records")
        try:
            measured, _ = await measure_one(f"e2e-raw-{name}", name, records, raw=True)
        except (RuntimeError, TimeoutError) as error:
            console.log(f"[red]  raw-{name} failed, no CPU bound: {str(error)[-500:]}")
            return None
        raw_cpu[name] = round(measured.consumption.window.cpu_per_event, 7)
        store[name] = round(measured.consumption.server_cpu_per_event.get(STORE, 0.0), 7)
        console.log(f"  {measured.consumption.window.events_per_s:,.0f} events/s, "
                    f"{raw_cpu[name] * 1e6:,.0f} µs CPU/event, store {store[name] * 1e6:,.0f} µs/event")
    return {"source": "the raw consumers (bench.raw) on this replay's own inputs",
            "raw_cpu_s_per_event": raw_cpu, "store_cpu_s_per_event": store}


async def measure(replay: national.Replay, services: dict[str, Any], console: Console,
                  raw: bool | None = None) -> tuple[dict[str, Any], list[Record]]:
    """The e2e figures with the ratio to the CPU bound, and the reporting records the owning
    services emitted (reporting's national workload). `raw`: measure the raw consumers on the
    replay (None: only when the throughput phase did not run)."""
    reference = None if raw else reference_from_throughput(services)
    figures, captured = await run_replay(replay, console)
    console.log(f"  e2e: {figures['records_per_s'] or 0:,.0f} records/s over {figures['seconds']} s "
                f"(complete: {figures['complete']}), {figures['cpu_s_per_record_total'] * 1e6:,.0f} µs CPU "
                "per record in all")
    inputs = _inputs(replay)
    counts = {name: len(records) for name, records in inputs.items()}
    counts["reporting"] = figures["reporting_records"]
    figures["inputs"] = counts
    figures["cpu_s_per_input_event"] = {
        name: round(figures["cpu_s_per_record"][name] * len(replay.records) / counts[name], 7)
        for name in SERVICES if counts[name]}
    if reference is None:
        reference = await reference_on_replay(dict(inputs, reporting=captured), console)
    figures["cpu_bound"], figures["ratio_to_cpu_bound"] = None, None
    if reference is not None:
        bound = cpu_bound(reference["raw_cpu_s_per_event"], reference["store_cpu_s_per_event"], counts,
                          len(replay.records), os.cpu_count() or 1)
        figures["cpu_bound"] = dict(reference, **bound)
        figures["ratio_to_cpu_bound"] = ratio(figures["records_per_s"], bound["records_per_s"])
        console.log(f"  CPU bound {bound['records_per_s'] or 0:,.0f} records/s on {bound['cores']} cores; "
                    f"e2e × {figures['ratio_to_cpu_bound']}")
    return figures, captured
