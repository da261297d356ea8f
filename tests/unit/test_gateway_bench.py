"""The benchmark's gateway phase, its pure parts: bodies, the target, the results document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import workload
from bench.__main__ import volumes
from bench.findings import notes
from bench.gateway import chunks, ndjson_body
from bench.report import markdown
from bench.stats import MIN_GATEWAY_RATIO, RESULTS_SCHEMA, evaluate_targets, validate_results
from services.gateway.items import NDJSON, judge, split_body

pytestmark = pytest.mark.unit


def figures(ratio: float = 0.6, **changes: Any) -> dict[str, Any]:
    run = {"events": 20_000, "accepted": 20_000, "on_topics": 20_000, "load_before": [0.5, 0.4, 0.3]}
    return {"events": 20_000, "request_events": 1_000, "request_bytes_mean": 296_877,
            "media_type": NDJSON, "events_per_s": 30_000.0 * ratio / 0.6,
            "direct_events_per_s": 50_000.0, "throughput_ratio": ratio, "cpu_s_per_event": 3.1e-05,
            "direct_cpu_s_per_event": 1.6e-05, "idempotent": False, "incomplete_runs": [],
            "runs": {"gateway": [run], "direct": [dict(run, idempotent=False)]}, **changes}


def results(gateway: dict[str, Any]) -> dict[str, Any]:
    return {"schema": RESULTS_SCHEMA, "started_at": "2026-12-07T12:00:00+00:00", "duration_s": 25.0,
            "scale": {"bench_events": 100_000}, "machine": {"git_commit": "abc1234", "cpus": 2},
            "services": {}, "latency_s": {}, "rss_growth_ratio": None, "notes": [], "gateway": gateway}


def gateway_target(doc: dict[str, Any]) -> dict[str, Any]:
    (target,) = [t.as_dict() for t in evaluate_targets(doc) if t.name.startswith("gateway:")]
    return target


def test_the_bodies_are_the_events_own_bytes_as_json_lines_the_gateway_accepts() -> None:
    records = list(workload.intake_events(2_500))
    batches = chunks(records, 1_000)
    assert [len(b) for b in batches] == [1_000, 1_000, 500]
    items = split_body(ndjson_body(batches[0]), NDJSON)
    assert [item.raw for item in items] == [value for _topic, _key, value in batches[0]]
    verdicts = [judge(item, lambda _code: True) for item in items]
    assert [(v.topic, v.municipality.encode()) for v in verdicts] == [  # type: ignore[union-attr]
        (topic, key) for topic, key, _value in batches[0]]


def test_volumes_default_to_20000_events_in_requests_of_1000(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_GATEWAY_EVENTS", raising=False)
    monkeypatch.delenv("BENCH_GATEWAY_REQUEST", raising=False)
    assert (volumes(100_000)["gateway"], volumes(100_000)["gateway_request"]) == (20_000, 1_000)
    assert volumes(2_000)["gateway"] == 2_000
    monkeypatch.setenv("BENCH_GATEWAY_EVENTS", "5_000")
    assert volumes(100_000)["gateway"] == 5_000


@pytest.mark.parametrize(("ratio", "passed"), [(0.6, True), (MIN_GATEWAY_RATIO, True), (0.49, False),
                                               (None, None)])
def test_the_target_is_half_of_aiokafka_directly(ratio: float | None, passed: bool | None) -> None:
    target = gateway_target(results(figures(throughput_ratio=ratio)))
    assert (target["value"], target["pass"], target["limit"]) == (ratio, passed, f">= {MIN_GATEWAY_RATIO}")


def test_a_lost_event_fails_the_target_whatever_the_rate() -> None:
    doc = results(figures(incomplete_runs=["gateway-0"]))
    assert gateway_target(doc)["pass"] is False
    doc["targets"] = [t.as_dict() for t in evaluate_targets(doc)]
    assert any("gateway-0" in note for note in notes(doc))


def test_the_results_document_and_its_markdown_carry_the_gateway() -> None:
    doc = results(figures())
    doc["targets"] = [t.as_dict() for t in evaluate_targets(doc)]
    doc["notes"] = notes(doc)
    assert validate_results(doc) == []
    assert validate_results(dict(doc, gateway=figures(events_per_s="fast"))) == [
        "gateway.events_per_s is not a number"]
    text = markdown(doc)
    assert "## Ingestion gateway" in text
    assert "| 20,000 | 1,000 events, JSON Lines, ~296,877 bytes | 30,000 | 50,000 | 0.600 | 31 | 16 |" in text
    assert "gateway: accepted events/s ≥ 0.5 × aiokafka direct | 0.600 | >= 0.5 | **PASS**" in text
    (note,) = [n for n in doc["notes"] if n.startswith("Gateway")]
    assert "30,000 accepted events/s" in note and "× 0.6" in note
    json.dumps(doc)  # serialisable as it stands


def test_a_missed_target_is_explained() -> None:
    doc = results(figures(ratio=0.4))
    doc["targets"] = [t.as_dict() for t in evaluate_targets(doc)]
    assert any(n.startswith("Why the gateway misses") for n in notes(doc))
