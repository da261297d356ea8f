"""The tracing phase's pure helpers (bench/tracing_cost.py): headers, environment, sink, summary."""

from __future__ import annotations

import http.client

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from bench.findings import notes
from bench.report import markdown
from bench.stats import RESULTS_SCHEMA, evaluate_targets, validate_results
from bench.tracing_cost import (
    Run,
    Sink,
    SinkCounts,
    run_problems,
    sampled,
    sampling_bound,
    summarise,
    traceparents,
    tracing_env,
)
from services.common.tracing import parse_traceparent

pytestmark = pytest.mark.unit


def test_traceparents_are_valid_fresh_roots_sampled_as_the_publishers_sampler_would() -> None:
    values = traceparents(20_000, 0.01)
    contexts = [parse_traceparent(v) for v in values]
    assert all(c is not None for c in contexts)
    assert len({c.trace_id for c in contexts if c}) == len(values)  # one trace per record
    sampler = TraceIdRatioBased(0.01)
    assert sampling_bound(0.01) == sampler.bound
    for c in contexts:
        assert c is not None and c.trace_flags.sampled == (
            sampler.should_sample(None, c.trace_id, "send").decision.is_sampled())
    assert 120 <= sampled(values) <= 280  # ~1 % of 20,000
    assert traceparents(50, 0.01) == traceparents(50, 0.01)  # deterministic


def test_at_100_percent_every_record_is_sampled() -> None:
    values = traceparents(1_000, 1.0)
    assert sampled(values) == 1_000


def test_tracing_env_removes_inherited_otel_settings_and_sets_the_configuration() -> None:
    inherited = {"PATH": "/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://elsewhere:4318",
                 "OTEL_TRACES_SAMPLER_ARG": "0.5", "OTEL_SERVICE_NAME": "x"}
    off = tracing_env(inherited, None, "http://127.0.0.1:9")
    assert off == {"PATH": "/bin"}
    on = tracing_env(inherited, 0.01, "http://127.0.0.1:9")
    assert on == {"PATH": "/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                  "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}


def test_run_problems_want_spans_exactly_when_tracing_is_on() -> None:
    assert run_problems("off", None, 0, 0) == []
    assert run_problems("on_1", 0.01, 12, 0) == []
    assert run_problems("off", None, 3, 0)
    assert run_problems("on_100", 1.0, 0, 0)
    assert run_problems("on_100", 1.0, 10, 1)


def test_the_sink_answers_otlp_exports_and_counts_their_spans() -> None:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(3):
        scope.spans.add(name=f"s{i}", trace_id=bytes(15) + b"\x01", span_id=bytes(7) + bytes([i + 1]))
    body = request.SerializeToString()
    with Sink() as sink:
        connection = http.client.HTTPConnection("127.0.0.1", int(sink.endpoint.rsplit(":", 1)[1]), timeout=5)
        for path, status in (("/v1/traces", 200), ("/v1/traces", 200), ("/v1/metrics", 404)):
            connection.request("POST", path, body=body, headers={"Content-Type": "application/x-protobuf"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == status
        connection.close()
        counts = sink.snapshot()
    assert (counts.requests, counts.spans, counts.bytes, counts.errors) == (2, 6, 2 * len(body), 0)


def _run(configuration: str, round_: int, cpu_us: float, rate: float, spans: int) -> Run:
    measured = {"events": 1_000, "measured_events": 900, "measured_s": 1.0, "events_per_s": rate,
                "cpu_s_per_event": cpu_us / 1e6}
    return Run(f"tracing-{configuration}-{round_}", configuration, 1_000, 0 if configuration == "off" else 10,
               measured, SinkCounts(requests=spans // 100, bytes=spans * 300, spans=spans),
               [0.1] * 3, [0.1] * 3, 0.0,
               run_problems(configuration, None if configuration == "off" else 0.5, spans, 0))


def _results(tracing: dict) -> dict:
    results = {"schema": RESULTS_SCHEMA, "started_at": "2026-12-08T00:00:00+00:00", "duration_s": 60.0,
               "scale": {"bench_events": 100_000}, "machine": {}, "services": {}, "latency_s": {},
               "rss_growth_ratio": None, "notes": [], "tracing": tracing}
    results["targets"] = [t.as_dict() for t in evaluate_targets(results)]
    return results


def test_summary_keeps_the_best_of_each_configuration_and_states_the_cost_against_off() -> None:
    runs = [_run("off", 0, 50, 5_000, 0), _run("on_100", 0, 120, 3_000, 1_000),
            _run("on_1", 0, 53, 4_900, 12), _run("off", 1, 60, 4_000, 0),
            _run("on_100", 1, 110, 3_100, 1_000), _run("on_1", 1, 66, 4_000, 12)]
    summary = summarise(runs, 1_000, 2)
    configurations = summary["configurations"]
    assert configurations["off"]["cpu_s_per_event"] == pytest.approx(50e-6)
    assert configurations["on_100"]["cpu_s_per_event"] == pytest.approx(110e-6)
    assert configurations["on_1"]["events_per_s"] == 4_900
    assert summary["cost_percent"] == {"on_100": 120.0, "on_1": 6.0}
    assert summary["cost_percent_per_round"] == {"on_100": [140.0, 83.3], "on_1": [6.0, 10.0]}
    assert summary["problems"] == []
    assert summary["finding_1pct"]["cpu_ratio"] == 1.06 and summary["finding_1pct"]["holds"] is True
    results = _results(summary)
    assert validate_results(results) == []
    assert not any("tracing" in t["name"] for t in results["targets"])  # a finding, not a target
    text = markdown(results)
    assert "## Tracing cost" in text and "+6.0 %" in text and "+120.0 %" in text and "**holds**" in text
    assert any(note.startswith("Tracing cost") for note in notes(results))


def test_the_finding_fails_above_ten_percent_and_the_notes_say_why() -> None:
    runs = [_run("off", 0, 50, 5_000, 0), _run("on_100", 0, 120, 3_000, 1_000),
            _run("on_1", 0, 80, 3_900, 12)]
    results = _results(summarise(runs, 1_000, 1))
    assert results["tracing"]["finding_1pct"]["holds"] is False
    assert any(note.startswith("Why tracing at 1 %") for note in notes(results))
    assert "**does not hold**" in markdown(results)


def test_a_run_without_spans_fails_the_finding() -> None:
    runs = [_run("off", 0, 50, 5_000, 0), _run("on_100", 0, 120, 3_000, 0), _run("on_1", 0, 51, 4_900, 5)]
    summary = summarise(runs, 1_000, 1)
    assert summary["problems"] and summary["finding_1pct"]["holds"] is False
    assert summary["configurations"]["on_100"]["runs_with_spans_dropped"] == 1


def test_validation_names_a_missing_configuration() -> None:
    summary = summarise([_run("off", 0, 50, 5_000, 0), _run("on_1", 0, 51, 4_900, 5)], 1_000, 1)
    assert "tracing.configurations.on_100 missing" in validate_results(_results(summary))
