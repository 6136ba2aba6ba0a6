"""How a number or an interval reads in every table (plain Python: the commands that only
count trials import it without polars or numpy)."""

from __future__ import annotations


def format_cell(value: object, digits: int = 4) -> str:
    """How one table cell reads everywhere: floats to `digits` places, missing as '-'."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def interval_text(
    mean: float | None,
    low: float | None,
    high: float | None,
    *,
    digits: int = 4,
    sign: str = "+",
) -> str:
    """A mean and its interval as one cell: `+0.0123 [-0.0010, +0.0256]` (a delta; `sign=""`
    for an accuracy); '-' without a mean (None, or NaN: no pair), the mean alone without an
    interval."""
    if mean is None or mean != mean:
        return "-"
    if low is None or high is None:
        return f"{mean:{sign}.{digits}f}"
    return f"{mean:{sign}.{digits}f} [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"
