"""Rebuild a service's projections from its input topics, then switch the live group over.

1. Note the end offsets of the input topics (what "caught up" means).
2. Drop the service's projection collections (the reporting service keeps its published
   summaries, so revision numbering goes on and unchanged figures are not republished).
3. Replay the topics from the earliest offset under a fresh consumer group, through the very
   same batch handler the live service uses (so rebuilt equals live by construction).
4. Commit the replay's final positions to the service's live group, so the service resumes
   exactly after what was rebuilt.

Run it with the service's replicas stopped. Reporting events re-emitted during a rebuild
carry versions the reporting replica already has, and are ignored there.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.connections import kafka_connection
from services.common.kafka import commit_offsets, ensure_topics

if TYPE_CHECKING:
    from services.common.service import Service

log = logging.getLogger(__name__)

#: Collections a rebuild must not drop: they are history, not projections.
KEEP = {"summaries"}


async def rebuild(service: Service) -> dict[str, Any]:
    runtime = service.runtime
    settings = runtime.settings
    kafka = kafka_connection(settings)
    await ensure_topics(kafka, settings.topic_prefix)
    started = time.perf_counter()
    dropped = [name for name in await runtime.db.list_collection_names() if name not in KEEP]
    for name in dropped:
        await runtime.db.drop_collection(name)
    for step in service.startup:
        await step()
    replay_group = f"{settings.group_id}-rebuild-{int(time.time())}"
    consumer = AIOKafkaConsumer(
        **kafka.client_args(), group_id=replay_group,
        enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    await runtime.start_producer()
    if service.before_replay:
        service.before_replay()
    records_seen = 0
    try:
        partitions = [TopicPartition(topic, p) for topic in service.input_topics
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=settings.batch_max_records)
            records = [r for part in batch.values() for r in part]
            if records:
                await runtime.publish(await service.steps(records))
                records_seen += len(records)
            elif not await _behind(consumer, ends):
                # Past the end offsets noted at the start, and a fetch found nothing more.
                # (Both, because some brokers under-report end offsets: the embedded one
                # reports the start of the last record batch.)
                break
        positions = {tp: await consumer.position(tp) for tp in partitions}
        if service.after_replay:
            await service.after_replay()
    finally:
        await consumer.stop()
    # Switch over: the live group resumes right after what the rebuild applied.
    try:
        await commit_offsets(kafka, settings.group_id, positions)
    finally:
        await runtime.stop_producer()
        await runtime.mongo.close()
    summary = {"service": settings.service, "records_replayed": records_seen, "dropped": sorted(dropped),
               "seconds": round(time.perf_counter() - started, 2)}
    log.info("rebuild finished", extra=summary)
    return summary


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False
