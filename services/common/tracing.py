"""Traces across the pipeline: W3C trace context in Kafka headers (OpenTelemetry).

One trace follows an event from its publisher through the owning service, onto the reporting
event it causes, into the reporting service and onto the `committee_summary.published`
record. The hops carry the context in a `traceparent` record header.

Batch consumers (the messaging conventions' shape for batches): one `process` span per
batch, linked to the contexts of its records (at most `MAX_LINKS`: SDKs drop links past 128
by default), with child spans for its steps (decode, store, produce, commit). A record's own
trace does not end there: for each record that carries a sampled context, a short `process`
span is made *in that record's trace* (its parent is the record's context, linked to the batch
span), and what the batch emits for that record carries the context of that span. A record
whose context is not sampled gets no span under a parent-based sampler (it would not be
recorded): its output carries the record's own context on, at the cost of a header parse. So a trace is
never cut at a batch, whatever the batch's size, and the batch span still says which records
it processed. Output that several records caused (an entity's new state, a municipality's
summary) continues the trace of the last of them.

Nothing is traced unless a tracer provider is installed: `configure` installs one exporting
over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, with the
standard `OTEL_*` variables (sampler, resource, headers) applied by the SDK; tests install
one with an in-memory exporter. Without one, a batch pays one context-variable read.
Span attributes never hold payload values: topics, partitions, offsets, counts.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
#: Links per batch span: the SDK's default limit per span.
MAX_LINKS = 128
INSTRUMENTATION = "taskforce"

_provider: TracerProvider | None = None
#: Per batch being processed (one asyncio task each): (topic, partition, offset) of each of
#: its records that carries a context → the `traceparent` of its `process` span.
_record_traces: contextvars.ContextVar[dict[tuple[str, int, int], str] | None] = contextvars.ContextVar(
    "taskforce_record_traces", default=None)


def install(provider: TracerProvider | None) -> None:
    """Trace with `provider` from now on (None: stop tracing)."""
    global _provider
    _provider = provider


def configure(service: str) -> bool:
    """Install an OTLP-exporting provider when an OTLP endpoint is configured; True if so."""
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not any(os.environ.get(name) for name in endpoints):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"taskforce-{service}")})
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER(_ARG)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider)
    log.info("traces exported over OTLP", extra={"service": service})
    return True


@contextlib.contextmanager
def exporting(service: str) -> Iterator[None]:
    """While it lasts, export traces over OTLP if an endpoint is configured and no provider is
    installed yet (tests install their own); at the end, flush and uninstall what it set up."""
    configured = not enabled() and configure(service)
    try:
        yield
    finally:
        if configured:
            shutdown()
            install(None)


def shutdown() -> None:
    """Flush and stop the installed provider (at process exit)."""
    if _provider is not None:
        _provider.shutdown()


def enabled() -> bool:
    return _provider is not None


def _tracer() -> trace.Tracer | None:
    return None if _provider is None else _provider.get_tracer(INSTRUMENTATION)


def _follows_parent() -> bool:
    """Whether the installed sampler decides a child span by its parent's sampled flag (the
    SDK's default, and `parentbased_*`): then an unsampled record's span need not be made."""
    from opentelemetry.sdk.trace.sampling import ParentBased

    return isinstance(getattr(_provider, "sampler", None), ParentBased)


def parse_traceparent(value: str | bytes | None) -> SpanContext | None:
    """The remote span context of a W3C `traceparent` (version 00), or None if it is not one.
    Strict and bounded: an attacker's header costs a length check and a split."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if len(value) != 55:
        return None
    version, trace_id, span_id, flags = value.split("-") if value.count("-") == 3 else ("", "", "", "")
    if version != "00" or len(trace_id) != 32 or len(span_id) != 16 or len(flags) != 2:
        return None
    try:
        ids = int(trace_id, 16), int(span_id, 16), int(flags, 16)
    except ValueError:
        return None
    if not ids[0] or not ids[1]:
        return None
    return SpanContext(ids[0], ids[1], is_remote=True, trace_flags=TraceFlags(ids[2] & 1))


def format_traceparent(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags) & 1:02x}"


def header_context(headers: Sequence[tuple[str, bytes]] | None) -> SpanContext | None:
    for key, value in headers or ():
        if key == TRACEPARENT:
            return parse_traceparent(value)
    return None


def record_trace(record: ConsumerRecord) -> str | None:
    """The `traceparent` that output caused by `record` carries (its `process` span's), if
    the record carried a context and a batch of it is being traced."""
    traces = _record_traces.get()
    if not traces:
        return None
    return traces.get((record.topic, record.partition, record.offset))


def tracing_records() -> bool:
    """Whether the batch being processed has records with a context (cheap: check it before
    asking `record_trace` record by record)."""
    return bool(_record_traces.get())


@contextlib.contextmanager
def batch(records: list[ConsumerRecord], service: str, group: str | None = None) -> Iterator[None]:
    """The batch's `process` span, around its steps; per record with a context, its own short
    `process` span in its trace (see the module's docstring)."""
    tracer = _tracer()
    if tracer is None or not records:
        yield
        return
    contexts = [(record, found) for record in records
                if (found := header_context(getattr(record, "headers", None))) is not None]
    topics = sorted({record.topic for record in records})
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.batch.message_count": len(records),
        "taskforce.service": service,
    }
    if len(topics) == 1:
        attributes["messaging.destination.name"] = topics[0]
    if group:
        attributes["messaging.consumer.group.name"] = group
    links = [Link(found) for _record, found in contexts[:MAX_LINKS]]
    name = f"process {topics[0]}" if len(topics) == 1 else "process"
    follows_parent = _follows_parent()
    with tracer.start_as_current_span(name, kind=SpanKind.CONSUMER, links=links,
                                      attributes=attributes) as span:
        own = span.get_span_context()
        traces: dict[tuple[str, int, int], str] = {}
        for record, found in contexts:
            where = (record.topic, record.partition, record.offset)
            if follows_parent and not found.trace_flags.sampled:
                # Its span would not be recorded (a parent-based sampler follows the publisher's
                # "not sampled"): skip the SDK, and let the output carry the record's context.
                traces[where] = format_traceparent(found)
                continue
            parent = trace.set_span_in_context(NonRecordingSpan(found))
            child = tracer.start_span(f"process {record.topic}", context=parent,
                                      kind=SpanKind.CONSUMER, links=[Link(own)], attributes={
                                          "messaging.system": "kafka",
                                          "messaging.operation.type": "process",
                                          "messaging.destination.name": record.topic,
                                          "messaging.destination.partition.id": str(record.partition),
                                          "messaging.kafka.offset": record.offset,
                                          "taskforce.service": service,
                                      })
            child.end()
            traces[where] = format_traceparent(child.get_span_context())
        token = _record_traces.set(traces)
        try:
            yield
        finally:
            _record_traces.reset(token)


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """A child span of the current batch span for one of its steps (no-op when not tracing)."""
    tracer = _tracer()
    if tracer is None:
        yield
        return
    with tracer.start_as_current_span(name, kind=SpanKind.INTERNAL):
        yield


@contextlib.contextmanager
def publish_span(topic: str | None, count: int | None = None) -> Iterator[str | None]:
    """A `send` span for what a publisher produces: one record, or (`count`) a batch of them,
    on `topic` (None: several topics); yields the `traceparent` to put in the records' headers
    (None when not tracing)."""
    tracer = _tracer()
    if tracer is None:
        yield None
        return
    attributes: dict[str, Any] = {"messaging.system": "kafka", "messaging.operation.type": "send"}
    if topic is not None:
        attributes["messaging.destination.name"] = topic
    if count is not None:
        attributes["messaging.batch.message_count"] = count
    name = "send" if topic is None else f"send {topic}"
    with tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes) as span:
        yield format_traceparent(span.get_span_context())


@contextlib.contextmanager
def request_span(method: str, route: str, traceparent: str | None) -> Iterator[None]:
    """A server span for one HTTP request, continuing the caller's trace when it sent a valid
    W3C `traceparent` header (else a new trace); no-op when not tracing."""
    tracer = _tracer()
    if tracer is None:
        yield
        return
    caller = parse_traceparent(traceparent)
    context = trace.set_span_in_context(NonRecordingSpan(caller)) if caller is not None else None
    with tracer.start_as_current_span(f"{method} {route}", context=context, kind=SpanKind.SERVER,
                                      attributes={"http.request.method": method, "http.route": route}):
        yield
