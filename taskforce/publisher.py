"""Validate feed files completely, then send their valid records to Kafka.

What `taskforce publish` and `taskforce demo` share. Reading and validation is
`taskforce.feed.read_feed` (the consumers' own checks), so nothing is sent before every file
has been read; a rejected line is reported by file, line number, reason and a detail that
never quotes the line. Records go out keyed by municipality code through one aiokafka
producer (`linger_ms` batching, `acks="all"`, no idempotence: the embedded broker refuses
`InitProducerId`) and every acknowledgement is awaited before the counts are reported.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from services.common import tracing
from services.common.connections import KafkaConnection, as_connection
from services.common.kafka import ensure_topics
from taskforce.feed import FeedError, FeedLine, feed_format, read_feed

#: From this many lines (all files together) on, validation and sending show progress bars.
LARGE_FEED_LINES = 5_000
#: How many rejected lines are listed one by one; the rest are counted by reason.
LISTED_REJECTIONS = 50
LINGER_MS = 20
MAX_BATCH_BYTES = 512 * 1024


class PublishError(Exception):
    """The broker could not be reached or did not acknowledge every record."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A bad line of one of the files."""

    path: Path
    error: FeedError


@dataclass
class Checked:
    """Every file read and validated: the records to send and the lines refused."""

    records: list[FeedLine] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    #: --strict stopped at the first bad line: nothing may be sent.
    aborted: bool = False

    def planned(self, prefix: str = "") -> Counter[tuple[str, str]]:
        """Records per (topic, event type) - what is (or would be) sent."""
        return Counter((prefix + r.topic, r.event_type) for r in self.records)


def unsupported(paths: Iterable[Path]) -> list[str]:
    """A message for every file whose suffix is neither JSON Lines nor CSV."""
    problems = []
    for path in paths:
        try:
            feed_format(path)
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
    return problems


def count_lines(path: Path) -> int:
    """Physical lines of a file (a last line without newline counts), read in blocks."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


class RateColumn(ProgressColumn):
    """Records per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rec/s", style="progress.data.speed")


def progress_bar(console: Console, enabled: bool) -> Progress:
    """Rich progress with counts and rate; a no-op display when not `enabled` or not a terminal."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeElapsedColumn(), console=console,
                    disable=not enabled or not console.is_terminal)


def check_files(paths: Sequence[Path], *, strict: bool = False, progress: Progress | None = None,
                line_counts: Sequence[int] | None = None) -> Checked:
    """Read and validate every file in order; with `strict`, stop at the first bad line.

    With `progress`, a "Validating" task advances by line number (`line_counts`: the files'
    lines, counted when not given). OSError (a file vanished or is unreadable) propagates.
    """
    checked = Checked()
    if progress is not None and line_counts is None:
        line_counts = [count_lines(p) for p in paths]
    task = None if progress is None else progress.add_task("Validating", total=sum(line_counts or ()))
    done = 0
    for index, path in enumerate(paths):
        for item in read_feed(path):
            if isinstance(item, FeedError):
                checked.rejected.append(Rejected(path, item))
                if strict:
                    checked.aborted = True
                    return checked
            else:
                checked.records.append(item)
            if progress is not None and task is not None:
                progress.update(task, completed=done + item.line_no)
        if progress is not None and task is not None and line_counts is not None:
            done += line_counts[index]
            progress.update(task, completed=done)
    return checked


async def send_records(records: Sequence[FeedLine], bootstrap: str | KafkaConnection, prefix: str = "", *,
                       on_ack: Callable[[], None] | None = None,
                       linger_ms: int = LINGER_MS) -> Counter[tuple[str, str]]:
    """Send every record to `prefix + topic`, keyed as given; return counts once all are acknowledged.

    The topics are created first when missing (with their partition counts, idempotently),
    so nothing depends on the broker's auto-creation. Raises PublishError when the broker
    cannot be reached or any record is not acknowledged, SettingsError (naming the setting)
    when a connection setting cannot work (TLS, SASL: services.common.connections).
    """
    kafka = as_connection(bootstrap)
    bootstrap = kafka.bootstrap_servers
    try:
        await ensure_topics(kafka, prefix, attempts=3)
    except (KafkaError, OSError) as exc:
        raise PublishError(f"cannot reach Kafka at {bootstrap} ({type(exc).__name__})") from exc
    producer = AIOKafkaProducer(**kafka.client_args(), client_id="taskforce-publisher", acks="all",
                                enable_idempotence=False, linger_ms=linger_ms, max_batch_size=MAX_BATCH_BYTES)
    try:
        await producer.start()
    except (KafkaError, OSError) as exc:
        await producer.stop()
        raise PublishError(f"cannot reach Kafka at {bootstrap} ({type(exc).__name__})") from exc
    try:
        futures = []
        for record in records:
            # each record starts its trace when tracing (OTEL_EXPORTER_OTLP_ENDPOINT set)
            with tracing.publish_span(prefix + record.topic) as parent:
                headers = [(tracing.TRACEPARENT, parent.encode())] if parent else None
                future = await producer.send(prefix + record.topic, record.value, key=record.key,
                                             headers=headers)
            if on_ack is not None:
                future.add_done_callback(_when_acknowledged(on_ack))
            futures.append(future)
        results = await asyncio.gather(*futures, return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            acknowledged = len(results) - len(failures)
            raise PublishError(f"the broker did not acknowledge every record ({acknowledged} of "
                               f"{len(results)} acknowledged; {type(failures[0]).__name__})") from failures[0]
    except KafkaError as exc:
        raise PublishError(f"sending to Kafka at {bootstrap} failed ({type(exc).__name__})") from exc
    finally:
        await producer.stop()
    return Counter((prefix + r.topic, r.event_type) for r in records)


def _when_acknowledged(callback: Callable[[], None]) -> Callable[[asyncio.Future[object]], None]:
    def done(future: asyncio.Future[object]) -> None:
        if not future.cancelled() and future.exception() is None:
            callback()
    return done


# --- what the user sees -------------------------------------------------------------------


def rejections_table(rejected: Sequence[Rejected], limit: int = LISTED_REJECTIONS) -> Table:
    """The rejected lines (never their content): file, line number, reason, detail."""
    table = Table(title=f"Rejected lines: {len(rejected):,}", title_justify="left", show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("line", justify="right")
    table.add_column("reason")
    table.add_column("detail", overflow="fold")
    for item in rejected[:limit]:
        table.add_row(str(item.path), str(item.error.line_no), item.error.reason, item.error.detail)
    if len(rejected) > limit:
        by_reason = Counter(item.error.reason for item in rejected[limit:])
        more = ", ".join(f"{reason} {count:,}" for reason, count in by_reason.most_common())
        table.caption = f"… and {len(rejected) - limit:,} more ({more})"
    return table


def counts_table(counts: Counter[tuple[str, str]], title: str) -> Table:
    """Records per topic and event type, with a total."""
    table = Table(title=title, title_justify="left")
    table.add_column("topic")
    table.add_column("event type")
    table.add_column("records", justify="right")
    for (topic, event_type), count in sorted(counts.items()):
        table.add_row(topic, event_type, f"{count:,}")
    table.add_section()
    table.add_row("total", "", f"{sum(counts.values()):,}", style="bold")
    return table


@dataclass
class Outcome:
    """The result of one publish: what was sent and what was refused."""

    checked: Checked
    sent: Counter[tuple[str, str]]

    @property
    def exit_code(self) -> int:
        return 1 if self.checked.rejected else 0


async def publish(paths: Sequence[Path], *, bootstrap: str | KafkaConnection, prefix: str = "",
                  strict: bool = False,
                  dry_run: bool = False, console: Console | None = None) -> Outcome:
    """Validate every file, report bad lines, then (unless dry run or a strict abort) send the rest.

    Raises PublishError on broker trouble, OSError when a file cannot be read.
    """
    console = console or Console()
    line_counts = await asyncio.to_thread(lambda: [count_lines(p) for p in paths])
    large = sum(line_counts) >= LARGE_FEED_LINES
    with progress_bar(console, large) as progress:
        checked = await asyncio.to_thread(check_files, paths, strict=strict, progress=progress,
                                          line_counts=line_counts)
    if checked.rejected:
        console.print(rejections_table(checked.rejected))
    if checked.aborted:
        console.print("[red]✗[/] --strict: stopped at the first bad line; nothing was sent.")
        return Outcome(checked, Counter())
    if dry_run:
        console.print(counts_table(checked.planned(prefix), "Dry run: would send"))
        return Outcome(checked, Counter())
    with tracing.exporting("publisher"), progress_bar(console, large) as progress:
        task = progress.add_task("Sending", total=len(checked.records))
        sent = await send_records(checked.records, bootstrap, prefix,
                                  on_ack=lambda: progress.advance(task))
    address = bootstrap.bootstrap_servers if isinstance(bootstrap, KafkaConnection) else bootstrap
    console.print(counts_table(sent, f"Sent to {address} (every record acknowledged)"))
    if checked.rejected:
        console.print(f"[yellow]![/] {len(checked.rejected):,} rejected line(s) were not sent.")
    return Outcome(checked, sent)
