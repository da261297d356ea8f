"""Know when the pipeline has finished with what was published: watch offsets, never sleep.

The pipeline has settled when every service's consumer group has committed, on every
partition of its input topics, the end offset of that partition (so it has applied and
published everything there is), and the summaries topic has then stayed unchanged for a
quiet spell. The services commit a batch only after its writes and publishes succeeded,
and the groups are read upstream first (intake, analysis, follow-up, then reporting), so
a caught-up reporting group has seen everything the owning services emitted.

Committed offsets come from the admin client (`OffsetFetch`, with explicit partitions).
End offsets come from a group-less consumer that reads each partition's last record
batch: the embedded broker (Tansu 0.6) answers `ListOffsets(latest)` with the *first*
offset of the last batch plus one, short of the true end when that batch holds several
records, while its fetch responses are right. So the watch seeks to just before the
reported end, reads forward and takes the position it reaches (and the fetch high-water
mark); on real Kafka that is simply the end offset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas import topics
from services.common.connections import KafkaConnection, as_connection
from services.common.settings import load_settings

#: Every service's consumer group (named after the service) and the topics it consumes,
#: upstream services first.
GROUP_INPUTS: dict[str, tuple[str, ...]] = {
    "intake": (topics.APPLICATIONS, topics.NOTIFICATIONS),
    "analysis": (topics.CASE_REVIEWS,),
    "followup": (topics.MILESTONES,),
    "reporting": (topics.REPORTING, topics.COMMANDS),
}
QUIET_S = 2.0
TIMEOUT_S = 300.0
POLL_S = 0.25
READ_ATTEMPTS = 10


class SettleTimeout(Exception):
    """The pipeline did not settle in time; the message says who is behind."""


@dataclass(frozen=True)
class Progress:
    """One look at the pipeline."""

    #: Records each service has not committed yet, over all its input partitions.
    behind: Mapping[str, int]
    #: Records on the summaries topic (sum of its end offsets).
    summaries: int
    #: Seconds for which everything has been caught up and the summaries topic unchanged.
    quiet_for: float

    @property
    def caught_up(self) -> bool:
        return not any(self.behind.values())


def group_id(service: str, prefix: str) -> str:
    """The service's consumer group, exactly as the service names it."""
    return load_settings(service, TASKFORCE_TOPIC_PREFIX=prefix).group_id


class OffsetWatch:
    """An admin client for committed offsets and a group-less reader for true end offsets."""

    def __init__(self, bootstrap: str | KafkaConnection, prefix: str = "") -> None:
        self.prefix = prefix
        kafka = as_connection(bootstrap).client_args()
        self.admin = AIOKafkaAdminClient(**kafka, client_id="taskforce-settle")
        self.reader = AIOKafkaConsumer(**kafka, group_id=None,
                                       client_id="taskforce-settle", enable_auto_commit=False,
                                       fetch_max_wait_ms=50)
        self._partitions: dict[str, list[TopicPartition]] = {}
        #: How far the reader has read each partition: the true end as far as it knows.
        self._read: dict[TopicPartition, int] = {}

    async def __aenter__(self) -> OffsetWatch:
        await self.admin.start()
        try:
            await self.reader.start()
        except BaseException:
            await self.admin.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.reader.stop()
        await self.admin.close()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The partitions of a topic (prefix added); none while it does not exist yet."""
        name = self.prefix + topic
        if name not in self._partitions:
            described = await self.admin.describe_topics([name])
            found = [TopicPartition(name, p["partition"]) for d in described if d["error_code"] == 0
                     for p in d["partitions"]]
            if not found:
                return []
            self._partitions[name] = sorted(found)
        return self._partitions[name]

    async def end_offsets(self, names: tuple[str, ...]) -> dict[TopicPartition, int]:
        """The true end offset of every partition of the topics (prefix added)."""
        partitions = [tp for topic in names for tp in await self.partitions(topic)]
        if not partitions:
            return {}
        reported = await self.reader.end_offsets(partitions)
        new = [tp for tp in partitions if tp not in self._read]
        if new:
            self.reader.assign([*self._read, *new])
            for tp in new:
                self._read[tp] = max(reported[tp] - 1, 0)  # the last batch starts here (Tansu)
            for tp, offset in self._read.items():
                self.reader.seek(tp, offset)
        for _ in range(READ_ATTEMPTS):
            behind = [tp for tp in partitions if self._read[tp] < reported[tp]]
            if not behind:
                break
            await self.reader.getmany(*behind, timeout_ms=200)
            for tp in behind:
                self._read[tp] = max(await self.reader.position(tp), self.reader.highwater(tp) or 0)
        return {tp: max(self._read[tp], reported[tp]) for tp in partitions}

    async def behind(self, service: str) -> int:
        """Records on the service's input topics that its group has not committed yet."""
        ends = await self.end_offsets(GROUP_INPUTS[service])
        if not ends:
            return 0
        committed = await self.admin.list_consumer_group_offsets(
            group_id(service, self.prefix), partitions=list(ends))
        return sum(max(end - max(committed[tp].offset if tp in committed else 0, 0), 0)
                   for tp, end in ends.items())

    async def look(self) -> tuple[dict[str, int], int]:
        behind = {service: await self.behind(service) for service in GROUP_INPUTS}
        summaries = sum((await self.end_offsets((topics.SUMMARIES,))).values())
        return behind, summaries


async def wait_until_settled(bootstrap: str | KafkaConnection, prefix: str = "", *, quiet_s: float = QUIET_S,
                             timeout_s: float = TIMEOUT_S, poll_s: float = POLL_S,
                             on_progress: Callable[[Progress], None] | None = None) -> Progress:
    """Return once every group is caught up and the summaries topic has been quiet for `quiet_s`.

    Raises SettleTimeout after `timeout_s`, naming the services still behind.
    """
    started = time.monotonic()
    calm_since: float | None = None
    last_summaries: int | None = None
    async with OffsetWatch(bootstrap, prefix) as watch:
        while True:
            behind, summaries = await watch.look()
            now = time.monotonic()
            if any(behind.values()):
                calm_since = None
            elif calm_since is None or summaries != last_summaries:
                calm_since = now
            last_summaries = summaries
            state = Progress(behind, summaries, 0.0 if calm_since is None else now - calm_since)
            if on_progress is not None:
                on_progress(state)
            if calm_since is not None and state.quiet_for >= quiet_s:
                return state
            if now - started > timeout_s:
                raise SettleTimeout(_timeout_message(state, timeout_s, prefix))
            await asyncio.sleep(poll_s)


def _timeout_message(state: Progress, timeout_s: float, prefix: str) -> str:
    lagging = [f"{service} is {count:,} record(s) behind on "
               + ", ".join(prefix + t for t in GROUP_INPUTS[service])
               for service, count in state.behind.items() if count]
    if not lagging:
        return (f"the summaries topic was still changing after {timeout_s:.0f} s "
                f"({state.summaries:,} summaries so far)")
    return (f"the pipeline did not settle within {timeout_s:.0f} s: " + "; ".join(lagging)
            + ". Are those services running? (`make status`, logs under run/logs/)")


def describe(state: Progress) -> str:
    """A one-line account for a spinner."""
    parts = [f"{service} {count:,} behind" if count else f"{service} ✓"
             for service, count in state.behind.items()]
    quiet = f", quiet {state.quiet_for:.1f} s" if state.caught_up else ""
    return " · ".join(parts) + f" · {state.summaries:,} summaries published{quiet}"
