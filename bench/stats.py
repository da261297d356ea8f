"""Pure arithmetic of the benchmark: percentiles, steady-state rates, ratios, targets, schema.

Nothing here does I/O, so all of it is unit-tested (tests/unit/test_bench_*.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RESULTS_SCHEMA = "taskforce-bench/1"

#: The targets of the issue: (service / raw) throughput at least, CPU per event at most,
#: p99 latency at 500/s below, RSS growth from the first sample to the end within.
MIN_THROUGHPUT_RATIO = 0.9
MAX_CPU_RATIO = 1.5
MAX_P99_S = 1.0
LATENCY_TARGET_RATE = 500
MAX_RSS_DRIFT = 0.10
#: The ingestion gateway's accepted events/s against producing the same events with aiokafka
#: directly (1,000-event requests against 1,000-record chunks), at least.
MIN_GATEWAY_RATIO = 0.5
GATEWAY_FIELDS = ("events_per_s", "direct_events_per_s", "throughput_ratio", "request_events")
#: Tracing sampled at 1 % (parent-based, the publisher sampling at 1 % too): intake's CPU per
#: event within this many times its CPU per event with tracing off (#27). Stated as a finding,
#: not a target: it does not hold (bench/README.md, "Tracing cost").
MAX_TRACING_1PCT_CPU_RATIO = 1.1
TRACING_CONFIGURATIONS = ("off", "on_100", "on_1")
#: The national replay end to end (all four services, bench/e2e.py): records/s at least (#23).
MIN_E2E_RECORDS_PER_S = 5_000
E2E_FIELDS = ("records", "seconds", "records_per_s", "cpu_s_per_record_total", "ratio_to_cpu_bound")
TRACING_FIELDS = ("cpu_s_per_event", "events_per_s")
#: Reporting measured against its raw consumer on more workloads than the throughput phase's
#: (#23): a small one, whose half-years hold few events, and the national replay's reporting
#: records. Each has the CPU target of the throughput phase.
SMALL_BENCH_EVENTS = 20_000
REPORTING_WORKLOADS = ("small", "national")

SERVICES = ("intake", "analysis", "followup", "reporting")
SERVICE_FIELDS = ("events_per_s", "raw_events_per_s", "throughput_ratio", "cpu_per_event_ratio",
                  "peak_rss_mb")
PERCENTILE_FIELDS = ("p50", "p95", "p99")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks.

    The same definition as numpy's default (`linear`): rank = q/100 * (n - 1).
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must lie in [0, 100], not {q}")
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def latency_summary(values: Sequence[float], missing: int = 0) -> dict[str, Any]:
    """p50/p95/p99/max/mean of latencies in seconds, with how many were seen and missed."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None,
                "count": 0, "missing": missing}
    return {
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
        "mean": round(sum(values) / len(values), 4),
        "count": len(values),
        "missing": missing,
    }


@dataclass(frozen=True)
class Sample:
    """One observation of a consumer under test: time, offsets committed, process CPU."""

    t: float
    committed: int
    cpu_s: float


@dataclass(frozen=True)
class Window:
    """The steady-state part of a run: from the first commit seen to the last record committed."""

    events: int
    seconds: float
    cpu_s: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_event(self) -> float:
        return self.cpu_s / self.events if self.events > 0 else 0.0


def steady_window(samples: Sequence[Sample], total: int) -> Window:
    """Rate and CPU between the first sample with a commit and the first with all committed.

    Starting at the first observed commit leaves out process start-up, imports and the
    group join (the same for every consumer measured); the first batch is not counted.
    When the whole input went in one batch there is no window: it falls back to the span
    from the first sample (consumer start) to the end.
    """
    done = next((s for s in samples if s.committed >= total), None)
    if done is None:
        raise ValueError(f"the run never committed all {total} records")
    first = next(s for s in samples if s.committed > 0)
    if first is done:
        first = samples[0]
    return Window(events=done.committed - first.committed, seconds=done.t - first.t,
                  cpu_s=done.cpu_s - first.cpu_s)


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, rounded to 3 decimals; None when either is missing or reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return round(value / reference, 3)


def compare(service: Window, raw: Window) -> dict[str, float | None]:
    """The service's figures next to the raw limit's on the same input."""
    return {
        "events_per_s": round(service.events_per_s, 1),
        "raw_events_per_s": round(raw.events_per_s, 1),
        "throughput_ratio": ratio(service.events_per_s, raw.events_per_s),
        "cpu_s_per_event": round(service.cpu_per_event, 7),
        "raw_cpu_s_per_event": round(raw.cpu_per_event, 7),
        "cpu_per_event_ratio": ratio(service.cpu_per_event, raw.cpu_per_event),
    }


def growth_ratio(first: float | None, last: float | None) -> float | None:
    return ratio(last, first)


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: str
    passed: bool | None  # None: not measured

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "limit": self.limit, "pass": self.passed}


def _at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def reporting_workload_target(workload: str) -> str:
    """The name of reporting's CPU target on one of `REPORTING_WORKLOADS`."""
    return f"reporting on {workload}: CPU per event ≤ {MAX_CPU_RATIO} × raw"


def evaluate_targets(results: Mapping[str, Any]) -> list[Target]:
    """Each target of the issue with its measured value and pass/fail (None: not measured)."""
    targets: list[Target] = []
    for name in SERVICES:
        figures = results.get("services", {}).get(name)
        if not figures:
            continue
        tput, cpu = figures.get("throughput_ratio"), figures.get("cpu_per_event_ratio")
        targets.append(Target(f"{name}: throughput ≥ {MIN_THROUGHPUT_RATIO} × raw", tput,
                              f">= {MIN_THROUGHPUT_RATIO}", _at_least(tput, MIN_THROUGHPUT_RATIO)))
        targets.append(Target(f"{name}: CPU per event ≤ {MAX_CPU_RATIO} × raw", cpu,
                              f"<= {MAX_CPU_RATIO}", _at_most(cpu, MAX_CPU_RATIO)))
    latency = results.get("latency_s", {}).get(str(LATENCY_TARGET_RATE))
    if latency is not None:
        p99 = latency.get("p99")
        passed = None if p99 is None else (p99 < MAX_P99_S and not latency.get("missing"))
        targets.append(Target(f"p99 latency at {LATENCY_TARGET_RATE}/s < {MAX_P99_S} s", p99,
                              f"< {MAX_P99_S}", passed))
    gateway = results.get("gateway")
    if gateway:
        value = gateway.get("throughput_ratio")
        passed = _at_least(value, MIN_GATEWAY_RATIO)
        if gateway.get("incomplete_runs"):
            passed = False  # an event accepted but not on its topic (or not accepted) fails it
        targets.append(Target(f"gateway: accepted events/s ≥ {MIN_GATEWAY_RATIO} × aiokafka direct", value,
                              f">= {MIN_GATEWAY_RATIO}", passed))
    e2e = results.get("e2e")
    if e2e:
        value = e2e.get("records_per_s")
        passed = _at_least(value, MIN_E2E_RECORDS_PER_S)
        if not e2e.get("complete", True):
            passed = False  # a summary never showed every event: not a replay that finished
        targets.append(Target(f"end-to-end national replay ≥ {MIN_E2E_RECORDS_PER_S:,} records/s", value,
                              f">= {MIN_E2E_RECORDS_PER_S}", passed))
    for key in REPORTING_WORKLOADS:
        figures = (results.get("reporting_workloads") or {}).get(key)
        if figures:
            cpu = figures.get("cpu_per_event_ratio")
            targets.append(Target(reporting_workload_target(figures["workload"]), cpu,
                                  f"<= {MAX_CPU_RATIO}", _at_most(cpu, MAX_CPU_RATIO)))
    growth = results.get("rss_growth_ratio")
    if "rss_growth_ratio" in results:
        passed = None if growth is None else round(abs(growth - 1), 9) <= MAX_RSS_DRIFT
        targets.append(Target(f"RSS flat ±{MAX_RSS_DRIFT:.0%} over the long run", growth,
                              f"{1 - MAX_RSS_DRIFT:.2f}..{1 + MAX_RSS_DRIFT:.2f}", passed))
    return targets


def tracing_finding(on_1_cpu: float | None, off_cpu: float | None,
                    problems: Sequence[str] = ()) -> dict[str, Any]:
    """Whether intake's CPU per event at 1 % sampling is within MAX_TRACING_1PCT_CPU_RATIO of off
    (None when not measured; False when a run's spans were not as expected)."""
    value = ratio(on_1_cpu, off_cpu)
    holds = _at_most(value, MAX_TRACING_1PCT_CPU_RATIO)
    if problems and holds is not None:
        holds = False
    return {"statement": f"tracing at 1 %: intake CPU per event within "
                         f"+{round((MAX_TRACING_1PCT_CPU_RATIO - 1) * 100)} % of off",
            "cpu_ratio": value, "limit": f"<= {MAX_TRACING_1PCT_CPU_RATIO}", "holds": holds}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_fields(problems: list[str], where: str, figures: Mapping[str, Any], fields: Iterable[str]) -> None:
    """Each of `fields` present in `figures`, a number or None (not measured)."""
    for fieldname in fields:
        if fieldname not in figures:
            problems.append(f"{where}.{fieldname} missing")
        elif figures[fieldname] is not None and not _number(figures[fieldname]):
            problems.append(f"{where}.{fieldname} is not a number")


def validate_results(results: Mapping[str, Any]) -> list[str]:
    """Problems with a results document (empty when it has the promised shape)."""
    problems: list[str] = []
    if results.get("schema") != RESULTS_SCHEMA:
        problems.append(f"schema is not {RESULTS_SCHEMA!r}")
    for key in ("machine", "notes", "services", "latency_s", "targets"):
        if key not in results:
            problems.append(f"missing {key}")
    if "rss_growth_ratio" not in results:
        problems.append("missing rss_growth_ratio")
    elif results["rss_growth_ratio"] is not None and not _number(results["rss_growth_ratio"]):
        problems.append("rss_growth_ratio is not a number")
    if not isinstance(results.get("notes", []), list):
        problems.append("notes is not a list")
    for name, figures in (results.get("services") or {}).items():
        _check_fields(problems, f"services.{name}", figures, SERVICE_FIELDS)
    for rate, figures in (results.get("latency_s") or {}).items():
        if not str(rate).isdigit():
            problems.append(f"latency_s key {rate!r} is not a rate")
        _check_fields(problems, f"latency_s.{rate}", figures, PERCENTILE_FIELDS)
    gateway = results.get("gateway")
    if gateway is not None:
        _check_fields(problems, "gateway", gateway, GATEWAY_FIELDS)
    tracing = results.get("tracing")
    if tracing is not None:
        for name in TRACING_CONFIGURATIONS:
            figures = tracing.get("configurations", {}).get(name)
            if figures is None:
                problems.append(f"tracing.configurations.{name} missing")
                continue
            for fieldname in TRACING_FIELDS:
                if not _number(figures.get(fieldname)):
                    problems.append(f"tracing.configurations.{name}.{fieldname} is not a number")
        for name in TRACING_CONFIGURATIONS[1:]:
            value = tracing.get("cost_percent", {}).get(name)
            if value is not None and not _number(value):
                problems.append(f"tracing.cost_percent.{name} is not a number")
    for key, figures in (results.get("reporting_workloads") or {}).items():
        if key not in REPORTING_WORKLOADS:
            problems.append(f"reporting_workloads.{key} is not one of {REPORTING_WORKLOADS}")
        _check_fields(problems, f"reporting_workloads.{key}", figures, SERVICE_FIELDS)
        if not isinstance(figures.get("workload"), str):
            problems.append(f"reporting_workloads.{key}.workload is not a text")
    e2e = results.get("e2e")  # optional: documents from before the phase existed have none
    if e2e is not None:
        _check_fields(problems, "e2e", e2e, E2E_FIELDS)
        for name, value in (e2e.get("cpu_s_per_record") or {}).items():
            if value is not None and not _number(value):
                problems.append(f"e2e.cpu_s_per_record.{name} is not a number")
    for target in results.get("targets", []):
        if not {"name", "value", "limit", "pass"} <= set(target):
            problems.append(f"target {target.get('name')!r} incomplete")
    return problems


def cpu_bound(raw_cpu_s_per_event: Mapping[str, float], store_cpu_s_per_event: Mapping[str, float],
              inputs: Mapping[str, int], records: int, cores: int) -> dict[str, Any]:
    """The records/s the replay could reach if every core did only the raw consumers' and the
    store's work: each service's raw CPU per event (and the store's CPU per event under that raw
    consumer) weighted by how many events that service takes in, per replayed record.
    """
    if records <= 0 or cores <= 0:
        raise ValueError("no records or no cores")
    consumers = sum(raw_cpu_s_per_event[name] * inputs[name] for name in inputs) / records
    store = sum(store_cpu_s_per_event.get(name, 0.0) * inputs[name] for name in inputs) / records
    per_record = consumers + store
    return {"raw_consumers_cpu_s_per_record": round(consumers, 9), "store_cpu_s_per_record": round(store, 9),
            "cpu_s_per_record": round(per_record, 9), "cores": cores,
            "records_per_s": round(cores / per_record, 1) if per_record > 0 else None,
            # nx-27017 is one Python process: whatever the cores, it does at most one core's work
            "store_one_core_records_per_s": round(1 / store, 1) if store > 0 else None}


def scaled(events: int, fraction: float, minimum: int = 1) -> int:
    """A volume proportionate to the intake volume."""
    return max(minimum, round(events * fraction))


def mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None
