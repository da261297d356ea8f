"""The committee report: Danish HTML with inline SVG charts, plus the index and sign-in pages."""

from __future__ import annotations
