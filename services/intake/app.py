"""Intake's composition root: `compose` wires the service, `create` serves it over HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from schemas import topics
from services.common.runtime import Runtime
from services.common.service import Service, projection_service
from services.common.serving import build_app
from services.common.settings import Settings, load_settings
from services.intake import api
from services.intake.projections import KINDS

INPUT_TOPICS = [topics.APPLICATIONS, topics.NOTIFICATIONS]


def compose(settings: Settings | None = None) -> Service:
    """The projection engine over intake's reducers (`KINDS`), and its read-model routes."""
    return projection_service(settings or load_settings("intake"), INPUT_TOPICS, KINDS, api.router)


def create(settings: Settings | None = None) -> tuple[FastAPI, Runtime]:
    service = compose(settings)
    return build_app(service), service.runtime
