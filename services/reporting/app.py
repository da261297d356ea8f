"""Reporting's composition root: `compose` wires the service, `create` serves it over HTTP."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response

from schemas import topics
from services.common.auth import Access
from services.common.runtime import Runtime, build_runtime
from services.common.service import BatchSteps, Middleware, Service
from services.common.serving import build_app
from services.common.settings import Settings, load_settings
from services.reporting import api
from services.reporting.processor import SummaryProcessor
from services.reporting.replica import Replica

INPUT_TOPICS = [topics.REPORTING, topics.COMMANDS]
log = logging.getLogger(__name__)


def compose(settings: Settings | None = None) -> Service:
    """The replica and the summary processor over the clients; the summary routes, with
    browser sign-in (sessions in the service's database) besides bearer tokens."""
    settings = settings or load_settings("reporting")
    runtime = build_runtime(settings)
    replica = Replica(runtime.db, settings.replica_cache_mb * 1024 * 1024)
    processor = SummaryProcessor(settings, replica, runtime, runtime.metrics)
    sessions = (runtime.db, _session_secret(settings))
    access = Access.build(settings, runtime.metrics.registry, sessions=sessions)
    assert access.browser is not None
    return Service(
        runtime, tuple(settings.topic(t) for t in INPUT_TOPICS),
        BatchSteps(processor.prepare, processor.apply),
        startup=(processor.setup, access.browser.sessions.setup),
        on_rebalance=processor.forget,
        before_replay=processor.start_replay,
        after_replay=processor.refresh_all,
        routers=(api.router(replica, access),),
        access=access,
        middleware=(_security_headers(settings.session_cookies_secure),),
    )


def create(settings: Settings | None = None) -> tuple[FastAPI, Runtime]:
    service = compose(settings)
    return build_app(service), service.runtime


def _session_secret(settings: Settings) -> str:
    if settings.session_secret:
        return settings.session_secret
    log.warning("TASKFORCE_SESSION_SECRET not set: browser sessions end with this process "
                "(and with several replicas, each knows only its own)")
    return secrets.token_urlsafe(32)


def _security_headers(https_only: bool) -> Middleware:
    """Headers every answer carries; `https_only` when served over HTTPS (behind the Ingress)."""

    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if https_only:  # HTTPS only, for a year
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return security_headers
