"""In-process CPU micro-benchmark of the owning services' projection hot path (no I/O).

    python -m bench.cpu_owning [--repeat N] [--digest]

Per service, the deterministic workload of `bench.workload` runs through the pure parts of
`ProjectionEngine.apply_batch` in batches of 2,000: `split_batch`, `_group`, `_reduce` on
fresh entities, `_reduce` again over the same events starting from the stored states (as
`_load` gives them: validated from the dumped state, with no event applied yet, so every
comparison in the reducers runs, and every one is a tie: a worst case for tie-breaks, not the
common one), `_upsert` and `_reporting_record`. Prints µs of process
CPU per event per stage, the best of `--repeat` runs. `--digest` also prints a hash of every
upsert and reporting record (their `occurred_at` blanked), to check that a change keeps the
output identical.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import workload
from services.analysis import projections as analysis
from services.common.metrics import ServiceMetrics
from services.common.projection import ProjectionEngine, _Entity, split_batch
from services.common.settings import Settings
from services.followup import projections as followup
from services.intake import projections as intake

BATCH = 2_000
STAGES = ("decode", "group", "reduce_new", "load", "reduce_stored", "upsert", "reporting")
WATERMARK = datetime(2024, 1, 1, tzinfo=UTC)
OCCURRED_AT = re.compile(rb'"occurred_at":"[^"]*"')


@dataclass(frozen=True, slots=True)
class FakeRecord:
    """What `split_batch` and `report_rejections` read of an aiokafka ConsumerRecord."""

    topic: str
    key: bytes
    value: bytes
    partition: int
    offset: int


SERVICES: dict[str, tuple[Callable[[], list[workload.Record]], dict[str, Any]]] = {
    "intake": (lambda: list(workload.intake_events(20_000)), intake.KINDS),
    "analysis": (lambda: workload.analysis_events(10_000), analysis.KINDS),
    "followup": (lambda: workload.followup_events(10_000), followup.KINDS),
}


def _stored(entity: _Entity) -> _Entity:
    """The entity as `_load` would read it back after the first write, minus its applied ids."""
    assert entity.dumped is not None
    return _Entity(entity.kind, entity.doc_id, entity.municipality_code, entity.entity_id,
                   events=entity.events, read_version=entity.version, version=entity.version,
                   state=entity.kind.state_model.model_validate(entity.dumped, strict=False),
                   dumped=entity.dumped)


def run_once(engine: ProjectionEngine, records: list[FakeRecord],
             digest: hashlib._Hash | None) -> dict[str, float]:
    spent = dict.fromkeys(STAGES, 0.0)
    clock = time.process_time
    for start in range(0, len(records), BATCH):
        batch = records[start:start + BATCH]
        t0 = clock()
        valid, rejected = split_batch(batch, engine.settings)  # type: ignore[arg-type]
        t1 = clock()
        entities = list(engine._group(valid).values())
        t2 = clock()
        for entity in entities:
            engine._reduce(entity)
        t3 = clock()
        stored = [_stored(e) for e in entities]
        t4 = clock()
        for entity in stored:
            engine._reduce(entity)
        t5 = clock()
        ops = [engine._upsert(e) for e in stored]
        t6 = clock()
        now = datetime.now(UTC).isoformat()  # one instant per batch, as apply_batch does
        out = [engine._reporting_record(e, WATERMARK.isoformat(), now) for e in stored]
        t7 = clock()
        assert not rejected
        for stage, took in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6),
                               strict=True):
            spent[stage] += took
        if digest is not None:
            for op in ops:
                digest.update(repr((op._filter, op._doc, op._upsert)).encode())
            for rec in out:
                digest.update(rec.topic.encode() + rec.key + OCCURRED_AT.sub(b"", rec.value))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--digest", action="store_true")
    parser.add_argument("services", nargs="*", default=list(SERVICES))
    args = parser.parse_args()
    print(f"{'service':9} " + " ".join(f"{s:>13}" for s in STAGES) + f" {'total':>8}   µs CPU/event")
    for name in args.services:
        make, kinds = SERVICES[name]
        settings = Settings(TASKFORCE_SERVICE=name)  # type: ignore[call-arg]
        engine = ProjectionEngine(settings, None, ServiceMetrics(name), kinds)  # type: ignore[arg-type]
        records = [FakeRecord(topic, key, value, 0, n) for n, (topic, key, value) in enumerate(make())]
        best = dict.fromkeys(STAGES, float("inf"))
        digest = hashlib.sha256() if args.digest else None
        for n in range(args.repeat):
            gc.collect()
            spent = run_once(engine, records, digest if n == 0 else None)
            best = {stage: min(best[stage], spent[stage]) for stage in STAGES}
        per_event = {stage: best[stage] / len(records) * 1e6 for stage in STAGES}
        print(f"{name:9} " + " ".join(f"{per_event[s]:13.1f}" for s in STAGES)
              + f" {sum(per_event.values()):8.1f}")
        if digest is not None:
            print(f"{'':9} digest {digest.hexdigest()}")


if __name__ == "__main__":
    main()
