"""Analysis's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from schemas import topics
from services.analysis import api
from services.analysis.projections import KINDS
from services.common.runtime import Runtime, projection_service
from services.common.settings import Settings, load_settings

INPUT_TOPICS = [topics.CASE_REVIEWS]


def create(settings: Settings | None = None) -> tuple[FastAPI, Runtime]:
    return projection_service(settings or load_settings("analysis"), INPUT_TOPICS, KINDS, api.router)
