"""The one place tests get their servers from.

Preference: `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URL` from the environment, then real Kafka
and MongoDB in testcontainers when a Docker engine answers, then the embedded stand-ins
(Tansu and nx-27017) started on free loopback ports. Every integration test talks to real
protocol servers over TCP; each test gets its own topic prefix and database names.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from taskforce import servers

RUN_DIR = Path(__file__).resolve().parent.parent / "run" / "tests"


@dataclass(frozen=True)
class Stack:
    bootstrap_servers: str
    mongodb_url: str
    kind: str


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    env_kafka, env_mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if env_kafka and env_mongo:
        yield Stack(env_kafka, env_mongo, "environment")
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.mongodb import MongoDbContainer

        with (
            KafkaContainer("apache/kafka:3.9.1").with_kraft() as kafka,
            MongoDbContainer("mongo:8.0") as mongo,
        ):
            yield Stack(kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers")
        return
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    kafka = servers.start_kafka(servers.free_port(), RUN_DIR / "tansu.log")
    mongo = servers.start_mongo(servers.free_port(), RUN_DIR / "nx.log")
    try:
        yield Stack(kafka.address, f"mongodb://{mongo.address}", "embedded")
    finally:
        kafka.stop()
        mongo.stop()


@pytest.fixture
def prefix() -> str:
    """A unique prefix for this test's topics, consumer groups and databases."""
    return f"t{uuid.uuid4().hex[:10]}."


# Hypothesis profiles: `default` for `make test`; `fuzz` (HYPOTHESIS_PROFILE=fuzz) for the
# long runs of `make test-faults`, where each fuzzing property runs its own example count.
settings.register_profile("fuzz", max_examples=25_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
