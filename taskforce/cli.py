"""The `taskforce` command: publish feeds, read summaries and reports, show the contract, run the demo.

    taskforce publish FILE... [--dry-run] [--strict]      validate, then send JSONL/CSV feeds
                     [--gateway URL --token T]            (to Kafka, or over HTTPS to the gateway)
    taskforce summaries [--municipality CODE] [--json]    the latest summaries, from the API
                                                          (default: every municipality the token reads)
    taskforce reports --municipality CODE [--out DIR]     every period's committee report as HTML
    taskforce schema [TYPE]                               event types; a type's JSON Schema + example
    taskforce token new -m CODE [--expires DATE]          a new API token and its hashed tokens-file line
    taskforce audit [-m CODE] [--since DATE] [--json]     who read what, from the audit trail
    taskforce demo                                        what `make run` does after `make up`

Exit codes: 0 success; 1 when a feed had rejected lines; 2 on usage, connection or API errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Coroutine, Iterable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from schemas import topics
from schemas.catalogue import BY_TYPE
from schemas.decode import Rejection, decode
from schemas.generate import JSONSCHEMA_DIR, event_types
from schemas.periods import Period
from services.common.secret_files import SettingsError
from taskforce import access, publisher, settle, stack
from taskforce import demo as demo_scenario
from taskforce.feed import FeedError, FeedLine, read_feed
from taskforce.summaries_view import (
    LEGEND,
    Api,
    ApiError,
    latest_summaries,
    resolve_token,
    summaries_table,
    tokens_path,
    write_reports,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Task Force monitoring: publish municipal feeds, read committee summaries "
                       "and reports.")

USAGE_ERROR = 2
T = TypeVar("T")


def _console(stderr: bool = False) -> Console:
    """A console for this invocation; wide tables when the output is not a terminal."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160
    return console


def _fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    _console(stderr=True).print(f"[red]✗[/] {message}", soft_wrap=True)
    return typer.Exit(code)


#: Connection problems are reported once, by us, not as these loggers' per-attempt lines.
_QUIETED = {"aiokafka": logging.CRITICAL, "services.common.kafka": logging.ERROR}


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's async body; API and broker failures become a message and exit code 2."""
    loggers = {name: logging.getLogger(name) for name in _QUIETED}
    levels = {name: logger.level for name, logger in loggers.items()}
    for name, logger in loggers.items():
        logger.setLevel(_QUIETED[name])
    try:
        return asyncio.run(coroutine)
    except (ApiError, publisher.PublishError, settle.SettleTimeout) as exc:
        raise _fail(str(exc)) from None
    except KafkaError as exc:
        raise _fail(f"Kafka: {type(exc).__name__}: {exc}") from None
    except SettingsError as exc:  # a connection setting that cannot work: named, never its value
        raise _fail(str(exc)) from None
    finally:
        for name, logger in loggers.items():
            logger.setLevel(levels[name])


def _default_bootstrap() -> str:
    return f"127.0.0.1:{os.environ.get('TASKFORCE_KAFKA_PORT', '9092')}"


def _default_api() -> str:
    return f"http://127.0.0.1:{stack.service_port('reporting')}"


Bootstrap = Annotated[str | None, typer.Option(
    "--bootstrap-servers", envvar="KAFKA_BOOTSTRAP_SERVERS", show_default="127.0.0.1:9092",
    help="Kafka bootstrap address.")]
Prefix = Annotated[str, typer.Option("--topic-prefix", envvar="TASKFORCE_TOPIC_PREFIX",
                                     help="Prefix of every topic and consumer group.")]
ApiUrl = Annotated[str | None, typer.Option(
    "--api", envvar="TASKFORCE_API_URL", show_default="http://127.0.0.1:8000",
    help="The reporting service's base URL.")]
Token = Annotated[str | None, typer.Option("--token", envvar="TASKFORCE_TOKEN", show_envvar=True,
                                           help="API token (default: the \"*\" token of the tokens file).")]


# --- publish ------------------------------------------------------------------------------


@app.command()
def publish(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True, metavar="FILE",
                                                help="JSON Lines (.jsonl, .ndjson) or CSV (.csv) feeds.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; send nothing.")] = False,
    strict: Annotated[bool, typer.Option("--strict",
                                         help="Stop at the first bad line; send nothing.")] = False,
    bootstrap_servers: Bootstrap = None,
    topic_prefix: Prefix = "",
    gateway: Annotated[str | None, typer.Option(
        "--gateway", envvar="TASKFORCE_GATEWAY_URL", show_envvar=True,
        help="Send over HTTPS to the ingestion gateway at this URL instead of to Kafka.")] = None,
    token: Token = None,
) -> None:
    """Validate every line of every file, then send the valid records, keyed by municipality code.

    Bad lines are listed (file, line, reason; never their content) and not sent. With
    --gateway, what the gateway refuses (another municipality's events) is listed too. Exit
    code 0 when nothing was rejected, 1 when anything was, 2 on usage or connection errors.
    """
    problems = publisher.unsupported(files)
    if problems:
        raise _fail("; ".join(problems))
    try:
        if gateway:
            from taskforce.gateway_client import publish_via_gateway

            try:
                bearer = resolve_token(token)
            except ApiError as exc:
                raise _fail(str(exc)) from None
            outcome = _run(publish_via_gateway(files, url=gateway, token=bearer, strict=strict,
                                               dry_run=dry_run, console=_console()))
        else:
            outcome = _run(publisher.publish(files, bootstrap=bootstrap_servers or _default_bootstrap(),
                                             prefix=topic_prefix,
                                             strict=strict, dry_run=dry_run, console=_console()))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _fail(f"cannot read {exc.filename or 'a feed file'} ({reason})") from None
    raise typer.Exit(outcome.exit_code)


# --- summaries and reports ----------------------------------------------------------------


def _api(url: str | None, token: str | None) -> Api:
    try:
        return Api(url or _default_api(), resolve_token(token))
    except ApiError as exc:
        raise _fail(str(exc)) from None


@app.command()
def summaries(
    municipality: Annotated[list[str] | None, typer.Option(
        "--municipality", "-m",
        help="Three-digit code; repeat for several (default: every municipality the token may "
             "read that has summaries, from GET /municipalities).")] = None,
    period: Annotated[str | None, typer.Option("--period", "-p", help="Half-year, e.g. 2022H1.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summaries' data as JSON.")] = False,
    api: ApiUrl = None,
    token: Token = None,
) -> None:
    """The latest committee summaries, read from the reporting service's HTTP API."""
    codes = _codes(municipality) if municipality else None
    if period is not None and not _is_period(period):
        raise _fail(f"--period must look like 2022H1, not {period!r}")
    client = _api(api, token)
    rows = _run(latest_summaries(client, codes, period))
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    console = _console()
    if not rows:
        which = f" for {', '.join(codes)}" if codes else ""
        console.print(f"No summaries yet{which}" + (f" in {period}." if period else "."))
        return
    console.print(summaries_table(rows))
    console.print(LEGEND, style="dim")


class ReportFormat(StrEnum):
    """What `taskforce reports` writes."""

    html = "html"
    pdf = "pdf"


@app.command()
def reports(
    municipality: Annotated[str, typer.Option("--municipality", "-m", help="Three-digit code.")],
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="Directory for the report files.")] = (
        Path("reports")),
    report_format: Annotated[ReportFormat, typer.Option(
        "--format", help="html (self-contained, with charts) or pdf (tagged PDF/UA-1, A4).")] = (
        ReportFormat.html),
    api: ApiUrl = None,
    token: Token = None,
) -> None:
    """Write every period's committee report of a municipality as `<code>-<period>.html` (or `.pdf`)."""
    (code,) = _codes([municipality])
    paths = _run(write_reports(_api(api, token), code, out, report_format.value))
    if not paths:
        _console().print(f"No summaries yet for {code}: no reports written.")
    for path in paths:
        typer.echo(str(path))


def _codes(given: list[str]) -> list[str]:
    """The codes given, each once, checked to be three digits."""
    codes = list(dict.fromkeys(given))
    bad = [c for c in codes if not (len(c) == 3 and c.isascii() and c.isdigit())]
    if bad:
        raise _fail(f"a municipality code has three digits, e.g. 480 (not {', '.join(map(repr, bad))})")
    return codes


def _is_period(name: str) -> bool:
    try:
        Period.parse(name)
    except ValueError:
        return False
    return True


# --- schema -------------------------------------------------------------------------------

def example_event(event_type: str) -> dict[str, Any]:
    """One valid event of the type (`schemas.decode.decode` accepts it on its topic), from the
    contract catalogue (`schemas.catalogue`)."""
    return BY_TYPE[event_type].example


def schema_text(event_type: str) -> str:
    """The generated JSON Schema file of the type, as shipped beside the `schemas` package's modules.

    (The path comes from `schemas.generate`, which writes these files: `importlib.resources`
    cannot open them when an editable install makes `schemas` a namespace package.)
    """
    return (JSONSCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8")


@app.command()
def schema(
    event_type: Annotated[str | None, typer.Argument(metavar="[TYPE]", help="An event type, e.g. "
                                                      "notification.received.")] = None,
    example: Annotated[bool, typer.Option("--example",
                                          help="Print only the example, as one JSON line.")] = False,
) -> None:
    """Without TYPE: every event type and its topic. With TYPE: its JSON Schema and a valid example."""
    types = event_types()
    console = _console()
    if event_type is None:
        table = Table(title="Event types (contract v1)", title_justify="left")
        for column in ("event type", "topic", "kind", "schema version"):
            table.add_column(column)
        for name, (_model, topic, version) in types.items():
            kind = {topics.COMMANDS: "command", topics.SUMMARIES: "output",
                    topics.REPORTING: "internal"}.get(topic, "input")
            table.add_row(name, topic, kind, str(version))
        console.print(table)
        console.print("Show one: [bold]taskforce schema TYPE[/]")
        return
    if event_type not in types:
        raise _fail(f"unknown event type {event_type!r}; known: {', '.join(types)}")
    event = example_event(event_type)
    if example:
        typer.echo(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
        return
    topic = types[event_type][1]
    console.print(f"[bold]{event_type}[/] on topic [bold]{topic}[/], record key = municipality_code\n")
    console.print(f"[bold]JSON Schema[/] (schemas/jsonschema/{event_type}.json):")
    console.print(Syntax(schema_text(event_type).rstrip("\n"), "json", theme="ansi_dark",
                         background_color="default", word_wrap=True))
    console.print("\n[bold]Example event[/] (`--example` prints it as one JSON line):")
    console.print(Syntax(json.dumps(event, ensure_ascii=False, indent=2), "json", theme="ansi_dark",
                         background_color="default", word_wrap=True))


# --- access: tokens and the audit trail ---------------------------------------------------

token_app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich",
                        help="API tokens for the tokens file (TASKFORCE_TOKENS_FILE).")
app.add_typer(token_app, name="token")


@token_app.command("new")
def token_new(
    municipality: Annotated[list[str], typer.Option(
        "--municipality", "-m",
        help="Three-digit code the token may read; repeat for several; \"*\" for all.")],
    expires: Annotated[str | None, typer.Option(
        "--expires", help="Valid through this day (2026-12-31, Danish time) or until this instant "
                          "(2026-12-31T12:00:00+01:00).")] = None,
    tokens_file: Annotated[Path | None, typer.Option(
        "--tokens-file", dir_okay=False,
        help="Also add the entry to this tokens file (made 0600 if new).")] = None,
) -> None:
    """A new random token: printed once, with the hashed line that admits it (the file never holds it)."""
    try:
        new = access.make_token(municipality, expires)
        if tokens_file is not None:
            access.add_to_tokens_file(tokens_file, new)
    except access.AccessError as exc:
        raise _fail(str(exc)) from None
    console = _console()
    console.print("[bold]New token[/] (shown this once: hand it to its holder and keep no copy):")
    typer.echo(f"  {new.token}")
    if tokens_file is not None:
        console.print(f"[bold]Added[/] to {tokens_file}:")
    else:
        console.print("[bold]Add this entry[/] to the tokens file's JSON object (TASKFORCE_TOKENS_FILE):")
    typer.echo(f"  {new.line}")
    console.print(f"In the audit trail it is [bold]{new.id}[/].")


@app.command()
def audit(
    municipality: Annotated[list[str] | None, typer.Option(
        "--municipality", "-m", help="Three-digit code; repeat for several; \"*\" for accesses that named "
                                     "none (sign-ins). Default: all.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="From this day (2026-01-01, Danish time) or instant.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this day or instant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One audit event per line, as JSON.")] = False,
    bootstrap_servers: Bootstrap = None,
    topic_prefix: Prefix = "",
) -> None:
    """Who read what, and when: the audit trail (taskforce.audit), oldest first."""
    codes = list(dict.fromkeys(municipality or []))
    bad = [c for c in codes if c != "*" and not (len(c) == 3 and c.isascii() and c.isdigit())]
    if bad:
        raise _fail(f"--municipality takes three-digit codes or \"*\", not {', '.join(bad)}")
    try:
        start = access.instant(since) if since else None
        end = access.instant(until) if until else None
    except access.AccessError as exc:
        raise _fail(str(exc)) from None
    bootstrap = bootstrap_servers or _default_bootstrap()
    events = _run(access.read_audit(bootstrap, topic_prefix, codes, start, end))
    if as_json:
        for event in events:
            typer.echo(event.model_dump_json())
        return
    console = _console()
    if not events:
        console.print("No audit events" + (f" for {', '.join(codes)}" if codes else "")
                      + (f" since {since}" if since else "") + ".")
        return
    console.print(access.audit_table(events))
    console.print(f"{len(events)} audit events.", style="dim")


# --- demo ---------------------------------------------------------------------------------


def close_command(code: str, period: str, source: str = "taskforce.demo") -> FeedLine:
    """`summary.requested` with final true for one municipality's period, ready to send."""
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": "summary.requested",
        "schema_version": 1,
        "occurred_at": datetime.now(demo_scenario.TZ).isoformat(timespec="seconds"),
        "municipality_code": code,
        "source": source,
        "correlation_id": f"close.{code}.{period}",
        "data": {"period": period, "final": True},
    }
    value = json.dumps(event, separators=(",", ":")).encode()
    decoded = decode(topics.COMMANDS, value)
    if isinstance(decoded, Rejection):  # our own construction: a bug, not input
        raise ValueError(f"invalid summary.requested: {decoded.reason}: {decoded.detail}")
    return FeedLine(0, topics.COMMANDS, code.encode(), value, "summary.requested")


async def drafts_to_close(api: Api, codes: Iterable[str], before: datetime) -> list[tuple[str, str]]:
    """(code, period) of every period still `draft` that ended at or before `before`."""
    found = []
    async with api.client() as client:
        for code in codes:
            for entry in await api.periods(client, code):
                if entry["status"] == "draft" and Period.parse(entry["period"]).end <= before:
                    found.append((code, entry["period"]))
    return found


async def _settle(console: Console, bootstrap: str, prefix: str, what: str, timeout_s: float,
                  quiet_s: float = settle.QUIET_S) -> None:
    with console.status(f"{what}: waiting for the services …") as status:
        def show(state: settle.Progress) -> None:
            status.update(f"{what}: {settle.describe(state)}")

        final = await settle.wait_until_settled(bootstrap, prefix, timeout_s=timeout_s, quiet_s=quiet_s,
                                                on_progress=show)
    console.print(f"[green]✓[/] {what}: settled ({final.summaries:,} summaries on the topic)")


async def run_demo(*, seed: int, volume: float, out: Path, reports_dir: Path, bootstrap: str, prefix: str,
                   api: Api, timeout_s: float = settle.TIMEOUT_S, quiet_s: float = settle.QUIET_S,
                   console: Console | None = None) -> dict[str, Any]:
    """Generate, publish, settle, close finished courses, settle again, then show and write reports."""
    console = console or _console()
    async with api.client() as client:  # fail fast, before any work, when the stack is not up
        if not await api.ready(client):
            raise ApiError(f"the reporting service at {api.url} is not ready; see `make status`")
        await api.periods(client, demo_scenario.MUNICIPALITIES[0].code)  # the token is accepted
    events = await asyncio.to_thread(demo_scenario.generate, seed, volume)
    paths = await asyncio.to_thread(demo_scenario.write_feeds, events, out)
    feeds = [path for name, path in sorted(paths.items()) if name.endswith(".jsonl")]
    console.print(f"[green]✓[/] Demo scenario (seed {seed}, volume {volume:g}): {len(events):,} events "
                  f"written to {out}/ (JSON Lines per topic; the CSV sample "
                  f"{demo_scenario.CSV_SAMPLE_NAME} repeats their first rows and is not sent)")
    await _publish_in_half_years(console, events, feeds, bootstrap, prefix, timeout_s, quiet_s)

    codes = sorted({event["municipality_code"] for event in events})
    drafts = await drafts_to_close(api, codes, demo_scenario.SCENARIO_END)
    if drafts:
        commands = [close_command(code, period) for code, period in drafts]
        await publisher.send_records(commands, bootstrap, prefix)
        console.print(f"[green]✓[/] Asked for {len(drafts)} final summaries of finished courses "
                      f"(summary.requested, final): " + ", ".join(f"{c} {p}" for c, p in drafts))
        await _settle(console, bootstrap, prefix, "Closed", timeout_s, quiet_s)

    rows = await latest_summaries(api, codes)
    console.print(summaries_table(rows))
    console.print(LEGEND, style="dim")
    written: list[Path] = []
    with console.status("Rendering the committee reports …"):
        for code in codes:
            written.extend(await write_reports(api, code, reports_dir))
    console.print(f"[green]✓[/] {len(written)} committee reports (HTML) in {reports_dir}/:")
    for path in written:
        console.print(f"  {path}")
    return {"events": len(events), "summaries": rows, "reports": written, "closed": drafts}


async def _publish_in_half_years(console: Console, events: list[dict[str, Any]], feeds: list[Path],
                                 bootstrap: str, prefix: str, timeout_s: float, quiet_s: float) -> None:
    """Publish the scenario the way it happened: one half-year at a time, settling in between.

    All of history at once would let the fastest service's watermark finalise a half-year
    while a slower service still delivers that half-year's events, and every such late event
    would then revise a final summary: correct, but not what a committee sees in real life.
    The records sent are the lines of the feed files, validated like `taskforce publish`.
    """
    lines = [line for path in feeds for line in read_feed(path)]
    rejected = [line for line in lines if isinstance(line, FeedError)]
    if rejected:
        raise publisher.PublishError("the demo feeds had rejected lines: a bug in the demo generator")
    half_year = {str(e["event_id"]): Period.of(datetime.fromisoformat(e["occurred_at"])).name for e in events}
    slices: dict[str, list[FeedLine]] = defaultdict(list)
    for line in lines:
        assert isinstance(line, FeedLine)
        slices[half_year[json.loads(line.value)["event_id"]]].append(line)
    for name in sorted(slices):
        await publisher.send_records(slices[name], bootstrap, prefix)
        await _settle(console, bootstrap, prefix, f"Published {name} ({len(slices[name]):,} events)",
                      timeout_s, min(quiet_s, 1.0))


def _print_access(console: Console, api_url: str) -> None:
    console.print()
    console.print(f"[bold]Reporting API[/]: {api_url}  "
                  "(every call needs [bold]Authorization: Bearer <token>[/])")
    console.print(f"  Tokens: {tokens_path()}  (JSON: token → municipality code, or \"*\" for all)")
    console.print("  e.g.  TOKEN=$(.venv/bin/python -c 'from taskforce.stack import admin_token; "
                  "print(admin_token())')", soft_wrap=True)
    console.print(f'        curl -H "Authorization: Bearer $TOKEN" {api_url}/municipalities/480/summaries',
                  soft_wrap=True)
    console.print(f"  Browser: {api_url}/login  (sign in with a token from that file)")
    console.print("  More: [bold]taskforce summaries[/], [bold]taskforce reports -m 480[/], "
                  "[bold]taskforce schema[/]")
    console.print()
    console.print("The stack keeps running in the background; [bold]make down[/] stops it.")


@app.command()
def demo(
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic scenario.")] = (
        demo_scenario.DEFAULT_SEED),
    volume: Annotated[float, typer.Option("--volume", min=0.0,
                                          help="Scale of the notification volume.")] = 1.0,
    out: Annotated[Path, typer.Option("--out", file_okay=False,
                                      help="Where the feeds are written.")] = Path("demo"),
    reports_dir: Annotated[Path, typer.Option("--reports", file_okay=False,
                                              help="Where the committee reports are written.")] = (
        Path("reports")),
    bootstrap_servers: Bootstrap = None,
    topic_prefix: Prefix = "",
    api: ApiUrl = None,
    token: Token = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=1.0, help="Seconds to wait for the services to settle, each time.")] = (
        settle.TIMEOUT_S),
) -> None:
    """Publish the demo scenario to the running stack (`make up`), wait for it to settle, show the results."""
    api_url = api or _default_api()
    client = _api(api_url, token)
    console = _console()
    _run(run_demo(seed=seed, volume=volume, out=out, reports_dir=reports_dir,
                  bootstrap=bootstrap_servers or _default_bootstrap(), prefix=topic_prefix, api=client,
                  timeout_s=timeout, console=console))
    _print_access(console, api_url)


def main() -> None:  # pragma: no cover - `python -m taskforce.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
