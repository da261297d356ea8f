"""`python -m services.<name> rebuild` against the real servers: the command composes the
service and replays its input through the service's own steps, without building its HTTP app
(reporting here, whose replay hooks hold summaries back until the replica is rebuilt)."""

from __future__ import annotations

import ast
import asyncio
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas import topics
from services.common import cli
from services.intake.app import create as create_intake
from services.reporting.app import compose as compose_reporting
from taskforce.settle import OffsetWatch
from tests.support.events import assessed, received
from tests.support.kafka import produce
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration


async def topic_size(bootstrap: str, topic: str) -> int:
    async with OffsetWatch(bootstrap) as watch:
        return sum((await watch.end_offsets((topic,))).values())


def no_http_app(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("a rebuild builds no HTTP app")


async def test_the_rebuild_command_replays_the_input_without_an_http_app(stack, prefix, monkeypatch):
    # Intake turns notifications into the reporting service's input.
    async with running(create_intake, settings_for("intake", stack, prefix)):
        await produce_notifications(stack, prefix)
        async with asyncio.timeout(60):
            while await topic_size(stack.bootstrap_servers, prefix + topics.REPORTING) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    reporting_events = await topic_size(stack.bootstrap_servers, prefix + topics.REPORTING)
    assert await topic_size(stack.bootstrap_servers, prefix + topics.SUMMARIES) == 0

    monkeypatch.setattr(cli, "build_app", no_http_app)
    env = {"KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers, "MONGODB_URL": stack.mongodb_url,
           "TASKFORCE_TOPIC_PREFIX": prefix}
    command = cli.service_cli("reporting", compose_reporting)
    result = await asyncio.to_thread(CliRunner().invoke, command, ["rebuild"], env=env,
                                     catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = ast.literal_eval(result.output.strip())
    assert summary["service"] == "reporting"
    assert summary["records_replayed"] == reporting_events
    # After the replay (not during it), the summaries of what was replayed are published.
    assert await topic_size(stack.bootstrap_servers, prefix + topics.SUMMARIES) > 0


async def produce_notifications(stack: Any, prefix: str) -> None:
    await produce(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, [
        received("n1", "2022-03-01T10:00:00+01:00", municipality="480"),
        received("n2", "2022-03-01T11:00:00+01:00", municipality="607"),
        assessed("n1", "2022-03-01T12:00:00+01:00", municipality="480"),
    ])
