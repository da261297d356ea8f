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

from services.common.connections import KafkaConnection
from services.common.kafka import ensure_topics
from services.gateway.config import GatewayConfig

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
LINGER_MS = 5
MAX_BATCH_BYTES = 512 * 1024


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
        #: Called once the producer is up (the audit trail starts producing then).
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.producer is not None and self.broker_answers and not self.unacknowledged

    def checks(self) -> dict[str, bool]:
        return {"producer": self.producer is not None, "broker_answers": self.broker_answers,
                "deliveries_acknowledged": not self.unacknowledged}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gateway-sink")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()  # delivers what is buffered (or gives up after its timeout)

    async def _run(self) -> None:
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
        for hook in self.on_start:
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

    async def produce(self, records: Sequence[tuple[str, bytes, bytes]], seconds: float) -> list[bool]:
        """Send (topic, key, value) records; per record, whether the broker acknowledged it
        within `seconds`. A record not acknowledged may still land later (its event is then
        a duplicate if sent again, which the consumers drop)."""
        producer = self.producer
        if producer is None or not records:
            return [False] * len(records)
        futures: list[asyncio.Future[Any] | None] = []
        try:
            async with asyncio.timeout(seconds):
                for topic, key, value in records:
                    try:
                        futures.append(await producer.send(self.prefix + topic, value, key=key))
                    except KafkaError as exc:
                        log.warning("a record could not be sent", extra={"error": type(exc).__name__})
                        futures.append(None)
                pending = [f for f in futures if f is not None]
                if pending:
                    await asyncio.wait(pending)
        except TimeoutError:
            pass
        acked = []
        for future in futures:
            if future is None:
                acked.append(False)
            elif future.done():
                acked.append(not future.cancelled() and future.exception() is None)
            else:
                future.add_done_callback(_retrieve)
                acked.append(False)
        acked += [False] * (len(records) - len(futures))
        if not all(acked):
            failed = sum(not a for a in acked)
            log.warning("records not acknowledged by the broker; not ready until it answers",
                        extra={"records": failed})
            self.unacknowledged = True
        return acked
