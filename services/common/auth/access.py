"""Access to a service's HTTP app: the guard, the audit trail and what the app answers for them.

`Access.build` makes them from the settings; `install` puts them on a FastAPI app: the audit
middleware (one audit event per decision a handler or the guard recorded in the request's
slot, with the status actually answered), the 401/403/503 answers, and a 405 whose `Allow`
names every method of the path (Starlette names only the first route's). `start` and `stop`
run in the app's lifespan: the audit topic is created if missing and produced to with the
service's own producer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas import topics
from services.common.auth.audit import AuditMetrics, AuditTrail
from services.common.auth.guard import (
    AUDIT_SLOT,
    REALM,
    AuditSlot,
    Forbidden,
    Guard,
    Unauthorized,
    Unavailable,
)
from services.common.auth.oidc import OidcConfig, OidcVerifier
from services.common.auth.sessions import Csrf, SessionStore, SignInLimiter
from services.common.auth.tokens import TokenBook
from services.common.connections import kafka_connection
from services.common.kafka import ensure_topics

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.runtime import Runtime
    from services.common.settings import Settings

log = logging.getLogger(__name__)

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
AUDIT_TOPIC_ATTEMPTS = 5
#: Seconds a client is asked to wait when the provider's keys cannot be had.
KEYS_RETRY_AFTER_S = 30


@dataclass
class Browser:
    """What browser sign-in needs besides the guard (the reporting service only)."""

    sessions: SessionStore
    csrf: Csrf
    limiter: SignInLimiter
    secure_cookies: bool


@dataclass
class Access:
    guard: Guard
    trail: AuditTrail
    browser: Browser | None = None

    @classmethod
    def build(cls, settings: Settings, registry: CollectorRegistry,
              sessions: tuple[AsyncDatabase[dict[str, Any]], str] | None = None) -> Access:
        """From the settings; `sessions` = (database, secret) enables browser sign-in."""
        tokens = TokenBook(settings.tokens_file)
        config = OidcConfig.from_settings(settings)
        oidc = OidcVerifier(config) if config is not None else None
        browser = None
        if sessions is not None:
            database, secret = sessions
            browser = Browser(SessionStore(database["sessions"], secret, tokens), Csrf(secret),
                              SignInLimiter(settings.signin_max_failures, settings.signin_window_s),
                              settings.secure_cookies)
        guard = Guard(tokens, oidc, browser.sessions if browser else None)
        metrics = AuditMetrics(settings.service, registry)
        trail = AuditTrail(settings.service, metrics, settings.audit_queue_size)
        return cls(guard, trail, browser)

    async def start(self, runtime: Runtime) -> None:
        """Create the audit topic if missing and start producing the audit trail to it.

        A topic that cannot be created (no right to, say) does not stop the service: its
        audit events are then counted as unproduced and stay in the log.
        """
        settings = runtime.settings
        try:
            await ensure_topics(kafka_connection(settings), settings.topic_prefix, topics.AUDIT_PARTITIONS,
                                attempts=AUDIT_TOPIC_ATTEMPTS)
        except Exception as exc:
            log.error("cannot create the audit topic; create it with the others (docs/operations.md)",
                      extra={"topic": topics.AUDIT, "error": type(exc).__name__})
        topic = settings.topic(topics.AUDIT)

        async def send(key: bytes, value: bytes) -> Any:
            return await runtime.producer.send(topic, value, key=key)

        self.trail.start(send)

    async def stop(self) -> None:
        await self.trail.stop()

    def install(self, app: FastAPI) -> None:
        app.state.access = self
        app.add_middleware(AuditMiddleware, trail=self.trail)
        # (each ignore: Starlette types a handler's exception as Exception, ours as the class it handles)
        app.add_exception_handler(Unauthorized, _unauthorized)  # type: ignore[arg-type]  # see above
        app.add_exception_handler(Forbidden, _forbidden)  # type: ignore[arg-type]  # see above
        app.add_exception_handler(Unavailable, _unavailable)  # type: ignore[arg-type]  # see above
        app.add_exception_handler(StarletteHTTPException, _with_allow)  # type: ignore[arg-type]  # see above


async def _unauthorized(_request: Request, exc: Unauthorized) -> Response:
    return JSONResponse({"detail": "authentication required"}, status_code=401,
                        headers={"WWW-Authenticate": exc.challenge, "Cache-Control": "no-store"})


async def _forbidden(_request: Request, exc: Forbidden) -> Response:
    challenge = f'Bearer realm="{REALM}", error="insufficient_scope"'
    return Response(status_code=403, headers={"WWW-Authenticate": challenge} if exc.bearer else {})


async def _unavailable(_request: Request, _exc: Unavailable) -> Response:
    return JSONResponse({"detail": "the identity provider's signing keys are unavailable"}, status_code=503,
                        headers={"Retry-After": str(KEYS_RETRY_AFTER_S)})


async def _with_allow(request: Request, exc: StarletteHTTPException) -> Response:
    """A 405 names every method the path answers, not only those of the first route matched."""
    if exc.status_code == 405:
        routes = request.app.router.routes
        allowed = [method for method in _METHODS if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)]
        if allowed:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, exc)


class AuditMiddleware:
    """Writes the audit events a request's handling recorded in its slot, once it is answered."""

    def __init__(self, app: ASGIApp, trail: AuditTrail) -> None:
        self.app = app
        self.trail = trail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        slot = AuditSlot()
        scope.setdefault("state", {})[AUDIT_SLOT] = slot
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            if slot.action is not None:
                self._write(scope, slot, status)

    def _write(self, scope: Scope, slot: AuditSlot, status: int) -> None:
        client = scope.get("client")
        route = slot.route or getattr(scope.get("route"), "path", None) or "?"
        for municipality in slot.municipalities or [None]:
            self.trail.record(
                action=slot.action or "read", outcome=status, principal=slot.principal, via=slot.via,
                municipality=municipality, method=str(scope.get("method", "")), route=route,
                period=slot.period, client=client[0] if client else None,
                reason=slot.reason if status >= 300 else None)
