"""Structured logs: an error says where it happened, never what was being processed."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from pydantic import TypeAdapter, ValidationError

from services.common.logs import JsonFormatter

pytestmark = pytest.mark.unit


def _reduce(value: str) -> None:
    raise ValueError(f"cannot use {value}")


def test_an_error_names_its_type_and_frames_but_not_its_message_or_values() -> None:
    secret = "0101901234 child-480-7"
    try:
        _reduce(secret)
    except ValueError:
        record = logging.LogRecord("services.x", logging.ERROR, __file__, 1, "applying a batch failed",
                                   None, sys.exc_info())
    line = JsonFormatter("intake").format(record)
    entry = json.loads(line)
    assert entry["error"] == "ValueError"
    assert entry["error_at"][-1].startswith("tests/unit/services/test_logs.py:")
    assert entry["error_at"][-1].endswith(" in _reduce")
    assert "test_an_error_names_its_type" in entry["error_at"][0]
    assert "0101901234" not in line and "child-480-7" not in line and "cannot use" not in line


def test_a_library_frame_is_shown_relative_to_site_packages() -> None:
    try:
        TypeAdapter(int).validate_python("not a number")
    except ValidationError:
        record = logging.LogRecord("services.x", logging.ERROR, __file__, 1, "m", None, sys.exc_info())
    frames = json.loads(JsonFormatter("intake").format(record))["error_at"]
    assert frames[-1].startswith("pydantic/type_adapter.py:")
    assert len(frames) <= 8
