"""What a service's code holds of the outside world: its clients, and its place on the broker.

`build_runtime` makes a `Runtime` from the settings alone, before anything that uses it, so
the composition root (`services.<name>.app.compose`) can hand the same one to the service's
processor, its routes and its consumption. It publishes (a record the broker refuses for
good goes to the DLQ instead) and answers where the service's consumer stands: the high
watermarks of its last fetch, the partitions it owns, the broker's end offsets. The consumer
is the one subscriber the consumption makes when the service runs (`subscribe`); without it
(a rebuild, a test, a tool applying batches by hand) the answers say that nothing is known.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware

from services.common.connections import kafka_connection
from services.common.dlq import unpublishable
from services.common.metrics import ServiceMetrics
from services.common.records import OutRecord, producer, publish_all
from services.common.store import mongo_client

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from faststream.kafka.annotations import KafkaMessage
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.settings import Settings

log = logging.getLogger(__name__)

#: How long the broker lets its subscribers finish a message at shutdown.
SHUTDOWN_GRACE_S = 20.0


@dataclass
class Runtime:
    """A service's clients; made once by `build_runtime`. The producer and the consumer are
    made when the service runs (aiokafka objects need the running event loop)."""

    settings: Settings
    metrics: ServiceMetrics
    mongo: AsyncMongoClient[dict[str, Any]]
    db: AsyncDatabase[dict[str, Any]]
    broker: KafkaBroker
    #: The FastStream subscriber of the service's input, once `subscribe` made it.
    subscriber: Any = None
    _producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "start_producer() first"
        return self._producer

    async def start_producer(self) -> None:
        if self._producer is None:
            out = producer(kafka_connection(self.settings), f"taskforce-{self.settings.service}",
                           self.settings.producer_max_request_bytes)
            await out.start()
            self._producer = out

    async def stop_producer(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, records: list[OutRecord]) -> None:
        """Publish records; one the broker refuses for good goes to the DLQ instead (counted,
        logged without its content), and the rest are published all the same."""
        await publish_all(self.producer, records, self._refused)

    def _refused(self, record: OutRecord, reason: str, error: BaseException) -> OutRecord:
        self.metrics.unpublishable.labels(self.settings.service, reason).inc()
        log.error("an output record was refused for good; sent to the DLQ instead",
                  extra={"reason": reason, "error": type(error).__name__,
                         "topic": self.settings.unprefixed(record.topic), "bytes": len(record.value)})
        return unpublishable(record, reason, error, self.settings)

    def subscribe(self, topics: tuple[str, ...], handler: Callable[[KafkaMessage], Awaitable[None]],
                  **options: Any) -> None:
        """Make the service's one subscriber: `topics` (full names) with FastStream's
        `options`, each message handed to `handler`. Its consumer answers the questions below."""
        assert self.subscriber is None, "a service consumes through one subscriber"
        self.subscriber = self.broker.subscriber(*topics, **options)
        self.subscriber(handler)

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        """The subscriber's consumer while the broker runs; None otherwise."""
        return getattr(self.subscriber, "consumer", None)

    def waiting_after(self, ends: Mapping[TopicPartition, int]) -> set[TopicPartition]:
        """The partitions on which records wait after `ends` (per partition, the offset after a
        batch's last record: `pipeline.next_offsets`), by the high watermark of the consumer's
        last fetch.

        That watermark only grows, so a stale one can miss records but never invents any: a
        partition named here does have records after the batch.
        """
        consumer = self.consumer
        if consumer is None:
            return set()
        owned = consumer.assignment()
        return {where for where, end in ends.items()
                if where in owned and (consumer.highwater(where) or 0) > end}

    def assigned(self) -> bool:
        consumer = self.consumer
        return bool(consumer is not None and consumer.assignment())

    def assigned_partitions(self) -> set[tuple[str, int]] | None:
        """The partitions this process consumes now, as (topic, number); None when it has no
        consumer (tests and tools that apply batches by hand own everything they apply)."""
        consumer = self.consumer
        if consumer is None:
            return None
        return {(tp.topic, tp.partition) for tp in consumer.assignment()}

    async def behind_on(self, topic: str, partition: int, handed: int | None) -> bool:
        """Whether records wait on a partition this process consumes past `handed` (the offset
        after the last record it applied from there; None: not known, then its position), by
        the high watermark of the consumer's last fetch. False for a partition it does not
        consume, or without a consumer."""
        consumer = self.consumer
        where = TopicPartition(topic, partition)
        if consumer is None or where not in consumer.assignment():
            return False
        high = consumer.highwater(where)
        if high is None:
            return True
        return high > (handed if handed is not None else await consumer.position(where))

    async def end_offsets(self, topic: str) -> dict[int, int] | None:
        """Per partition, the end offset the broker reports now for a topic (its full name),
        which need not be one this process consumes; None without a consumer."""
        ends = await self.end_offsets_of([topic])
        return None if ends is None else ends[topic]

    async def end_offsets_of(self, names: list[str]) -> dict[str, dict[int, int]] | None:
        """`end_offsets` for several topics, asked of the broker in one request; None without
        a consumer.

        Some brokers, the embedded one among them, report the first offset of the last record
        batch plus one: a bound below the true end, but past every record before that batch.
        """
        consumer = self.consumer
        if consumer is None:
            return None
        wanted = [TopicPartition(topic, p) for topic in names
                  for p in sorted(await self.producer.partitions_for(topic))]
        ends: dict[str, dict[int, int]] = {topic: {} for topic in names}
        for tp, end in (await consumer.end_offsets(wanted)).items():
            ends[tp.topic][tp.partition] = end
        return ends


def build_runtime(settings: Settings) -> Runtime:
    """A service's clients, from its settings (TLS and SASL too: services.common.connections)."""
    metrics = ServiceMetrics(settings.service)
    mongo = mongo_client(settings.mongodb_url)
    kafka = kafka_connection(settings)
    broker = KafkaBroker(
        kafka.bootstrap_servers,
        security=kafka.security(),
        middlewares=[KafkaPrometheusMiddleware(registry=metrics.registry, app_name=settings.service)],
        graceful_timeout=SHUTDOWN_GRACE_S,
        logger=None,
        client_id=f"taskforce-{settings.service}",
    )
    return Runtime(settings, metrics, mongo, mongo[settings.database], broker)
