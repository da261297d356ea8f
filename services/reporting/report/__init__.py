"""The committee report: Danish HTML with inline SVG charts, plus the index and sign-in pages."""

from __future__ import annotations

from services.reporting.report.render import (
    IndexEntry,
    ReportInput,
    render_index,
    render_login,
    render_report,
    safe_next,
)

__all__ = [
    "IndexEntry",
    "ReportInput",
    "render_index",
    "render_login",
    "render_report",
    "safe_next",
]
