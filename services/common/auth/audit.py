"""The audit trail: every access decision on case data, as an event and as a log line.

`record` is synchronous and never raises: it writes the JSON log line (logger `taskforce.audit`)
and puts the event on a bounded queue; a background task produces the queue to
`taskforce.audit` (key = municipality code, or "*"). So a read never waits for the broker and
never fails because of it. An event that cannot be produced — the queue full, the broker
refusing it, the service stopping with it still queued — is counted in
`taskforce_audit_unproduced_total{reason}` and logged with its `event_id` (its log line is
then the record).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from schemas.audit import AUDIT_SCHEMA_VERSION, NO_MUNICIPALITY, AccessAudited, AuditEvent, AuditPrincipal
from services.common.auth.principal import CODE, PERIOD, Principal

log = logging.getLogger("taskforce.audit")

#: Produce one record (key, value); resolves once the producer holds it, to a delivery future.
Send = Callable[[bytes, bytes], Awaitable[Awaitable[Any]]]
STOP_GRACE_S = 5.0
BATCH = 500


class AuditMetrics:
    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.events = Counter("taskforce_audit_events", "Access decisions on case data, audited.",
                              ["service", "action", "outcome"], registry=registry)
        self.unproduced = Counter(
            "taskforce_audit_unproduced",
            "Audit events that could not be produced to taskforce.audit (their log line remains).",
            ["service", "reason"], registry=registry)


class AuditTrail:
    def __init__(self, service: str, metrics: AuditMetrics, queue_size: int = 10_000,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.service = service
        self.metrics = metrics
        self.clock = clock
        self.queue: asyncio.Queue[tuple[bytes, bytes, str]] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None

    def record(self, *, action: str, outcome: int, principal: Principal | None, via: str | None,
               municipality: str | None, method: str, route: str, period: str | None = None,
               client: str | None = None, reason: str | None = None) -> None:
        """Audit one decision. Never raises, never waits."""
        try:
            event = self._event(action, outcome, principal, via, municipality, method, route, period,
                                client, reason)
        except Exception:
            log.exception("an audit event could not be built")
            self.metrics.unproduced.labels(self.service, "invalid").inc()
            return
        self.metrics.events.labels(self.service, action, str(outcome)).inc()
        value = event.model_dump_json().encode()
        log.info("access audited", extra={"audit": event.model_dump(mode="json")})
        key = (event.municipality_code or NO_MUNICIPALITY).encode()
        try:
            self.queue.put_nowait((key, value, str(event.event_id)))
        except asyncio.QueueFull:
            self._lost(str(event.event_id), "queue_full")

    def _event(self, action: str, outcome: int, principal: Principal | None, via: str | None,
               municipality: str | None, method: str, route: str, period: str | None, client: str | None,
               reason: str | None) -> AuditEvent:
        who = AuditPrincipal(
            kind=principal.kind if principal else None, id=principal.id if principal else None,
            via=via,  # type: ignore[arg-type]  # a str for a Literal field: checked by the model
            issuer=principal.issuer if principal else None,
            scope=principal.scope_list if principal else [])
        return AuditEvent(
            event_id=uuid.uuid4(), event_type="access.audited", schema_version=AUDIT_SCHEMA_VERSION,
            occurred_at=self.clock(), source=f"taskforce.{self.service}",
            municipality_code=municipality if municipality and CODE.fullmatch(municipality) else None,
            data=AccessAudited(
                action=action,  # type: ignore[arg-type]  # a str for a Literal field: checked by the model
                outcome=outcome, reason=reason,  # type: ignore[arg-type]  # likewise, Literal fields
                principal=who, service=self.service, method=method[:10], route=route[:200],
                period=period if period and PERIOD.fullmatch(period) else None,
                client=client[:100] if client else None))

    def _lost(self, event_id: str, reason: str, error: BaseException | None = None) -> None:
        self.metrics.unproduced.labels(self.service, reason).inc()
        log.error("audit event not produced to the audit topic", extra={
            "event_id": event_id, "reason": reason, "error": type(error).__name__ if error else None})

    def start(self, send: Send) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._produce(send), name="audit-producer")

    async def _produce(self, send: Send) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            unsettled = {event_id for _key, _value, event_id in batch}
            try:
                deliveries: list[tuple[str, Awaitable[Any]]] = []
                for key, value, event_id in batch:
                    try:
                        deliveries.append((event_id, await send(key, value)))
                    except Exception as exc:
                        unsettled.discard(event_id)
                        self._lost(event_id, "producer_error", exc)
                for event_id, delivery in deliveries:
                    try:
                        await delivery
                    except Exception as exc:
                        self._lost(event_id, "producer_error", exc)
                    unsettled.discard(event_id)
            except asyncio.CancelledError:
                for event_id in unsettled:
                    self._lost(event_id, "stopped")
                raise
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Produce what is queued (for up to `grace_s`), then stop; what is left is counted."""
        task, self._task = self._task, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), grace_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        while not self.queue.empty():
            _key, _value, event_id = self.queue.get_nowait()
            self._lost(event_id, "stopped")
