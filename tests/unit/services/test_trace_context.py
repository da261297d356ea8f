"""W3C trace context in record headers: parsed strictly, never raising, round-tripping."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
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
