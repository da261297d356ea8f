"""What tracing costs intake: CPU per event with tracing off, on at 100 % and on at 1 % (#27).

On fresh embedded servers for every run (as the throughput phase), the intake workload is
published, then the real intake service (`python -m services.intake`, unchanged) consumes it
and is measured over the steady window exactly as in the throughput phase
(`bench.harness.consume_measured`: CPU of the process from /proc, events/s). Three
configurations, alternating (off, 100 %, 1 %, off, 100 %, 1 %, ...):

- **off**: no `OTEL_*` variable at all (the default: nothing is traced or exported), and the
  records carry no `traceparent` — what `taskforce publish` sends without an endpoint;
- **on_100**: `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a small OTLP/HTTP sink in the bench
  process (`Sink`: answers 200 to `POST /v1/traces`, counts requests, bytes and spans),
  `OTEL_TRACES_SAMPLER=parentbased_traceidratio`, `OTEL_TRACES_SAMPLER_ARG=1.0`;
- **on_1**: the same at `0.01`.

For the on-configurations every record carries a `traceparent` header as `taskforce publish`
would give it with tracing on at the same rate: a fresh random trace id per record (each is
the root of its trace), and the sampled flag as the publisher's `parentbased_traceidratio`
sampler decides it (`TraceIdRatioBased`: the trace id's low 64 bits under rate × 2^64), so
~1 % of records at 1 %, all at 100 %. Intake's parent-based sampler then follows the flag
for the records' spans; its batch spans are roots, sampled at the rate.
"""

from __future__ import annotations

import asyncio
import gzip
import pstats
import random
import statistics
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry.trace import SpanContext, TraceFlags
from rich.console import Console

from bench import workload
from bench.harness import TMP, child_env, consume_measured, create_topics, fresh_stack
from bench.phases import PREFIX, SERVICE_INPUTS, profile_written, timeout_for
from bench.proc import load_average, machine_cpu_ticks, steal_share
from bench.profiling import Row, is_idle, rows_of, top_functions
from bench.profiling import summarise as summarise_profile
from bench.stats import ratio, tracing_finding
from services.common.connections import KafkaConnection, as_connection
from services.common.tracing import TRACEPARENT, format_traceparent

#: (name, sampling rate; None: tracing off), in the order the runs alternate.
CONFIGURATIONS: tuple[tuple[str, float | None], ...] = (("off", None), ("on_100", 1.0), ("on_1", 0.01))
SAMPLER = "parentbased_traceidratio"
#: The sampler's rule (opentelemetry.sdk.trace.sampling.TraceIdRatioBased).
TRACE_ID_LIMIT = (1 << 64) - 1
TRACING_MODULE = "/services/common/tracing.py"


def sampling_bound(rate: float) -> int:
    return round(rate * (TRACE_ID_LIMIT + 1))


def traceparents(count: int, rate: float, seed: int = 27) -> list[str]:
    """`count` traceparent values as a publisher tracing at `rate` would send them: a fresh
    random trace and span id each, sampled flag set where its sampler would keep the trace."""
    rng = random.Random(seed)
    bound = sampling_bound(rate)
    out = []
    for _ in range(count):
        trace_id = rng.getrandbits(128) or 1
        span_id = rng.getrandbits(64) or 1
        flags = TraceFlags(TraceFlags.SAMPLED if trace_id & TRACE_ID_LIMIT < bound else TraceFlags.DEFAULT)
        out.append(format_traceparent(SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)))
    return out


def sampled(values: Iterable[str]) -> int:
    """How many of the traceparent values have the sampled flag."""
    return sum(1 for value in values if int(value[-2:], 16) & 1)


def tracing_env(env: Mapping[str, str], rate: float | None, endpoint: str) -> dict[str, str]:
    """A service's environment for one configuration: every OTEL_* of `env` removed, then the
    exporter and sampler set when tracing is on (`rate` not None)."""
    out = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    if rate is not None:
        out.update({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER": SAMPLER,
                    "OTEL_TRACES_SAMPLER_ARG": repr(float(rate))})
    return out


# --- the OTLP/HTTP sink ---------------------------------------------------------------------


@dataclass
class SinkCounts:
    requests: int = 0
    bytes: int = 0
    spans: int = 0
    errors: int = 0


class Sink:
    """An OTLP/HTTP trace receiver on a free loopback port: 200 to `POST /v1/traces`, counting
    requests, bytes (as received) and spans (the protobuf decoded)."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        counts = self.counts = SinkCounts()
        lock = self.lock = threading.Lock()
        answer = ExportTraceServiceResponse().SerializeToString()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/traces":
                    self._answer(404, b"")
                    return
                try:
                    raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
                    request = ExportTraceServiceRequest.FromString(raw)
                    spans = sum(len(scope.spans) for resource in request.resource_spans
                                for scope in resource.scope_spans)
                except Exception:  # counted: a sink never fails the exporter
                    with lock:
                        counts.errors += 1
                    self._answer(400, b"")
                    return
                with lock:
                    counts.requests += 1
                    counts.bytes += len(body)
                    counts.spans += spans
                self._answer(200, answer)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-sink", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def snapshot(self) -> SinkCounts:
        with self.lock:
            return SinkCounts(self.counts.requests, self.counts.bytes, self.counts.spans, self.counts.errors)

    def __enter__(self) -> Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# --- runs -----------------------------------------------------------------------------------


async def produce_traced(bootstrap: str | KafkaConnection, prefix: str, records: Sequence[workload.Record],
                         headers: Sequence[str] | None, chunk: int = 20_000) -> int:
    """`bench.harness.produce`, with a `traceparent` header per record when `headers` is given."""
    producer = AIOKafkaProducer(**as_connection(bootstrap).client_args(), acks="all", linger_ms=10,
                                max_batch_size=512 * 1024, max_request_size=8 * 1024 * 1024,
                                enable_idempotence=False)
    await producer.start()
    try:
        for start in range(0, len(records), chunk):
            futures = []
            for i in range(start, min(start + chunk, len(records))):
                topic, key, value = records[i]
                extra = [(TRACEPARENT, headers[i].encode())] if headers is not None else None
                futures.append(await producer.send(prefix + topic, value, key=key, headers=extra))
            for future in futures:
                await future
        return len(records)
    finally:
        await producer.stop()


@dataclass
class Run:
    label: str
    configuration: str
    events: int
    sampled_records: int
    measured: dict[str, Any]
    sink: SinkCounts
    load_before: list[float]
    load_after: list[float]
    steal_share: float | None
    problems: list[str] = field(default_factory=list)

    @property
    def cpu_s_per_event(self) -> float:
        return float(self.measured["cpu_s_per_event"])

    @property
    def events_per_s(self) -> float:
        return float(self.measured["events_per_s"])

    def as_dict(self) -> dict[str, Any]:
        return dict(self.measured, configuration=self.configuration, sampled_records=self.sampled_records,
                    sink_requests=self.sink.requests, sink_bytes=self.sink.bytes, spans=self.sink.spans,
                    sink_errors=self.sink.errors, load_before=self.load_before, load_after=self.load_after,
                    steal_share=self.steal_share, problems=self.problems)


def run_problems(configuration: str, rate: float | None, spans: int, errors: int) -> list[str]:
    """The sanity check of one run: spans arrive when tracing is on, none when it is off."""
    problems = []
    if rate is None and spans:
        problems.append(f"{configuration}: {spans} spans exported with tracing off")
    if rate is not None and spans <= 0:
        problems.append(f"{configuration}: no span reached the sink")
    if errors:
        problems.append(f"{configuration}: {errors} export requests the sink could not decode")
    return problems


async def one_run(label: str, configuration: str, rate: float | None, records: list[workload.Record],
                  headers: list[str] | None, console: Console, args: list[str] | None = None) -> Run:
    with Sink() as sink, fresh_stack(label) as stack:
        await create_topics(stack, PREFIX)
        await produce_traced(stack.connection, PREFIX, records, headers)
        env = tracing_env(child_env(stack, PREFIX, label), rate, sink.endpoint)
        load_before, ticks_before = load_average(), machine_cpu_ticks()
        consumption = await consume_measured(
            stack, label, args or ["-m", "services.intake"], env, f"{PREFIX}intake",
            [PREFIX + t for t in SERVICE_INPUTS["intake"]], len(records), timeout_for(len(records)))
        load_after, ticks_after = load_average(), machine_cpu_ticks()
        # the service flushed its spans at exit (SIGTERM); an export in flight may still be answered
        deadline = time.monotonic() + 2
        counts = sink.snapshot()
        while time.monotonic() < deadline and rate is not None:
            await asyncio.sleep(0.1)
            again = sink.snapshot()
            if again.requests == counts.requests:
                break
            counts = again
    run = Run(label, configuration, len(records), sampled(headers) if headers else 0, consumption.as_dict(),
              counts, load_before, load_after, steal_share(ticks_before, ticks_after),
              run_problems(configuration, rate, counts.spans, counts.errors))
    console.log(f"  {run.events_per_s:,.0f} events/s, {run.cpu_s_per_event * 1e6:,.1f} µs CPU/event, "
                f"{counts.spans:,} spans in {counts.requests:,} exports ({counts.bytes / 1e6:,.1f} MB)"
                + (f"  [red]{'; '.join(run.problems)}[/]" if run.problems else ""))
    return run


def summarise(runs: Sequence[Run], events: int, rounds: int) -> dict[str, Any]:
    """Per configuration the best (lowest) CPU per event and the best events/s of its runs (other
    load only ever adds to them, as in the throughput phase), their cost against off, and the
    per-round costs (each configuration against the off run of the same round)."""
    by: dict[str, list[Run]] = {name: [r for r in runs if r.configuration == name]
                                for name, _ in CONFIGURATIONS}
    figures: dict[str, Any] = {}
    for name, rate in CONFIGURATIONS:
        mine = by[name]
        if not mine:
            continue
        figures[name] = {
            "sampler_arg": rate,
            "cpu_s_per_event": round(min(r.cpu_s_per_event for r in mine), 7),
            "cpu_s_per_event_median": round(statistics.median(r.cpu_s_per_event for r in mine), 7),
            "events_per_s": round(max(r.events_per_s for r in mine), 1),
            "sampled_records": mine[0].sampled_records,
            "spans": [r.sink.spans for r in mine],
            "sink_requests": [r.sink.requests for r in mine],
            "sink_bytes": [r.sink.bytes for r in mine],
            # the SDK's BatchSpanProcessor drops spans when its queue (2,048) is full
            "runs_with_spans_dropped": sum(1 for r in mine
                                           if rate is not None and r.sink.spans < r.sampled_records),
        }
    off = figures.get("off", {}).get("cpu_s_per_event")
    cost: dict[str, float | None] = {}
    per_round: dict[str, list[float | None]] = {}
    for name, _ in CONFIGURATIONS[1:]:
        if name in figures:
            value = ratio(figures[name]["cpu_s_per_event"], off)
            cost[name] = None if value is None else round((value - 1) * 100, 1)
            pairs = zip(by["off"], by[name], strict=False)
            per_round[name] = [None if (v := ratio(b.cpu_s_per_event, a.cpu_s_per_event)) is None
                               else round((v - 1) * 100, 1) for a, b in pairs]
    problems = [p for r in runs for p in r.problems]
    return {
        "events": events,
        "rounds": rounds,
        "sampler": SAMPLER,
        "service": "intake",
        "configurations": figures,
        "cost_percent": cost,
        "cost_percent_per_round": per_round,
        "finding_1pct": tracing_finding(figures.get("on_1", {}).get("cpu_s_per_event"), off, problems),
        "problems": problems,
        "runs": {name: [r.as_dict() for r in by[name]] for name, _ in CONFIGURATIONS},
    }


async def profile(records: list[workload.Record], configuration: str, console: Console) -> dict[str, Any]:
    """Intake under cProfile (`bench.profiled intake`, from its first batch to exit) in one
    configuration; not timed. cProfile follows the event loop's thread only: the exporter's
    background thread is not in it (its CPU is in the timed runs)."""
    rate = dict(CONFIGURATIONS)[configuration]
    out = TMP / f"profile-tracing-{configuration}.prof"
    out.unlink(missing_ok=True)
    console.log(f"profiling intake with tracing {configuration}: {len(records):,} records")
    await one_run(f"profile-tracing-{configuration}", configuration, rate, records,
                  traceparents(len(records), rate) if rate is not None else None, console,
                  args=["-m", "bench.profiled", "intake", str(out)])
    if not await profile_written(out):
        return {"error": "no profile written"}
    figures = summarise_profile(out, len(records))
    rows = rows_of(pstats.Stats(str(out)))
    figures["tracing_share"] = tracing_share(rows)
    figures["tracing_top_own_time"] = top_functions([r for r in rows if _tracing_row(r)], 8, "tottime")
    return figures


def _tracing_row(row: Row) -> bool:
    return "/opentelemetry/" in row[0] or row[0].endswith(TRACING_MODULE)


def tracing_share(rows: Iterable[Row]) -> float | None:
    """The share of the busy (non-idle) own time spent in OpenTelemetry and in
    services/common/tracing.py."""
    busy = [row for row in rows if not is_idle(row)]
    whole = sum(row[3] for row in busy)
    ours = sum(row[3] for row in busy if _tracing_row(row))
    return round(ours / whole, 3) if whole else None


async def measure(records: list[workload.Record], rounds: int, console: Console,
                  profiled: tuple[str, ...] = ()) -> dict[str, Any]:
    """The three configurations alternating, `rounds` times; `summarise`d; then, untimed, intake
    under cProfile in each configuration of `profiled`."""
    headers = {rate: traceparents(len(records), rate) for _name, rate in CONFIGURATIONS if rate is not None}
    runs: list[Run] = []
    for i in range(rounds):
        for name, rate in CONFIGURATIONS:
            label = f"tracing-{name}-{i}"
            chosen = headers.get(rate) if rate is not None else None
            spelled = ("off" if rate is None
                       else f"{SAMPLER} {rate:g}, {sampled(chosen or []):,} records sampled")
            console.log(f"{label}: intake on {len(records):,} records, tracing {spelled}")
            runs.append(await one_run(label, name, rate, records, chosen, console))
    figures = summarise(runs, len(records), rounds)
    if profiled:
        figures["profiles"] = {name: await profile(records, name, console) for name in profiled}
    return figures

