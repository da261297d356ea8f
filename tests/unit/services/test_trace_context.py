"""W3C trace context in record headers: parsed strictly, never raising, round-tripping."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import SpanContext, TraceFlags

from services.common import tracing

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_traceparent_parses_into_a_remote_context() -> None:
    context = tracing.parse_traceparent(VALID)
    assert context is not None and context.is_remote and context.is_valid
    assert context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736 and context.span_id == 0x00F067AA0BA902B7
    assert context.trace_flags.sampled
    assert tracing.parse_traceparent(VALID.encode()) == context


def test_malformed_or_unknown_version_or_zero_ids_are_no_context() -> None:
    for bad in ["", VALID[:-1], VALID + "0", VALID.replace("00-", "01-", 1), VALID.replace("-", "_"),
                "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
                "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", None]:
        assert tracing.parse_traceparent(bad) is None, bad
    assert tracing.parse_traceparent(b"\xff" * 55) is None


@given(st.one_of(st.binary(max_size=80), st.text(max_size=80)))
def test_any_header_value_parses_or_is_refused_without_raising(value: bytes | str) -> None:
    context = tracing.parse_traceparent(value)
    assert context is None or context.is_valid


@given(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1), st.booleans())
def test_format_and_parse_round_trip(trace_id: int, span_id: int, sampled: bool) -> None:
    context = SpanContext(trace_id, span_id, is_remote=True,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT))
    assert tracing.parse_traceparent(tracing.format_traceparent(context)) == context


def test_header_context_finds_the_traceparent_among_other_headers() -> None:
    headers = [("x-other", b"1"), (tracing.TRACEPARENT, VALID.encode())]
    assert tracing.header_context(headers) == tracing.parse_traceparent(VALID)
    assert tracing.header_context(None) is None and tracing.header_context([("x", b"y")]) is None


def test_nothing_is_traced_without_a_provider() -> None:
    tracing.install(None)
    assert not tracing.enabled() and not tracing.tracing_records()
    with tracing.publish_span("taskforce.notifications") as parent:
        assert parent is None


def _records() -> list[SimpleNamespace]:
    sampled, unsampled = VALID, VALID[:-2] + "00"
    return [SimpleNamespace(topic="t", partition=0, offset=offset,
                            headers=[(tracing.TRACEPARENT, value.encode())])
            for offset, value in enumerate((sampled, unsampled))]


def _spans_per_record(sampler: Sampler) -> tuple[list[str | None], int]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        records = _records()
        with tracing.batch(records, "intake"):  # type: ignore[arg-type]  # a record's fields only
            carried = [tracing.record_trace(r) for r in records]  # type: ignore[arg-type]  # as above
    finally:
        tracing.install(None)
    per_record = [s for s in exporter.get_finished_spans()
                  if "messaging.kafka.offset" in (s.attributes or {})]
    return carried, len(per_record)


def test_an_unsampled_record_gets_no_span_of_its_own_under_a_parent_based_sampler() -> None:
    carried, made = _spans_per_record(ParentBased(ALWAYS_ON))
    assert made == 1  # the sampled record's only: the other's would not be recorded anyway
    sampled, unsampled = (tracing.parse_traceparent(c) for c in carried)
    assert unsampled == tracing.parse_traceparent(_records()[1].headers[0][1])  # passed on as it came
    assert sampled is not None and sampled.trace_id == tracing.parse_traceparent(VALID).trace_id
    assert sampled.span_id != tracing.parse_traceparent(VALID).span_id  # its own span's


def test_a_sampler_that_ignores_the_parent_gets_a_span_for_every_record() -> None:
    carried, made = _spans_per_record(ALWAYS_ON)
    assert made == 2 and all(c is not None for c in carried)
