"""Trend charts across periods as small, deterministic, self-contained inline SVG.

Matplotlib runs headless (Agg) through its object API — no pyplot state — under a lock,
with a fixed ``svg.hashsalt`` and no date in the metadata, so the same figures always give
the same bytes. Every chart carries a ``<title>``/``<desc>`` and ``role="img"``, every data
point a ``<title>`` tooltip, and the caller also gets the figures as a table.
"""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

from markupsafe import escape
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from schemas.summary import SummaryData
from services.reporting.report import formatting as fmt

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

#: Okabe–Ito colours: distinguishable with colour-vision deficiencies.
BLUE, ORANGE, GREEN, PINK, VERMILLION, SKY, GREY = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#BBBBBB")
DIMENSION_STYLE: dict[str, tuple[str, str, str]] = {
    "assessment": (BLUE, "o", "-"),
    "intervention": (ORANGE, "s", "--"),
    "follow_up": (GREEN, "^", "-."),
    "involvement": (PINK, "D", ":"),
}
MILESTONE_COLOURS: dict[str, str] = {
    "achieved": GREEN, "in_progress": BLUE, "at_risk": ORANGE, "missed": VERMILLION,
    "not_started": GREY,
}
_RC: dict[RcKeyType, Any] = {
    "svg.hashsalt": "taskforce-report",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "Liberation Sans"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.axisbelow": True,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#DDDDDD",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "legend.frameon": False,
    "legend.fontsize": 8,
}
_FIGSIZE = (6.4, 2.7)
_LOCK = threading.Lock()

Series = tuple[tuple[float | None, ...], ...]


@dataclass(frozen=True)
class Chart:
    """One chart: its inline SVG plus the same figures as a table for screen readers/print."""

    key: str
    title: str
    description: str
    svg: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def share_within_24h_chart(summaries: Sequence[SummaryData]) -> Chart:
    periods = tuple(s.period for s in summaries)
    values = tuple(s.notifications.share_within_24h if s.notifications.received else None
                   for s in summaries)
    title = "Andel af underretninger vurderet inden for 24 timer"
    points = "; ".join(f"{fmt.period_label(p)}: {fmt.percent(v)}" for p, v in zip(
        periods, values, strict=True))
    description = f"Linjediagram over halvårene. {points}."
    svg = _share_svg(periods, values)
    rows = tuple((fmt.period_label(s.period), fmt.number(s.notifications.received),
                  fmt.number(s.notifications.assessed_within_24h), fmt.percent(v))
                 for s, v in zip(summaries, values, strict=True))
    return Chart("andel-24t", title, description,
                 _finish(svg, "andel-24t", title, description),
                 ("Halvår", "Modtaget", "Vurderet inden for 24 timer", "Andel"), rows)


def mean_rating_chart(summaries: Sequence[SummaryData]) -> Chart:
    periods = tuple(s.period for s in summaries)
    series: Series = tuple(
        tuple(getattr(s.case_reviews.mean_rating, dim) for s in summaries)
        for dim in fmt.DIMENSIONS)
    title = "Gennemsnitlig vurdering af sagerne pr. dimension (skala 1–4)"
    parts = []
    for dim, values in zip(fmt.DIMENSIONS, series, strict=True):
        pts = ", ".join(f"{fmt.period_label(p)} {fmt.rating(v)}"
                        for p, v in zip(periods, values, strict=True))
        parts.append(f"{fmt.DIMENSION_LABELS[dim]}: {pts}")
    description = ("Linjediagram med en linje pr. dimension; 3 er standarden. "
                   + "; ".join(parts) + ".")
    svg = _rating_svg(periods, series)
    rows = tuple((fmt.period_label(s.period),
                  *(fmt.rating(getattr(s.case_reviews.mean_rating, dim))
                    for dim in fmt.DIMENSIONS)) for s in summaries)
    return Chart("vurdering", title, description,
                 _finish(svg, "vurdering", title, description),
                 ("Halvår", *(fmt.DIMENSION_LABELS[d] for d in fmt.DIMENSIONS)), rows)


def milestones_chart(summaries: Sequence[SummaryData]) -> Chart:
    periods = tuple(s.period for s in summaries)
    counts = tuple(tuple(getattr(s.development_plan, state) for s in summaries)
                   for state in fmt.MILESTONE_STATES)
    title = "Udviklingsplanens milepæle efter status"
    points = "; ".join(
        f"{fmt.period_label(s.period)}: {fmt.number(s.development_plan.achieved)} af "
        f"{fmt.number(s.development_plan.milestones_total)} opnået" for s in summaries)
    description = f"Stablet søjlediagram over halvårene. {points}."
    svg = _milestone_svg(periods, counts)
    rows = tuple((fmt.period_label(s.period),
                  *(fmt.number(getattr(s.development_plan, st)) for st in fmt.MILESTONE_STATES),
                  fmt.number(s.development_plan.milestones_total)) for s in summaries)
    return Chart("milepaele", title, description,
                 _finish(svg, "milepaele", title, description),
                 ("Halvår", *(fmt.MILESTONE_LABELS[st] for st in fmt.MILESTONE_STATES),
                  "I alt"), rows)


def trend_charts(summaries: Sequence[SummaryData]) -> list[Chart]:
    """The three trend charts over the given periods (oldest first)."""
    return [share_within_24h_chart(summaries), mean_rating_chart(summaries),
            milestones_chart(summaries)]


# --- drawing (cached on plain, hashable inputs) -------------------------------------------

def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _axes(periods: tuple[str, ...], *, left: float = 0.1,
          right: float = 0.98) -> tuple[Figure, Axes]:
    # Fixed margins rather than a layout engine: several times faster, and stable.
    fig = Figure(figsize=_FIGSIZE)
    fig.subplots_adjust(left=left, right=right, bottom=0.19, top=0.96)
    ax = fig.add_subplot()
    ax.set_xticks(range(len(periods)), [fmt.period_short(p) for p in periods])
    ax.set_xlim(-0.5, len(periods) - 0.5)
    ax.tick_params(axis="x", length=0)
    return fig, ax


def _save(fig: Figure, tooltips: dict[str, str]) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    for gid, text in tooltips.items():
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(text)}</title>', 1)
    return svg


@lru_cache(maxsize=128)
def _share_svg(periods: tuple[str, ...], values: tuple[float | None, ...]) -> str:
    with _LOCK, matplotlib.rc_context(_RC):
        fig, ax = _axes(periods, left=0.14)  # room for the "100 %" ticks and the axis label
        xs = range(len(periods))
        ax.plot(xs, [_nan(v) for v in values], color=BLUE, linewidth=2, gid="serie-andel")
        tips: dict[str, str] = {}
        for i, (p, v) in enumerate(zip(periods, values, strict=True)):
            if v is None:
                continue
            gid = f"punkt-andel-{i}"
            ax.plot([i], [v], marker="o", markersize=6, color=BLUE, linestyle="none", gid=gid)
            ax.annotate(fmt.percent(v), (i, v), textcoords="offset points", xytext=(0, 7),
                        ha="center", fontsize=8, color="#222222")
            tips[gid] = f"{fmt.period_label(p)}: {fmt.percent(v)}"
        ax.set_ylim(0, 1.12)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0], [fmt.percent(t) for t in
                                                  (0, 0.25, 0.5, 0.75, 1.0)])
        ax.set_ylabel("Inden for 24 timer")
        return _save(fig, tips)


@lru_cache(maxsize=128)
def _rating_svg(periods: tuple[str, ...], series: Series) -> str:
    with _LOCK, matplotlib.rc_context(_RC):
        fig, ax = _axes(periods, left=0.1, right=0.6)
        xs = list(range(len(periods)))
        ax.axhline(3, color="#777777", linewidth=1, linestyle=(0, (4, 3)), gid="standard")
        ax.text(-0.45, 3.04, "standard", fontsize=7, color="#555555", va="bottom")
        tips: dict[str, str] = {}
        for dim, values in zip(fmt.DIMENSIONS, series, strict=True):
            colour, marker, style = DIMENSION_STYLE[dim]
            label = fmt.DIMENSION_LABELS[dim]
            ax.plot(xs, [_nan(v) for v in values], color=colour, linestyle=style, linewidth=1.6,
                    marker=marker, markersize=5, label=label, gid=f"serie-{dim}")
            for i, (p, v) in enumerate(zip(periods, values, strict=True)):
                if v is not None:
                    gid = f"punkt-{dim}-{i}"
                    ax.plot([i], [v], marker=marker, markersize=5, color=colour,
                            linestyle="none", gid=gid)
                    tips[gid] = f"{label}, {fmt.period_label(p)}: {fmt.rating(v)}"
        if not tips:
            ax.text(0.5, 0.5, "Ingen sagsgennemgange endnu", transform=ax.transAxes,
                    ha="center", va="center", color="#555555")
        ax.set_ylim(0.8, 4.2)
        ax.set_yticks([1, 2, 3, 4], ["1", "2", "3", "4"])
        ax.set_ylabel("Gennemsnit (1–4)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return _save(fig, tips)


@lru_cache(maxsize=128)
def _milestone_svg(periods: tuple[str, ...], counts: tuple[tuple[int, ...], ...]) -> str:
    with _LOCK, matplotlib.rc_context(_RC):
        fig, ax = _axes(periods, right=0.76)
        xs = list(range(len(periods)))
        bottoms = [0] * len(periods)
        tips: dict[str, str] = {}
        for state, values in zip(fmt.MILESTONE_STATES, counts, strict=True):
            label = fmt.MILESTONE_LABELS[state]
            bars = ax.bar(xs, values, bottom=bottoms, width=0.55,
                          color=MILESTONE_COLOURS[state], label=label, gid=f"serie-{state}")
            for i, (bar, p, v) in enumerate(zip(bars, periods, values, strict=True)):
                gid = f"punkt-{state}-{i}"
                bar.set_gid(gid)
                tips[gid] = f"{label}, {fmt.period_label(p)}: {fmt.number(v)}"
                if state == "achieved" and v:
                    ax.text(i, bottoms[i] + v / 2, fmt.number(v), ha="center", va="center",
                            color="white", fontsize=8, fontweight="bold")
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        top = max(bottoms, default=0)
        if top == 0:
            ax.text(0.5, 0.5, "Ingen udviklingsplan endnu", transform=ax.transAxes,
                    ha="center", va="center", color="#555555")
        ax.set_ylim(0, max(top * 1.1, 1))
        # The y axis' default locator is an AutoLocator, a MaxNLocator, which takes `integer`
        ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # see above
        ax.set_ylabel("Milepæle")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return _save(fig, tips)


# --- post-processing --------------------------------------------------------------------

_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')
_SIZE = re.compile(r'<svg\b[^>]*>')


def _finish(svg: str, key: str, title: str, description: str) -> str:
    """Make a standalone SVG fit to inline: no prolog/metadata, unique ids, title and desc."""
    svg = _METADATA.sub("", _PROLOG.sub("", svg, count=1), count=1)
    prefix = f"{key}-"
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: m.group(1) + (prefix if m.group(2) in ids else "") + m.group(2),
                   svg)
    title_id, desc_id = f"{prefix}titel", f"{prefix}beskrivelse"

    def open_tag(match: re.Match[str]) -> str:
        tag = re.sub(r'\s(width|height)="[^"]*"', "", match.group(0))
        tag = tag[:-1] + (f' role="img" aria-labelledby="{title_id} {desc_id}"'
                          f' class="chart" focusable="false">')
        return (f'{tag}\n <title id="{title_id}">{escape(title)}</title>'
                f'\n <desc id="{desc_id}">{escape(description)}</desc>')

    return _SIZE.sub(open_tag, svg, count=1).strip()


def clear_cache() -> None:
    """Forget cached drawings (tests, memory)."""
    for fn in (_share_svg, _rating_svg, _milestone_svg):
        fn.cache_clear()
