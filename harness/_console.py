"""Terminal rendering with rich: run progress and result tables."""

from __future__ import annotations

import sys
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.analysis._report import format_cell
from harness.distill import EpochReport
from harness.study import TrialSpec

# Piped output (logs, CI) is not wrapped at 80 columns: tables stay readable.
console = Console(width=None if sys.stdout.isatty() else 160)


class RichProgress:
    """Trial k of n, its epoch and current accuracy, on one live line."""

    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: Any = None
        self._head = ""

    def __enter__(self) -> RichProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)

    def trial_started(self, spec: TrialSpec, *, number: int, total: int) -> None:
        self._head = f"trial {number}/{total} [bold]{spec.label}[/] seed {spec.seed}"
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(self._head, total=spec.config.train.epochs)

    def epoch_done(self, spec: TrialSpec, report: EpochReport, *, epochs: int) -> None:
        top1 = report.metrics.get("val/top1", float("nan"))
        self._bar.update(
            self._task,
            completed=report.epoch + 1,
            description=f"{self._head} | epoch {report.epoch + 1} top1 {top1:.3f}",
        )

    def trial_finished(self, spec: TrialSpec, *, status: str, metrics: dict[str, Any]) -> None:
        color = {"complete": "green", "failed": "red"}.get(status, "yellow")
        line = f"{self._head} [{color}]{status}[/]"
        if "val/top1" in metrics:
            line += f" top1 {metrics['val/top1']:.4f} ({metrics['cost/total_seconds']:.1f} s)"
        console.print(line)


def results_table(report: pl.DataFrame, *, title: str) -> Table:
    """Configuration, seeds done, mean, std and 95% CI of the combined top-1, baseline delta."""
    table = Table(title=title)
    for column in (
        "configuration",
        "seeds",
        "top1 mean",
        "std",
        "95% CI",
        "best-epoch mean",
        "delta vs baseline [95% CI]",
        "p",
    ):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    has_deltas = "delta_mean" in report.columns
    for row in report.iter_rows(named=True):
        ci = "-" if row["ci_low"] is None else f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]"
        delta_text, p_text = "-", "-"
        if has_deltas and row["delta_mean"] is None:
            delta_text = "baseline"
        elif has_deltas:
            interval = (
                ""
                if row["delta_ci_low"] is None
                else f" [{row['delta_ci_low']:+.4f}, {row['delta_ci_high']:+.4f}]"
            )
            delta_text = f"{row['delta_mean']:+.4f}{interval}"
            p_text = format_cell(row["p_value"], 3)
        table.add_row(
            row["label"],
            str(row["n"]),
            format_cell(row["mean"]),
            format_cell(row["std"]),
            ci,
            format_cell(row["best_mean"]),
            delta_text,
            p_text,
        )
    return table


def frame_table(frame: pl.DataFrame, *, title: str) -> Table:
    """Any small DataFrame as a rich table."""
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(column)
    for row in frame.iter_rows():
        table.add_row(*(format_cell(v) for v in row))
    return table
