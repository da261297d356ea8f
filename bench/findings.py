"""The notes of a results document: how it was measured, and why a missed target was missed.

The explanations come from profiling the services (cProfile, `BENCH_ONLY=profile`) and
tracing their batches; every figure quoted in a note is the run's own.
"""

from __future__ import annotations

from typing import Any

from bench.stats import (
    MAX_CPU_RATIO,
    MIN_E2E_RECORDS_PER_S,
    MIN_GATEWAY_RATIO,
    MIN_THROUGHPUT_RATIO,
    reporting_workload_target,
)
from bench.store_profile import shares_text

METHOD = [
    "Every measurement ran on its own fresh embedded servers (Tansu, nx-27017 in memory) on free "
    "loopback ports; the input was published before the consumer process started.",
    "events/s and CPU/event are taken over the steady window: from the first committed offset seen "
    "(polled every 50 ms) to the moment all input offsets are committed; process start-up, the group "
    "join and the first batch are left out, equally for services and raw consumers. CPU = utime+stime "
    "of the consumer process from /proc/<pid>/stat; peak RSS = VmHWM.",
    "Raw limit (bench/raw.py): plain aiokafka getmany (2,000 records) + json.loads + per-document "
    "grouping + one find and one unordered bulk_write of version-guarded upserts holding the applied "
    "event ids + one watermark bulk_write + one reporting-sized record per touched document + commit. "
    "It does no validation, DLQ, CPR check, pydantic models, metrics or logs; for reporting it only "
    "replicates the newest states (a notification as the service's compact row) and does not compute "
    "summaries.",
]

OWNING = (
    "Why {names} miss the throughput target: the store sets the pace on this machine. nx-27017 is "
    "one Python process on SQLite; per event it spent {store} of its own CPU (service / raw), more "
    "than the consumers themselves, on the same 2 cores, which the hypervisor also shares (CPU "
    "stolen during the service runs: {steal}). The services already overlap what the order of "
    "effects allows: two batches are in flight, the next batch is decoded while the previous one "
    "is applied, a batch's writes overlap the previous batch's publishing and commit, and the "
    "watermarks and entity documents are written side by side; offsets are committed explicitly, "
    "in order, once a batch's writes and publishes have landed (services/common/pipeline.py). The "
    "documents written last are remembered, so a batch only reads the others from the store. What "
    "stays on the critical path is each batch's store work — the find of documents not "
    "remembered, then one guarded bulk write — with the service's extra CPU competing with the "
    "store for the same cores. Tried and dropped: writing a batch in concurrent chunks (more "
    "store requests and more CPU per event, no higher throughput). What would close the rest: a "
    "store that is not the bottleneck; measure on a real MongoDB (testcontainers, where a Docker "
    "engine exists) to see the services' own limit."
)

OWNING_CPU = (
    "Why the CPU per event of {names} is above 1.5× the raw consumer's: per event a service does "
    "what the raw consumer leaves out — strict pydantic decoding of the envelope and its data, the "
    "CPR guard, a pydantic state per entity (for follow-up's milestones the whole status history is "
    "rebuilt, sorted and validated once per batch, and dumped whole for the store and the "
    "reporting record), metrics, logs and FastStream's batch machinery — where the raw consumer "
    "folds plain dicts. Already done: reducers compare instants before spelling tie-breaks, a state "
    "is dumped once per entity and batch (a milestone's updates are folded into its history in one "
    "step), remembered documents skip the state's re-validation, reporting records share one "
    "timestamp and encoder per batch, the CPR regex only runs on CPR-shaped digit runs, the "
    "garbage collector is frozen after start-up and collects the young generation only after "
    "200,000 net allocations (at 20,000 it took a tenth of a service's CPU and freed nothing). "
    "Tried and dropped: "
    "building states with pydantic's model_construct (slower than pydantic-core's validation). "
    "What would close it: store a milestone's history append-only (one $push of the new change "
    "instead of the whole rebuilt state, which would also lighten the store), or stop validating "
    "states the service builds itself from validated events."
)

REPORTING = (
    "Why reporting misses: besides the raw consumer's replication (the same documents: the newest "
    "state per entity, a notification as its compact row) it decodes each reporting event strictly "
    "with its nested state, checks it for CPR numbers, keeps a row and period per state in memory, "
    "notes new periods, and recomputes the touched periods' summaries from memory and publishes the "
    "changed ones. Measured in-process on this workload: strict decoding costs about what the raw "
    "consumer's json.loads does, and the CPR check 40 % more; building the newest documents costs "
    "about as much as the raw consumer's whole loop, mostly because pydantic's aware datetimes carry "
    "its own tzinfo type, whose utcoffset is a call into Rust: comparing a watermark and turning two "
    "instants into UTC microseconds costs about three times what the raw consumer pays with the "
    "standard library's UTC. Already done: while records wait on a partition the summaries are "
    "recomputed once it is caught up (at least every second) instead of after every batch; the "
    "replica's upserts go as one plain update command per chunk; the compiled validators are called "
    "directly and timestamps are bounded by the validator's own constraint; a period spells its name "
    "once; offsets are collected per partition. Throughput is bounded by the store, which spent "
    "{store} of CPU per event (service / raw). What would close the rest: parse instants into the "
    "standard library's UTC (about 1.5 µs per event), or a cheaper CPR pre-check."
)

LATENCY = (
    "Why the latency misses: at {rate}/s the first hop (publish → intake's reporting event) took p50 "
    "{hop50} s / p99 {hop99} s; the rest is the reporting service (CPU share, cores, during the rate: "
    "{cpu}). With aiokafka's default fetch wait of {whatif_ms} ms in every service: p50 {w50} s, p99 "
    "{w99} s."
)

LATENCY_MET = (
    "Latency at {rate}/s: p99 {p99} s; of it, publish → intake's reporting event p50 {hop50} s / p99 "
    "{hop99} s, the rest reporting and the watcher's own fetch. Each consumer hop waits for the broker's "
    "fetch: the services ask for at most 100 ms (TASKFORCE_FETCH_MAX_WAIT_MS); with aiokafka's default "
    "of {whatif_ms} ms in every service the same rate gave p50 {w50} s, p99 {w99} s. Reporting "
    "recomputes a touched period from memory, so a batch costs its records plus a few milliseconds "
    "per period, whatever the period's size."
)

MEMORY = (
    "Why: RSS went from {first} MB to {last} MB. The owning services keep no state between batches; "
    "growth here would come from buffers (aiokafka's prefetch grows with the lag, the producer's "
    "accumulator) or a leak — compare `memory.samples`, and rerun with a steady lag."
)


GATEWAY = (
    "Gateway (bench/gateway.py): the gateway as its own process (`python -m services.gateway`, a "
    "tokens-file token for every municipality, the per-token rate limit set out of reach) took "
    "{events} events as JSON Lines in requests of {request} (~{bytes} bytes), one at a time, each "
    "answered once the broker acknowledged its events: {rate} accepted events/s at {cpu} µs of the "
    "gateway's CPU per event. The reference produced the same records with aiokafka directly "
    "(send() per record, the gateway's producer settings: acks=all, idempotent: {idempotent}, linger "
    "5 ms, 512 KiB batches), awaiting each chunk of {request}: {direct} events/s at {direct_cpu} µs of "
    "CPU per event; × {ratio} (target ≥ {target}). Both timed from the end of the first request "
    "(chunk) to the end of the last; every record was read back from its topic. Per event the "
    "gateway reads the body, splits it into items, decodes each with the consumers' own code "
    "(pydantic from bytes, the CPR scan), checks the token's scope and answers it; it sends a "
    "request's events as one closed batch per partition (aiokafka's send_batch, on the partition "
    "send() would choose), a few µs of CPU per event where the reference's send() per record took "
    "{direct_cpu} µs in all."
)

GATEWAY_MISSED = (
    "Why the gateway misses: it is CPU-bound in one process (this run: {cpu} µs per event against the "
    "direct producer's {direct_cpu}), requests one at a time, so any other load on the 2 cores shows "
    "directly (load average {load}). {profile}What would close it: fewer passes over each item's bytes "
    "(the event_type guess, the nesting check, pydantic and the CPR scan each read it once), or "
    "clients sending two requests at a time so that one is judged while the other is acknowledged."
)


E2E = (
    "End-to-end national replay (bench/e2e.py): {municipalities} municipalities, {years} year(s), {records} "
    "records (notifications in proportion to population, 152,700 a year nationally) published first; then "
    "intake, analysis, followup and reporting started as processes and timed from intake's first commit "
    "until every municipality's summary for the period of its last event was as of that event with all the "
    "period's events counted, and every consumer group had committed its input: {rate} records/s over "
    "{seconds} s ({with_startup} records/s with start-up), {cores} cores busy on average. CPU per replayed "
    "record: {cpu}. CPU bound: {bound} records/s ({bound_cpu} µs of raw consumers' and store CPU per "
    "record on {bound_cores} cores; raw figures from {source}); × {ratio}. The store is one process "
    "(nx-27017, Python on SQLite), so at the store's CPU per record under the raw consumers it alone allows "
    "at most {store_bound} records/s on one core."
)

E2E_MISSED = (
    "Why the national replay misses {target:,} records/s: a record is applied by its owning service and, "
    "as the state it changes, by reporting, each writing to the store, all on the same {cores} cores; "
    "all processes together spent {total} µs "
    "of CPU per record, so {cores} cores allow at most ~{ceiling} records/s, and the largest parts were "
    "{largest}. The store is one process: at its {store} µs per record here it alone allows at most "
    "~{store_ceiling} records/s.{profile} Even the raw consumers with the same store would reach {bound} "
    "records/s here{bound_note}. "
    "What would close it: a store that is not Python on SQLite (nx-27017's CPU is counted in the bound "
    "too), and the per-service work the throughput notes name."
)


REPORTING_WORKLOAD_MISSED = (
    "Reporting on {workload} misses its CPU target: {ratio}× raw ({cpu} against {raw} µs per event, "
    "{events} records; throughput {throughput}× raw). Why: {why}"
)
#: Why each of the other workloads costs reporting more than the throughput phase's (bench/README.md,
#: "Reporting on other workloads", has the experiments behind it).
REPORTING_WORKLOAD_WHY = {
    "small": "it is measured over about four batches, so what each batch and each recomputation costs "
             "whatever its size weighs more per event, and it is the figure that moves most from run to run "
             "(bench/README.md quotes runs of the same code); per event it does what it does on the "
             "throughput phase's workload.",
    "national": "a batch spans all 98 municipalities, so each batch's work per municipality (watermarks, "
                "periods, owed notes, and the summaries of every owed municipality: about a seventh of the "
                "service's CPU in a py-spy profile of this workload) weighs more per event than with 5; the "
                "rest is per event, and larger than in the raw consumer: strict decoding of each state with "
                "its CPR check (about a quarter), keeping the newest per entity, and the tallies. Refreshing "
                "interim summaries less often while records wait made no measurable difference "
                "(bench/README.md). What would close it: a cheaper strict decoder for the internal topic and "
                "per-batch work that does not grow with the municipalities a batch spans.",
}


def _reporting_workload_notes(results: dict[str, Any], missed: list[str]) -> list[str]:
    out = []
    for key, f in (results.get("reporting_workloads") or {}).items():
        if reporting_workload_target(f.get("workload", "")) not in missed:
            continue
        out.append(REPORTING_WORKLOAD_MISSED.format(
            workload=f.get("workload"), ratio=_fmt(f.get("cpu_per_event_ratio")),
            cpu=_us(f.get("cpu_s_per_event")), raw=_us(f.get("raw_cpu_s_per_event")),
            events=f"{f.get('events', 0):,}",
            throughput=_fmt(f.get("throughput_ratio")), why=REPORTING_WORKLOAD_WHY.get(key, "–")))
    return out


#: The store's entry in `e2e.cpu_s_per_record` (bench/e2e.py names the servers so).
STORE = "mongodb (server)"


def _e2e_notes(results: dict[str, Any], missed: list[str]) -> list[str]:
    e = results.get("e2e")
    if not e:
        return []
    bound = e.get("cpu_bound") or {}
    cpu = e.get("cpu_s_per_record") or {}
    spelled = ", ".join(f"{name} {_us(seconds)} µs" for name, seconds in cpu.items())
    out = [E2E.format(municipalities=e["municipalities"], years=_fmt(e["years"]), records=f"{e['records']:,}",
                      rate=_rate(e.get("records_per_s")), seconds=_fmt(e.get("seconds")),
                      with_startup=_rate(e.get("records_per_s_with_startup")),
                      cores=_fmt(e.get("cpu_cores_busy")), cpu=spelled or "–",
                      bound=_rate(bound.get("records_per_s")), bound_cpu=_us(bound.get("cpu_s_per_record")),
                      bound_cores=bound.get("cores", "–"), source=bound.get("source", "–"),
                      ratio=_fmt(e.get("ratio_to_cpu_bound")),
                      store_bound=_rate(bound.get("store_one_core_records_per_s")))]
    if not e.get("complete", True):
        out.append(f"The replay did not finish within its time limit: no summary showed every event for "
                   f"{', '.join(e.get('missing_summaries') or []) or 'some municipalities'}, or a group had "
                   "input left; the target fails whatever the rate.")
    if any(name.startswith("end-to-end") for name in missed):
        total = e.get("cpu_s_per_record_total")
        cores = bound.get("cores") or 2
        largest = sorted(cpu.items(), key=lambda item: -item[1])[:3]
        below = (bound.get("records_per_s") or 0) < MIN_E2E_RECORDS_PER_S
        out.append(E2E_MISSED.format(
            target=MIN_E2E_RECORDS_PER_S, cores=cores, total=_us(total),
            ceiling=f"{cores / total:,.0f}" if total else "–",
            largest=", ".join(f"{name} ({_us(seconds)} µs)" for name, seconds in largest),
            bound=_rate(bound.get("records_per_s")), store=_us(cpu.get(STORE)),
            store_ceiling=f"{1 / cpu[STORE]:,.0f}" if cpu.get(STORE) else "–",
            bound_note=" — below the target as well" if below else "",
            profile=_store_profile_sentence(e.get("store_profile"))))
    return out


def _store_profile_sentence(profile: dict[str, Any] | None) -> str:
    """The store profile's largest shares, as a sentence of the e2e note (empty without one)."""
    if not profile or "operations" not in profile:
        return ""
    return (f" Where its CPU went (py-spy, {profile['samples']:,} samples): by operation "
            f"{shares_text(profile['operations'][:3])}; the largest functions "
            f"{shares_text(profile['functions'][:3])}.")


def _rate(value: Any) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _gateway_notes(results: dict[str, Any], missed: list[str]) -> list[str]:
    g = results.get("gateway")
    if not g:
        return []
    spelled = {"events": f"{g['events']:,}", "request": f"{g['request_events']:,}",
               "bytes": f"{g.get('request_bytes_mean') or 0:,}", "rate": f"{g['events_per_s']:,.0f}",
               "cpu": _us(g.get("cpu_s_per_event")), "direct": f"{g['direct_events_per_s']:,.0f}",
               "direct_cpu": _us(g.get("direct_cpu_s_per_event")),
               "idempotent": {True: "yes", False: "no"}.get(g.get("idempotent"), "–"),
               "ratio": _fmt(g.get("throughput_ratio")), "target": MIN_GATEWAY_RATIO}
    out = [GATEWAY.format(**spelled)]
    if any(name.startswith("gateway:") for name in missed):
        runs = g.get("runs", {}).get("gateway", [])
        load = runs[0].get("load_before") if runs else None
        profile = g.get("profile") or {}
        shares = ""
        if "by_package" in profile:
            top = "; ".join(f"{r['function']} {r['share']:.0%}" for r in profile["top_cumulative"][:5])
            shares = f"This run's profile (cumulative, ours): {top}. "
        out.append(GATEWAY_MISSED.format(cpu=spelled["cpu"], direct_cpu=spelled["direct_cpu"],
                                         load=load, profile=shares))
    if g.get("incomplete_runs"):
        out.append(f"Gateway runs with events not accepted or not on their topics: "
                   f"{', '.join(g['incomplete_runs'])} (the target fails whatever the ratio).")
    return out


TRACING = (
    "Tracing cost (bench/tracing_cost.py): intake (`python -m services.intake`) on {events} records, "
    "fresh servers per run, off / 100 % / 1 % alternating, {rounds} rounds, best of each: CPU per event "
    "{off} µs off, {full} µs at 100 % ({full_cost}), {one} µs at 1 % ({one_cost}); {rates} events/s. "
    "Off: no OTEL_* variable, records without traceparent, no span exported ({off_spans}). On: "
    "OTEL_EXPORTER_OTLP_ENDPOINT at an OTLP/HTTP sink in the bench process, sampler {sampler}; every "
    "record carried a traceparent of its own random trace, sampled as a publisher at the same rate "
    "would mark it ({sampled_one} of {events} at 1 %); spans received per run: {full_spans} at 100 %, "
    "{one_spans} at 1 %. Finding: {statement}: {verdict} (× {ratio}; per round {per_round})."
)

TRACING_MISSED = (
    "Why tracing at 1 % still costs more than 1 %: an unsampled record gets no span of its own (under a "
    "parent-based sampler services/common/tracing.py's batch() skips the SDK for it and passes its "
    "context on), but every record that carries a context is still read with its header, the header "
    "parsed, and the reporting record the entity causes carries a traceparent header; the sampled 1 % "
    "get their per-record span, and every batch its span and step spans. {profile}"
    "Before the skip (commit 01f05d4's measurement) 1 % cost +27 to +70 %."
)

TRACING_DROPPED = (
    "At 100 % the SDK's BatchSpanProcessor dropped spans in {runs} run(s) (fewer spans than sampled "
    "records reached the sink): its queue holds 2,048 spans by default and a 2,000-record batch makes "
    "one span per record at once; OTEL_BSP_MAX_QUEUE_SIZE raises it."
)


def _tracing_notes(results: dict[str, Any]) -> list[str]:
    t = results.get("tracing")
    if not t:
        return []
    c = t.get("configurations", {})
    off, full, one = c.get("off", {}), c.get("on_100", {}), c.get("on_1", {})
    cost = t.get("cost_percent", {})
    finding = t.get("finding_1pct") or {}

    def pct(value: Any) -> str:
        return "–" if value is None else f"{value:+.1f} %"

    def spans(figures: dict[str, Any]) -> str:
        return " / ".join(f"{n:,}" for n in figures.get("spans", [])) or "–"

    per_round = "; ".join(f"{name}: " + ", ".join(pct(v) for v in values)
                          for name, values in (t.get("cost_percent_per_round") or {}).items())
    out = [TRACING.format(
        events=f"{t['events']:,}", rounds=t["rounds"], off=_us1(off.get("cpu_s_per_event")),
        full=_us1(full.get("cpu_s_per_event")), one=_us1(one.get("cpu_s_per_event")),
        full_cost=pct(cost.get("on_100")), one_cost=pct(cost.get("on_1")),
        rates=" / ".join(f"{f.get('events_per_s', 0):,.0f}" for f in (off, full, one)),
        off_spans=spans(off), sampler=t.get("sampler"), sampled_one=f"{one.get('sampled_records', 0):,}",
        full_spans=spans(full), one_spans=spans(one), statement=finding.get("statement", "–"),
        verdict={True: "holds", False: "does not hold", None: "not measured"}[finding.get("holds")],
        ratio=_fmt(finding.get("cpu_ratio")), per_round=per_round or "–")]
    if finding.get("holds") is False:
        profile = (t.get("profiles") or {}).get("on_1") or {}
        spelled = ""
        if profile.get("tracing_share") is not None:
            top = "; ".join(f"{r['function']} {r['tottime_s']:.2f} s ({r['calls']:,} calls)"
                            for r in profile.get("tracing_top_own_time", [])[:6])
            spelled = (f"This run's profile at 1 % (cProfile of intake's event loop from its first batch, "
                       f"bench.profiled; its clock inflates small calls): {profile['tracing_share']:.0%} "
                       f"of the busy own time in OpenTelemetry and services/common/tracing.py, one span "
                       f"started per record, sampled or not; the largest: {top}. ")
        out.append(TRACING_MISSED.format(profile=spelled))
    if t.get("problems"):
        out.append(f"Tracing runs not as expected: {'; '.join(t['problems'])}.")
    if full.get("runs_with_spans_dropped"):
        out.append(TRACING_DROPPED.format(runs=full["runs_with_spans_dropped"]))
    return out


def _us1(seconds: Any) -> str:
    return "–" if seconds is None else f"{seconds * 1e6:,.1f}"


def _us(seconds: Any) -> str:
    return "–" if seconds is None else f"{seconds * 1e6:,.0f}"


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _store_cpu(figures: dict[str, Any]) -> str:
    """nx-27017's CPU per event during the service's and the raw consumer's best runs."""
    runs = figures.get("runs", {})
    spelled = []
    for side in ("service", "raw"):
        best = max(runs.get(side) or [{}], key=lambda run: run.get("events_per_s") or 0.0)
        store = (best.get("server_cpu_s_per_event") or {}).get("mongodb")
        spelled.append("–" if store is None else f"{store * 1e6:.0f} µs")
    return " / ".join(spelled)


def _below(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value < limit


def _steal(figures: dict[str, Any]) -> str:
    shares = [run.get("steal_share") for run in figures.get("runs", {}).get("service", [])]
    known = [share for share in shares if share is not None]
    return ", ".join(f"{share:.0%}" for share in known) if known else "not measured"


def _profile_head(name: str, figures: dict[str, Any], profile: dict[str, Any]) -> str:
    head = (f"{name} misses a target: {_fmt(figures.get('throughput_ratio'))}× raw throughput, "
            f"{_fmt(figures.get('cpu_per_event_ratio'))}× raw CPU per event.")
    if "by_package" in profile:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in list(profile["by_package"].items())[:6])
        top = "; ".join(f"{r['function']} {r['share']:.0%}" for r in profile["top_own_time"][:4])
        head += f" This run's profile (own time when busy): {shares}. Top functions: {top}."
    return head


def notes(results: dict[str, Any]) -> list[str]:
    out = list(METHOD)
    machine = results.get("machine", {})
    out.append(f"Shared machine: load average {machine.get('load_average_at_start')} at the start; "
               "other processes' load, and CPU time the hypervisor gives to other machines (steal), "
               "only slow a run down, so BENCH_REPEAT=n keeps the best of n (each run's load and "
               "steal share are in services.<name>.runs).")
    missed = [t["name"] for t in results.get("targets", []) if t["pass"] is False]
    failed = {name.split(":")[0] for name in missed}
    profiles = results.get("profiles") or {}
    slow: list[str] = []
    costly: list[str] = []
    stores: list[str] = []
    steals: list[str] = []
    for name, figures in (results.get("services") or {}).items():
        if name not in failed:
            continue
        profile = profiles.get(name, {})
        head = _profile_head(name, figures, profile)
        if name == "reporting":
            out.append(f"{head} {REPORTING.format(store=_store_cpu(figures))}")
            continue
        out.append(head)
        if _below(figures.get("throughput_ratio"), MIN_THROUGHPUT_RATIO):
            slow.append(name)
            stores.append(f"{name} {_store_cpu(figures)}")
            steals.append(f"{name} {_steal(figures)}")
        if _below(MAX_CPU_RATIO, figures.get("cpu_per_event_ratio")):
            costly.append(name)
    if slow:
        out.append(OWNING.format(names=", ".join(slow), store="; ".join(stores), steal="; ".join(steals)))
    if costly:
        out.append(OWNING_CPU.format(names=", ".join(costly)))
    out += _latency_notes(results, missed)
    out += _gateway_notes(results, missed)
    out += _tracing_notes(results)
    out += _e2e_notes(results, missed)
    out += _reporting_workload_notes(results, missed)
    memory = results.get("memory")
    if memory and any(name.startswith("RSS flat") for name in missed):
        out.append(MEMORY.format(first=memory["rss_mb_at_first_sample"], last=memory["rss_mb_at_end"]))
    batching = results.get("batching")
    if batching and batching.get("speedup"):
        single = _fmt(batching["one_in_flight_events_per_s"])
        batched = _fmt(batching["batch_events_per_s"])
        out.append(f"Batching: the one-in-flight subscriber did {single} events/s against {batched} batched "
                   f"(× {_fmt(batching['speedup'])}): per message it pays the store round trips (watermark "
                   "find + write, entity find + write), a produce waiting for the broker's ack "
                   "(linger 5 ms) and an offset commit.")
    return out


def _latency_notes(results: dict[str, Any], missed: list[str]) -> list[str]:
    latency = results.get("latency_s", {})
    if not latency:
        return []
    rate = max(latency, key=int)
    hop = latency[rate].get("to_reporting_event", {})
    whatif = results.get("latency_whatif") or {}
    other = whatif.get("latency_s", {}).get(rate, {})
    spelled = {"rate": rate, "hop50": _fmt(hop.get("p50")), "hop99": _fmt(hop.get("p99")),
               "whatif_ms": whatif.get("fetch_max_wait_ms", "–"),
               "w50": _fmt(other.get("p50")), "w99": _fmt(other.get("p99"))}
    if any(name.startswith("p99 latency") for name in missed):
        cpu = ", ".join(f"{k} {v:g}" for k, v in (latency[rate].get("cpu_share") or {}).items())
        return [LATENCY.format(cpu=cpu or "–", **spelled)]
    return [LATENCY_MET.format(p99=_fmt(latency[rate].get("p99")), **spelled)]
