"""The benchmark's plumbing: fresh embedded servers, producing, committed offsets, processes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.proc import cpu_seconds, peak_rss_mb, rss_mb
from bench.stats import Sample, Window, steady_window
from bench.workload import Record
from schemas.topics import DEFAULT_PARTITIONS
from services.common.connections import KafkaConnection, as_connection
from services.common.kafka import ensure_topics
from taskforce import servers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TMP = RESULTS / "tmp"
POLL_S = 0.05


@dataclass
class Stack:
    """One pair of embedded servers on free loopback ports, started for one measurement."""

    kafka: servers.Server
    mongo: servers.Server

    @property
    def bootstrap(self) -> str:
        return self.kafka.address

    @property
    def connection(self) -> KafkaConnection:
        """How the harness's own clients reach the embedded broker: plaintext, whatever
        KAFKA_SECURITY_PROTOCOL the caller's environment holds (the consumer processes get
        none of the caller's KAFKA_* variables either: `child_env`)."""
        return KafkaConnection(self.bootstrap)

    @property
    def mongodb_url(self) -> str:
        return f"mongodb://{self.mongo.address}"

    def server_cpu(self) -> dict[str, float]:
        out = {}
        for server in (self.kafka, self.mongo):
            with contextlib.suppress(OSError):
                out[server.name] = cpu_seconds(server.process.pid)
        return out


@contextlib.contextmanager
def fresh_stack(name: str) -> Iterator[Stack]:
    """Tansu and nx-27017 (in memory), new for every measurement: nothing left over."""
    logs = TMP / name
    logs.mkdir(parents=True, exist_ok=True)
    kafka = servers.start_kafka(servers.free_port(), logs / "tansu.log")
    try:
        mongo = servers.start_mongo(servers.free_port(), logs / "nx.log")
    except BaseException:
        kafka.stop()
        raise
    try:
        yield Stack(kafka, mongo)
    finally:
        mongo.stop()
        kafka.stop()


async def create_topics(stack: Stack, prefix: str) -> None:
    await ensure_topics(stack.connection, prefix)


async def produce(bootstrap: str | KafkaConnection, prefix: str, records: Iterable[Record],
                  chunk: int = 20_000) -> int:
    """Publish records (key = municipality code) and wait until the broker has them all."""
    producer = AIOKafkaProducer(**as_connection(bootstrap).client_args(), acks="all", linger_ms=10,
                                max_batch_size=512 * 1024, max_request_size=8 * 1024 * 1024,
                                enable_idempotence=False)
    await producer.start()
    sent = 0
    try:
        iterator = iter(records)
        while batch := list(itertools.islice(iterator, chunk)):
            futures = [await producer.send(prefix + topic, value, key=key) for topic, key, value in batch]
            await asyncio.gather(*futures)
            sent += len(futures)
        return sent
    finally:
        await producer.stop()


async def read_topic(bootstrap: str | KafkaConnection, prefix: str, name: str) -> list[Record]:
    """Every record of topic `name` as it stands now, per partition in offset order
    (records carry the unprefixed name, ready to be produced again under another prefix)."""
    topic = prefix + name
    consumer = AIOKafkaConsumer(**as_connection(bootstrap).client_args(), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=50)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[Record] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                out.extend((name, r.key, r.value) for r in records)
        return out
    finally:
        await consumer.stop()


class BackgroundReader:
    """A consumer read by a task of its own between `start` and `stop`; `_run` reads."""

    consumer: AIOKafkaConsumer
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.consumer.stop()

    async def _run(self) -> None:
        raise NotImplementedError


class Offsets:
    """A consumer group's committed offsets, summed over its input partitions.

    Read as the tests do, through a (non-subscribed) member of the group: the embedded
    broker's answer to the admin client's OffsetFetch does not decode in aiokafka 0.14.
    """

    def __init__(self, bootstrap: str | KafkaConnection, group: str, topics: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(**as_connection(bootstrap).client_args(), group_id=group,
                                         enable_auto_commit=False)
        self.partitions = [TopicPartition(t, p) for t in topics
                           for p in range(DEFAULT_PARTITIONS[self._unprefixed(t)])]

    @staticmethod
    def _unprefixed(topic: str) -> str:
        return next(name for name in DEFAULT_PARTITIONS if topic.endswith(name))

    async def __aenter__(self) -> Offsets:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def committed(self) -> int:
        total = 0
        for tp in self.partitions:
            total += await self.consumer.committed(tp) or 0
        return total


@dataclass
class Process:
    """A consumer under test, as its own OS process (its CPU and RSS are its own)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    http_port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        servers.stop_pid(self.pid, timeout=30)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


def child_env(stack: Stack, prefix: str, name: str, **extra: str) -> dict[str, str]:
    """The environment of a consumer process: our servers, our prefix, a log file, nothing inherited
    from TASKFORCE_* settings of the caller (so runs are comparable), and no OTEL_* either:
    nothing is traced unless a phase says so (the tracing phase, bench/tracing_cost.py)."""
    (TMP / f"{name}.log").unlink(missing_ok=True)  # the services append to their log file
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TASKFORCE_", "KAFKA_", "MONGODB_", "OTEL_"))}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "MONGODB_URL": stack.mongodb_url,
        "TASKFORCE_TOPIC_PREFIX": prefix,
        "TASKFORCE_HTTP_PORT": str(servers.free_port()),
        "TASKFORCE_LOG_FILE": str(TMP / f"{name}.log"),
        "PYTHONPATH": str(ROOT),
        **extra,
    })
    return env


def start_process(name: str, args: list[str], env: dict[str, str]) -> Process:
    TMP.mkdir(parents=True, exist_ok=True)
    log = TMP / f"{name}.out"
    with log.open("wb") as out:
        popen = subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    port = env.get("TASKFORCE_HTTP_PORT")
    return Process(name, popen, log, int(port) if port else None)


async def wait_ready(process: Process, limit_s: float = 60) -> None:
    """Until the service answers /readyz with 200 (partitions assigned, store answering)."""
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{process.http_port}", timeout=2) as client:
        while True:
            process.check()
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{process.name} not ready within {limit_s} s")
            await asyncio.sleep(0.1)


@dataclass
class Consumption:
    """How one consumer process got through a pre-published input."""

    name: str
    total: int
    window: Window
    wall_s: float  # process start to all committed (start-up included)
    peak_rss_mb: float
    rss_mb: float
    server_cpu_per_event: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.total,
            "measured_events": self.window.events,
            "measured_s": round(self.window.seconds, 3),
            "events_per_s": round(self.window.events_per_s, 1),
            "cpu_s_per_event": round(self.window.cpu_per_event, 7),
            "wall_s_with_startup": round(self.wall_s, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "server_cpu_s_per_event": {k: round(v, 7) for k, v in self.server_cpu_per_event.items()},
        }


async def consume_measured(stack: Stack, name: str, args: list[str], env: dict[str, str], group: str,
                           topics: list[str], total: int, limit_s: float) -> Consumption:
    """Start the consumer on an input already published; poll its group's commits until all
    `total` records are committed; CPU from /proc at every poll, peak RSS at the end."""
    server_before: dict[str, float] = {}
    async with Offsets(stack.connection, group, topics) as offsets:
        started = time.monotonic()
        process = start_process(name, args, env)
        samples: list[Sample] = []
        try:
            deadline = started + limit_s
            while True:
                committed = await offsets.committed()
                now = time.monotonic()
                process.check()
                samples.append(Sample(now, committed, cpu_seconds(process.pid)))
                if committed > 0 and not server_before:
                    server_before = stack.server_cpu()
                if committed >= total:
                    break
                if now > deadline:
                    raise TimeoutError(f"{name}: {committed}/{total} committed after {limit_s} s")
                await asyncio.sleep(POLL_S)
            server_after = stack.server_cpu()
            peak, rss = peak_rss_mb(process.pid), rss_mb(process.pid)
        finally:
            process.stop()
    window = steady_window(samples, total)
    server = {k: (server_after[k] - server_before.get(k, 0.0)) / max(window.events, 1) for k in server_after}
    return Consumption(name, total, window, samples[-1].t - started, peak, rss, server)


@contextlib.asynccontextmanager
async def running(processes: list[Process]) -> AsyncIterator[list[Process]]:
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()
