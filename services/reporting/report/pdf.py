"""The committee report as a tagged PDF (PDF/UA-1), from the same HTML as the browser's.

WeasyPrint lays the report out with the print part of report.css (A4, page numbers, "KLADDE"
in the head of every page of a draft, the charts' inline SVG as vector graphics, fonts
embedded). It needs Pango from the operating system (Debian: libpango-1.0-0), so it is
imported lazily: where it or Pango is missing, :func:`unavailable` says why and
:func:`render_report_pdf` raises :class:`PdfUnavailable`, while the HTML report works as ever.
Nothing is fetched while rendering: the report is self-contained, and any other URL is refused.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from services.reporting.report.render import ReportInput, render_report

#: PDF/UA-1: tagged, with the document's language and title shown as its title.
PDF_VARIANT = "pdf/ua-1"
#: What the HTTP route and the CLI say when PDFs cannot be made here (Danish, then English).
UNAVAILABLE_MESSAGE = (
    "PDF-udgaven kan ikke dannes på denne server; HTML-rapporten virker. "
    "PDF rendering is not available on this server ({reason}); the HTML report works. "
    "Install WeasyPrint's system libraries (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0).")
_LOCK = threading.Lock()  # one layout at a time: Pango and fontconfig state is shared


class PdfUnavailable(RuntimeError):
    """WeasyPrint or the Pango library it needs is not installed here."""


@cache
def _weasyprint() -> Any:
    """The weasyprint module, or the reason it cannot be loaded (a str)."""
    try:
        import weasyprint
        import weasyprint.urls
    except ImportError as exc:
        return f"the weasyprint package is not installed: {exc}"
    except OSError as exc:  # cffi could not open libpango / libgobject
        return f"WeasyPrint cannot load Pango: {exc}"
    return weasyprint


def unavailable() -> str | None:
    """Why PDFs cannot be rendered here, or None when they can."""
    found = _weasyprint()
    return found if isinstance(found, str) else None


def unavailable_message() -> str:
    """The Danish/English message for a missing WeasyPrint or Pango (with the reason)."""
    return UNAVAILABLE_MESSAGE.format(reason=unavailable() or "unknown")


def html_to_pdf(html: str) -> bytes:
    """A tagged PDF/UA-1 of a self-contained HTML document (its ``<title>`` and ``lang``
    become the PDF's title and language)."""
    weasyprint = _weasyprint()
    if isinstance(weasyprint, str):
        raise PdfUnavailable(weasyprint)
    with _LOCK:
        fetcher = weasyprint.urls.URLFetcher(allowed_protocols=("data",))  # no file:, no http:
        document = weasyprint.HTML(string=html, url_fetcher=fetcher, media_type="print")
        pdf = document.write_pdf(pdf_variant=PDF_VARIANT, pdf_tags=True, uncompressed_pdf=False)
    assert isinstance(pdf, bytes)
    return pdf


def render_report_pdf(inp: ReportInput) -> bytes:
    """The committee report as PDF: :func:`render_report`'s HTML, laid out for print."""
    return html_to_pdf(render_report(inp))
