from __future__ import annotations

import uuid

import pytest

from schemas import topics
from services.intake.app import create
from tests.support.kafka import decoded, produce, read_until
from tests.support.services import running, settings_for

pytestmark = pytest.mark.integration


def ev(event_type: str, at: str, data: dict, muni: str = "480") -> dict:
    return {"event_id": str(uuid.uuid4()), "event_type": event_type, "schema_version": 1,
            "occurred_at": at, "municipality_code": muni, "source": "test", "data": data}


async def test_smoke(stack, prefix):
    settings = settings_for("intake", stack, prefix)
    async with running(create, settings):
        events = [ev("notification.received", "2022-03-01T10:00:00+01:00",
                     {"notification_id": "n1", "child_ref": "c1", "reporter": "school", "urgent": False}),
                  ev("notification.assessed", "2022-03-01T12:00:00+01:00",
                     {"notification_id": "n1", "outcome": "no_action"})]
        await produce(stack.bootstrap_servers, prefix + topics.NOTIFICATIONS, [*events, b"{bad"])
        recs = await read_until(stack.bootstrap_servers, prefix + topics.REPORTING,
                                lambda rs: any(d["data"]["version"] == 2 for d in decoded(rs)))
        dlq = await read_until(stack.bootstrap_servers, prefix + topics.DLQ, lambda rs: len(rs) >= 1)
    print(decoded(recs)[-1], dlq[0].headers)
    assert decoded(recs)[-1]["data"]["state"]["outcome"] == "no_action"
