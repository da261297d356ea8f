"""Reporting's composition root."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from schemas import topics
from services.common.auth import Access
from services.common.runtime import BatchSteps, Runtime, attach_consumer, build_app, build_runtime
from services.common.settings import Settings, load_settings
from services.reporting import api
from services.reporting.processor import SummaryProcessor
from services.reporting.replica import Replica

INPUT_TOPICS = [topics.REPORTING, topics.COMMANDS]
log = logging.getLogger(__name__)


def create(settings: Settings | None = None) -> tuple[FastAPI, Runtime]:
    settings = settings or load_settings("reporting")
    runtime = build_runtime(settings, INPUT_TOPICS)
    replica = Replica(runtime.db)
    processor = SummaryProcessor(settings, replica, runtime, runtime.metrics)
    runtime.startup.append(processor.setup)
    attach_consumer(runtime, BatchSteps(processor.prepare, processor.apply), on_rebalance=processor.forget)
    runtime.before_replay = processor.start_replay
    runtime.after_replay = processor.refresh_all
    secret = settings.session_secret
    if not secret:
        log.warning("TASKFORCE_SESSION_SECRET not set: browser sessions end with this process "
                    "(and with several replicas, each knows only its own)")
        secret = secrets.token_urlsafe(32)
    access = Access.build(settings, runtime.metrics.registry, sessions=(runtime.db, secret))
    assert access.browser is not None
    runtime.startup.append(access.browser.sessions.setup)
    app = build_app(runtime, [api.router(replica, access)], access)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if settings.session_cookies_secure:  # served over HTTPS (behind the Ingress): HTTPS only, for a year
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return app, runtime
