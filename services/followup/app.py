"""Follow-up's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from schemas import topics
from services.common.runtime import Runtime, projection_service
from services.common.settings import Settings, load_settings
from services.followup import api
from services.followup.projections import KINDS

INPUT_TOPICS = [topics.MILESTONES]


def create(settings: Settings | None = None) -> tuple[FastAPI, Runtime]:
    return projection_service(settings or load_settings("followup"), INPUT_TOPICS, KINDS, api.router)
