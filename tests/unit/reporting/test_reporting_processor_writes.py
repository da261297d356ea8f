"""How the reporting processor schedules a batch's store writes (a stand-in replica, no I/O).

The watermarks are raised while the last chunk of states is being written: the two are
separate documents, and both must have landed before any summary is recomputed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from schemas import topics
from schemas.decode import decode
from services.common.runtime import Runtime, build_runtime
from services.common.settings import Settings
from services.reporting.processor import CHUNK_RECORDS, Decoded, SummaryProcessor, Touched
from services.reporting.replica import Kind
from services.reporting.stored import StoredSummary

pytestmark = pytest.mark.unit


def notification_changed(number: int) -> Any:
    stamp = "2022-03-01T10:00:00+01:00"
    raw = json.dumps({
        "event_id": str(uuid.uuid4()), "event_type": "reporting.notification_changed", "schema_version": 1,
        "occurred_at": stamp, "municipality_code": "480", "source": "taskforce.intake",
        "data": {"entity_id": f"n{number}", "version": 1, "watermark": stamp,
                 "state": {"notification_id": f"n{number}", "received_at": stamp}},
    }).encode()
    return decode(topics.REPORTING, raw)


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    """Reporting's clients, never connected: without a consumer, the processor asks no broker."""
    built = build_runtime(Settings(TASKFORCE_SERVICE="reporting"))  # type: ignore[call-arg]  # by alias
    yield built
    await built.mongo.close()


def processor_over(replica: OverlapReplica, runtime: Runtime) -> SummaryProcessor:
    """A processor writing to the stand-in replica."""
    return SummaryProcessor(runtime.settings, replica, runtime, runtime.metrics)  # type: ignore[arg-type]  # the stand-in replica


class OverlapReplica:
    """Records the order of the writes; a chunk write waits until the watermarks are raised
    once the batch's last chunk is reached, so a strictly sequential processor would stall."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.log: list[str] = []
        self.watermarks_raised = asyncio.Event()

    def forget(self) -> None:
        self.log.append("forget")

    async def add_periods(self, periods: dict[str, set[str]]) -> None:
        self.log.append("periods")

    async def upsert_states(self, kind: Kind, docs: list[dict[str, Any]], held: dict[str, Any]) -> None:
        self.log.append(f"states start ({len(docs)})")
        if self.log.count("periods") == self.chunks:  # the last chunk
            await asyncio.wait_for(self.watermarks_raised.wait(), timeout=2)
        self.log.append("states done")

    async def raise_watermarks(self, marks: dict[str, datetime]) -> dict[str, tuple[None, datetime]]:
        self.log.append("watermarks")
        self.watermarks_raised.set()
        return {code: (None, mark) for code, mark in marks.items()}

    async def settle_owed(self, codes: list[str] | None) -> None:
        self.log.append(f"settled {codes}")


async def test_the_watermarks_are_raised_while_the_last_chunk_is_written(runtime: Runtime) -> None:
    states = [notification_changed(i) for i in range(CHUNK_RECORDS + 3)]
    replica = OverlapReplica(chunks=2)
    processor = processor_over(replica, runtime)

    moves = await processor._replicate(states, defaultdict(Touched))  # type: ignore[arg-type]

    # (sequential writes would time out: the last chunk's write waits for the watermarks)
    assert replica.log[:4] == ["periods", f"states start ({CHUNK_RECORDS})", "states done", "periods"]
    assert sorted(replica.log[4:6]) == ["states start (3)", "watermarks"]
    assert replica.log[6:] == ["states done"]
    assert list(moves) == ["480"]


async def test_a_failed_watermark_raise_still_lets_the_chunk_write_finish(runtime: Runtime) -> None:
    class FailingWatermarks(OverlapReplica):
        async def raise_watermarks(self, marks: dict[str, datetime]) -> dict[str, Any]:
            self.log.append("watermarks failed")
            self.watermarks_raised.set()
            raise ConnectionError("store unreachable")

    replica = FailingWatermarks(chunks=1)
    processor = processor_over(replica, runtime)
    with pytest.raises(ConnectionError):
        await processor._replicate([notification_changed(1)], defaultdict(Touched))  # type: ignore[arg-type]
    assert replica.log[-1] == "states done"  # never cancelled midway


async def test_apply_hands_the_moves_to_the_recomputation(
    monkeypatch: pytest.MonkeyPatch, runtime: Runtime,
) -> None:
    replica = OverlapReplica(chunks=1)
    processor = processor_over(replica, runtime)
    processor.maybe_pending = False  # nothing pending in the stand-in replica
    seen: dict[str, Any] = {}

    async def refresh(code: str, entry: Any, move: Any) -> list[StoredSummary]:
        seen[code] = move
        return []

    async def publish(docs: list[StoredSummary]) -> None:
        seen["published"] = docs

    monkeypatch.setattr(processor, "_refresh", refresh)
    monkeypatch.setattr(processor, "_publish", publish)
    await processor.apply(Decoded(states=[notification_changed(1)]))
    assert seen["480"][0] is None and seen["480"][1].isoformat() == "2022-03-01T10:00:00+01:00"
    assert seen["published"] == []
    assert replica.log[-1] == "settled []"  # no partition known: due at once, nothing noted
