"""Consumer lag on `/metrics`, measured from the service's consumer (the I/O around
`services.common.lag`'s bookkeeping): after each batch, by the high watermark of the last
fetch, and every few seconds for every owned partition, by the broker's end offsets, so an
idle or stuck consumer still reports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiokafka import TopicPartition

from services.common.lag import Lag, LagGauges, LagTracker, Partition

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from services.common.runtime import Runtime

log = logging.getLogger(__name__)

#: How long a lag refresh waits for the broker's end or committed offsets before using the
#: last fetch's high watermarks instead.
LAG_ASK_TIMEOUT_S = 5.0


class LagWatch:
    """The lag of the partitions the runtime's consumer owns (none without a consumer)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.lag = LagTracker()
        settings, metrics = runtime.settings, runtime.metrics
        self.gauges = LagGauges(metrics.lag, metrics.lag_seconds, settings.service, settings.unprefixed)

    def observe(self, records: list[ConsumerRecord]) -> None:
        """After a batch is published: its partitions' lag, by the high watermark of the
        consumer's last fetch (no broker round trip)."""
        consumer = self.runtime.consumer
        if consumer is None:
            return
        owned = consumer.assignment()
        now = time.time()
        lags: dict[Partition, Lag] = {}
        for partition in self.lag.consumed(records):
            where = TopicPartition(*partition)
            if where not in owned:
                continue
            polled = consumer.last_poll_timestamp(where)
            lag = self.lag.lag(partition, consumer.highwater(where),
                               polled / 1000 if polled else now, now)
            if lag is not None:
                lags[partition] = lag
        self.gauges.show(lags)

    async def refresh(self) -> None:
        """Every owned partition's lag, by the broker's end offsets (one request) or the last
        fetch's high watermark, whichever is further: the gauges stay current while nothing
        is consumed (a stuck batch, an idle topic). Partitions not owned lose their samples."""
        consumer = self.runtime.consumer
        if consumer is None:
            return
        owned = set(consumer.assignment())
        self._retain(owned)
        if not owned:
            return
        asked = time.time()
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(sorted(owned)), LAG_ASK_TIMEOUT_S)
        except Exception as exc:  # an outage: the high watermarks are all there is
            log.debug("end offsets not available for lag", extra={"error": type(exc).__name__})
            ends = {}
        await self._start(consumer, [tp for tp in owned if not self.lag.knows((tp.topic, tp.partition))])
        owned = set(consumer.assignment())  # it may have moved meanwhile
        self._retain(owned)
        now = time.time()
        lags: dict[Partition, Lag] = {}
        for where in owned:
            end, polled = consumer.highwater(where), consumer.last_poll_timestamp(where)
            seen = polled / 1000 if polled else now
            reported = ends.get(where)
            if reported is not None and (end is None or reported > end):
                end, seen = reported, asked
            lag = self.lag.lag((where.topic, where.partition), end, seen, now)
            if lag is not None:
                lags[(where.topic, where.partition)] = lag
        self.gauges.show(lags)

    async def _start(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Where partitions this process has consumed nothing from yet stand: their committed
        offsets, or the log start where the group has committed nothing."""
        uncommitted = []
        for where in partitions:
            try:
                committed = await asyncio.wait_for(consumer.committed(where), LAG_ASK_TIMEOUT_S)
            except Exception as exc:
                log.debug("committed offset not available for lag", extra={"error": type(exc).__name__})
                return
            if committed is None:
                uncommitted.append(where)
            else:
                self.lag.start((where.topic, where.partition), committed)
        if uncommitted:
            try:
                starts = await asyncio.wait_for(consumer.beginning_offsets(uncommitted), LAG_ASK_TIMEOUT_S)
            except Exception as exc:
                log.debug("log start not available for lag", extra={"error": type(exc).__name__})
                return
            for where, start in starts.items():
                self.lag.start((where.topic, where.partition), start)

    def _retain(self, owned: Iterable[TopicPartition]) -> None:
        mine = {(tp.topic, tp.partition) for tp in owned}
        self.lag.retain(mine)
        self.gauges.retain(mine)

    def forget(self, given_up: Iterable[TopicPartition]) -> None:
        """Drop the lag of partitions given up in a rebalance (their new owner reports it)."""
        gone = [(tp.topic, tp.partition) for tp in given_up]
        self.lag.forget(gone)
        self.gauges.forget(gone)

    async def watch(self, every_s: float) -> None:
        """`refresh` every `every_s` seconds, until cancelled."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.refresh()
            except Exception:
                log.warning("measuring consumer lag failed; trying again later", exc_info=True)
