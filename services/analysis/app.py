"""Analysis's composition root: `compose` wires the service, `create` serves it over HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from schemas import topics
from services.analysis import api
from services.analysis.projections import KINDS
from services.common.runtime import Runtime
from services.common.service import Service, projection_service
from services.common.serving import build_app
from services.common.settings import Settings, load_settings

INPUT_TOPICS = [topics.CASE_REVIEWS]


def compose(settings: Settings | None = None) -> Service:
    """The projection engine over analysis's reducers (`KINDS`), and its read-model routes."""
    return projection_service(settings or load_settings("analysis"), INPUT_TOPICS, KINDS, api.router)


def create(settings: Settings | None = None) -> tuple[FastAPI, Runtime]:
    service = compose(settings)
    return build_app(service), service.runtime
