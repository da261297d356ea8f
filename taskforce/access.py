"""The CLI's access commands: new hashed tokens, and reading the audit trail.

    taskforce token new -m 480 [--expires 2026-12-31] [--tokens-file PATH]
    taskforce audit [-m 480] [--since 2026-01-01] [--until ...] [--json]

A new token is printed once, with the tokens-file line that admits it (its SHA-256, never the
token) and its id in the audit. The audit is read from `taskforce.audit` on the broker: every
partition from `--since` (by record timestamp where the broker can seek by time), filtered by
municipality and time, oldest first.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich import box
from rich.table import Table

from schemas import topics
from schemas.audit import NO_MUNICIPALITY, AuditEvent
from services.common.auth.principal import ALL, CODE
from services.common.auth.tokens import DANISH, new_token, parse_expiry, token_id
from services.common.connections import kafka_connection

#: Reading the audit stops when nothing more arrives for this long after the end offsets.
QUIET_S = 1.0
READ_TIMEOUT_S = 120.0


class AccessError(Exception):
    """A usage or connection problem; the message says what to do."""


@dataclass(frozen=True)
class NewToken:
    token: str
    key: str
    entry: Any

    @property
    def line(self) -> str:
        return f"{json.dumps(self.key)}: {json.dumps(self.entry)}"

    @property
    def id(self) -> str:
        return token_id(self.key.removeprefix("sha256:"))


def make_token(codes: Sequence[str], expires: str | None = None) -> NewToken:
    """A random token for `codes` (or "*"), hashed for the tokens file."""
    scope = sorted(set(codes))
    bad = [c for c in scope if c != ALL and not CODE.fullmatch(c)]
    if not scope or bad:
        raise AccessError(f"--municipality takes three-digit codes or \"*\", not {bad or 'nothing'}")
    if expires is not None:
        try:
            parse_expiry(expires)
        except ValueError:
            raise AccessError("--expires takes a date (2026-12-31) or an instant with its offset "
                              "(2026-12-31T23:59:59+01:00)") from None
    value: Any = scope[0] if len(scope) == 1 else scope
    if expires is not None:
        value = {"scope": value, "expires": expires}
    token, key = new_token()
    return NewToken(token, key, value)


def add_to_tokens_file(path: Path, new: NewToken) -> None:
    """Add the entry to a tokens file (made 0600 if new), replacing the file atomically."""
    book: dict[str, Any] = {}
    if path.exists():
        try:
            book = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise AccessError(f"{path} is not JSON; add the line by hand") from None
        if not isinstance(book, dict):
            raise AccessError(f"{path} is not a JSON object; add the line by hand")
    book[new.key] = new.entry
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tokens-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(book, indent=2) + "\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def instant(value: str) -> datetime:
    """`--since`/`--until`: a date (midnight, Danish time), or a time (Danish unless it has an offset)."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return datetime.combine(date.fromisoformat(value), clock_time(), DANISH)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AccessError(f"not a date or time: {value!r} (e.g. 2026-01-01 or "
                          "2026-01-01T08:00+01:00)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=DANISH)


async def read_audit(bootstrap: str, prefix: str, codes: Sequence[str] = (), since: datetime | None = None,
                     until: datetime | None = None) -> list[AuditEvent]:
    """The audit events on the broker, oldest first, for `codes` (all when empty) in [since, until)."""
    topic = prefix + topics.AUDIT
    connection = kafka_connection(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(**connection.client_args(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
        if not partitions:
            return []
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await _seek(consumer, assigned, since)
        ends = await consumer.end_offsets(assigned)
        events: list[AuditEvent] = []
        wanted = set(codes)
        deadline, quiet_since = time.monotonic() + READ_TIMEOUT_S, time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            records = [r for part in batch.values() for r in part]
            if records:
                quiet_since = time.monotonic()
            for record in records:
                try:
                    event = AuditEvent.model_validate_json(record.value)
                except ValueError:
                    continue
                code = event.municipality_code or NO_MUNICIPALITY
                if wanted and code not in wanted:
                    continue
                if (since and event.occurred_at < since) or (until and event.occurred_at >= until):
                    continue
                events.append(event)
            caught_up = all([await consumer.position(tp) >= ends[tp] for tp in assigned])
            if caught_up and time.monotonic() - quiet_since >= QUIET_S:
                break
        return sorted(events, key=lambda e: e.occurred_at)
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # the topic may be new to this client
    return consumer.partitions_for_topic(topic) or set()


async def _seek(consumer: AIOKafkaConsumer, assigned: list[TopicPartition], since: datetime | None) -> None:
    if since is None:
        await consumer.seek_to_beginning(*assigned)
        return
    try:
        found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in assigned})
    except Exception:  # a broker that cannot seek by time: read from the start, filter by time
        found = {}
    for tp in assigned:
        at = found.get(tp)
        if at is not None:
            consumer.seek(tp, at.offset)
        else:
            await consumer.seek_to_beginning(tp)


def audit_table(events: Sequence[AuditEvent]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for name in ("When (Danish time)", "Kommune", "Service", "Action", "Outcome", "Who", "Via", "Scope",
                 "What", "Client"):
        table.add_column(name, overflow="fold")
    for event in events:
        data, who = event.data, event.data.principal
        outcome = str(data.outcome) + (f" {data.reason}" if data.reason else "")
        what = data.route + (f" ({data.period})" if data.period else "")
        table.add_row(event.occurred_at.astimezone(DANISH).strftime("%Y-%m-%d %H:%M:%S"),
                      event.municipality_code or "–", data.service, data.action, outcome,
                      who.id or "(nobody)", who.via or "–", ",".join(who.scope) or "–", what,
                      data.client or "–")
    return table


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
