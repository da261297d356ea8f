"""Outgoing records and how a batch of them is published."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.common.connections import KafkaConnection, as_connection


@dataclass(frozen=True, slots=True)
class OutRecord:
    topic: str
    key: bytes
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)


def producer(kafka: str | KafkaConnection, client_id: str,
             max_request_size: int = 1024 * 1024) -> AIOKafkaProducer:
    """The producer for a service's outgoing records: all replicas acknowledge, a little
    lingering batches records; no idempotence (exactly-once effects come from idempotent
    consumers, and the embedded broker does not support idempotent producers)."""
    return AIOKafkaProducer(**as_connection(kafka).client_args(), client_id=client_id, acks="all",
                            linger_ms=5, max_batch_size=256 * 1024, enable_idempotence=False,
                            max_request_size=max_request_size)


#: Kafka error codes that no retry can cure, by the DLQ reason they get: the record itself
#: is refused (too large, corrupt, of a format the topic does not take) or the producer may
#: not write it. Everything else (connections, leaders moving, timeouts) is transient.
_PERMANENT_CODES = {
    10: "output_too_large", 18: "output_too_large",  # MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE
    2: "output_invalid", 17: "output_invalid", 43: "output_invalid", 87: "output_invalid",
    29: "output_not_authorized", 31: "output_not_authorized",
}

#: Called for a record the broker refuses for good: returns the dead letter to send instead.
Refused = Callable[[OutRecord, str, BaseException], OutRecord]


def permanent_reason(error: BaseException) -> str | None:
    """The DLQ reason when `error` means the record can never be produced, else None."""
    if not isinstance(error, KafkaError):
        return None
    return _PERMANENT_CODES.get(getattr(error, "errno", -1))


async def publish_all(producer: AIOKafkaProducer, records: list[OutRecord],
                      refused: Refused | None = None) -> None:
    """Send every record without waiting one by one, then wait until the broker has all.

    A plain aiokafka producer, not FastStream's per-message publish: the batch is the unit
    here, and the per-message middleware chain cost more than the rest of the handler.
    A record refused for good (`permanent_reason`) is replaced by what `refused` makes of it,
    a dead letter, so the batch goes on; without `refused`, or on any other error, this
    raises, so the caller's batch is retried and its offsets stay put. A dead letter that is
    refused as well raises too: nothing is dropped without a record of it.
    """
    if not records:
        return
    sent: list[tuple[OutRecord, asyncio.Future[object]]] = []
    failed: list[tuple[OutRecord, BaseException]] = []
    for r in records:
        try:
            future = await producer.send(r.topic, r.value, key=r.key,
                                         headers=[(k, v.encode()) for k, v in r.headers.items()] or None)
        except KafkaError as exc:  # aiokafka refuses an oversized record before sending it
            failed.append((r, exc))
        else:
            sent.append((r, future))
    results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
    failed += [(r, result) for (r, _), result in zip(sent, results, strict=True)
               if isinstance(result, BaseException)]
    letters = []
    for record, error in failed:
        reason = permanent_reason(error)
        if reason is None or refused is None:
            raise error
        letters.append(refused(record, reason, error))
    await publish_all(producer, letters)
