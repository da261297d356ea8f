"""The ingestion gateway's throughput against producing the same events with aiokafka directly.

On fresh embedded servers (as every measurement), the gateway runs as its own process
(`python -m services.gateway`, unchanged) with a tokens file holding one token for every
municipality ("*", as `make up` makes it) and a rate limit high enough never to answer 429:
what is measured is the gateway's work, not its per-token limit. The bench posts the N
events as JSON Lines, `BENCH_GATEWAY_REQUEST` (1,000, the gateway's limit) events per
request, one request at a time, as `taskforce publish --gateway` does.

The reference, on its own fresh servers, produces the same records in the same chunks with
an aiokafka producer configured as the gateway's (`services.gateway.sink`: acks=all, the
idempotent producer where the broker supports it, the same linger and batch size), waiting
for each chunk's acknowledgements before the next, as a request does. No HTTP, no
validation, no scope check, no answer.

Both are timed from the end of the first request (chunk) to the end of the last (the first
one, with the process's lazily built validators and connections, is outside the window, as
the first batch is for the consumers); afterwards every one of the N records (topic, key
and bytes) must be read back from the topics.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console

from bench import workload
from bench.harness import (
    TMP,
    Stack,
    child_env,
    create_topics,
    fresh_stack,
    read_topic,
    start_process,
    wait_ready,
)
from bench.proc import cpu_seconds, load_average, machine_cpu_ticks, peak_rss_mb, steal_share
from bench.profiling import summarise
from bench.stats import ratio

PREFIX = "bench."
TOKEN = "bench-gateway-token-for-every-municipality"
NDJSON = "application/x-ndjson"
#: Per-token rate far above what one machine can post: the limiter is not what is measured.
UNLIMITED = "1000000000"


@dataclass
class Run:
    """One timed run: events in the window, its length, CPU of the measured process."""

    label: str
    events: int
    accepted: int
    measured_events: int
    measured_s: float
    cpu_s: float
    on_topics: int
    load_before: list[float]
    load_after: list[float]
    steal_share: float | None
    peak_rss_mb: float | None = None
    client_cpu_s: float | None = None
    idempotent: bool | None = None

    @property
    def events_per_s(self) -> float:
        return self.measured_events / self.measured_s if self.measured_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "events": self.events,
            "accepted": self.accepted,
            "on_topics": self.on_topics,
            "measured_events": self.measured_events,
            "measured_s": round(self.measured_s, 3),
            "events_per_s": round(self.events_per_s, 1),
            "cpu_s_per_event": round(self.cpu_s / max(self.measured_events, 1), 7),
            "load_before": self.load_before,
            "load_after": self.load_after,
            "steal_share": self.steal_share,
        }
        if self.peak_rss_mb is not None:
            out["peak_rss_mb"] = round(self.peak_rss_mb, 1)
        if self.client_cpu_s is not None:
            out["client_cpu_s_per_event"] = round(self.client_cpu_s / max(self.measured_events, 1), 7)
        if self.idempotent is not None:
            out["idempotent"] = self.idempotent
        return out


def chunks(records: list[workload.Record], size: int) -> list[list[workload.Record]]:
    return [records[i:i + size] for i in range(0, len(records), size)]


def ndjson_body(chunk: list[workload.Record]) -> bytes:
    """A JSON Lines request body: each event's own bytes, one per line."""
    return b"\n".join(value for _topic, _key, value in chunk) + b"\n"


async def records_on_topics(stack: Stack, records: list[workload.Record]) -> int:
    """How many of `records` are on their topics, read back (the embedded broker's end
    offsets are the last batch's base offset, not the next offset, so they cannot be summed)."""
    found: list[workload.Record] = []
    for name in sorted({topic for topic, _key, _value in records}):
        found += await read_topic(stack.connection, PREFIX, name)
    wanted = Counter(records)
    return sum(min(count, wanted[record]) for record, count in Counter(found).items())


async def _timed(batches: list[list[workload.Record]], send: Callable[[list[workload.Record]],
                 Awaitable[int]], cpu: Callable[[], float]) -> tuple[int, int, float, float]:
    """Send the batches one after the other; (accepted, events in the window, window s, CPU s).

    The window runs from the end of the first batch to the end of the last.
    """
    accepted = await send(batches[0])
    started, cpu_before = time.monotonic(), cpu()
    for batch in batches[1:]:
        accepted += await send(batch)
    seconds, cpu_s = time.monotonic() - started, cpu() - cpu_before
    measured = sum(len(b) for b in batches[1:])
    if len(batches) == 1:  # no window: the one request, start-up effects and all
        measured, seconds = len(batches[0]), max(seconds, 1e-9)
    return accepted, measured, seconds, cpu_s


async def through_gateway(label: str, records: list[workload.Record], request_size: int,
                          console: Console, args: list[str] | None = None) -> Run:
    """The gateway as a process on fresh servers; the records posted as JSON Lines."""
    with fresh_stack(label) as stack:
        await create_topics(stack, PREFIX)
        tokens = TMP / f"{label}-tokens.json"
        tokens.write_text(json.dumps({TOKEN: "*"}))
        tokens.chmod(0o600)
        env = child_env(stack, PREFIX, label, TASKFORCE_TOKENS_FILE=str(tokens),
                        TASKFORCE_GATEWAY_RATE_EVENTS_PER_S=UNLIMITED,
                        TASKFORCE_GATEWAY_RATE_BURST_EVENTS=UNLIMITED)
        process = start_process(label, args or ["-m", "services.gateway"], env)
        try:
            await wait_ready(process)
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": NDJSON}
            batches = chunks(records, request_size)
            bodies = {id(c): ndjson_body(c) for c in batches}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{process.http_port}", timeout=60,
                                         headers=headers) as http:

                async def post(chunk: list[workload.Record]) -> int:
                    answer = await http.post("/v1/events", content=bodies[id(chunk)])
                    if answer.status_code != 200:
                        raise RuntimeError(f"{label}: the gateway answered {answer.status_code}: "
                                           f"{answer.text[:500]}")
                    return int(answer.json()["accepted"])

                load_before, ticks_before = load_average(), machine_cpu_ticks()
                client_before = time.process_time()
                accepted, measured, seconds, cpu_s = await _timed(
                    batches, post, lambda: cpu_seconds(process.pid))
                client_s = time.process_time() - client_before
                load_after, ticks_after = load_average(), machine_cpu_ticks()
            peak = peak_rss_mb(process.pid)
            on_topics = await records_on_topics(stack, records)
        finally:
            process.stop()
    run = Run(label, len(records), accepted, measured, seconds, cpu_s, on_topics, load_before, load_after,
              steal_share(ticks_before, ticks_after), peak_rss_mb=peak, client_cpu_s=client_s)
    console.log(f"  {run.events_per_s:,.0f} events/s accepted, {run.cpu_s / max(measured, 1) * 1e6:,.0f} µs "
                f"gateway CPU/event, peak RSS {peak:.0f} MB, {on_topics:,} records on the topics")
    return run


async def direct(label: str, records: list[workload.Record], request_size: int, console: Console) -> Run:
    """The same records with the gateway's producer settings, chunk by chunk, no HTTP."""
    from services.gateway.config import GatewayConfig
    from services.gateway.sink import Sink

    with fresh_stack(label) as stack:
        await create_topics(stack, PREFIX)
        sink = Sink(stack.connection, PREFIX, GatewayConfig(), f"{PREFIX}{label}")
        producer = await sink._start_producer()  # the gateway's own configuration and idempotence choice
        try:

            async def send(chunk: list[workload.Record]) -> int:
                futures = [await producer.send(PREFIX + topic, value, key=key) for topic, key, value in chunk]
                await asyncio.gather(*futures)
                return len(futures)

            load_before, ticks_before = load_average(), machine_cpu_ticks()
            accepted, measured, seconds, cpu_s = await _timed(chunks(records, request_size), send,
                                                              time.process_time)
            load_after, ticks_after = load_average(), machine_cpu_ticks()
        finally:
            await producer.stop()
        on_topics = await records_on_topics(stack, records)
    run = Run(label, len(records), accepted, measured, seconds, cpu_s, on_topics, load_before, load_after,
              steal_share(ticks_before, ticks_after), idempotent=sink.idempotent)
    per_event_us = run.cpu_s / max(measured, 1) * 1e6
    console.log(f"  {run.events_per_s:,.0f} events/s acknowledged, {per_event_us:,.0f} µs "
                f"producer CPU/event (idempotent: {sink.idempotent})")
    return run


async def profile(records: list[workload.Record], request_size: int, console: Console) -> dict[str, Any]:
    """The gateway under cProfile (`bench.profiled`, from the first request's body to exit)."""
    out = TMP / "profile-gateway.prof"
    out.unlink(missing_ok=True)
    console.log(f"profiling the gateway: {len(records):,} events")
    await through_gateway("profile-gateway", records, request_size, console,
                          args=["-m", "bench.profiled", "gateway", str(out)])
    for _ in range(100):  # written when the process has exited
        if out.exists():
            break
        await asyncio.sleep(0.1)
    return summarise(out, len(records)) if out.exists() else {"error": "no profile written"}


async def measure(records: list[workload.Record], request_size: int, repeat: int,
                  console: Console, profiled: bool = False) -> dict[str, Any]:
    """Direct and gateway runs alternating (direct, gateway, gateway, direct, ...); best of each;
    then, with `profiled`, one more gateway run under cProfile (not timed)."""
    gateway_runs: list[Run] = []
    direct_runs: list[Run] = []
    for i in range(repeat):
        order = ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")
        for kind in order:
            label = f"{kind}-gateway-{i}" if kind == "direct" else f"gateway-{i}"
            console.log(f"{label}: {len(records):,} events in requests of {request_size:,} "
                        f"({'aiokafka directly' if kind == 'direct' else 'POST /v1/events, JSON Lines'})")
            if kind == "direct":
                direct_runs.append(await direct(label, records, request_size, console))
            else:
                gateway_runs.append(await through_gateway(label, records, request_size, console))
    best_gateway = max(gateway_runs, key=lambda r: r.events_per_s)
    best_direct = max(direct_runs, key=lambda r: r.events_per_s)
    lost = [r.label for r in gateway_runs + direct_runs if r.on_topics != r.events or r.accepted != r.events]
    figures: dict[str, Any] = {
        "events": len(records),
        "request_events": request_size,
        "request_bytes_mean": round(sum(len(ndjson_body(c)) for c in chunks(records, request_size))
                                    / max(len(chunks(records, request_size)), 1)),
        "media_type": NDJSON,
        "events_per_s": round(best_gateway.events_per_s, 1),
        "direct_events_per_s": round(best_direct.events_per_s, 1),
        "throughput_ratio": ratio(best_gateway.events_per_s, best_direct.events_per_s),
        "cpu_s_per_event": round(best_gateway.cpu_s / max(best_gateway.measured_events, 1), 7),
        "direct_cpu_s_per_event": round(best_direct.cpu_s / max(best_direct.measured_events, 1), 7),
        "idempotent": best_direct.idempotent,
        "incomplete_runs": lost,
        "runs": {"gateway": [r.as_dict() for r in gateway_runs],
                 "direct": [r.as_dict() for r in direct_runs]},
    }
    if profiled:
        figures["profile"] = await profile(records, request_size, console)
    return figures
