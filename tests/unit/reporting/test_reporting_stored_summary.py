"""The stored summary record: what the store keeps of a published summary, read back as written."""

from __future__ import annotations

import pytest

from schemas.summary import SummaryStatus
from services.reporting.domain.lifecycle import Published
from services.reporting.stored import StoredSummary

pytestmark = pytest.mark.unit


def stored(**changes: object) -> StoredSummary:
    fields: dict[str, object] = {
        "municipality_code": "480", "period": "2022H1", "status": SummaryStatus.REVISED, "revision": 2,
        "figures_key": "abc", "data": {"period": "2022H1", "as_of": "2022-06-30T22:00:00Z"},
        "envelope": '{"event_id":"x"}', "pending": True, "trace": None,
    }
    fields.update(changes)
    return StoredSummary(**fields)  # type: ignore[arg-type]  # the test passes each field by name


TRACE = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"


@pytest.mark.parametrize("summary", [stored(), stored(pending=False, trace=TRACE)])
def test_a_stored_summary_reads_back_as_written(summary: StoredSummary) -> None:
    assert StoredSummary.of_document(summary.document()) == summary


def test_the_document_keeps_the_field_names_earlier_versions_wrote() -> None:
    """Stores written before the record existed read back; indexes on these names still serve."""
    document = stored().document()
    assert document["_id"] == "480:2022H1"
    assert document["status"] == "revised"  # the value, as the routes and the indexes read it
    assert set(document) == {"_id", "municipality_code", "period", "status", "revision", "figures_key",
                             "data", "pending", "envelope", "trace"}
    older = {key: value for key, value in document.items() if key not in ("trace", "pending")}
    assert StoredSummary.of_document(older) == stored(pending=False)


def test_what_was_published_and_sent() -> None:
    summary = stored()
    assert summary.published == Published(SummaryStatus.REVISED, 2)
    assert summary.as_of == "2022-06-30T22:00:00Z"
    assert summary.sent().pending is False and summary.pending is True
