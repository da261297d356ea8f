"""The gateway's producer and whether the broker answers.

One aiokafka producer (`acks="all"`, idempotent where the broker supports it) made by a
background task that keeps trying while the broker is away; a probe asks the broker for its
metadata every `probe_every_s`. While the producer is not up, the last probe failed, or a
request's records were not all acknowledged since the last good probe, the sink is not ready:
`/readyz` says 503 and writes are refused with 503 before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.partitioner import DefaultPartitioner

from services.common.connections import KafkaConnection
from services.common.kafka import ensure_topics
from services.gateway.config import GatewayConfig

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
LINGER_MS = 5
MAX_BATCH_BYTES = 512 * 1024
_PARTITIONER = DefaultPartitioner()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Read a late delivery's outcome, so an unawaited failure is not reported as a bug."""
    if not future.cancelled():
        future.exception()


class Sink:
    def __init__(self, kafka: KafkaConnection, prefix: str, config: GatewayConfig, client_id: str,
                 max_request_bytes: int = 1024 * 1024) -> None:
        self.kafka = kafka
        self.prefix = prefix
        self.config = config
        self.client_id = client_id
        self.max_request_bytes = max_request_bytes
        self.producer: AIOKafkaProducer | None = None
        self.idempotent = False
        self.broker_answers = False
        self.unacknowledged = False
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.producer is not None and self.broker_answers and not self.unacknowledged

    def checks(self) -> dict[str, bool]:
        return {"producer": self.producer is not None, "broker_answers": self.broker_answers,
                "deliveries_acknowledged": not self.unacknowledged}

    def start(self, on_start: Sequence[Callable[[], Awaitable[None]]] = ()) -> None:
        """Start the producer (retried until the broker answers), then call `on_start` in
        order (the audit trail starts producing then), then probe the broker."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(on_start), name="gateway-sink")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()  # delivers what is buffered (or gives up after its timeout)

    async def _run(self, on_start: Sequence[Callable[[], Awaitable[None]]]) -> None:
        delay = 0.2
        while self.producer is None:
            try:
                await ensure_topics(self.kafka, self.prefix, attempts=1, check=False)
                self.producer = await self._start_producer()
            except (KafkaError, OSError) as exc:
                log.warning("broker not reachable; not ready, retrying",
                            extra={"error": type(exc).__name__, "retry_in_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
        self.broker_answers = True
        for hook in on_start:
            await hook()
        log.info("producing", extra={"idempotent": self.idempotent})
        while True:
            await asyncio.sleep(self.config.probe_every_s)
            await self.probe()

    async def _start_producer(self) -> AIOKafkaProducer:
        wanted = self.config.idempotence
        if wanted != "off":
            producer = self._producer(idempotent=True)
            try:
                await producer.start()
            except KafkaConnectionError:
                await producer.stop()
                raise
            except KafkaError as exc:  # the broker refuses InitProducerId (the embedded one does)
                await producer.stop()
                if wanted == "on":
                    raise
                log.warning("the broker does not support idempotent producers; producing without",
                            extra={"error": type(exc).__name__})
            else:
                self.idempotent = True
                return producer
        producer = self._producer(idempotent=False)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self.idempotent = False
        return producer

    def _producer(self, idempotent: bool) -> AIOKafkaProducer:
        request_timeout_ms = int(max(self.config.deadline_s, 5.0) * 3000)
        return AIOKafkaProducer(**self.kafka.client_args(), client_id=self.client_id, acks="all",
                                enable_idempotence=idempotent, linger_ms=LINGER_MS,
                                max_batch_size=MAX_BATCH_BYTES, max_request_size=self.max_request_bytes,
                                request_timeout_ms=request_timeout_ms)

    async def probe(self) -> bool:
        """Ask the broker for its metadata; ready again once it answers."""
        producer = self.producer
        if producer is None:
            return False
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), self.config.probe_timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            if self.broker_answers:
                log.warning("the broker does not answer; not ready", extra={"error": type(exc).__name__})
            self.broker_answers = False
            return False
        if not self.broker_answers or self.unacknowledged:
            log.info("the broker answers again; ready")
        self.broker_answers, self.unacknowledged = True, False
        return True

    async def produce(self, records: Sequence[tuple[str, bytes, bytes]], seconds: float,
                      headers: Sequence[tuple[str, bytes]] = ()) -> list[bool]:
        """Send (topic, key, value) records, each with `headers`; per record, whether the broker
        acknowledged it within `seconds`. A record not acknowledged may still land later (its event is then
        a duplicate if sent again, which the consumers drop).

        The records go as one closed batch per partition (more when one is full), in request
        order within each partition, on the partition aiokafka's default partitioner gives
        their key: a request is a batch already, so it is sent at once (no linger) and without
        `send()`'s work per record (metadata wait, partitioner, accumulator), which costs
        several times a batch's append and would dominate the gateway's CPU (bench/README.md).
        """
        producer = self.producer
        if producer is None or not records:
            return [False] * len(records)
        #: Per record, the future of the batch it went in (None: it could not be sent).
        futures: list[asyncio.Future[Any] | None] = [None] * len(records)
        try:
            async with asyncio.timeout(seconds):
                await self._send_batches(producer, records, futures, headers)
                pending = {id(f): f for f in futures if f is not None}
                if pending:
                    await asyncio.wait(pending.values())
        except TimeoutError:
            pass
        acked = []
        seen: set[int] = set()
        for future in futures:
            if future is None:
                acked.append(False)
            elif future.done():
                acked.append(not future.cancelled() and future.exception() is None)
            else:
                if id(future) not in seen:
                    seen.add(id(future))
                    future.add_done_callback(_retrieve)
                acked.append(False)
        if not all(acked):
            failed = sum(not a for a in acked)
            log.warning("records not acknowledged by the broker; not ready until it answers",
                        extra={"records": failed})
            self.unacknowledged = True
        return acked

    async def _send_batches(self, producer: AIOKafkaProducer, records: Sequence[tuple[str, bytes, bytes]],
                            futures: list[asyncio.Future[Any] | None],
                            headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Fill `futures` (index by index) with the futures of the batches the records went in,
        topic after topic (a topic whose metadata does not come holds up only the topics after it)."""
        headers = list(headers)  # the record builder takes a list, nothing else
        by_topic: dict[str, list[int]] = {}
        for index, (name, _key, _value) in enumerate(records):
            by_topic.setdefault(name, []).append(index)
        for name, indexes in by_topic.items():
            topic = self.prefix + name
            try:
                partitions = sorted(await producer.partitions_for(topic))
            except KafkaError as exc:
                log.warning("no metadata for a topic", extra={"error": type(exc).__name__})
                continue
            by_key: dict[bytes, int] = {}
            #: partition → the open batch and the indexes of its records.
            open_batches: dict[int, tuple[Any, list[int]]] = {}
            for index in indexes:
                _name, key, value = records[index]
                partition = by_key.get(key)
                if partition is None:  # what send() would choose: murmur2 of the key, over all partitions
                    partition = by_key[key] = int(_PARTITIONER(key, partitions, partitions))
                entry = open_batches.get(partition)
                if entry is not None and entry[0].append(
                        key=key, value=value, timestamp=None, headers=headers) is not None:
                    entry[1].append(index)
                    continue
                if entry is not None:  # full: send it, start another
                    del open_batches[partition]
                    await self._submit(producer, topic, partition, *entry, futures=futures)
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    log.warning("a record does not fit in a batch", extra={"bytes": len(value)})
                    continue
                open_batches[partition] = (batch, [index])
            for partition, (batch, batch_indexes) in open_batches.items():
                await self._submit(producer, topic, partition, batch, batch_indexes, futures=futures)

    @staticmethod
    async def _submit(producer: AIOKafkaProducer, topic: str, partition: int, batch: Any, indexes: list[int],
                      *, futures: list[asyncio.Future[Any] | None]) -> None:
        batch.close()  # closed: sent at once, and nothing else is appended to it
        try:
            future = await producer.send_batch(batch, topic, partition=partition)
        except KafkaError as exc:
            log.warning("a batch could not be sent",
                        extra={"error": type(exc).__name__, "records": len(indexes)})
            return
        for index in indexes:
            futures[index] = future

