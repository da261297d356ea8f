"""Follow-up's composition root: `compose` wires the service, `create` serves it over HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from schemas import topics
from services.common.runtime import Runtime
from services.common.service import Service, projection_service
from services.common.serving import build_app
from services.common.settings import Settings, load_settings
from services.followup import api
from services.followup.projections import KINDS

INPUT_TOPICS = [topics.MILESTONES]


def compose(settings: Settings | None = None) -> Service:
    """The projection engine over followup's reducers (`KINDS`), and its read-model routes."""
    return projection_service(settings or load_settings("followup"), INPUT_TOPICS, KINDS, api.router)


def create(settings: Settings | None = None) -> tuple[FastAPI, Runtime]:
    service = compose(settings)
    return build_app(service), service.runtime
