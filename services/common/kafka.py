"""Kafka wiring: idempotent topic creation and record helpers.

Every client here takes its connection arguments from `services.common.connections`
(`kafka_connection`): given a bootstrap address instead, the rest (TLS, SASL) comes from the
environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import OffsetAndMetadata

from schemas.topics import DEFAULT_PARTITIONS
from services.common.connections import KafkaConnection, as_connection, diagnose_kafka

log = logging.getLogger(__name__)


async def ensure_topics(
    kafka: str | KafkaConnection,
    prefix: str = "",
    partitions: dict[str, int] | None = None,
    attempts: int = 30,
    check: bool = True,
) -> None:
    """Create every topic that does not exist yet, with its partition count.

    Safe to call from several processes at once: "already exists" is success. Retries while
    the broker is still coming up, since services may start before it answers. With `check`,
    a connection setting that cannot work (`diagnose_kafka`: an untrusted certificate, a
    plaintext client at a TLS port, refused credentials) raises SettingsError at once,
    instead of retrying as if the broker were down.
    """
    kafka = as_connection(kafka)
    if check and (problem := await diagnose_kafka(kafka)) is not None:
        raise problem
    wanted = {f"{prefix}{name}": count for name, count in (partitions or DEFAULT_PARTITIONS).items()}
    for attempt in range(attempts):
        admin = AIOKafkaAdminClient(**kafka.client_args())
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(name=name, num_partitions=count, replication_factor=1)
                for name, count in wanted.items()
                if name not in existing
            ]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(missing)
            return
        except KafkaError as exc:
            if attempt == attempts - 1:
                raise
            log.warning("broker not ready for topic creation (%s); retrying", type(exc).__name__)
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        finally:
            await admin.close()


async def commit_offsets(kafka: str | KafkaConnection, group_id: str, positions: dict[TopicPartition, int],
                         wait_s: float = 30.0) -> None:
    """Commit `positions` for `group_id` as a proper member of the group.

    The group's own consumers must be stopped: this consumer joins, is assigned every
    partition, commits and leaves. (A manually assigned consumer's commit carries no member
    id, which some brokers — the embedded one among them — refuse.)
    """
    consumer = AIOKafkaConsumer(**as_connection(kafka).client_args(), group_id=group_id,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.subscribe(topics=sorted({tp.topic for tp in positions}))
        deadline = asyncio.get_running_loop().time() + wait_s
        while not set(positions) <= consumer.assignment():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"group {group_id} still has other members; stop them first")
            await consumer.getmany(timeout_ms=100, max_records=1)
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in positions.items()})
    finally:
        await consumer.stop()
