"""The forest plot of a study's contrasts and the figure of its trends as standalone SVGs, for
`publish`'s report.md (GitHub and any browser show them; no plotting library or browser is
needed to write them). The dashboard draws the same with plotly."""

from __future__ import annotations

import math
from html import escape
from typing import Any

import polars as pl

from harness.analysis._trends import fitted_line

ROW_HEIGHT = 28
LABEL_WIDTH = 300
PLOT_WIDTH = 420
TEXT_WIDTH = 420
MARGIN = 24


def _bounds(contrasts: pl.DataFrame) -> tuple[float, float]:
    """The x range: every interval, zero, and the equivalence bands, with some air."""
    values = [0.0]
    for row in contrasts.iter_rows(named=True):
        values += [
            v
            for v in (row["delta_ci_low"], row["delta_ci_high"], row["delta_mean"])
            if v is not None
        ]
        if row.get("margin"):
            values += [-row["margin"], row["margin"]]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or 0.01
    return low - pad, high + pad


def _ticks(low: float, high: float) -> list[float]:
    """Round tick values inside [low, high]: a step of 1, 2 or 5 times a power of ten giving
    about five ticks (zero among them when the range holds it)."""
    raw = (high - low) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step)
    return [k * step for k in range(first, math.floor(high / step) + 1)]


def forest_svg(contrasts: pl.DataFrame, *, title: str) -> str:
    """One row per contrast: the paired delta (dot) with its 95% CI (whiskers), n, the
    numbers and the verdict beside them, a zero line, an x axis with ticks and, where a
    margin is declared, the equivalence band."""
    low, high = _bounds(contrasts)
    height = MARGIN * 3 + 12 + ROW_HEIGHT * len(contrasts)
    width = LABEL_WIDTH + PLOT_WIDTH + TEXT_WIDTH

    def x(value: float) -> float:
        return LABEL_WIDTH + (value - low) / (high - low) * PLOT_WIDTH

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN}" y="{MARGIN}" font-weight="bold">{escape(title)}</text>',
    ]
    top, bottom = MARGIN * 2, MARGIN * 2 + ROW_HEIGHT * len(contrasts)
    for i, row in enumerate(contrasts.iter_rows(named=True)):
        y = top + ROW_HEIGHT * i + ROW_HEIGHT / 2
        margin = row.get("margin")
        if margin:
            parts.append(
                f'<rect class="band" x="{x(-margin):.1f}" y="{y - ROW_HEIGHT / 2 + 2:.1f}" '
                f'width="{x(margin) - x(-margin):.1f}" height="{ROW_HEIGHT - 4}" '
                'fill="#cde8d4"/>'
            )
        parts.append(
            f'<text x="{MARGIN}" y="{y + 4:.1f}">{escape(row["contrast"])} (n={row["n"]})</text>'
        )
        if row["delta_ci_low"] is not None:
            parts.append(
                f'<line class="whisker" x1="{x(row["delta_ci_low"]):.1f}" y1="{y:.1f}" '
                f'x2="{x(row["delta_ci_high"]):.1f}" y2="{y:.1f}" stroke="#1f4e79" '
                'stroke-width="2"/>'
            )
            interval = f"[{row['delta_ci_low']:+.4f}, {row['delta_ci_high']:+.4f}]"
        else:
            interval = "(n < 2: no interval)"
        parts.append(
            f'<circle class="estimate" cx="{x(row["delta_mean"]):.1f}" cy="{y:.1f}" r="4" '
            'fill="#1f4e79"/>'
        )
        verdict = str(row.get("verdict") or "").split(" (")[0]
        parts.append(
            f'<text x="{LABEL_WIDTH + PLOT_WIDTH + 8}" y="{y + 4:.1f}">'
            f"{row['delta_mean']:+.4f} {interval}"
            + (
                f' <tspan class="verdict" font-weight="bold">{escape(verdict)}</tspan>'
                if verdict
                else ""
            )
            + "</text>"
        )
    parts.append(
        f'<line class="zero" x1="{x(0):.1f}" y1="{top - 6}" x2="{x(0):.1f}" y2="{bottom + 6}" '
        'stroke="#888" stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<line class="axis" x1="{LABEL_WIDTH}" y1="{bottom + 6}" x2="{LABEL_WIDTH + PLOT_WIDTH}" '
        f'y2="{bottom + 6}" stroke="#444"/>'
    )
    for tick in _ticks(low, high):
        parts.append(
            f'<line class="tick" x1="{x(tick):.1f}" y1="{bottom + 6}" x2="{x(tick):.1f}" '
            f'y2="{bottom + 10}" stroke="#444"/>'
            f'<text class="tick-label" x="{x(tick):.1f}" y="{bottom + 22}" text-anchor="middle">'
            f"{tick:+g}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


PANEL_WIDTH = 640
PANEL_HEIGHT = 300
AXIS_LEFT = 80
BOLD = ' font-weight="bold"'


def trends_svg(trends: pl.DataFrame, levels: pl.DataFrame) -> str | None:
    """One panel per trend with a slope: each level's paired delta (dot) with its 95% CI
    (whiskers) over the factor (a log axis on scale log), the fitted slope (the mean of the
    per-seed slopes, through the levels' mean) dotted, a zero line, ticks on both axes and
    the verdict in the panel's title; None where no trend has a slope yet. The dashboard
    draws the same with plotly."""
    panels: list[str] = []
    for trend in trends.iter_rows(named=True):
        mine = levels.filter(pl.col("trend") == trend["trend"]).sort("value")
        if trend["slope_ci_low"] is not None and not mine.is_empty():
            panels.append(_trend_panel(trend, mine, top=len(panels) * PANEL_HEIGHT))
    if not panels:
        return None
    width, height = AXIS_LEFT + PANEL_WIDTH + MARGIN, PANEL_HEIGHT * len(panels)
    return (
        "\n".join(
            [
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                f'font-family="sans-serif" font-size="12">',
                f'<rect width="{width}" height="{height}" fill="white"/>',
                *panels,
                "</svg>",
            ]
        )
        + "\n"
    )


def _trend_panel(trend: dict[str, Any], levels: pl.DataFrame, *, top: int) -> str:
    log = trend["scale"] == "log"
    values = [float(v) for v in levels["value"].to_list()]
    axis, deltas, fitted = fitted_line(trend, levels)
    lows, highs = levels["delta_ci_low"].to_list(), levels["delta_ci_high"].to_list()
    slope = float(trend["slope"])
    spread = [0.0, *deltas, *fitted, *(v for v in (*lows, *highs) if v is not None)]
    low, high = min(spread), max(spread)
    pad = (high - low) * 0.08 or 0.01
    low, high = low - pad, high + pad
    left_x, right_x = min(axis), max(axis)
    span_x = (right_x - left_x) or 1.0
    plot_top, plot_bottom = top + 56, top + PANEL_HEIGHT - MARGIN * 2
    plot_left, plot_right = AXIS_LEFT + 20, AXIS_LEFT + PANEL_WIDTH - 20

    def x(a: float) -> float:
        return plot_left + (a - left_x) / span_x * (plot_right - plot_left)

    def y(value: float) -> float:
        return plot_bottom - (value - low) / (high - low) * (plot_bottom - plot_top)

    interval = f"[{trend['slope_ci_low']:+.4f}, {trend['slope_ci_high']:+.4f}]"
    titles = (
        f"{trend['trend']}: {trend['verdict']}",
        f"slope {slope:+.4f} {interval} per {'log ' if log else ''}{trend['factor']} "
        f"(n={trend['n']})",
    )
    parts = [
        f'<text x="{MARGIN}" y="{top + 18 + 16 * i}"{BOLD * (i == 0)}>{escape(text)}</text>'
        for i, text in enumerate(titles)
    ]
    parts += [
        f'<line class="zero" x1="{AXIS_LEFT}" y1="{y(0):.1f}" x2="{AXIS_LEFT + PANEL_WIDTH}" '
        f'y2="{y(0):.1f}" stroke="#888" stroke-dasharray="4 3"/>',
        f'<line class="axis" x1="{AXIS_LEFT}" y1="{plot_bottom + 6}" '
        f'x2="{AXIS_LEFT + PANEL_WIDTH}" y2="{plot_bottom + 6}" stroke="#444"/>',
        f'<line class="axis" x1="{AXIS_LEFT}" y1="{plot_top}" x2="{AXIS_LEFT}" '
        f'y2="{plot_bottom + 6}" stroke="#444"/>',
        '<polyline class="fitted" fill="none" stroke="#c0504d" stroke-dasharray="2 3" '
        'stroke-width="2" points="'
        + " ".join(f"{x(a):.1f},{y(f):.1f}" for a, f in zip(axis, fitted, strict=True))
        + '"/>',
    ]
    for a, value, delta, lo, hi in zip(axis, values, deltas, lows, highs, strict=True):
        if lo is not None and hi is not None:
            parts.append(
                f'<line class="whisker" x1="{x(a):.1f}" y1="{y(lo):.1f}" x2="{x(a):.1f}" '
                f'y2="{y(hi):.1f}" stroke="#1f4e79" stroke-width="2"/>'
            )
        parts.append(
            f'<circle class="estimate" cx="{x(a):.1f}" cy="{y(delta):.1f}" r="4" '
            'fill="#1f4e79"/>'
            f'<text class="tick-label" x="{x(a):.1f}" y="{plot_bottom + 22}" '
            f'text-anchor="middle">{value:g}</text>'
        )
    for tick in _ticks(low, high):
        parts.append(
            f'<line class="tick" x1="{AXIS_LEFT - 4}" y1="{y(tick):.1f}" x2="{AXIS_LEFT}" '
            f'y2="{y(tick):.1f}" stroke="#444"/>'
            f'<text class="tick-label" x="{AXIS_LEFT - 8}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick:+g}</text>'
        )
    parts.append(
        f'<text x="{AXIS_LEFT + PANEL_WIDTH / 2:.0f}" y="{plot_bottom + 40}" '
        f'text-anchor="middle">{escape(str(trend["factor"]))}'
        f"{' (log axis)' if log else ''}: treatment minus control in "
        f"{escape(str(trend['metric']))}, 95% CI per level; dotted: the fitted slope</text>"
    )
    return "\n".join(parts)
