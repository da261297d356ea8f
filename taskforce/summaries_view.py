"""Read the committee summaries and reports from the reporting service's HTTP API.

Every call carries `Authorization: Bearer <token>`. The token is the one given, else
`TASKFORCE_TOKEN`, else the all-municipalities ("*") token of the stack's tokens file
(`TASKFORCE_TOKENS_FILE`, or `run/tokens.json` as made by `make up`).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich import box
from rich.table import Table

from schemas.municipalities import is_known, municipality_name
from schemas.rules import CADENCE_DAYS, DIMENSIONS
from taskforce import stack

DEFAULT_TIMEOUT_S = 60.0
#: Reports are rendered (with charts) on request: a few at a time.
REPORT_CONCURRENCY = 3


class ApiError(Exception):
    """The API could not be reached or refused the request; the message says what to do."""


def tokens_path() -> Path:
    """Where the stack keeps its tokens (without creating the file)."""
    configured = os.environ.get("TASKFORCE_TOKENS_FILE")
    return Path(configured) if configured else stack.run_dir() / "tokens.json"


def resolve_token(token: str | None) -> str:
    """The token given, else TASKFORCE_TOKEN, else the "*" token of the tokens file."""
    if token:
        return token
    if os.environ.get("TASKFORCE_TOKEN"):
        return os.environ["TASKFORCE_TOKEN"]
    path = tokens_path()
    try:
        tokens = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ApiError(f"no token: pass --token, set TASKFORCE_TOKEN, or start the stack "
                       f"(`make up`) so that {path} exists") from None
    except (OSError, ValueError) as exc:
        raise ApiError(f"cannot read the tokens file {path} ({type(exc).__name__})") from None
    scopes = tokens.items() if isinstance(tokens, dict) else ()
    # A hashed entry ("sha256:...") admits a token the file does not hold: no use here.
    found = next((t for t, scope in scopes if scope == "*" and not str(t).startswith("sha256:")), None)
    if found is None:
        raise ApiError(f"{path} has no plain-text token for all municipalities (\"*\"); pass --token "
                       "or set TASKFORCE_TOKEN")
    return str(found)


@dataclass(frozen=True)
class Api:
    """Where the reporting API is and the token to use."""

    url: str
    token: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url.rstrip("/"), timeout=DEFAULT_TIMEOUT_S,
                                 headers={"Authorization": f"Bearer {self.token}"})

    async def _get(self, client: httpx.AsyncClient, path: str) -> httpx.Response:
        try:
            return await client.get(path)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the reporting API at {self.url} ({type(exc).__name__}); "
                           "is the stack up? (`make up`)") from exc

    async def ready(self, client: httpx.AsyncClient) -> bool:
        """Whether the reporting service answers `/readyz` with 200; ApiError when it does not answer."""
        return (await self._get(client, "/readyz")).status_code == 200

    async def get(self, client: httpx.AsyncClient, path: str) -> httpx.Response:
        """GET an API path; 401, 403 and errors other than 404 become an ApiError saying what to do."""
        response = await self._get(client, path)
        if response.status_code == 401:
            raise ApiError(f"the reporting API at {self.url} refused the token (401)")
        if response.status_code == 403:
            raise ApiError(f"the token may not read {path} (403): it is for another municipality")
        if response.status_code >= 400 and response.status_code != 404:
            raise ApiError(f"GET {path} answered {response.status_code}{_detail(response)}")
        return response

    async def periods(self, client: httpx.AsyncClient, code: str) -> list[dict[str, Any]]:
        """The municipality's periods with their latest status, revision and as_of."""
        response = await self.get(client, f"/municipalities/{code}/summaries")
        if response.status_code == 404:
            return []
        return list(response.json()["periods"])

    async def summary(self, client: httpx.AsyncClient, code: str, period: str) -> dict[str, Any] | None:
        response = await self.get(client, f"/municipalities/{code}/summaries/{period}")
        return None if response.status_code == 404 else dict(response.json())

    async def municipalities(self, client: httpx.AsyncClient) -> list[dict[str, Any]]:
        """The municipalities the token may read that have summaries (`GET /municipalities`)."""
        response = await self.get(client, "/municipalities")
        if response.status_code == 404:
            raise ApiError(f"the reporting API at {self.url} has no GET /municipalities (an older "
                           "version?): name the municipalities with --municipality")
        return list(response.json()["municipalities"])


async def latest_summaries(api: Api, codes: Iterable[str] | None,
                           period: str | None = None) -> list[dict[str, Any]]:
    """The latest published data of every period (or just `period`) of each municipality;
    `codes` None: of every municipality the token may read (asked of `GET /municipalities`)."""
    rows: list[dict[str, Any]] = []
    async with api.client() as client:
        if codes is None:
            codes = [m["code"] for m in await api.municipalities(client)]
        for code in codes:
            periods = [p["period"] for p in await api.periods(client, code)]
            for name in periods if period is None else [p for p in periods if p == period]:
                data = await api.summary(client, code, name)
                if data is not None:
                    rows.append(data)
    return rows


def _detail(response: httpx.Response) -> str:
    """": <the error's detail>" when the API said why (FastAPI's {"detail": "..."}), else ""."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return ""
    return f": {detail}" if isinstance(detail, str) and detail else ""


#: The report formats: the route's suffix and the file's extension.
REPORT_FORMATS = {"html": ("", "html"), "pdf": (".pdf", "pdf")}


async def write_reports(api: Api, code: str, out_dir: Path, report_format: str = "html") -> list[Path]:
    """Fetch every period's committee report of the municipality into `<code>-<period>.html`
    (`report_format` "pdf": `…/report.pdf` into `<code>-<period>.pdf`)."""
    suffix, extension = REPORT_FORMATS[report_format]
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    gate = asyncio.Semaphore(REPORT_CONCURRENCY)
    async with api.client() as client:
        periods = [p["period"] for p in await api.periods(client, code)]

        async def one(period: str) -> Path | None:
            async with gate:
                response = await api.get(client, f"/municipalities/{code}/summaries/{period}/report{suffix}")
            if response.status_code == 404:
                return None
            path = out_dir / f"{code}-{period}.{extension}"
            await asyncio.to_thread(path.write_bytes, response.content)
            return path

        written = await asyncio.gather(*(one(period) for period in periods))
    return [path for path in written if path is not None]


# --- the table ----------------------------------------------------------------------------

#: What the table's columns mean, to print under it.
LEGEND = ("received: notifications received in the period · ≤ 24 h: share assessed within 24 hours · "
          "overdue: received over 24 h before as of and not assessed · reviews: case reviews, mean ratings "
          "1–4 for assessment, intervention, follow-up, involvement · milestones: achieved/total · "
          f"cadence ok: no gap between follow-up meetings over {CADENCE_DAYS} days")
STATUS_STYLE = {"draft": "yellow", "final": "green", "revised": "magenta"}


def _number(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _share(value: Any) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def _ratings(means: dict[str, Any]) -> str:
    values = [means.get(k) for k in DIMENSIONS]
    return "–" if all(v is None for v in values) else " ".join(_number(v, 1) for v in values)


def _municipality(code: str) -> str:
    """"480 Nordfyns", "400 Bornholms Regionskommune"; a code not in the list says so."""
    if not is_known(code):
        return f"{code} [yellow](not in DST's list)[/]"
    return f"{code} {municipality_name(code).removesuffix(' Kommune')}"


def _cadence(value: Any) -> str:
    return {True: "[green]yes[/]", False: "[red]no[/]"}.get(value, "–")


def summaries_table(rows: Sequence[dict[str, Any]], title: str = "Committee summaries (latest)") -> Table:
    """One row per municipality and period: the figures a committee looks at first."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 0))
    for name, justify in (("municipality", "left"), ("period", "left"), ("status", "left"),
                          ("rev", "right"), ("as of", "left"), ("received", "right"),
                          ("≤ 24 h", "right"), ("median\nhours", "right"), ("over-\ndue", "right"),
                          ("re-\nviews", "right"), ("mean ratings", "left"), ("mile-\nstones", "right"),
                          ("cadence\nok", "left")):
        # Only the municipality's name and the ratings may wrap when the terminal is narrow.
        wraps = {"municipality": 8, "mean ratings": 7}
        table.add_column(name, justify=justify, no_wrap=name not in wraps,  # type: ignore[arg-type]  # "left"/"right": JustifyMethods
                         min_width=wraps.get(name))
    previous = None
    for row in sorted(rows, key=lambda r: (r["municipality_code"], r["period"])):
        code = row["municipality_code"]
        if previous is not None and code != previous:
            table.add_section()
        notes, reviews, plan = row["notifications"], row["case_reviews"], row["development_plan"]
        status = row["status"]
        table.add_row(
            _municipality(code) if code != previous else "",
            row["period"],
            f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]",
            str(row["revision"]),
            row["as_of"][:10],
            f"{notes['received']:,}",
            _share(notes["share_within_24h"]) if notes["received"] else "–",
            _number(notes["median_hours_to_assessment"]),
            f"{notes['overdue_unassessed']:,}",
            f"{reviews['completed']:,}",
            _ratings(reviews["mean_rating"]),
            f"{plan['achieved']}/{plan['milestones_total']}" if plan["milestones_total"] else "–",
            _cadence(plan["cadence_ok"]),
        )
        previous = code
    return table
