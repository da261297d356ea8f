"""One trace from a published notification to the committee summary that counts it.

The publisher (`taskforce publish`'s sending), intake and reporting run in this process
against the real servers, with an OpenTelemetry SDK provider exporting to memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from schemas import topics
from services.common import tracing
from services.intake.app import create as create_intake
from services.reporting.app import create as create_reporting
from taskforce.feed import FeedLine
from taskforce.publisher import send_records
from tests.support.events import received
from tests.support.kafka import decoded, read_until
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)
        provider.shutdown()


def _trace_id(header: bytes | None) -> int | None:
    context = tracing.parse_traceparent(header)
    return None if context is None else context.trace_id


def _header(record: Any, name: str) -> bytes | None:
    return next((value for key, value in record.headers or () if key == name), None)


async def test_one_trace_from_the_published_notification_to_its_summary(
    stack: Any, prefix: str, spans: InMemorySpanExporter,
) -> None:
    note = received("n-traced", "2023-03-01T10:00:00+01:00", municipality="849")
    line = FeedLine(1, topics.NOTIFICATIONS, b"849", json.dumps(note).encode(), note["event_type"])
    async with (running(create_reporting, settings_for("reporting", stack, prefix)),
                running(create_intake, settings_for("intake", stack, prefix))):
        await send_records([line], stack.bootstrap_servers, prefix)

        def counted(records: list[Any]) -> bool:
            return any(s["data"]["period"] == "2023H1" and s["data"]["notifications"]["received"] == 1
                       for s in decoded(records))

        summaries = await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, counted, timeout=60)
        reporting_records = await read_until(stack.bootstrap_servers, prefix + topics.REPORTING, bool)

    (sent,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    trace_id = sent.context.trace_id
    summary = next(r for r in summaries if json.loads(r.value)["data"]["notifications"]["received"] == 1)
    assert _trace_id(_header(summary, tracing.TRACEPARENT)) == trace_id
    assert _trace_id(_header(reporting_records[0], tracing.TRACEPARENT)) == trace_id

    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    services = {s.attributes.get("taskforce.service") for s in in_trace if s.attributes}
    assert {"intake", "reporting"} <= services  # one span per hop in the record's own trace
    record_spans = [s for s in in_trace if s.kind is SpanKind.CONSUMER]
    intake_hop = next(s for s in record_spans if s.attributes["taskforce.service"] == "intake")
    assert intake_hop.parent is not None and intake_hop.parent.span_id == sent.context.span_id

    # Each batch has its own span, linked to the records' contexts, with its steps as children.
    batches = [s for s in finished if s.kind is SpanKind.CONSUMER and s.attributes
               and "messaging.batch.message_count" in s.attributes]
    intake_batch = next(b for b in batches if b.attributes["taskforce.service"] == "intake"
                        and any(link.context.span_id == sent.context.span_id for link in b.links))
    assert intake_batch.attributes["messaging.system"] == "kafka"
    assert intake_batch.attributes["messaging.destination.name"] == prefix + topics.NOTIFICATIONS
    batch_id = intake_batch.context.span_id
    steps = {s.name for s in finished if s.parent is not None and s.parent.span_id == batch_id}
    assert {"decode", "store", "produce", "commit"} <= steps
    values = json.dumps([dict(s.attributes or {}) for s in finished])
    assert "n-traced" not in values  # never a payload value in a span


async def test_a_gateway_request_s_trace_continues_to_the_summary(
    stack: Any, prefix: str, spans: InMemorySpanExporter, tmp_path: Any,
) -> None:
    """A municipal system that traces its POST (W3C `traceparent` on the HTTP request) finds the
    gateway's request span, the records it produced, intake's hop and the summary in its trace."""
    from services.gateway.app import create as create_gateway

    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"token-849": "849"}))
    caller_trace, caller_span = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7
    caller = f"00-{caller_trace:032x}-{caller_span:016x}-01"
    note = received("n-gateway", "2023-03-01T10:00:00+01:00", municipality="849")
    async with (running(create_reporting, settings_for("reporting", stack, prefix)),
                running(create_intake, settings_for("intake", stack, prefix)),
                running(create_gateway, settings_for("gateway", stack, prefix,
                                                      TASKFORCE_TOKENS_FILE=str(tokens))) as gateway,
                gateway.client(headers={"Authorization": "Bearer token-849"}) as http):
        answer = await http.post("/v1/events", content=json.dumps([note]).encode(),
                                 headers={"Content-Type": "application/json", "traceparent": caller})
        assert answer.status_code == 200, answer.text

        def counted(records: list[Any]) -> bool:
            return any(s["data"]["period"] == "2023H1" and s["data"]["notifications"]["received"] == 1
                       for s in decoded(records))

        summaries = await read_until(stack.bootstrap_servers, prefix + topics.SUMMARIES, counted, timeout=60)
        inputs = await read_until(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, bool)

    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.context.trace_id == caller_trace and server.parent.span_id == caller_span
    (sent,) = [s for s in finished if s.kind is SpanKind.PRODUCER]
    assert sent.parent.span_id == server.context.span_id
    assert sent.attributes["messaging.destination.name"] == prefix + topics.NOTIFICATIONS
    assert sent.attributes["messaging.batch.message_count"] == 1
    record_context = tracing.parse_traceparent(_header(inputs[0], tracing.TRACEPARENT))
    assert record_context is not None and record_context.span_id == sent.context.span_id
    summary = next(r for r in summaries if json.loads(r.value)["data"]["notifications"]["received"] == 1)
    assert _trace_id(_header(summary, tracing.TRACEPARENT)) == caller_trace
    intake_hop = next(s for s in finished if s.kind is SpanKind.CONSUMER and s.parent is not None
                      and s.parent.span_id == sent.context.span_id)
    assert intake_hop.attributes["taskforce.service"] == "intake"


async def test_a_request_without_a_valid_traceparent_starts_its_own_trace(
    stack: Any, prefix: str, spans: InMemorySpanExporter, tmp_path: Any,
) -> None:
    from services.gateway.app import create as create_gateway

    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"token-849": "849"}))
    note = received("n-untraced", "2023-03-01T10:00:00+01:00", municipality="849")
    async with (running(create_gateway, settings_for("gateway", stack, prefix,
                                                      TASKFORCE_TOKENS_FILE=str(tokens))) as gateway,
                gateway.client(headers={"Authorization": "Bearer token-849"}) as http):
        hostile = "00-zz-" + "x" * 48  # the right length, not hex: ignored, never an error
        answer = await http.post("/v1/events", content=json.dumps([note]).encode(),
                                 headers={"Content-Type": "application/json", "traceparent": hostile})
        assert answer.status_code == 200, answer.text
    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.parent is None and server.context.trace_id != 0
