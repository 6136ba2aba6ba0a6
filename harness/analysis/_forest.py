"""The forest plot of a study's contrasts as a standalone SVG, for `publish`'s report.md
(GitHub and any browser show it; no plotting library or browser is needed to write it).
The dashboard draws the same rows with plotly."""

from __future__ import annotations

import math
from html import escape

import polars as pl

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
