"""Intake's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from schemas import topics
from services.common.projection import ProjectionEngine
from services.common.runtime import Runtime, attach_consumer, build_app, build_runtime
from services.common.settings import Settings, load_settings
from services.intake import api
from services.intake.projections import KINDS

INPUT_TOPICS = [topics.APPLICATIONS, topics.NOTIFICATIONS]


def create(settings: Settings | None = None) -> tuple[FastAPI, Runtime]:
    settings = settings or load_settings("intake")
    runtime = build_runtime(settings, INPUT_TOPICS)
    engine = ProjectionEngine(settings, runtime.db, runtime.metrics, KINDS)
    runtime.startup.append(engine.setup)
    attach_consumer(runtime, engine.apply_batch)
    return build_app(runtime, [api.router(runtime.db)]), runtime
