"""Rendering a results document: Rich tables for the terminal, Markdown for the repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stats import REPORTING_WORKLOADS, SERVICES, TRACING_CONFIGURATIONS
from bench.store_profile import shares_text


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[passed]


def _us(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e6:,.0f}"


def _throughput_row(label: str, f: dict[str, Any]) -> list[str]:
    return [label, _fmt(f["events"]), _fmt(f["events_per_s"], 0), _fmt(f["raw_events_per_s"], 0),
            _fmt(f["throughput_ratio"]), _us(f.get("cpu_s_per_event")), _us(f.get("raw_cpu_s_per_event")),
            _fmt(f["cpu_per_event_ratio"]), _fmt(f["peak_rss_mb"], 0)]


def service_rows(results: dict[str, Any]) -> list[list[str]]:
    services = results.get("services", {})
    return [_throughput_row(name, services[name]) for name in SERVICES if services.get(name)]


def reporting_workload_rows(results: dict[str, Any]) -> list[list[str]]:
    """Reporting against its raw consumer on the other workloads, a row each."""
    workloads = results.get("reporting_workloads") or {}
    return [_throughput_row(f["workload"], f) for key in REPORTING_WORKLOADS if (f := workloads.get(key))]


SERVICE_HEADER = ["service", "events", "events/s", "raw events/s", "× raw", "CPU µs/event",
                  "raw CPU µs/event", "CPU × raw", "peak RSS MB"]


def _throughput_table(title: str, first_column: str, rows: list[list[str]]) -> Table:
    table = Table(title=title)
    table.add_column(first_column)
    for column in SERVICE_HEADER[1:]:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _throughput_markdown(first_column: str, rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join([first_column, *SERVICE_HEADER[1:]]) + " |",
            "|---|" + "---:|" * (len(SERVICE_HEADER) - 1),
            *("| " + " | ".join(row) + " |" for row in rows)]


def print_tables(results: dict[str, Any], console: Console) -> None:
    events = results["scale"]["bench_events"]
    console.print(_throughput_table(f"Throughput against the raw limit (BENCH_EVENTS={events:,})",
                                    "service", service_rows(results)))
    rows = reporting_workload_rows(results)
    if rows:
        console.print(_throughput_table("Reporting on other workloads against its raw consumer",
                                        "workload", rows))

    other = Table(title="Latency, batching, memory")
    other.add_column("measure")
    other.add_column("value", justify="right")
    for rate, f in results.get("latency_s", {}).items():
        other.add_row(f"latency at {rate}/s p50 / p95 / p99 (s)",
                      f"{_fmt(f['p50'], 3)} / {_fmt(f['p95'], 3)} / {_fmt(f['p99'], 3)}"
                      + (f"  ({f['missing']} missing)" if f.get("missing") else ""))
    b = results.get("batching")
    if b:
        other.add_row("one-in-flight intake events/s (batch: × faster)",
                      f"{_fmt(b['one_in_flight_events_per_s'], 0)}  (× {_fmt(b['speedup'], 1)})")
    g = results.get("gateway")
    if g:
        other.add_row(f"gateway events/s, {_fmt(g['request_events'])}-event requests "
                      f"(aiokafka direct; × direct)",
                      f"{_fmt(g['events_per_s'], 0)}  ({_fmt(g['direct_events_per_s'], 0)}; "
                      f"× {_fmt(g['throughput_ratio'], 3)})")
    e = results.get("e2e")
    if e:
        other.add_row(f"end-to-end national replay records/s ({e['municipalities']} municipalities, "
                      f"{e['years']:g} y, {_fmt(e['records'])} records; × CPU bound)",
                      f"{_fmt(e['records_per_s'], 0)}  (× {_fmt(e['ratio_to_cpu_bound'], 3)})"
                      + ("" if e.get("complete", True) else "  (incomplete)"))
    m = results.get("memory")
    if m:
        other.add_row(f"intake RSS at {m['first_sample_at']:,} → {m['events']:,} records (MB)",
                      f"{_fmt(m['rss_mb_at_first_sample'], 1)} → {_fmt(m['rss_mb_at_end'], 1)}"
                      f"  (× {_fmt(results.get('rss_growth_ratio'), 3)})")
    console.print(other)

    rows = tracing_rows(results.get("tracing"))
    if rows:
        t = results["tracing"]
        table = Table(title=f"Tracing cost: intake on {t['events']:,} records, {t['rounds']} alternating "
                            f"rounds (best of each)")
        for column in TRACING_HEADER:
            table.add_column(column, justify="left" if column == "tracing" else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        finding = t.get("finding_1pct") or {}
        if finding:
            style = {True: "green", False: "red"}.get(finding.get("holds"), "yellow")
            verdict = {True: "holds", False: "does not hold", None: "not measured"}[finding.get("holds")]
            console.print(f"{finding.get('statement')}: [{style}]{verdict}[/] "
                          f"(× {_fmt(finding.get('cpu_ratio'), 3)}; a finding, not a target)")

    targets = Table(title="Targets")
    targets.add_column("target")
    targets.add_column("value", justify="right")
    targets.add_column("limit", justify="right")
    targets.add_column("result")
    for t in results.get("targets", []):
        style = {True: "green", False: "red"}.get(t["pass"], "yellow")
        targets.add_row(t["name"], _fmt(t["value"], 3), t["limit"], f"[{style}]{_verdict(t['pass'])}[/]")
    console.print(targets)


def markdown(results: dict[str, Any]) -> str:
    scale = results["scale"]
    machine = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Run {results['started_at']} ({results['duration_s']:.0f} s), commit `{machine.get('git_commit')}`, "
        f"`BENCH_EVENTS={scale['bench_events']}`; {machine.get('cpus')} CPUs ({machine.get('cpu_model')}), "
        f"load average at start {machine.get('load_average_at_start')}. "
        "Method and targets: [bench/README.md](../README.md). Raw figures: `latest.json`.",
        "",
        "## Targets",
        "",
        "| target | value | limit | result |",
        "|---|---:|---:|---|",
    ]
    for t in results.get("targets", []):
        lines.append(f"| {t['name']} | {_fmt(t['value'], 3)} | {t['limit']} | **{_verdict(t['pass'])}** |")
    lines += ["", "## Throughput against the raw limit", "",
              *_throughput_markdown("service", service_rows(results))]
    rows = reporting_workload_rows(results)
    if rows:
        lines += ["", "## Reporting on other workloads", "",
                  "The reporting records the owning services emitted for each workload, consumed by "
                  "reporting and by its raw consumer as in the throughput phase (the small workload's "
                  "half-years hold few events; the national replay's are those of the end-to-end phase).",
                  "", *_throughput_markdown("workload", rows)]
    b = results.get("batching")
    if b:
        lines += ["", "## Batching", "",
                  f"Intake with FastStream's one-in-flight subscriber ({_fmt(b['events'])} records): "
                  f"{_fmt(b['one_in_flight_events_per_s'], 0)} events/s at "
                  f"{_us(b['one_in_flight_cpu_s_per_event'])} µs CPU/event; batched: "
                  f"{_fmt(b['batch_events_per_s'], 0)} events/s at "
                  f"{_us(b['batch_cpu_s_per_event'])} µs/event "
                  f"(× {_fmt(b['speedup'], 1)} throughput, × {_fmt(b['cpu_saving'], 1)} less CPU per event)."]
    lines += gateway_markdown(results.get("gateway"))
    lines += tracing_markdown(results.get("tracing"))
    lines += e2e_markdown(results.get("e2e"))
    lat = results.get("latency_s", {})
    if lat:
        lines += ["", "## End-to-end latency (publish → committee summary counting the notification)", "",
                  "| rate | achieved | p50 s | p95 s | p99 s | max s | missing "
                  "| CPU share (intake / reporting) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---|"]
        for rate, f in lat.items():
            cpu = f.get("cpu_share", {})
            lines.append(f"| {rate}/s | {_fmt(f.get('achieved_rate'), 0)}/s | {_fmt(f['p50'], 3)} | "
                         f"{_fmt(f['p95'], 3)} | {_fmt(f['p99'], 3)} | {_fmt(f.get('max'), 3)} | "
                         f"{_fmt(f.get('missing'))} | "
                         f"{_fmt(cpu.get('intake'))} / {_fmt(cpu.get('reporting'))} |")
    m = results.get("memory")
    if m:
        lines += ["", "## Memory over a long run", "",
                  f"Intake through {_fmt(m['events'])} records "
                  f"({_fmt(m['events_per_s_overall'], 0)} events/s "
                  f"overall): RSS {_fmt(m['rss_mb_at_first_sample'], 1)} MB at {_fmt(m['first_sample_at'])}, "
                  f"{_fmt(m['rss_mb_at_end'], 1)} MB at the end "
                  f"(× {_fmt(results.get('rss_growth_ratio'), 3)}); "
                  f"peak {_fmt(m['peak_rss_mb'], 1)} MB."]
    profiles = results.get("profiles") or {}
    if profiles:
        lines += ["", "## Profiles (cProfile, own time by package)", ""]
        for name, p in profiles.items():
            if "by_package" not in p:
                continue
            shares = ", ".join(f"{k} {v:.0%}" for k, v in list(p["by_package"].items())[:8])
            lines.append(f"- **{name}** ({_fmt(p['events'])} records): {shares}")
            for row in p.get("top_own_time", [])[:5]:
                lines.append(f"  - `{row['function']}` {row['share']:.0%} "
                             f"({_fmt(row['calls'])} calls)")
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in results.get("notes", [])]
    return "\n".join(lines) + "\n"


def gateway_markdown(g: dict[str, Any] | None) -> list[str]:
    """The gateway's section: its accepted events/s against aiokafka directly, CPU per event."""
    if not g:
        return []
    direct = next(iter(g.get("runs", {}).get("direct", [])), {})
    lines = ["", "## Ingestion gateway (POST /v1/events against aiokafka directly)", "",
             "| events | request | gateway events/s | aiokafka direct events/s | × direct "
             "| gateway CPU µs/event | direct CPU µs/event |",
             "|---:|---|---:|---:|---:|---:|---:|",
             f"| {_fmt(g['events'])} | {_fmt(g['request_events'])} events, JSON Lines, "
             f"~{_fmt(g.get('request_bytes_mean'))} bytes | {_fmt(g['events_per_s'], 0)} | "
             f"{_fmt(g['direct_events_per_s'], 0)} | {_fmt(g['throughput_ratio'], 3)} | "
             f"{_us(g.get('cpu_s_per_event'))} | {_us(g.get('direct_cpu_s_per_event'))} |",
             "",
             "Requests one at a time, each answered after the broker acknowledged its events (acks=all); "
             "the reference sends the same records in the same chunks with the gateway's producer "
             f"settings (idempotent: {_fmt(direct.get('idempotent', g.get('idempotent')))}), awaiting each "
             "chunk. The first request (chunk) is outside the timed window."]
    if g.get("incomplete_runs"):
        lines.append(f"Runs whose events were not all accepted or not all on their topics: "
                     f"{', '.join(g['incomplete_runs'])}.")
    return lines


def e2e_markdown(e: dict[str, Any] | None) -> list[str]:
    """The e2e phase's section: the national replay's records/s, CPU per record per process."""
    if not e:
        return []
    bound = e.get("cpu_bound") or {}
    lines = ["", "## End-to-end national replay (all four services, to the last summary)", "",
             "| municipalities | years | records | s | records/s | with start-up | CPU bound records/s "
             "| × bound | complete |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
             f"| {e['municipalities']} | {e['years']:g} | {_fmt(e['records'])} | {_fmt(e['seconds'], 1)} | "
             f"{_fmt(e['records_per_s'], 0)} | {_fmt(e.get('records_per_s_with_startup'), 0)} | "
             f"{_fmt(bound.get('records_per_s'), 0)} | {_fmt(e['ratio_to_cpu_bound'], 3)} | "
             f"{_fmt(e.get('complete'))} |",
             "", "| process | CPU µs per replayed record | CPU µs per own input event | raw µs per event |",
             "|---|---:|---:|---:|"]
    own, raw = e.get("cpu_s_per_input_event") or {}, bound.get("raw_cpu_s_per_event") or {}
    for name, seconds in (e.get("cpu_s_per_record") or {}).items():
        lines.append(f"| {name} | {_us1(seconds)} | {_us1(own.get(name))} | {_us1(raw.get(name))} |")
    lines.append(f"| all of them | {_us1(e.get('cpu_s_per_record_total'))} | | |")
    lines += ["", f"Inputs: {', '.join(f'{k} {_fmt(v)}' for k, v in (e.get('inputs') or {}).items())} "
              f"(reporting's: the states the owning services emitted). CPU bound: {bound.get('cores')} cores "
              f"÷ ({_us1(bound.get('raw_consumers_cpu_s_per_record'))} µs of raw consumers' CPU + "
              f"{_us1(bound.get('store_cpu_s_per_record'))} µs of the store's per replayed record; the "
              f"store, one process, alone: ≤ {_fmt(bound.get('store_one_core_records_per_s'), 0)} records/s);"
              f" raw figures from {bound.get('source', '–')}. Load average {e.get('load_before')} → "
              f"{e.get('load_after')}, steal {_fmt(e.get('steal_share'), 3)}."]
    lines += store_profile_markdown(e.get("store_profile"))
    if e.get("missing_summaries"):
        lines.append(f"Municipalities whose summary never showed every event: "
                     f"{', '.join(e['missing_summaries'])}.")
    return lines


def store_profile_markdown(profile: dict[str, Any] | None) -> list[str]:
    """Where the store's CPU went during the replay (bench/store_profile.py), or why unknown."""
    if not profile:
        return []
    if "unavailable" in profile:
        return ["", f"Store profile: none ({profile['unavailable']})."]
    return ["", f"Store profile (nx-27017 sampled by py-spy at {profile['rate_hz']} Hz over the timed "
                f"window, {profile['samples']:,} samples of its busy threads). By operation: "
                f"{shares_text(profile['operations'])}. Own time by package: "
                f"{shares_text(profile['packages'])}. Functions: {shares_text(profile['functions'])}."]


def _us1(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e6:,.1f}"


TRACING_HEADER = ["tracing", "records sampled", "CPU µs/event", "vs off", "events/s", "spans received"]
TRACING_LABELS = {"off": "off (no OTEL_EXPORTER_OTLP_ENDPOINT)", "on_100": "on, sampled at 100 %",
                  "on_1": "on, sampled at 1 %"}


def tracing_rows(t: dict[str, Any] | None) -> list[list[str]]:
    """Per configuration of the tracing phase: its best CPU per event, the cost against off."""
    if not t:
        return []
    rows = []
    for name in TRACING_CONFIGURATIONS:
        f = t.get("configurations", {}).get(name)
        if not f:
            continue
        cost = t.get("cost_percent", {}).get(name)
        rows.append([TRACING_LABELS[name], _fmt(f.get("sampled_records")),
                     f"{f['cpu_s_per_event'] * 1e6:,.1f}",
                     "–" if cost is None else f"{cost:+.1f} %", _fmt(f["events_per_s"], 0),
                     " / ".join(_fmt(n) for n in f.get("spans", []))])
    return rows


def tracing_markdown(t: dict[str, Any] | None) -> list[str]:
    """The tracing phase's section: CPU per event off / 100 % / 1 %, and what 1 % costs."""
    rows = tracing_rows(t)
    if not t or not rows:
        return []
    per_round = t.get("cost_percent_per_round", {})
    spelled = "; ".join(f"{TRACING_LABELS[name].split(', ')[-1]}: "
                        + ", ".join("–" if v is None else f"{v:+.1f} %" for v in values)
                        for name, values in per_round.items())
    lines = ["", f"## Tracing cost (intake, {_fmt(t['events'])} records, {t['rounds']} rounds)", "",
             "| " + " | ".join(TRACING_HEADER) + " |", "|---|" + "---:|" * (len(TRACING_HEADER) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", f"`python -m services.intake` on fresh servers per run, the configurations alternating; "
              f"sampler `{t.get('sampler')}`, OTLP/HTTP to a sink in the bench process (spans per run). "
              "Records carry a `traceparent` (random trace id, sampled flag as a publisher at the same rate "
              "would set it) when tracing is on. Best CPU per event of each configuration; per round "
              f"against that round's off run: {spelled or '–'}."]
    finding = t.get("finding_1pct") or {}
    if finding:
        verdict = {True: "holds", False: "does not hold", None: "not measured"}[finding.get("holds")]
        lines.append("")
        lines.append(f"Finding (not a target): {finding.get('statement')}: **{verdict}** "
                     f"(× {_fmt(finding.get('cpu_ratio'), 3)}, limit {finding.get('limit')}); "
                     "why, with this run's profile: see the notes.")
    if t.get("problems"):
        lines.append(f"Problems: {'; '.join(t['problems'])}.")
    return lines


def write(results: dict[str, Any], directory: Path, dated_name: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    paths = [directory / "latest.json", directory / dated_name, directory / "latest.md"]
    paths[0].write_text(text, encoding="utf-8")
    paths[1].write_text(text, encoding="utf-8")
    paths[2].write_text(markdown(results), encoding="utf-8")
    return paths
