"""`make bench`: every measurement of bench/README.md in one run; results in bench/results/.

Environment:
    BENCH_EVENTS   intake events (default 100,000); every other volume is proportionate
    BENCH_REPEAT   alternating raw/service runs per service, best kept (default 1)
    BENCH_PROFILE  0 to skip the cProfile runs (default 1)
    BENCH_ONLY     comma-separated phases (throughput, batching, latency, memory, profile, gateway,
                   tracing, e2e — also spelled national)
                   for development; such a partial run writes bench/results/tmp/partial.json only
    BENCH_GATEWAY_EVENTS   events posted to the gateway (default BENCH_EVENTS / 5, 2,000 to 20,000)
    BENCH_GATEWAY_REQUEST  events per gateway request (default 1,000, the gateway's limit)
    BENCH_TRACING_EVENTS   intake records of the tracing phase (default BENCH_EVENTS / 5, 5,000 to
                           20,000); its rounds are BENCH_REPEAT, at least 2
    BENCH_MUNICIPALITIES   municipalities of the national replay (e2e; default 98, all of them)
    BENCH_YEARS            years of the national replay (default BENCH_EVENTS / 100,000: 1 year, ~331,000
                           records, at the default scale; fractions allowed)
    BENCH_E2E_RAW          1 to measure the raw consumers on the national replay itself (default: only
                           when the throughput phase did not run; otherwise its raw figures are used)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from bench import e2e, findings, national, phases, tracing_cost, workload
from bench import gateway as gateway_phase
from bench.harness import RESULTS, TMP
from bench.proc import load_average, machine
from bench.report import print_tables, write
from bench.stats import (
    RESULTS_SCHEMA,
    SMALL_BENCH_EVENTS,
    evaluate_targets,
    growth_ratio,
    scaled,
    validate_results,
)

PHASES = ("throughput", "batching", "latency", "memory", "profile", "gateway", "tracing", "e2e")
#: Other names for a phase in BENCH_ONLY.
ALIASES = {"national": "e2e"}
#: Rounds of the tracing phase (off, 100 %, 1 % each) at least: its cost is a difference of a few %.
TRACING_MIN_ROUNDS = 2
RATES = [200, 500]
#: The latency what-if: aiokafka's default fetch wait, against the services' own setting.
WHATIF_FETCH_MAX_WAIT_MS = 500


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value.replace("_", "")) if value else default


def _float_env(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value.replace("_", "")) if value else default


def _flag_env(name: str) -> bool | None:
    """1/true/yes or 0/false/no; None when not set."""
    value = os.environ.get(name, "").strip().lower()
    return None if not value else value not in ("0", "false", "no")


def volumes(events: int) -> dict[str, Any]:
    """Every volume of the run, from the number of intake events."""
    return {
        "bench_events": events,
        "intake": events,
        "analysis": scaled(events, 0.25, 2_000),
        "followup": scaled(events, 0.25, 2_000),
        "reporting": "the reporting records intake emitted for its input",
        "one_in_flight": max(200, min(events // 10, 2_000)),
        "latency_rates": RATES,
        "latency_seconds_per_rate": round(max(3.0, 20.0 * events / 100_000), 1),
        "long_run": 10 * events,
        "long_run_first_sample": events,
        "profile_intake": min(events, 20_000),
        "profile_others": min(events // 2, 10_000),
        "gateway": _int_env("BENCH_GATEWAY_EVENTS", max(2_000, min(20_000, events // 5))),
        "gateway_request": _int_env("BENCH_GATEWAY_REQUEST", 1_000),
        "tracing": _int_env("BENCH_TRACING_EVENTS", max(5_000, min(20_000, events // 5))),
    }


async def run(events: int, repeat: int, only: set[str], profile: bool, console: Console) -> dict[str, Any]:
    scale = volumes(events)
    started = time.monotonic()
    results: dict[str, Any] = {
        "schema": RESULTS_SCHEMA,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": dict(scale, repeat=repeat),
        "machine": machine(),
        "services": {},
        "latency_s": {},
        "rss_growth_ratio": None,
        "notes": [],
        "reporting_workloads": {},
    }
    consumers = only - {"gateway", "tracing", "e2e"}  # the phases that need the consumers' inputs
    intake = list(workload.intake_events(events)) if consumers else []
    inputs: dict[str, list[workload.Record]] = {
        "intake": intake,
        "analysis": workload.analysis_events(scale["analysis"]) if consumers else [],
        "followup": workload.followup_events(scale["followup"]) if consumers else [],
    }
    if "throughput" in only:
        figures, reporting = await phases.throughput("intake", intake, repeat, console,
                                                     capture=workload.topics.REPORTING)
        results["services"]["intake"] = figures
        inputs["reporting"] = reporting
        for name in ("analysis", "followup", "reporting"):
            results["services"][name], _ = await phases.throughput(name, inputs[name], repeat, console)
        results["scale"]["reporting"] = len(reporting)
        if events == SMALL_BENCH_EVENTS:  # the throughput phase's workload is the small one
            figures = results["services"]["reporting"]
        else:
            small = await phases.reporting_input(list(workload.intake_events(SMALL_BENCH_EVENTS)), console)
            figures, _ = await phases.throughput("reporting", small, repeat, console)
        small_name = f"BENCH_EVENTS={SMALL_BENCH_EVENTS:,}"
        results["reporting_workloads"]["small"] = dict(figures, workload=small_name)
    if "batching" in only:
        reference = results["services"].get("intake", {})
        results["batching"] = await phases.batching(
            intake[: scale["one_in_flight"]], reference.get("events_per_s", 0.0),
            reference.get("cpu_s_per_event", 0.0), console)
    if "latency" in only:
        results["latency_s"] = await phases.latency(RATES, scale["latency_seconds_per_rate"], console)
        console.log(f"what-if: {RATES[-1]}/s with fetch_max_wait_ms={WHATIF_FETCH_MAX_WAIT_MS} "
                    "(aiokafka's default) in every service")
        results["latency_whatif"] = {
            "fetch_max_wait_ms": WHATIF_FETCH_MAX_WAIT_MS,
            "latency_s": await phases.latency(RATES[-1:], scale["latency_seconds_per_rate"], console,
                                              fetch_max_wait_ms=WHATIF_FETCH_MAX_WAIT_MS),
        }
    if "memory" in only:
        console.log(f"long run: {scale['long_run']:,} intake records, generated while intake consumes")
        results["memory"] = await phases.memory(scale["long_run"], scale["long_run_first_sample"], console)
        results["rss_growth_ratio"] = growth_ratio(results["memory"]["rss_mb_at_first_sample"],
                                                   results["memory"]["rss_mb_at_end"])
    if "profile" in only and profile:
        results["profiles"] = {}
        other = scale["profile_others"]
        sizes = {"intake": scale["profile_intake"], "analysis": other, "followup": other, "reporting": other}
        for name, size in sizes.items():
            records = inputs.get(name)
            if records:
                results["profiles"][name] = await phases.profile(name, records[:size], console)
    if "gateway" in only:
        results["gateway"] = await gateway_phase.measure(
            list(workload.intake_events(scale["gateway"])), scale["gateway_request"], repeat, console,
            profiled=profile)
    if "tracing" in only:
        rounds = max(TRACING_MIN_ROUNDS, repeat)
        results["scale"]["tracing_rounds"] = rounds
        console.log(f"tracing cost: intake on {scale['tracing']:,} records, off / 100 % / 1 % alternating, "
                    f"{rounds} rounds")
        results["tracing"] = await tracing_cost.measure(
            list(workload.intake_events(scale["tracing"])), rounds, console,
            profiled=("on_1",) if profile else ())
    if "e2e" in only:
        municipalities = _int_env("BENCH_MUNICIPALITIES", 98)
        years = _float_env("BENCH_YEARS", events / 100_000)
        replay = national.replay(municipalities, years)
        results["scale"]["national"] = replay.scale()
        console.log(f"national replay: {municipalities} municipalities, {years:g} year(s), "
                    f"{len(replay.records):,} records")
        results["e2e"], reporting = await e2e.measure(replay, results["services"], console,
                                                      raw=_flag_env("BENCH_E2E_RAW"))
        del replay
        if reporting:
            console.log(f"reporting on the national replay's {len(reporting):,} reporting records")
            figures, _ = await phases.throughput("reporting", reporting, repeat, console)
            results["reporting_workloads"]["national"] = dict(
                figures, workload="the national replay")
        del reporting
    results["targets"] = [t.as_dict() for t in evaluate_targets(results)]
    results["notes"] = findings.notes(results)
    results["machine"]["load_average_at_end"] = load_average()
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["duration_s"] = round(time.monotonic() - started, 1)
    return results


def main() -> None:
    console = Console()
    events = _int_env("BENCH_EVENTS", 100_000)
    repeat = max(1, _int_env("BENCH_REPEAT", 1))
    profile = os.environ.get("BENCH_PROFILE", "1").strip() not in ("0", "false", "no")
    only_env = os.environ.get("BENCH_ONLY", "").strip()
    only = ({ALIASES.get(p.strip(), p.strip()) for p in only_env.split(",") if p.strip()} if only_env
            else set(PHASES))
    unknown = only - set(PHASES)
    if unknown or events < 100 or not 1 <= volumes(events)["gateway_request"] <= 1_000:
        sys.exit(f"BENCH_ONLY must name phases of {PHASES}; BENCH_EVENTS at least 100; "
                 "BENCH_GATEWAY_REQUEST 1 to 1,000")
    if not 1 <= _int_env("BENCH_MUNICIPALITIES", 98) <= 98 or _float_env("BENCH_YEARS", 1.0) <= 0:
        sys.exit("BENCH_MUNICIPALITIES must be 1 to 98, BENCH_YEARS above 0")
    if "batching" in only and "throughput" not in only:
        only.add("throughput")  # batching compares with the intake figures
    chosen = ", ".join(p for p in PHASES if p in only)
    console.rule(f"taskforce benchmark: BENCH_EVENTS={events:,}, phases {chosen}")
    results = asyncio.run(run(events, repeat, only, profile, console))
    problems = validate_results(results)
    print_tables(results, console)
    if only != set(PHASES):
        TMP.mkdir(parents=True, exist_ok=True)
        partial = TMP / "partial.json"
        write(results, TMP, "partial.json")
        console.log(f"partial run: written to {partial} (and {TMP / 'latest.md'}), not to bench/results/")
    else:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        paths = write(results, RESULTS, f"{stamp}.json")
        console.log("written: " + ", ".join(str(p.relative_to(RESULTS.parent.parent)) for p in paths))
    if problems:
        console.log(f"[red]results document problems: {problems}")
    for note in results["notes"]:
        console.log(f"note: {note}")


if __name__ == "__main__":
    main()
