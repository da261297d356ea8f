"""Reporting's composition root."""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.responses import Response

from schemas import topics
from services.common.runtime import Runtime, attach_consumer, build_app, build_runtime
from services.common.settings import Settings, load_settings
from services.reporting import api
from services.reporting.auth import Forbidden, Guard, Sessions, TokenBook
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
    attach_consumer(runtime, processor.apply_batch, on_rebalance=replica.forget)
    runtime.before_replay = lambda: setattr(processor, "replaying", True)
    runtime.after_replay = processor.refresh_all
    secret = settings.session_secret
    if not secret:
        log.warning("TASKFORCE_SESSION_SECRET not set: browser sessions end with this process")
        secret = secrets.token_urlsafe(32)
    guard = Guard(TokenBook(settings.tokens_file), Sessions(secret))
    app = build_app(runtime, [api.router(replica, guard)])

    @app.exception_handler(Forbidden)
    async def forbidden(_request: Request, _exc: Forbidden) -> Response:
        return Response(status_code=403)

    return app, runtime
