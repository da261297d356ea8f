"""Where a service's CPU goes: cProfile output summarised per function and per package."""

from __future__ import annotations

import pstats
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Path fragments that name a package or a part of ours, checked in order.
PACKAGE_MARKERS: tuple[tuple[str, str], ...] = (
    ("/services/reporting/domain/", "services.reporting.domain"),
    ("/services/reporting/", "services.reporting"),
    ("/services/common/projection", "services.common.projection"),
    ("/services/common/", "services.common"),
    ("/services/", "services (domain)"),
    ("/schemas/periods.py", "schemas (periods/rules)"),
    ("/schemas/rules.py", "schemas (periods/rules)"),
    ("/schemas/", "schemas (decode/validate)"),
    ("/pydantic_core/", "pydantic"),
    ("/pydantic/", "pydantic"),
    ("/pymongo/", "pymongo"),
    ("/bson/", "bson"),
    ("/aiokafka/", "aiokafka"),
    ("/faststream/", "faststream"),
    ("/fast_depends/", "faststream"),
    ("/prometheus_client/", "prometheus_client"),
    ("/json/", "json"),
    ("/asyncio/", "asyncio"),
    ("/logging/", "logging"),
    ("/uuid.py", "uuid"),
    ("/datetime.py", "datetime"),
    ("/functools.py", "functools"),
    ("/copy.py", "copy"),
    ("/starlette/", "starlette/uvicorn"),
    ("/uvicorn/", "starlette/uvicorn"),
    ("/typing.py", "typing"),
    ("/zoneinfo/", "zoneinfo"),
    ("/opentelemetry/", "opentelemetry"),
)


#: Built-in (C) functions have no file: the package is read from the function's description.
BUILTIN_MARKERS: tuple[tuple[str, str], ...] = (
    ("pydantic_core", "pydantic"),
    ("_socket", "socket I/O"),
    ("select.epoll", "socket I/O"),
    ("datetime", "datetime"),
    ("_json", "json"),
    ("_cmessage", "pymongo"),
    ("bson", "bson"),
    ("re.Pattern", "re"),
    ("_hashlib", "uuid"),
    ("_asyncio", "asyncio"),
)


def package_of(filename: str, function: str = "") -> str:
    """The package a profiled function belongs to, from its file name (or, for a built-in,
    from its description)."""
    if filename.startswith("~") or filename == "":
        for marker, name in BUILTIN_MARKERS:
            if marker in function:
                return name
        return "builtins"
    for marker, name in PACKAGE_MARKERS:
        if marker in filename:
            return name
    return "other"


def short_name(filename: str, line: int, function: str) -> str:
    parts = Path(filename).parts
    for anchor in ("services", "schemas", "site-packages"):
        if anchor in parts:
            index = parts.index(anchor)
            rel = "/".join(parts[index + (1 if anchor == "site-packages" else 0):])
            return f"{rel}:{line}({function})"
    if filename.startswith("~"):
        return function
    return f"{Path(filename).name}:{line}({function})"


Row = tuple[str, int, str, float, float, int]  # file, line, function, tottime, cumtime, calls


def rows_of(stats: pstats.Stats) -> list[Row]:
    out = []
    for (filename, line, function), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        out.append((filename, line, function, tottime, cumtime, calls))
    return out


def is_idle(row: Row) -> bool:
    """The event loop waiting in select/epoll: wall time, not CPU (cProfile's clock is wall)."""
    return row[0] in ("~", "") and ("select" in row[2] or "poll" in row[2])


def by_package(rows: Iterable[Row]) -> dict[str, float]:
    """Own time (tottime) summed per package, as shares of the busy (non-idle) time, largest first."""
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        if not is_idle(row):
            totals[package_of(row[0], row[2])] += row[3]
    whole = sum(totals.values()) or 1.0
    return {k: round(v / whole, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def top_functions(rows: Iterable[Row], limit: int = 15, key: str = "tottime") -> list[dict[str, Any]]:
    """The functions with the most own (or cumulative) time.

    `share` is of the total own time of `rows` for "tottime", and of the largest cumulative
    time among `rows` (the outermost handler) for "cumtime".
    """
    items = list(rows)
    index = 3 if key == "tottime" else 4
    whole = (sum(r[3] for r in items) if key == "tottime" else max((r[4] for r in items), default=0)) or 1.0
    ranked = sorted(items, key=lambda r: -r[index])[:limit]
    return [{"function": short_name(f, line, fn), "calls": calls, "tottime_s": round(tot, 3),
             "cumtime_s": round(cum, 3), "share": round((tot if key == "tottime" else cum) / whole, 3)}
            for f, line, fn, tot, cum, calls in ranked]


def summarise(profile: Path, events: int) -> dict[str, Any]:
    stats = pstats.Stats(str(profile))
    rows = rows_of(stats)
    busy = [r for r in rows if not is_idle(r)]
    total = sum(r[3] for r in rows)
    return {
        "events": events,
        "profiled_s": round(total, 2),
        "idle_share": round(1 - sum(r[3] for r in busy) / total, 3) if total else None,
        "by_package": by_package(rows),
        "top_own_time": top_functions(busy, 15, "tottime"),
        "top_cumulative": top_functions([r for r in busy if "/services/" in r[0] or "/schemas/" in r[0]],
                                        15, "cumtime"),
    }
