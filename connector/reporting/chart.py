"""The report's chart: profiles per delivery run, laid out for an inline SVG.

Everything with a number in it (bars, axes, ticks, legend) is computed here; the HTML
template only draws what :func:`runs_chart` returns, so the page needs no script.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from connector.reporting.runs import RunRecord

# what each run's group of bars shows, with its colour
SERIES = (("queued", "#78909c"), ("confirmed", "#2e7d32"), ("failed", "#c62828"))
CHART_RUNS = 30  # the latest runs the chart shows
WIDTH, HEIGHT = 820, 320
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 40, 72
X_LABELS = 10  # at most this many run labels under the x axis


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Tick:
    at: float  # x for the x axis, y for the y axis
    label: str
    note: str = ""  # a second line under an x axis label: the run's short id


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    right: int  # x of the plot's right edge
    bottom: int  # y of the x axis
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    legend: tuple[tuple[str, str], ...]
    x_label: str
    y_label: str


def nice_step(top: int, ticks: int = 5) -> int:
    """A step of 1, 2 or 5 times a power of ten that covers ``top`` in at most ``ticks``."""
    if top <= ticks:
        return 1
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def runs_chart(runs: Sequence[RunRecord]) -> Chart | None:
    """Grouped bars of queued, confirmed and failed profiles per run, oldest on the left;
    ``runs`` newest first (as the history holds them). None without runs."""
    shown = list(reversed(runs[:CHART_RUNS]))
    if not shown:
        return None
    top = max(max(run.account[name] for name, _ in SERIES) for run in shown)
    step = nice_step(top)
    y_max = max(step * math.ceil(top / step), step)
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    plot_w, plot_h = right - LEFT, bottom - TOP
    slot = plot_w / len(shown)
    bar_w = slot * 0.8 / len(SERIES)
    bars: list[Bar] = []
    x_ticks: list[Tick] = []
    every = math.ceil(len(shown) / X_LABELS)
    for i, run in enumerate(shown):
        x0 = LEFT + i * slot + slot * 0.1
        when = f"{run.ended_at:%m-%d %H:%M}"
        for j, (name, colour) in enumerate(SERIES):
            value = run.account[name]
            h = value / y_max * plot_h
            bars.append(
                Bar(x0 + j * bar_w, bottom - h, bar_w, h, colour, f"{when} {name}: {value:,}")
            )
        if (len(shown) - 1 - i) % every == 0:  # the latest run is always labelled
            x_ticks.append(Tick(LEFT + (i + 0.5) * slot, when, run.run_id[:8]))
    y_ticks = tuple(Tick(bottom - v / y_max * plot_h, f"{v:,}") for v in range(0, y_max + 1, step))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        right=right,
        bottom=bottom,
        bars=tuple(bars),
        y_ticks=y_ticks,
        x_ticks=tuple(x_ticks),
        legend=SERIES,
        x_label=f"delivery run: ended (UTC) and run id; the latest {len(shown)}, oldest on the left",
        y_label="profiles (rows)",
    )
