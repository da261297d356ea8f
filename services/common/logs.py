"""Structured JSON logs: one object a line, never an event payload."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

#: The project's directory, left out of the paths in `error_at`.
ROOT = str(Path(__file__).resolve().parents[2])

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object; `extra=` fields become top-level keys."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["error_at"] = where(record.exc_info[2])
        return json.dumps(entry, default=str, ensure_ascii=False)


def where(tb: TracebackType | None, frames: int = 8) -> list[str]:
    """Where an error was raised: the innermost `frames` frames as "file:line in function".

    Never the exception's message or any local value (they may carry an event's content),
    so a bug's log line says where to look without repeating what was being processed.
    """
    return [f"{_short(frame.filename)}:{frame.lineno} in {frame.name}"
            for frame in traceback.extract_tb(tb)[-frames:]]


def _short(filename: str) -> str:
    """A path relative to the project, or to site-packages for a library's file."""
    _, found, tail = filename.rpartition("site-packages/")
    if found:
        return tail
    _, found, tail = filename.rpartition(f"{ROOT}/")
    return tail if found else filename


def configure_logging(service: str, level: str = "INFO", log_file: Path | None = None) -> None:
    """Route every logger to stderr (and `log_file`) as JSON lines."""
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
