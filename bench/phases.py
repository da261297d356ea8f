"""The measurements of one benchmark run, each on its own fresh embedded servers."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console

from bench import workload
from bench.harness import (
    TMP,
    BackgroundReader,
    Consumption,
    Offsets,
    Process,
    child_env,
    consume_measured,
    create_topics,
    fresh_stack,
    produce,
    read_topic,
    start_process,
    wait_ready,
)
from bench.proc import cpu_seconds, load_average, machine_cpu_ticks, peak_rss_mb, rss_mb, steal_share
from bench.profiling import summarise
from bench.stats import latency_summary, ratio
from schemas import topics
from schemas.periods import Period
from services.common.connections import KafkaConnection, as_connection

PREFIX = "bench."
SERVICE_INPUTS: dict[str, list[str]] = {
    "intake": [topics.APPLICATIONS, topics.NOTIFICATIONS],
    "analysis": [topics.CASE_REVIEWS],
    "followup": [topics.MILESTONES],
    "reporting": [topics.REPORTING, topics.COMMANDS],
}


def timeout_for(events: int, slowest_per_s: float = 100) -> float:
    return 120 + events / slowest_per_s


@dataclass
class Measured:
    consumption: Consumption
    load_before: list[float]
    load_after: list[float]
    #: Share of the machine's CPU time stolen by the hypervisor while the consumer ran.
    steal_share: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.consumption.as_dict(), load_before=self.load_before, load_after=self.load_after,
                    steal_share=self.steal_share)


async def measure_one(label: str, service: str, records: list[workload.Record], raw: bool,
                      capture: str | None = None, args: list[str] | None = None,
                      slowest_per_s: float = 100) -> tuple[Measured, list[workload.Record]]:
    """Publish `records` on fresh servers, then start the consumer and measure it to the end.

    With `capture`, the records of that (output) topic are read back afterwards.
    """
    with fresh_stack(label) as stack:
        await create_topics(stack, PREFIX)
        await produce(stack.connection, PREFIX, records)
        if args is None:
            args = ["-m", "bench.raw", service] if raw else ["-m", f"services.{service}"]
        group = f"{PREFIX}raw-{service}" if raw else f"{PREFIX}{service}"
        load_before, ticks_before = load_average(), machine_cpu_ticks()
        consumption = await consume_measured(
            stack, label, args, child_env(stack, PREFIX, label), group,
            [PREFIX + t for t in SERVICE_INPUTS[service]], len(records),
            timeout_for(len(records), slowest_per_s))
        load_after, ticks_after = load_average(), machine_cpu_ticks()
        captured = await read_topic(stack.connection, PREFIX, capture) if capture else []
    return Measured(consumption, load_before, load_after, steal_share(ticks_before, ticks_after)), captured


def _best(runs: list[Measured]) -> Measured:
    """Of repeated runs, the fastest: interference from other load only ever slows a run down."""
    return max(runs, key=lambda m: m.consumption.window.events_per_s)


async def throughput(service: str, records: list[workload.Record], repeat: int, console: Console,
                     capture: str | None = None) -> tuple[dict[str, Any], list[workload.Record]]:
    """Raw limit and service on the same input, alternating (raw, service, service, raw, ...)."""
    raws: list[Measured] = []
    services: list[Measured] = []
    captured: list[workload.Record] = []
    for i in range(repeat):
        order = (True, False) if i % 2 == 0 else (False, True)
        for raw in order:
            label = f"{'raw' if raw else 'svc'}-{service}-{i}"
            console.log(f"{label}: {len(records):,} records")
            measured, out = await measure_one(label, service, records, raw,
                                              capture=None if raw else capture)
            (raws if raw else services).append(measured)
            if out and not captured:
                captured = out
            c = measured.consumption
            console.log(f"  {c.window.events_per_s:,.0f} events/s, "
                        f"{c.window.cpu_per_event * 1e6:,.0f} µs CPU/event, peak RSS {c.peak_rss_mb:.0f} MB")
    best_raw, best_svc = _best(raws), _best(services)
    figures: dict[str, Any] = {
        "events": len(records),
        "events_per_s": round(best_svc.consumption.window.events_per_s, 1),
        "raw_events_per_s": round(best_raw.consumption.window.events_per_s, 1),
        "throughput_ratio": ratio(best_svc.consumption.window.events_per_s,
                                  best_raw.consumption.window.events_per_s),
        "cpu_s_per_event": round(min(m.consumption.window.cpu_per_event for m in services), 7),
        "raw_cpu_s_per_event": round(min(m.consumption.window.cpu_per_event for m in raws), 7),
        "peak_rss_mb": round(max(m.consumption.peak_rss_mb for m in services), 1),
        "raw_peak_rss_mb": round(max(m.consumption.peak_rss_mb for m in raws), 1),
    }
    figures["cpu_per_event_ratio"] = ratio(figures["cpu_s_per_event"], figures["raw_cpu_s_per_event"])
    figures["runs"] = {
        "service": [m.as_dict() for m in services],
        "raw": [m.as_dict() for m in raws],
    }
    if capture:
        figures["output_records"] = len(captured)
    return figures, captured


async def reporting_input(intake: list[workload.Record], console: Console) -> list[workload.Record]:
    """The reporting records intake emits for `intake`: the input of reporting on that workload
    (intake runs once, as the service, and is not measured)."""
    console.log(f"capture-intake: {len(intake):,} records, for reporting's input")
    _, captured = await measure_one(f"capture-intake-{len(intake)}", "intake", intake, raw=False,
                                    capture=workload.topics.REPORTING)
    return captured


async def batching(records: list[workload.Record], batch_events_per_s: float, batch_cpu: float,
                   console: Console) -> dict[str, Any]:
    """Intake with a one-in-flight subscriber (bench.single) on the first part of the input."""
    console.log(f"one-in-flight intake: {len(records):,} records")
    measured, _ = await measure_one("single-intake", "intake", records, raw=False,
                                    args=["-m", "bench.single"], slowest_per_s=5)
    c = measured.consumption
    console.log(f"  {c.window.events_per_s:,.0f} events/s, {c.window.cpu_per_event * 1e6:,.0f} µs CPU/event")
    return {
        "events": len(records),
        "one_in_flight_events_per_s": round(c.window.events_per_s, 1),
        "one_in_flight_cpu_s_per_event": round(c.window.cpu_per_event, 7),
        "batch_events_per_s": batch_events_per_s,
        "batch_cpu_s_per_event": batch_cpu,
        "speedup": ratio(batch_events_per_s, c.window.events_per_s),
        "cpu_saving": ratio(c.window.cpu_per_event, batch_cpu),
        "run": c.as_dict(),
    }


class SummaryWatcher(BackgroundReader):
    """Reads `taskforce.summaries` and times when each published notification is counted.

    It also reads `taskforce.reporting`, where intake's state of each live notification
    shows when the first hop (input → intake → reporting event) was done.
    """

    def __init__(self, bootstrap: str | KafkaConnection, prefix: str, period: str) -> None:
        self.summaries_topic = prefix + topics.SUMMARIES
        self.consumer = AIOKafkaConsumer(self.summaries_topic, prefix + topics.REPORTING,
                                         **as_connection(bootstrap).client_args(), group_id=None,
                                         auto_offset_reset="earliest", fetch_max_wait_ms=10)
        self.period = period
        self.pending: dict[str, deque[tuple[int, float]]] = defaultdict(deque)
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.first_hop: list[float] = []

    def expect(self, code: str, count: int, notification_id: str, sent_at: float) -> None:
        self.pending[code].append((count, sent_at))
        self.sent[notification_id] = sent_at

    def outstanding(self) -> int:
        return sum(len(q) for q in self.pending.values())

    def take(self) -> tuple[list[float], list[float]]:
        out, hop = self.latencies, self.first_hop
        self.latencies, self.first_hop = [], []
        return out, hop

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for tp, records in batch.items():
                for record in records:
                    if tp.topic == self.summaries_topic:
                        self.observe(json.loads(record.value), now)
                    else:
                        self.observe_state(json.loads(record.value), now)

    def observe_state(self, event: dict[str, Any], now: float) -> None:
        entity = event["data"].get("entity_id")  # none on reporting.progress (contract 1.1)
        if entity is None:
            return
        sent = self.sent.pop(entity, None)
        if sent is not None:
            self.first_hop.append(now - sent)

    def observe(self, summary: dict[str, Any], now: float) -> None:
        data = summary["data"]
        if data["period"] != self.period:
            return
        received = data["notifications"]["received"]
        queue = self.pending[summary["municipality_code"]]
        while queue and queue[0][0] <= received:
            self.latencies.append(now - queue.popleft()[1])


async def latency(rates: list[int], duration_s: float, console: Console,
                  fetch_max_wait_ms: int | None = None) -> dict[str, Any]:
    """All four services running; notifications at a fixed rate; publish → summary counting it.

    With `fetch_max_wait_ms`, every service runs with that fetch wait instead of its default.
    """
    out: dict[str, Any] = {}
    suffix = "" if fetch_max_wait_ms is None else f"-wait{fetch_max_wait_ms}"
    with fresh_stack(f"latency{suffix}") as stack:
        await create_topics(stack, PREFIX)
        processes: list[Process] = []
        try:
            for name in SERVICE_INPUTS:
                label = f"latency-{name}{suffix}"
                extra = ({} if fetch_max_wait_ms is None
                         else {"TASKFORCE_FETCH_MAX_WAIT_MS": str(fetch_max_wait_ms)})
                processes.append(start_process(label, ["-m", f"services.{name}"],
                                               child_env(stack, PREFIX, label, **extra)))
            for process in processes:
                await wait_ready(process)
            period = Period.of(datetime.now(UTC)).name
            watcher = SummaryWatcher(stack.connection, PREFIX, period)
            await watcher.start()
            producer = AIOKafkaProducer(**stack.connection.client_args(), acks="all", linger_ms=0,
                                        enable_idempotence=False)
            await producer.start()
            counts: dict[str, int] = defaultdict(int)
            try:
                console.log("latency warm-up: 3 s at 50/s (not counted)")
                await _publish_at(producer, watcher, counts, 50, 150, "warmup")
                await _settle(watcher)
                watcher.take()
                for rate in rates:
                    n = max(1, round(rate * duration_s))
                    console.log(f"latency at {rate}/s: {n:,} notifications over {duration_s:.0f} s")
                    cpu_before = {p.name: cpu_seconds(p.pid) for p in processes}
                    servers_before = stack.server_cpu()
                    started = time.monotonic()
                    sending_s = await _publish_at(producer, watcher, counts, rate, n, f"r{rate}")
                    await _settle(watcher)
                    elapsed = time.monotonic() - started
                    missing = watcher.outstanding()
                    for queue in watcher.pending.values():
                        queue.clear()  # counted as missing; the next rate starts clean
                    values, first_hop = watcher.take()
                    figures = latency_summary(values, missing)
                    hop = latency_summary(first_hop)
                    figures["to_reporting_event"] = {k: hop[k] for k in ("p50", "p95", "p99", "count")}
                    figures["achieved_rate"] = round(n / sending_s, 1)
                    figures["cpu_share"] = {
                        _service_of(p.name): round((cpu_seconds(p.pid) - cpu_before[p.name]) / elapsed, 3)
                        for p in processes}
                    figures["cpu_share"].update({
                        f"{name} (server)": round((seconds - servers_before.get(name, 0.0)) / elapsed, 3)
                        for name, seconds in stack.server_cpu().items()})
                    out[str(rate)] = figures
                    console.log(f"  p50 {figures['p50']} s, p95 {figures['p95']} s, p99 {figures['p99']} s, "
                                f"missing {missing}; input → intake's reporting event: p50 {hop['p50']} s, "
                                f"p99 {hop['p99']} s")
                    await asyncio.sleep(1)
            finally:
                await producer.stop()
                await watcher.stop()
        finally:
            for process in processes:
                process.stop()
    return out


def _service_of(label: str) -> str:
    return label.removeprefix("latency-").split("-wait")[0]


async def _publish_at(producer: AIOKafkaProducer, watcher: SummaryWatcher, counts: dict[str, int],
                      rate: float, n: int, run: str) -> float:
    """Publish `n` new notifications at `rate` per second, round-robin over the municipalities."""
    started = time.monotonic()
    for i in range(n):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        code = workload.MUNICIPALITIES[i % len(workload.MUNICIPALITIES)]
        counts[code] += 1
        topic, key, value = workload.live_notification(code, counts[code], datetime.now(UTC), run)
        watcher.expect(code, counts[code], workload.live_notification_id(code, counts[code], run),
                       time.monotonic())
        await producer.send(PREFIX + topic, value, key=key)
    return time.monotonic() - started


async def _settle(watcher: SummaryWatcher, limit_s: float = 30) -> None:
    """Until every published notification is counted in a summary, or `limit_s` seconds."""
    for _ in range(int(limit_s / 0.05)):
        if not watcher.outstanding():
            return
        await asyncio.sleep(0.05)


async def memory(total: int, first_at: int, console: Console) -> dict[str, Any]:
    """Intake through `total` generated records, produced in chunks while it consumes."""
    chunk = max(2_000, min(20_000, total // 50))
    samples: list[dict[str, float]] = []
    rss_first: float | None = None
    with fresh_stack("memory") as stack:
        await create_topics(stack, PREFIX)
        process = start_process("memory-intake", ["-m", "services.intake"],
                                child_env(stack, PREFIX, "memory-intake"))
        producer = AIOKafkaProducer(**stack.connection.client_args(), acks="all", linger_ms=10,
                                    max_batch_size=512 * 1024, enable_idempotence=False)
        await producer.start()
        generator = workload.intake_events(total)
        produced = 0
        started = time.monotonic()
        next_log = started + 30
        try:
            async with Offsets(stack.connection, f"{PREFIX}intake",
                               [PREFIX + t for t in SERVICE_INPUTS["intake"]]) as offsets:
                last_sample = 0.0
                while True:
                    committed = await offsets.committed()
                    process.check()
                    now = time.monotonic()
                    if produced < total and produced - committed < 2 * chunk:
                        batch = list(itertools.islice(generator, chunk))
                        futures = [await producer.send(PREFIX + t, v, key=k) for t, k, v in batch]
                        await asyncio.gather(*futures)
                        produced += len(batch)
                    rss = rss_mb(process.pid)
                    if rss_first is None and committed >= first_at:
                        rss_first = rss
                        console.log(f"  RSS at {committed:,} records: {rss:.1f} MB")
                    if now - last_sample >= 2 or committed >= total:
                        samples.append({"t": round(now - started, 1), "committed": committed,
                                        "rss_mb": round(rss, 1)})
                        last_sample = now
                    if now > next_log:
                        console.log(f"  {committed:,}/{total:,} committed, RSS {rss:.1f} MB")
                        next_log = now + 30
                    if committed >= total:
                        break
                    if now - started > timeout_for(total):
                        raise TimeoutError(f"memory run: {committed}/{total} after {now - started:.0f} s")
                    await asyncio.sleep(0.2)
            rss_end = rss_mb(process.pid)
            peak = peak_rss_mb(process.pid)
        finally:
            await producer.stop()
            process.stop()
    elapsed = time.monotonic() - started
    return {
        "events": total,
        "first_sample_at": first_at,
        "rss_mb_at_first_sample": round(rss_first or 0.0, 1),
        "rss_mb_at_end": round(rss_end, 1),
        "peak_rss_mb": round(peak, 1),
        "events_per_s_overall": round(total / elapsed, 1),
        "seconds": round(elapsed, 1),
        "samples": samples,
    }


async def profile(service: str, records: list[workload.Record], console: Console) -> dict[str, Any]:
    """The service under cProfile on `records` (its own run; the timings above are unprofiled)."""
    out = TMP / f"profile-{service}.prof"
    out.unlink(missing_ok=True)
    console.log(f"profiling {service}: {len(records):,} records")
    await measure_one(f"profile-{service}", service, records, raw=False,
                      args=["-m", "bench.profiled", service, str(out)])
    if not await profile_written(out):
        return {"error": "no profile written"}
    return summarise(out, len(records))


async def profile_written(out: Path) -> bool:
    """Whether bench.profiled wrote `out` (it does when its process exits: wait up to 10 s)."""
    for _ in range(100):
        if await asyncio.to_thread(out.exists):
            return True
        await asyncio.sleep(0.1)
    return await asyncio.to_thread(out.exists)


def profile_path(service: str) -> Path:
    return TMP / f"profile-{service}.prof"


def first(records: Iterable[workload.Record], n: int) -> list[workload.Record]:
    return list(itertools.islice(records, n))
