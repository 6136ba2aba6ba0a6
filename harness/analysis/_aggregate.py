"""Aggregation over seeds (mean, std, 95% Student-t interval) and paired baseline deltas."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import polars as pl

from harness.analysis._frames import complete_runs, factor_columns
from harness.analysis._student_t import t_ppf, t_sf
from harness.metrics import (
    COST_CPU_SECONDS,
    COST_TOTAL_SECONDS,
    SAMPLES_PER_SECOND,
    SIZE_METRICS,
    TEST_TOP1,
    TEST_TOP1_CLS,
    VAL_TOP1,
    VAL_TOP1_CLS,
)

CONFIDENCE = 0.95
TIME_COLUMNS = ("train_seconds", "eval_seconds", SAMPLES_PER_SECOND)
"""Per-run costs, averaged over a configuration's runs. One-off costs (training a teacher,
building a cache: paid by whichever run needed it first) are not averaged: `one_off_costs`
gives each configuration the build seconds of what it uses."""
BOOTSTRAP_RESAMPLES = 2000
CPU_SHARE = "cpu_share"


def cpu_share_recorded(frame: pl.DataFrame) -> bool:
    """Whether some configuration of `frame` (an aggregate) has a `CPU_SHARE`: runs stored
    before their CPU time was recorded have none, and tables then leave the column out."""
    return CPU_SHARE in frame.columns and frame[CPU_SHARE].is_not_null().any()


"""A configuration's mean over its runs of CPU seconds per wall-clock second (null where no
run recorded its CPU time): about its thread count when it had its cores to itself, less
where other work shared them and its wall-clock seconds grew."""


def bootstrap_interval(values: list[float]) -> tuple[float | None, float | None]:
    """95% percentile-bootstrap interval of the mean of a non-negative quantity (seconds,
    samples/s): it never leaves the range of the values, so never goes below zero. None
    with fewer than 3 values (resampling 2 values says nothing). Seeded: reproducible."""
    if len(values) < 3:
        return None, None
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(0)
    means = data[rng.integers(0, len(data), (BOOTSTRAP_RESAMPLES, len(data)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(low), float(high)


def t_interval(
    mean: float,
    std: float | None,
    n: int,
    *,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> tuple[float | None, float | None]:
    """Two-sided 95% Student-t confidence interval of a mean, clipped to `bounds` (an
    accuracy's stops at 0 and 1: from few seeds a mean near 1 can reach past it, which no
    accuracy can); None with fewer than 2 values."""
    if n < 2 or std is None or math.isnan(std):
        return None, None
    half = t_ppf(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    return max(bounds[0], mean - half), min(bounds[1], mean + half)


ACCURACY = (0.0, 1.0)


def _with_interval(
    frame: pl.DataFrame,
    prefix: str,
    *,
    mean: str | None = None,
    std: str | None = None,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> pl.DataFrame:
    """Add `<prefix>ci_low` and `<prefix>ci_high` from the mean, std and n columns, clipped
    to `bounds`."""
    mean, std = mean or f"{prefix}mean", std or f"{prefix}std"
    lows, highs = [], []
    for m, s, n in frame.select(mean, std, "n").iter_rows():
        low, high = t_interval(m, s, n, bounds=bounds)
        lows.append(low)
        highs.append(high)
    return frame.with_columns(
        pl.Series(f"{prefix}ci_low", lows, dtype=pl.Float64),
        pl.Series(f"{prefix}ci_high", highs, dtype=pl.Float64),
    )


def group_keys(runs: pl.DataFrame) -> list[str]:
    return ["config_hash", "label", "teachers", *factor_columns(runs)]


def best_of_epochs(epochs: pl.DataFrame, *, metric: str = VAL_TOP1) -> pl.DataFrame:
    """run_id, best: `best_values` computed from a long epochs frame already in memory."""
    return (
        epochs.filter(pl.col("name") == metric)
        .group_by("run_id")
        .agg(pl.col("value").max().alias("best"))
    )


def aggregate(
    runs: pl.DataFrame,
    *,
    metric: str = "top1",
    best: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per configuration over its complete runs: n, mean, std, 95% t-interval of `metric` (the last
    epoch's validation top-1), of the final model's test top-1 (`test_`; null for runs
    stored before the test split; `test_cls_mean`: its class head alone, beside the
    combined prediction), of the best validation epoch when `best` (run_id, best)
    is given (`best_`: an optimistic figure, selected on the data it reports), and for every
    per-run cost (training and evaluation seconds, samples/s): mean, `<cost>_std` and a
    bootstrap CI that respects zero (`bootstrap_interval`); `cpu_share`: `CPU_SHARE`."""
    done = complete_runs(runs)
    if done.is_empty():
        return pl.DataFrame()
    if best is not None and not best.is_empty():
        best = best.rename({"best": "best_top1"})
        done = done.join(best, left_on="id", right_on="run_id", how="left")
    else:
        done = done.with_columns(pl.col(metric).alias("best_top1"))
    for column in (TEST_TOP1, TEST_TOP1_CLS, COST_CPU_SECONDS, COST_TOTAL_SECONDS):
        if column not in done.columns:
            done = done.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
    keys = group_keys(done)
    table = done.group_by(keys, maintain_order=True).agg(
        pl.len().alias("n"),
        pl.col("seed").sort().alias("seeds"),
        pl.col(metric).mean().alias("mean"),
        pl.col(metric).std().alias("std"),
        pl.col(TEST_TOP1).mean().alias("test_mean"),
        pl.col(TEST_TOP1).std().alias("test_std"),
        pl.col(TEST_TOP1_CLS).mean().alias("test_cls_mean"),
        pl.col("best_top1").mean().alias("best_mean"),
        pl.col("best_top1").std().alias("best_std"),
        *[pl.col(c).mean() for c in TIME_COLUMNS],
        *[pl.col(c).std().alias(f"{c}_std") for c in TIME_COLUMNS],
        *[pl.col(c).drop_nulls().alias(f"{c}_values") for c in TIME_COLUMNS],
        (pl.col(COST_CPU_SECONDS) / pl.col(COST_TOTAL_SECONDS)).mean().alias(CPU_SHARE),
        pl.col("student_params").first(),
        *[pl.col(c).mean().alias(c.replace("/", "_")) for c in SIZE_METRICS if c in done.columns],
    )
    table = _with_interval(table, "", bounds=ACCURACY)
    table = _with_interval(table, "test_", bounds=ACCURACY)
    for c in TIME_COLUMNS:
        bounds = [bootstrap_interval(v) for v in table[f"{c}_values"].to_list()]
        table = table.drop(f"{c}_values").with_columns(
            pl.Series(f"{c}_ci_low", [b[0] for b in bounds], dtype=pl.Float64),
            pl.Series(f"{c}_ci_high", [b[1] for b in bounds], dtype=pl.Float64),
        )
    if "student_flops" in table.columns:
        table = table.with_columns(
            (pl.col("mean") / (pl.col("student_flops") / 1e6)).alias("top1_per_mflop")
        )
    return _with_interval(table, "best_", bounds=ACCURACY).sort("mean", descending=True)


def default_baseline(runs: pl.DataFrame) -> str | None:
    """The configuration without distillation (a plain ViT), if the study has one."""
    plain = runs.filter(pl.col("teachers") == "none")
    return None if plain.is_empty() else plain["config_hash"][0]


TEST_COLUMN = TEST_TOP1  # the final model's test top-1, what reports compare
VAL_COLUMN = "top1"  # the final validation top-1


METRIC_WORDS = {
    TEST_TOP1: "test top-1 of the final model (last epoch)",
    TEST_TOP1_CLS: "test top-1 of the final model's class head",
    VAL_TOP1: "validation top-1 of the final model",
    VAL_TOP1_CLS: "validation top-1 of the final model's class head",
}
"""How a reader is told each metric a report or contrast compares."""


class ReportMetric(NamedTuple):
    """The metric reports compare: its column in the runs frame, and how a reader is told."""

    column: str
    words: str


def report_metric(runs: pl.DataFrame) -> ReportMetric:
    """The test top-1 of the final model when every complete run has one, else (older
    databases) the final validation top-1."""
    done = complete_runs(runs)
    if TEST_COLUMN in done.columns and done[TEST_COLUMN].null_count() == 0 and len(done):
        return ReportMetric(TEST_COLUMN, METRIC_WORDS[TEST_COLUMN])
    split = done["split"][0] if "split" in done.columns and len(done) else "train/val"
    return ReportMetric(VAL_COLUMN, f"validation top-1 of the final model (last epoch; {split})")


def paired_deltas(
    runs: pl.DataFrame, *, baseline: str | None = None, metric: str | None = None
) -> pl.DataFrame:
    """Each configuration minus the baseline, paired by seed over the seeds both have, on
    `metric` (default: the report's, `report_metric`: test top-1 where every run has it);
    mean delta, std, 95% CI and the two-sided paired t-test p-value."""
    metric = metric or report_metric(runs).column
    done = complete_runs(runs)
    baseline = baseline or default_baseline(done)
    if baseline is None or done.is_empty():
        return pl.DataFrame()
    base = done.filter(pl.col("config_hash") == baseline).select(
        "seed", pl.col(metric).alias("base")
    )
    paired = done.filter(pl.col("config_hash") != baseline).join(base, on="seed", how="inner")
    paired = paired.with_columns((pl.col(metric) - pl.col("base")).alias("delta"))
    table = paired.group_by(group_keys(done), maintain_order=True).agg(
        pl.len().alias("n"),
        pl.col("delta").mean().alias("mean"),
        pl.col("delta").std().alias("std"),
    )
    table = _with_interval(table, "")
    p_values: list[float | None] = []
    for mean, std, n in table.select("mean", "std", "n").iter_rows():
        if n < 2 or not std:
            p_values.append(None)
        else:
            t_stat = mean / (std / math.sqrt(n))
            p_values.append(2 * t_sf(abs(t_stat), n - 1))
    return table.with_columns(pl.Series("p_value", p_values, dtype=pl.Float64)).rename(
        {
            "mean": "delta_mean",
            "std": "delta_std",
            "ci_low": "delta_ci_low",
            "ci_high": "delta_ci_high",
            "n": "n_pairs",
        }
    )
