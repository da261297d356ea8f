"""What the fault scenarios share: servers, service processes, the broker's view of progress.

Every service runs as its own OS process (`python -m services.<name>`, new session, output
and JSON logs to files), so a `kill -9` is a real one. Progress is watched, never slept
for: a service has caught up when its consumer group has committed every partition of its
input topics up to the end, and the pipeline has settled when all four groups have, twice
in a row with unchanged end offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata

from taskforce import servers

ROOT = Path(__file__).resolve().parents[2]
#: Figures per scenario for the summary table (see conftest.py), and every cluster started.
FIGURES: dict[str, dict[str, Any]] = {}
CLUSTERS: list[Cluster] = []
SERVICES = ("intake", "analysis", "followup", "reporting")
APPLICATIONS = "taskforce.applications"
NOTIFICATIONS = "taskforce.notifications"
CASE_REVIEWS = "taskforce.case-reviews"
MILESTONES = "taskforce.milestones"
COMMANDS = "taskforce.commands"
REPORTING = "taskforce.reporting"
SUMMARIES = "taskforce.summaries"
DLQ = "taskforce.dlq"
INPUT_TOPICS = (APPLICATIONS, NOTIFICATIONS, CASE_REVIEWS, MILESTONES)
GROUP_TOPICS: dict[str, tuple[str, ...]] = {
    "intake": (APPLICATIONS, NOTIFICATIONS),
    "analysis": (CASE_REVIEWS,),
    "followup": (MILESTONES,),
    "reporting": (REPORTING, COMMANDS),
}
TOPIC_OF_TYPE = {
    "application.submitted": APPLICATIONS, "application.decided": APPLICATIONS,
    "course.started": APPLICATIONS, "course.completed": APPLICATIONS,
    "notification.received": NOTIFICATIONS, "notification.assessed": NOTIFICATIONS,
    "case_review.completed": CASE_REVIEWS,
    "development_plan.adopted": MILESTONES, "milestone.updated": MILESTONES,
    "followup.meeting_held": MILESTONES,
}


# --- servers --------------------------------------------------------------------------------


@dataclass
class Servers:
    """Tansu and a file-backed nx-27017 (a *directory*: one SQLite file per database)."""

    run_dir: Path
    kafka: servers.Server
    mongo: servers.Server
    store_dir: Path
    mongo_port: int
    store_restarts: int = 0

    @property
    def bootstrap(self) -> str:
        return self.kafka.address

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}"

    def stop_store(self) -> None:
        self.mongo.stop(timeout=20)

    def store_running(self) -> bool:
        return self.mongo.process.poll() is None

    def start_store(self) -> None:
        deadline = time.monotonic() + 30
        while servers.port_open("127.0.0.1", self.mongo_port):  # the old process's port
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {self.mongo_port} still taken")
            time.sleep(0.1)
        self.store_restarts += 1
        self.mongo = servers.start_mongo(self.mongo_port, self.run_dir / f"nx.{self.store_restarts}.out",
                                         db=str(self.store_dir))

    def stop(self) -> None:
        for server in (self.mongo, self.kafka):
            with contextlib.suppress(Exception):
                server.stop()


def start_servers(run_dir: Path) -> Servers:
    run_dir.mkdir(parents=True, exist_ok=True)
    store_dir = run_dir / "store"
    store_dir.mkdir()
    # A directory, not a file: with a single file nx-27017 puts every logical database in
    # one namespace, so intake's and reporting's `notifications` collections would collide.
    kafka = servers.start_kafka(servers.free_port(), run_dir / "tansu.out")
    port = servers.free_port()
    try:
        mongo = servers.start_mongo(port, run_dir / "nx.0.out", db=str(store_dir))
    except Exception:
        kafka.stop()
        raise
    return Servers(run_dir, kafka, mongo, store_dir, port)


# --- service processes ----------------------------------------------------------------------


@dataclass
class ServiceProcess:
    """One OS process of one service; restartable, each run logging to its own files."""

    service: str
    replica: int
    port: int
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0
    exits: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.service}.{self.replica}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, crash_after_write: int | None = None, **extra_env: str) -> None:
        """Start the service; with `crash_after_write` N, under the harness's fault that ends the
        process after its N-th batch write, before that batch's commit (crash_after_write.py)."""
        assert self.process is None or self.process.poll() is not None, f"{self.name} still running"
        self.runs += 1
        stem = self.log_dir / f"{self.name}.run{self.runs}"
        env = {**self.env, "TASKFORCE_LOG_FILE": f"{stem}.log", **extra_env}
        module = [f"services.{self.service}"] if crash_after_write is None else [
            "tests.faults.crash_after_write", self.service, str(crash_after_write)]
        with open(f"{stem}.out", "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *module], cwd=ROOT, env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reap(self) -> int | None:
        """The exit code if the process ended since the last look (recorded once)."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        self.exits.append(code)
        self.process = None
        return code

    def kill9(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.reap()

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM (graceful shutdown); SIGKILL only if it does not end within `timeout`."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        code = self.process.returncode
        self.reap()
        return code

    def logs(self) -> list[Path]:
        return sorted(self.log_dir.glob(f"{self.name}.run*"))


class Cluster:
    """The four services (or N replicas of each) for one test, under one topic prefix."""

    def __init__(self, stack: Servers, prefix: str, run_dir: Path, tokens: dict[str, str] | None = None,
                 **env: str) -> None:
        self.stack = stack
        self.prefix = prefix
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.tokens_file = run_dir / "tokens.json"
        self.tokens_file.write_text(json.dumps(tokens or {"fault-admin": "*"}))
        self.base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TASKFORCE_", "KAFKA_", "MONGODB_"))},
            "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
            "MONGODB_URL": stack.mongo_url,
            "TASKFORCE_TOPIC_PREFIX": prefix,
            "TASKFORCE_TOKENS_FILE": str(self.tokens_file),
            "TASKFORCE_SESSION_SECRET": "fault-tests-session-secret",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.procs: list[ServiceProcess] = []

    def add(self, service: str, replica: int = 0, **extra_env: str) -> ServiceProcess:
        port = servers.free_port()
        proc = ServiceProcess(service, replica, port,
                              {**self.base_env, "TASKFORCE_HTTP_PORT": str(port), **extra_env}, self.run_dir)
        self.procs.append(proc)
        return proc

    def start_all(self, replicas: int = 1, **per_service_env: dict[str, str]) -> None:
        for replica in range(replicas):
            for service in SERVICES:
                self.add(service, replica).start(**per_service_env.get(service, {}))

    def get(self, service: str, replica: int = 0) -> ServiceProcess:
        return next(p for p in self.procs if p.service == service and p.replica == replica)

    def group(self, service: str) -> str:
        return f"{self.prefix}{service}"

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def database(self, service: str) -> str:
        return f"{self.prefix}{service}".replace(".", "_")

    def log_files(self) -> list[Path]:
        return sorted(self.run_dir.glob("*.run*"))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.terminate(timeout=30)


async def readyz(client: httpx.AsyncClient, proc: ServiceProcess) -> int | None:
    """The /readyz status code, or None when nothing answers."""
    try:
        return (await client.get(f"{proc.url}/readyz", timeout=3)).status_code
    except httpx.HTTPError:
        return None


async def wait_ready(procs: Iterable[ServiceProcess], timeout: float = 120) -> None:
    pending = list(procs)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while pending:
            for proc in list(pending):
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited with {proc.process and proc.process.returncode}; "
                                       f"see {proc.log_dir}")
                if await readyz(client, proc) == 200:
                    pending.remove(proc)
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not ready within {timeout} s: {[p.name for p in pending]}")
                await asyncio.sleep(0.2)


# --- the broker's view ----------------------------------------------------------------------


async def produce(bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes]],
                  max_request_size: int = 4 * 1024 * 1024) -> list[RecordMetadata]:
    """Send (topic, key, value) records in order; returns where each landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=max_request_size,
                                acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in records]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


def event_record(prefix: str, event: dict[str, Any]) -> tuple[str, bytes, bytes]:
    topic = TOPIC_OF_TYPE.get(event["event_type"], COMMANDS)
    return (prefix + topic, str(event["municipality_code"]).encode(),
            json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())


async def _partitions(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    parts = []
    for topic in topics:
        found = consumer.partitions_for_topic(topic)
        if not found:
            await consumer._client.force_metadata_update()  # a topic just created elsewhere
            found = consumer.partitions_for_topic(topic) or set()
        parts += [TopicPartition(topic, p) for p in sorted(found)]
    return parts


async def _high_watermarks(consumer: AIOKafkaConsumer, parts: list[TopicPartition],
                           positions: dict[TopicPartition, int],
                           timeout: float = 30) -> dict[TopicPartition, int]:
    """Each partition's high watermark as its fetch responses tell it.

    (Not `end_offsets`: Tansu's ListOffsets answers the base offset of the last record batch
    plus one, so it under-reports the end of any partition written in batches.)
    """
    consumer.assign(parts)
    for tp in parts:
        consumer.seek(tp, positions.get(tp, 0))
    deadline = time.monotonic() + timeout
    while any(consumer.highwater(tp) is None for tp in parts):
        if time.monotonic() > deadline:
            silent = [tp for tp in parts if consumer.highwater(tp) is None]
            raise TimeoutError(f"no fetch answer for {silent}")
        await consumer.getmany(timeout_ms=100, max_records=1)
    return {tp: consumer.highwater(tp) for tp in parts}  # type: ignore[misc]


async def group_lag(bootstrap: str, groups: dict[str, Iterable[str]]) -> dict[str, tuple[int, int]]:
    """{group: (records not committed yet, high watermarks summed)} for each group's topics."""
    result = {}
    for group, topics in groups.items():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                    max_partition_fetch_bytes=1024)
        await consumer.start()
        try:
            parts = await _partitions(consumer, topics)
            committed = {tp: (await consumer.committed(tp)) or 0 for tp in parts}
            ends = await _high_watermarks(consumer, parts, committed)
            result[group] = (sum(ends[tp] - committed[tp] for tp in parts), sum(ends.values()))
        finally:
            await consumer.stop()
    return result


async def wait_settled(cluster: Cluster, timeout: float = 180, watch: Any = None) -> float:
    """Until all four groups have committed everything, twice in a row; returns seconds taken.

    `watch` (optional) is called each round, e.g. to restart crashed processes.
    """
    groups = {cluster.group(s): [cluster.topic(t) for t in GROUP_TOPICS[s]] for s in SERVICES}
    started = time.monotonic()
    previous = None
    while True:
        if watch is not None:
            watch()
        lags = await group_lag(cluster.stack.bootstrap, groups)
        if all(behind == 0 for behind, _ in lags.values()):
            ends = {g: end for g, (_, end) in lags.items()}
            if ends == previous:
                return time.monotonic() - started
            previous = ends
        else:
            previous = None
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"pipeline not settled after {timeout} s: {lags}")
        await asyncio.sleep(0.5)


async def read_all(bootstrap: str, topic: str, timeout: float = 60) -> list[Any]:
    """Every record of `topic` up to its current high watermarks, in (partition, offset) order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        parts = await _partitions(consumer, [topic])
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, 0)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while True:
            positions = {tp: await consumer.position(tp) for tp in parts}
            if all(consumer.highwater(tp) is not None and positions[tp] >= consumer.highwater(tp)  # type: ignore[operator]
                   for tp in parts):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: read {len(records)} records, positions {positions}")
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def latest_summaries(cluster: Cluster) -> dict[tuple[str, str], dict[str, Any]]:
    """The last summary published per (municipality, period) — one partition per municipality."""
    latest = {}
    for record in await read_all(cluster.stack.bootstrap, cluster.topic(SUMMARIES)):
        summary = json.loads(record.value)
        latest[(summary["municipality_code"], summary["data"]["period"])] = summary["data"]
    return latest
