"""`taskforce publish --gateway URL`: the same validation and report, sent over HTTPS instead.

Every file is read and validated first, as for Kafka (`taskforce.publisher.check_files`), so
bad lines are reported with file and line and never sent. The valid lines then go to the
ingestion gateway as JSON Lines, at most 1,000 events and 1 MiB per request; what the gateway
refuses (another municipality's events: `not_in_scope`) joins the report under its line. A
503 or 429 is waited out (its `Retry-After`, a few times), then the publish fails.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import httpx
from rich.console import Console

from taskforce.feed import FeedError, FeedLine
from taskforce.publisher import (
    LARGE_FEED_LINES,
    Checked,
    Outcome,
    PublishError,
    Rejected,
    check_files,
    count_lines,
    counts_table,
    progress_bar,
    rejections_table,
)

MAX_EVENTS = 1000
MAX_BODY_BYTES = 1024 * 1024
ATTEMPTS = 6
TIMEOUT_S = 60.0


def chunks(records: Sequence[tuple[Path, FeedLine]], max_events: int = MAX_EVENTS,
           max_bytes: int = MAX_BODY_BYTES) -> list[list[tuple[Path, FeedLine]]]:
    """Consecutive requests of at most `max_events` records and `max_bytes` of JSON Lines."""
    out: list[list[tuple[Path, FeedLine]]] = []
    current: list[tuple[Path, FeedLine]] = []
    size = 0
    for record in records:
        length = len(record[1].value) + 1
        if current and (len(current) == max_events or size + length > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(record)
        size += length
    if current:
        out.append(current)
    return out


async def _post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    for attempt in range(ATTEMPTS):
        try:
            response = await client.post("/v1/events", content=body,
                                         headers={"Content-Type": "application/x-ndjson"})
        except httpx.HTTPError as exc:
            if attempt == ATTEMPTS - 1:
                raise PublishError(f"cannot reach the gateway ({type(exc).__name__})") from exc
            await asyncio.sleep(1.0)
            continue
        if response.status_code in (429, 503) and attempt < ATTEMPTS - 1:
            retry = response.headers.get("Retry-After", "1")
            await asyncio.sleep(min(float(retry) if retry.isdigit() else 1.0, 30.0))
            continue
        return response
    raise AssertionError("unreachable")


async def send_to_gateway(records: Sequence[tuple[Path, FeedLine]], url: str, token: str, *,
                          on_ack: object = None) -> tuple[Counter[tuple[str, str]], list[Rejected]]:
    """Send every record; return what was accepted (per topic and type) and what was refused."""
    sent: Counter[tuple[str, str]] = Counter()
    refused: list[Rejected] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT_S) as client:
        for chunk in chunks(records):
            body = b"\n".join(line.value for _path, line in chunk)
            response = await _post(client, body)
            if response.status_code in (401, 403):
                raise PublishError(f"the gateway refused the token ({response.status_code})")
            if response.status_code not in (200, 207, 422, 503) or "items" not in response.text:
                raise PublishError(f"the gateway answered {response.status_code}")
            for item in response.json()["items"]:
                path, line = chunk[item["index"]]
                if item["status"] == "accepted":
                    sent[(item.get("topic") or line.topic, line.event_type)] += 1
                    if callable(on_ack):
                        on_ack()
                else:
                    refused.append(Rejected(path, FeedError(line.line_no, item["reason"], item["detail"])))
            if response.status_code == 503:
                raise PublishError("the gateway's broker is unreachable; what was accepted stays accepted, "
                                   "publish again later (duplicates are dropped)")
    return sent, refused


async def publish_via_gateway(paths: Sequence[Path], *, url: str, token: str, strict: bool = False,
                              dry_run: bool = False, console: Console | None = None) -> Outcome:
    """Validate every file, report bad lines, then (unless dry run or a strict abort) send the rest."""
    console = console or Console()
    line_counts = await asyncio.to_thread(lambda: [count_lines(p) for p in paths])
    large = sum(line_counts) >= LARGE_FEED_LINES
    checked = Checked()
    records: list[tuple[Path, FeedLine]] = []
    with progress_bar(console, large) as progress:
        for path, lines in zip(paths, line_counts, strict=True):
            one = await asyncio.to_thread(check_files, [path], strict=strict, progress=progress,
                                          line_counts=[lines])
            checked.records += one.records
            checked.rejected += one.rejected
            records += [(path, line) for line in one.records]
            if one.aborted:
                checked.aborted = True
                break
    if checked.rejected:
        console.print(rejections_table(checked.rejected))
    if checked.aborted:
        console.print("[red]✗[/] --strict: stopped at the first bad line; nothing was sent.")
        return Outcome(checked, Counter())
    if dry_run:
        console.print(counts_table(checked.planned(), "Dry run: would send"))
        return Outcome(checked, Counter())
    with progress_bar(console, large) as progress:
        task = progress.add_task("Sending", total=len(records))
        sent, refused = await send_to_gateway(records, url, token, on_ack=lambda: progress.advance(task))
    console.print(counts_table(sent, f"Sent to {url} (every event accepted was acknowledged by the broker)"))
    if refused:
        console.print(rejections_table(refused))
        checked.rejected += refused
    if checked.rejected:
        console.print(f"[yellow]![/] {len(checked.rejected):,} rejected line(s) were not sent.")
    return Outcome(checked, sent)
