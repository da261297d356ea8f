"""Kafka wiring: idempotent topic creation and record helpers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.topics import DEFAULT_PARTITIONS

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap_servers: str,
    prefix: str = "",
    partitions: dict[str, int] | None = None,
    attempts: int = 30,
) -> None:
    """Create every topic that does not exist yet, with its partition count.

    Safe to call from several processes at once: "already exists" is success. Retries while
    the broker is still coming up, since services may start before it answers.
    """
    wanted = {f"{prefix}{name}": count for name, count in (partitions or DEFAULT_PARTITIONS).items()}
    for attempt in range(attempts):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
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
