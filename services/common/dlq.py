"""The dead-letter guard: every record that fails to decode, or that can never be published,
goes to `taskforce.dlq`.

The DLQ record keeps the original key and value (with CPR-like numbers masked, so the DLQ
can be shown to the sending municipality) and names the reason, the original topic,
partition and offset in its headers. Whatever the record was, its dead letter fits under
the broker's limit: the key is cut at 1 KiB, the value at 256 KiB (or less, to fit the
producer's request limit), the detail at 1,000 characters. Building one never raises.
Nothing of the payload is logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from schemas import topics
from schemas.common import MAX_RECORD_BYTES
from schemas.cpr import mask_cpr
from schemas.decode import Rejection
from services.common.records import OutRecord

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from services.common.metrics import ServiceMetrics
    from services.common.settings import Settings

log = logging.getLogger(__name__)

MAX_DLQ_VALUE_BYTES = MAX_RECORD_BYTES
MAX_DLQ_KEY_BYTES = 1024
MAX_DETAIL_CHARS = 1000
#: What a dead letter needs besides its value: the key, the headers, the record's framing.
_DLQ_OVERHEAD_BYTES = 8 * 1024
#: A CPR spelled with escapes is at most 11 × 6 bytes long: masking this far past a cut
#: catches every number the cut runs through, without masking the whole of a huge value.
_MASK_MARGIN = 128


def masked_and_cut(raw: bytes | None, limit: int) -> tuple[bytes, int | None]:
    """`raw` with every CPR-like number masked, cut at `limit` bytes; and its length if cut.

    Masked before the cut (a number the cut runs through is masked whole) and after it (a
    longer digit run the cut shortens may only then look like a CPR).
    """
    raw = raw or b""
    if len(raw) <= limit:
        return mask_cpr(raw), None
    return mask_cpr(mask_cpr(raw[:limit + _MASK_MARGIN])[:limit]), len(raw)


def value_limit(settings: Settings) -> int:
    """The largest dead-letter value: 256 KiB, less where the producer may send less."""
    return min(MAX_DLQ_VALUE_BYTES, settings.producer_max_request_bytes - _DLQ_OVERHEAD_BYTES)


def _headers(reason: str, detail: str, settings: Settings) -> dict[str, str]:
    detail_masked, _ = masked_and_cut(detail.encode("utf-8", "replace"), MAX_DETAIL_CHARS)
    return {"reason": reason, "reason_detail": detail_masked.decode("utf-8", "ignore"),
            "rejected_by": settings.service}


def dead_letter(record: ConsumerRecord, rejection: Rejection, settings: Settings) -> OutRecord:
    """The DLQ record for one rejected input record."""
    value, value_length = masked_and_cut(record.value, value_limit(settings))
    key, key_length = masked_and_cut(record.key, MAX_DLQ_KEY_BYTES)
    headers = _headers(rejection.reason, rejection.detail, settings)
    headers |= {
        "original_topic": settings.unprefixed(record.topic),
        "original_partition": str(record.partition),
        "original_offset": str(record.offset),
    }
    if value_length is not None:
        headers["value_truncated_from"] = str(value_length)
    if key_length is not None:
        headers["key_truncated_from"] = str(key_length)
    return OutRecord(settings.topic(topics.DLQ), key, value, headers)


def unpublishable(out: OutRecord, reason: str, error: BaseException, settings: Settings) -> OutRecord:
    """The DLQ record for an output the broker refuses for good (too large, invalid,
    not authorised): the batch goes on without it, and the refusal is on record."""
    value, value_length = masked_and_cut(out.value, value_limit(settings))
    key, _ = masked_and_cut(out.key, MAX_DLQ_KEY_BYTES)
    headers = _headers(reason, f"the broker refused the record for good ({type(error).__name__})", settings)
    headers |= {"original_topic": settings.unprefixed(out.topic), "original_size": str(len(out.value))}
    if value_length is not None:
        headers["value_truncated_from"] = str(value_length)
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
