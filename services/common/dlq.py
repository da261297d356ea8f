"""The dead-letter guard: every record that fails to decode goes to `taskforce.dlq`.

The DLQ record keeps the original key and value (with CPR-like numbers masked, so the DLQ
can be shown to the sending municipality) and names the reason, the original topic,
partition and offset in its headers. Nothing of the payload is logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from schemas import topics
from schemas.decode import Rejection, mask_cpr
from services.common.records import OutRecord

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from services.common.metrics import ServiceMetrics
    from services.common.settings import Settings

log = logging.getLogger(__name__)

#: Larger values are cut so that a DLQ record always fits under the broker's message limit.
MAX_DLQ_VALUE_BYTES = 256 * 1024


def dead_letter(record: ConsumerRecord, rejection: Rejection, settings: Settings) -> OutRecord:
    """The DLQ record for one rejected input record."""
    value = mask_cpr(record.value or b"")
    headers = {
        "reason": rejection.reason,
        "reason_detail": rejection.detail,
        "original_topic": settings.unprefixed(record.topic),
        "original_partition": str(record.partition),
        "original_offset": str(record.offset),
        "rejected_by": settings.service,
    }
    if len(value) > MAX_DLQ_VALUE_BYTES:
        headers["value_truncated_from"] = str(len(value))
        value = value[:MAX_DLQ_VALUE_BYTES]
    key = mask_cpr(record.key) if record.key else b""
    return OutRecord(settings.topic(topics.DLQ), key, value, headers)


def report_rejections(
    rejected: list[tuple[ConsumerRecord, Rejection]],
    settings: Settings,
    metrics: ServiceMetrics,
) -> list[OutRecord]:
    """DLQ records for a batch's rejections, counted and logged once per batch."""
    if not rejected:
        return []
    reasons = Counter(rejection.reason for _, rejection in rejected)
    for reason, count in reasons.items():
        metrics.dlq.labels(settings.service, reason).inc(count)
    log.warning(
        "records rejected to the DLQ",
        extra={
            "rejected": len(rejected),
            "reasons": dict(reasons),
            "where": [f"{settings.unprefixed(r.topic)}/{r.partition}@{r.offset}" for r, _ in rejected[:20]],
        },
    )
    return [dead_letter(record, rejection, settings) for record, rejection in rejected]
