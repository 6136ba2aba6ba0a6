"""The report frame: one row per configuration, aggregated over seeds with baseline deltas,
and its plain-text forms (markdown, one cell's text). Drawing it is the CLI's business."""

from __future__ import annotations

import html

import polars as pl

from harness.analysis._aggregate import (
    CPU_SHARE,
    aggregate,
    cpu_share_recorded,
    paired_deltas,
    report_metric,
)
from harness.analysis._frames import best_values, load_runs
from harness.analysis._text import format_cell
from harness.errors import LibKDError
from harness.store import Store


def _resolve_baseline(runs: pl.DataFrame, prefix: str | None) -> str | None:
    if prefix is None:
        return None
    matches = runs.filter(pl.col("config_hash").str.starts_with(prefix))
    if matches.is_empty():
        raise LibKDError(f"--baseline: no configuration hash starts with {prefix!r}")
    return matches["config_hash"][0]


def report_frame(
    store: Store,
    study: str,
    *,
    baseline: str | None = None,
    runs: pl.DataFrame | None = None,
    best: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per configuration: seeds, top-1 mean/std/CI (last and best epoch), per-run
    costs with their CIs, one-off costs (the teachers and caches it uses, built once), and
    the paired delta against the baseline (default: the plain ViT). `runs` and `best`
    (the best val/top1 epoch per run), when the caller has read them already, are not read
    again; the epochs themselves are never loaded: the database aggregates them."""
    runs = load_runs(store, study) if runs is None else runs
    if runs.is_empty():
        raise store.no_runs_error(study)
    best = best_values(store, study) if best is None else best
    summary = aggregate(runs, best=best)
    if summary.is_empty():
        raise LibKDError(f"study {study!r} has no complete runs yet")
    metric = report_metric(runs).column
    deltas = paired_deltas(runs, baseline=_resolve_baseline(runs, baseline), metric=metric)
    if not deltas.is_empty():
        summary = summary.join(
            deltas.select(
                "config_hash",
                "n_pairs",
                "delta_mean",
                "delta_std",
                "delta_ci_low",
                "delta_ci_high",
                "p_value",
            ),
            on="config_hash",
            how="left",
        )
    one_off = store.one_off_costs(study)
    summary = summary.with_columns(
        pl.Series(
            "one_off_teacher_seconds",
            [one_off.get(h, {}).get("teacher", 0.0) for h in summary["config_hash"]],
            dtype=pl.Float64,
        ),
        pl.Series(
            "one_off_cache_seconds",
            [one_off.get(h, {}).get("cache", 0.0) for h in summary["config_hash"]],
            dtype=pl.Float64,
        ),
    )
    return summary.with_columns(
        pl.col("seeds").list.eval(pl.element().cast(pl.Utf8)).list.join(",")
    )


REPORT_COLUMNS = (
    "label",
    "n",
    "test_mean",
    "test_ci_low",
    "test_ci_high",
    "test_cls_mean",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "best_mean",
    "delta_mean",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "train_seconds",
    "train_seconds_ci_low",
    "train_seconds_ci_high",
    "one_off_teacher_seconds",
    "one_off_cache_seconds",
    "samples_per_second",
    CPU_SHARE,
    "student_flops",
    "top1_per_mflop",
    "student_compression",
)


def report_columns(frame: pl.DataFrame) -> tuple[str, ...]:
    """`REPORT_COLUMNS` for `frame`: `cpu_share` only where some run recorded its CPU time
    (older runs did not), as the published cost table decides its CPU/wall column."""
    measured = cpu_share_recorded(frame)
    return tuple(c for c in REPORT_COLUMNS if c != CPU_SHARE or measured)


def markdown_text(text: str) -> str:
    """Text as markdown shows it, never as markup: a label or description holding `<script>`
    or a `|` reads as typed (GitHub renders raw HTML in markdown)."""
    return html.escape(text, quote=False).replace("|", "\\|")


def markdown_table(frame: pl.DataFrame, columns: tuple[str, ...] | None = None) -> str:
    """A GitHub markdown table of `columns` (those present; default all) of `frame`."""
    names = frame.columns if columns is None else [c for c in columns if c in frame.columns]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in frame.select(names).iter_rows():
        lines.append("| " + " | ".join(markdown_text(format_cell(v)) for v in row) + " |")
    return "\n".join(lines)
