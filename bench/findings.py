"""The notes of a results document: how it was measured, and why a missed target was missed.

The analyses below come from profiling the services (py-spy and cProfile, see bench/README.md)
at the commit named in ANALYSED_AT; the figures quoted in the notes are the run's own.
"""

from __future__ import annotations

from typing import Any

ANALYSED_AT = "440a376"

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
    "replicates the newest states and does not compute summaries.",
]

OWNING = (
    "Why {names} miss (profiled at {at}): the owning services run decode → write → publish → commit "
    "strictly in sequence, so their own CPU adds directly to the store's time (nx-27017's own CPU per "
    "event in these runs: {store}, on the same 2 cores). Of the handler's time about a third is "
    "the reducers (`ProjectionEngine._reduce`: a pydantic `model_copy(update=...)` per event, `_key` "
    "tuples, `model_dump(mode='json')` per touched entity), a fifth decoding (`TypeAdapter.validate_json`"
    " in strict mode plus the CPR byte scan), a sixth building reporting records (`uuid5`, "
    "`datetime.now().isoformat()` and `json.dumps` per entity), a tenth building `UpdateOne`s (PyMongo "
    "validates every operation) and the rest publishing, metrics and FastStream's batch parser (it builds a "
    "headers dict per record that our decoder then ignores). Smaller hot spots: intake's `_key` calls "
    "`isoformat()` for both sides of every comparison and `str(event_id)` is recomputed several times "
    "per event (UUID.__str__). "
    "The raw consumer only does json.loads and dict updates. What would close it: (1) reduce each "
    "entity's events on plain data and build/dump the pydantic state once per entity (`model_construct`, "
    "no `model_copy` per event, tie-break strings only on ties); (2) one timestamp per batch for the "
    "reporting records, event ids as strings once; (3) pipeline the runtime: "
    "decode and reduce batch n+1 while batch n's writes and sends are in flight, committing in order — "
    "this hides the service's CPU behind the store's round trips and is what closes the throughput gap; "
    "(4) a FastStream parser that does not build per-record header dicts (or aiokafka directly)."
)

REPORTING = (
    "Why (profiled at {at}): per batch the reporting service recomputes every dirty period from "
    "scratch. `Replica.inputs` loads all states of the period (one find per kind and municipality: about "
    "ten round trips per touched municipality before any computing), then `received_in` filters the "
    "notifications with `Period.contains` and `visible`, which rebuild the period's zone-aware bounds "
    "(`Period.start`/`end`: a ZoneInfo datetime and `astimezone`) for every notification — "
    "`received_in`, `Period.contains` and `utc` were about 40 % of its samples, `periods_of` in "
    "`_replicate` another 6 %. Its cost per batch is O(notifications of the touched periods), not "
    "O(batch). What would close it: (1) compute each period's UTC bounds once (a cached property or "
    "`lru_cache` on `Period`) and compare precomputed UTC instants (−30–40 % CPU); (2) keep running "
    "figures per (municipality, period) updated from the old and new version of each changed state — "
    "the upsert already knows both — so a batch costs O(changed entities); (3) read the inputs of all "
    "touched municipalities with one query per kind (`municipality_code: {{$in: [...]}}`)."
)

LATENCY = (
    "Why the latency misses: at {rate}/s the first hop (publish → intake's reporting event) took p50 "
    "{hop50} s / p99 {hop99} s; the rest is the reporting service (CPU share, cores, during the rate: "
    "{cpu}). Reporting mostly waits on the store: for every batch it re-reads every state of each touched "
    "municipality's dirty periods (`Replica.inputs`: one find per kind and municipality, about ten "
    "round trips per municipality, and nx-27017 returns only ~20,000 documents/s) and recomputes the "
    "period from scratch, so a batch costs ~0.2 s even for a handful of records and grows with every "
    "notification of the current period — summaries trail by one or two such batches. Those reads also "
    "occupy the single nx-27017 process, so intake's own finds and writes queue behind them and its hop "
    "slows down too (more so on a loaded machine: see the load averages). The broker's fetch wait: "
    "what-if with `fetch_max_wait_ms={tuned}` in every subscriber gave p50 {w50} s, p99 {w99} s at "
    "{rate}/s ({verdict}; this what-if has varied between runs from better to worse, since shorter "
    "waits cost more fetches on the same cores). What would close it: incremental per-(municipality, period) "
    "figures updated from the old and new version of each changed state (a batch then reads and writes "
    "O(changed entities), not O(period)), reading all touched municipalities with one query per kind, "
    "and cached period bounds."
)

MEMORY = (
    "Why: RSS went from {first} MB to {last} MB. The owning services keep no state between batches; "
    "growth here would come from buffers (aiokafka's prefetch grows with the lag, the producer's "
    "accumulator) or a leak — compare `memory.samples`, and rerun with a steady lag."
)


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def notes(results: dict[str, Any]) -> list[str]:
    out = list(METHOD)
    machine = results.get("machine", {})
    out.append(f"Shared machine: load average {machine.get('load_average_at_start')} at the start; "
               "other processes' load only slows a run down, so BENCH_REPEAT=n keeps the best of n "
               "(each run's load is in services.<name>.runs).")
    missed = [t["name"] for t in results.get("targets", []) if t["pass"] is False]
    failed = {name.split(":")[0] for name in missed}
    profiles = results.get("profiles") or {}
    owning_missed: list[str] = []
    stores: list[str] = []
    for name, figures in (results.get("services") or {}).items():
        if name not in failed:
            continue
        head = (f"{name} misses a target: {_fmt(figures.get('throughput_ratio'))}× raw throughput, "
                f"{_fmt(figures.get('cpu_per_event_ratio'))}× raw CPU per event.")
        profile = profiles.get(name, {})
        if "by_package" in profile:
            shares = ", ".join(f"{k} {v:.0%}" for k, v in list(profile["by_package"].items())[:6])
            top = "; ".join(f"{r['function']} {r['share']:.0%}" for r in profile["top_own_time"][:4])
            head += f" This run's profile (own time when busy): {shares}. Top functions: {top}."
        if name == "reporting":
            out.append(f"{head} {REPORTING.format(at=ANALYSED_AT)}")
            continue
        out.append(head)
        owning_missed.append(name)
        runs = figures.get("runs", {}).get("service", [{}])
        store = (runs[0].get("server_cpu_s_per_event") or {}).get("mongodb")
        if store:
            stores.append(f"{name} {store * 1e6:.0f} µs")
    if owning_missed:
        out.append(OWNING.format(names=", ".join(owning_missed), at=ANALYSED_AT,
                                 store=", ".join(stores) or "–"))
    latency = results.get("latency_s", {})
    rate = max(latency, key=int) if latency else None
    if rate and any(name.startswith("p99 latency") for name in missed):
        hop = latency[rate].get("to_reporting_event", {})
        whatif = (results.get("latency_whatif") or {})
        tuned = whatif.get("latency_s", {}).get(rate, {})
        base_p99, tuned_p99 = latency[rate].get("p99"), tuned.get("p99")
        verdict = ("not measured" if base_p99 is None or tuned_p99 is None
                   else f"better than the default's p99 {base_p99:g} s" if tuned_p99 < base_p99
                   else f"no better than the default's p99 {base_p99:g} s")
        cpu = ", ".join(f"{k} {v:g}" for k, v in (latency[rate].get("cpu_share") or {}).items())
        out.append(LATENCY.format(rate=rate, hop50=_fmt(hop.get("p50")), hop99=_fmt(hop.get("p99")),
                                  cpu=cpu or "–", tuned=whatif.get("fetch_max_wait_ms", "–"),
                                  w50=_fmt(tuned.get("p50")), w99=_fmt(tuned.get("p99")), verdict=verdict))
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
