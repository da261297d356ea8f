"""The ingestion gateway's composition root: `POST /v1/events` and the operational endpoints.

Municipal systems publish over HTTPS, each only for itself: a bearer token (tokens file or
OIDC, `services.common.auth`, as the reporting service) whose scope holds a municipality may
submit that municipality's events; valid events are produced to their input topic keyed by
`municipality_code`, and each item of a request is answered (`services.gateway.items`). No
value of an item is ever logged or answered. See docs/contract.md, "Ingestion gateway".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response, Security
from fastapi.security import HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field

from schemas.events import INPUT_TYPES
from services.common import tracing
from services.common.auth import Access, Principal, Unauthorized, Unavailable, audit_slot, responses
from services.common.collector import settle_garbage_collector
from services.common.connections import kafka_connection
from services.common.settings import LOOPBACK_HOSTS, Settings, load_settings
from services.gateway.config import GatewayConfig
from services.gateway.examples import event_types, example_event
from services.gateway.items import (
    CLOUDEVENT,
    CLOUDEVENTS_BATCH,
    JSON,
    MEDIA_TYPES,
    NDJSON,
    Accepted,
    BodyError,
    Refused,
    Verdict,
    judge,
    media_type,
    split_body,
    status_of,
    to_cloudevent,
)
from services.gateway.limits import RateLimiter
from services.gateway.sink import Sink

log = logging.getLogger(__name__)

ROUTE = "/v1/events"
#: Seconds a writer is asked to wait while the broker is unreachable.
UNAVAILABLE_RETRY_AFTER_S = 5
NOT_ACKNOWLEDGED = "not_acknowledged"


class ItemAnswer(BaseModel):
    """What became of one item of the request (in request order)."""

    index: int = Field(description="The item's position in the request, from 0.")
    line: int | None = Field(default=None, description="JSON Lines only: the item's line number, from 1.")
    event_id: str | None = Field(description="The item's `event_id` (CloudEvents: `id`) when it is a UUID; "
                                             "null otherwise (nothing else of an item is echoed).")
    status: Literal["accepted", "rejected"]
    topic: str | None = Field(default=None, description="Accepted: the topic it was produced to.")
    reason: str | None = Field(default=None, description="Rejected: the DLQ's reason code, or "
                               "`not_in_scope`, `invalid_cloudevent`, `not_acknowledged`.")
    detail: str | None = Field(default=None, description="Rejected: field locations and messages, "
                                                         "never values.")
    fields: list[str] | None = Field(default=None, description="Rejected: the locations of the fields "
                                     "at fault (`<unknown field>` for a key the contract does not have).")
    retry: bool | None = Field(default=None, description="Rejected: true when the same item may succeed "
                               "if sent again later (the broker did not acknowledge it in time).")


class EventsAnswer(BaseModel):
    """Per item, accepted or rejected. 200: all accepted; 207: some; 422: none; 503: none,
    and some only for want of the broker."""

    accepted: int
    rejected: int
    items: list[ItemAnswer]


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.events = Counter("taskforce_gateway_events", "Events submitted, by outcome and reason "
                              "(reason is empty for accepted events).", ["outcome", "reason"], registry=r)
        self.requests = Counter("taskforce_gateway_requests", "Write requests answered, by status.",
                                ["status"], registry=r)
        self.seconds = Histogram("taskforce_gateway_request_seconds", "Time to answer a write request.",
                                 registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.ready = Gauge("taskforce_ready", "1 when the service is ready.", ["service"], registry=r)


class GatewayRuntime:
    """What a running gateway holds (what `Access.start` needs: settings and a producer)."""

    def __init__(self, settings: Settings, config: GatewayConfig) -> None:
        self.settings = settings
        self.config = config
        self.metrics = GatewayMetrics()
        self.sink = Sink(kafka_connection(settings), settings.topic_prefix, config,
                         f"taskforce-{settings.service}", settings.producer_max_request_bytes)
        self.limiter = RateLimiter(config.rate_events_per_s, config.rate_burst_events)

    @property
    def producer(self) -> Any:
        assert self.sink.producer is not None, "the sink is not started"
        return self.sink.producer


async def _settle_garbage_collector() -> None:
    """Once the producer is up: what start-up made out of the collector's sight, and young
    collections after 200,000 net allocations instead of 700, as the consumers do
    (a 1,000-event request makes tens of thousands of objects that live until it is answered)."""
    settle_garbage_collector()


def check_credentials(settings: Settings, config: GatewayConfig) -> None:
    """Refuse to serve beyond this machine without any way to authenticate a writer."""
    exposed = settings.http_host.strip("[]") not in LOOPBACK_HOSTS
    unguarded = settings.tokens_file is None and not settings.oidc_issuer
    if exposed and unguarded and not config.allow_no_credentials:
        from services.common.secret_files import SettingsError

        raise SettingsError("TASKFORCE_TOKENS_FILE", "or TASKFORCE_OIDC_ISSUER is required when the gateway "
                            "binds a non-loopback address (TASKFORCE_HTTP_HOST)")


def create(settings: Settings | None = None,
           config: GatewayConfig | None = None) -> tuple[FastAPI, GatewayRuntime]:
    settings = settings or load_settings("gateway")
    config = config or GatewayConfig()
    check_credentials(settings, config)
    runtime = GatewayRuntime(settings, config)
    access = Access.build(settings, runtime.metrics.registry)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set: the trace of a request
        # continues onto each record produced.
        with tracing.exporting("gateway"):
            runtime.sink.start(on_start=(
                lambda: access.start(runtime),  # type: ignore[arg-type]  # duck-typed runtime
                _settle_garbage_collector))
            log.info("gateway started", extra={"idempotence": config.idempotence})
            try:
                yield
            finally:
                await access.stop()
                await runtime.sink.stop()
                log.info("stopped")

    app = FastAPI(title="taskforce gateway", lifespan=lifespan, description=(
        "Municipal systems publish events over HTTPS, each only for its own municipality. "
        "See docs/contract.md, *Ingestion gateway*."))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", responses=responses.READINESS)
    async def readyz(response: Response) -> dict[str, Any]:
        checks = runtime.sink.checks()
        ready = all(checks.values())
        runtime.metrics.ready.labels(settings.service).set(1 if ready else 0)
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": checks}

    @app.get("/metrics", response_class=Response, responses=responses.PROMETHEUS)
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router(runtime, access))
    access.install(app)
    return app, runtime


_BEARER = HTTPBearer(auto_error=False, scheme_name="bearer", description=(
    "A token from the tokens file, or an OIDC access token (JWT) from the configured identity provider; "
    "its scope names the municipalities it may write for."))
_BEARER_CREDENTIALS = Security(_BEARER)


def _answer(status: int, body: dict[str, Any], **headers: str) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status,
                    media_type="application/json", headers={"Cache-Control": "no-store", **headers})


def _answer_bytes(status: int, body: bytes, **headers: str) -> Response:
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", **headers})


def _events_answer(verdicts: list[Verdict]) -> bytes:
    """The EventsAnswer of `verdicts` as JSON, byte for byte what `json.dumps` makes of it with
    `_item_answer` (compact separators), but with each accepted item spelled directly: their
    fields are an int, a canonical UUID and a topic name, which need no escaping."""
    parts: list[str] = []
    done = 0
    for verdict in verdicts:
        if isinstance(verdict, Accepted):
            done += 1
            line = "" if verdict.line is None else f'"line":{verdict.line},'
            parts.append(f'{{"index":{verdict.index},{line}"event_id":"{verdict.event_id}",'
                         f'"status":"accepted","topic":"{verdict.topic}"}}')
        else:
            parts.append(json.dumps(_item_answer(verdict), separators=(",", ":")))
    return (f'{{"accepted":{done},"rejected":{len(verdicts) - done},"items":[' + ",".join(parts)
            + "]}").encode()


def _item_answer(verdict: Verdict) -> dict[str, Any]:
    answer: dict[str, Any] = {"index": verdict.index}
    if verdict.line is not None:
        answer["line"] = verdict.line
    answer["event_id"] = verdict.event_id
    if isinstance(verdict, Accepted):
        answer["status"], answer["topic"] = "accepted", verdict.topic
    else:
        answer.update(status="rejected", reason=verdict.reason, detail=verdict.detail,
                      fields=list(verdict.fields))
        if verdict.retry:
            answer["retry"] = True
    return answer


def router(runtime: GatewayRuntime, access: Access) -> APIRouter:
    api = APIRouter()
    config, sink, metrics = runtime.config, runtime.sink, runtime.metrics

    async def authenticate(request: Request) -> Principal:
        slot = audit_slot(request)
        slot.action, slot.route = "write", ROUTE
        return await access.guard.audited(request, slot)

    @api.post(ROUTE, response_model=EventsAnswer, openapi_extra=_openapi_body(config), responses={
        200: {"description": "Every item accepted: acknowledged by the broker (`acks=all`)."},
        207: {"description": "Some items accepted, some rejected: see each item.",
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventsAnswer"}}}},
        400: {"description": "The body cannot be read as items (not a JSON array, an unclosed array).",
              "content": {"application/json": {"schema": {"type": "object"}}}},
        408: {"description": "The body did not arrive within the request deadline."},
        413: {"description": f"More than {config.max_events} events or {config.max_body_bytes} bytes."},
        415: {"description": f"Content-Type is not one of {', '.join(MEDIA_TYPES)}."},
        422: {"description": "No item accepted: see each item (every rejection is the item's own).",
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventsAnswer"}}}},
        429: {"description": "The token's rate limit: wait `Retry-After` seconds.",
              "headers": {"Retry-After": {"schema": {"type": "integer"}, "required": True}}},
        503: {"description": "The broker is unreachable (nothing was accepted; send again after "
                             "`Retry-After`), or the identity provider's keys cannot be had.",
              "headers": {"Retry-After": {"schema": {"type": "integer"}, "required": True}}},
        **responses.UNAUTHORIZED,
    })
    async def post_events(request: Request, _bearer: Any = _BEARER_CREDENTIALS) -> Response:
        """Submit events (a JSON array, JSON Lines, or CloudEvents 1.0 structured mode); each item
        is validated as the consumers validate it, and answered in request order."""
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + config.deadline_s
        status = 500
        try:
            with tracing.request_span("POST", "/v1/events", request.headers.get(tracing.TRACEPARENT)):
                principal = await authenticate(request)
                response = await _write(request, principal, deadline)
            status = response.status_code
            return response
        except (Unauthorized, Unavailable):
            status = 401
            raise
        finally:
            metrics.requests.labels(str(status)).inc()
            metrics.seconds.observe(time.perf_counter() - started)

    async def _write(request: Request, principal: Principal, deadline: float) -> Response:
        slot = audit_slot(request)
        if not sink.ready:
            return _answer(503, {"detail": "the broker is unreachable; nothing was accepted"},
                           **{"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)})
        kind = media_type(request.headers.get("content-type"))
        if kind not in MEDIA_TYPES:
            return _answer(415, {"detail": f"Content-Type must be one of {', '.join(MEDIA_TYPES)}"})
        try:
            async with asyncio.timeout_at(deadline):
                body = await _read_body(request, config.max_body_bytes)
        except TimeoutError:
            return _answer(408, {"detail": "the body did not arrive within the request deadline"})
        except BodyError as exc:
            return _answer(exc.status, {"detail": exc.message})
        try:
            items = split_body(body, kind, config.max_events)
        except BodyError as exc:
            return _answer(exc.status, {"detail": exc.message})
        wait = runtime.limiter.take(principal.id, max(len(items), 1))
        if wait is not None:
            slot.reason = "rate_limited"
            return _answer(429, {"detail": "rate limit: too many events from this token"},
                           **{"Retry-After": str(wait)})
        verdicts: list[Verdict] = [judge(item, principal.may_read) for item in items]
        accepted = [v for v in verdicts if isinstance(v, Accepted)]
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
        acked = await _produce(accepted, remaining) if accepted else []
        unacked = {a.index for a, ok in zip(accepted, acked, strict=True) if not ok}
        if unacked:
            verdicts = [Refused(v.index, v.line, v.event_id, NOT_ACKNOWLEDGED,
                                "the broker did not acknowledge the event in time; send it again",
                                retry=True) if v.index in unacked and isinstance(v, Accepted) else v
                        for v in verdicts]
        status = status_of(verdicts)
        _count(verdicts)
        _audit(request, principal, verdicts)
        headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)} if status == 503 else {}
        return _answer_bytes(status, _events_answer(verdicts), **headers)

    async def _produce(accepted: list[Accepted], seconds: float) -> list[bool]:
        """Produce the accepted events in one `send` span: every record carries its context,
        so the request's trace continues into the consumers."""
        destinations = {a.topic for a in accepted}
        topic = sink.prefix + next(iter(destinations)) if len(destinations) == 1 else None
        with tracing.publish_span(topic, count=len(accepted)) as parent:
            headers = [(tracing.TRACEPARENT, parent.encode())] if parent else []
            return await sink.produce([(a.topic, a.municipality.encode(), a.value) for a in accepted],
                                      seconds, headers)

    def _count(verdicts: list[Verdict]) -> None:
        tally = Tally(("accepted", "") if isinstance(v, Accepted) else ("rejected", v.reason)
                      for v in verdicts)
        for (outcome, reason), count in tally.items():
            metrics.events.labels(outcome, reason).inc(count)

    def _audit(request: Request, principal: Principal, verdicts: list[Verdict]) -> None:
        """One audit event per municipality written for (200) or refused for scope (403)."""
        written = sorted({v.municipality for v in verdicts if isinstance(v, Accepted)})
        refused = sorted({v.municipality for v in verdicts
                          if isinstance(v, Refused) and v.reason == "not_in_scope" and v.municipality}
                         - set(written))
        slot = audit_slot(request)
        if not written and not refused:
            return  # the middleware audits the request as a whole
        slot.action = None
        client = request.client.host if request.client else None
        for code, outcome in [(c, 200) for c in written] + [(c, 403) for c in refused]:
            access.trail.record(action="write", outcome=outcome, principal=principal, via=slot.via,
                                municipality=code, method="POST", route=ROUTE, client=client,
                                reason="not_in_scope" if outcome == 403 else None)

    return api


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is over `limit` bytes."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise BodyError(413, f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _openapi_body(config: GatewayConfig) -> dict[str, Any]:
    """The request body's media types, each with an example per event type."""
    events = {t: example_event(t) for t in event_types()}
    array = {"type": "array", "maxItems": config.max_events, "items": {"type": "object"}}
    examples = {t: {"summary": f"{t} (on {INPUT_TYPES[t][1]})", "value": [e]} for t, e in events.items()}
    return {"requestBody": {"required": True, "content": {
        JSON: {"schema": array, "examples": examples},
        NDJSON: {"schema": {"type": "string"}, "examples": {
            t: {"summary": t, "value": json.dumps(e, ensure_ascii=False) + "\n"} for t, e in events.items()}},
        CLOUDEVENT: {"schema": {"type": "object"}, "examples": {
            t: {"summary": t, "value": to_cloudevent(e)} for t, e in events.items()}},
        CLOUDEVENTS_BATCH: {"schema": array, "examples": {
            t: {"summary": t, "value": [to_cloudevent(e)]} for t, e in events.items()}},
    }}}


__all__ = ["EventsAnswer", "GatewayRuntime", "ItemAnswer", "create"]
