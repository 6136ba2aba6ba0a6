"""Aggregation over seeds (mean, std, 95% Student-t interval) and paired baseline deltas."""

from __future__ import annotations

import math

import polars as pl

from harness.analysis._load import complete_runs, factor_columns
from harness.analysis._student_t import t_ppf, t_sf
from harness.metrics import SAMPLES_PER_SECOND, SIZE_METRICS, TEST_TOP1, VAL_TOP1

CONFIDENCE = 0.95
TIME_COLUMNS = (
    "teacher_seconds",
    "cache_seconds",
    "train_seconds",
    "eval_seconds",
    SAMPLES_PER_SECOND,
)


def t_interval(mean: float, std: float | None, n: int) -> tuple[float | None, float | None]:
    """Two-sided 95% Student-t confidence interval of a mean; None with fewer than 2 values."""
    if n < 2 or std is None or math.isnan(std):
        return None, None
    half = t_ppf(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    return mean - half, mean + half


def _with_interval(
    frame: pl.DataFrame, prefix: str, *, mean: str | None = None, std: str | None = None
) -> pl.DataFrame:
    """Add `<prefix>ci_low` and `<prefix>ci_high` from the mean, std and n columns."""
    mean, std = mean or f"{prefix}mean", std or f"{prefix}std"
    lows, highs = [], []
    for m, s, n in frame.select(mean, std, "n").iter_rows():
        low, high = t_interval(m, s, n)
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
    """Per configuration over its complete runs: n, mean, std, 95% CI of `metric` (the last
    epoch's validation top-1), of the final model's test top-1 (`test_`; null for runs
    stored before the test split), of the best validation epoch when `best` (run_id, best)
    is given (`best_`: an optimistic figure, selected on the data it reports), and for every
    cost (seconds of teachers, cache, training, evaluation; samples/s): mean, `<cost>_std`
    and its CI."""
    done = complete_runs(runs)
    if done.is_empty():
        return pl.DataFrame()
    if best is not None and not best.is_empty():
        best = best.rename({"best": "best_top1"})
        done = done.join(best, left_on="id", right_on="run_id", how="left")
    else:
        done = done.with_columns(pl.col(metric).alias("best_top1"))
    if TEST_TOP1 not in done.columns:
        done = done.with_columns(pl.lit(None, dtype=pl.Float64).alias(TEST_TOP1))
    keys = group_keys(done)
    table = done.group_by(keys, maintain_order=True).agg(
        pl.len().alias("n"),
        pl.col("seed").sort().alias("seeds"),
        pl.col(metric).mean().alias("mean"),
        pl.col(metric).std().alias("std"),
        pl.col(TEST_TOP1).mean().alias("test_mean"),
        pl.col(TEST_TOP1).std().alias("test_std"),
        pl.col("best_top1").mean().alias("best_mean"),
        pl.col("best_top1").std().alias("best_std"),
        *[pl.col(c).mean() for c in TIME_COLUMNS],
        *[pl.col(c).std().alias(f"{c}_std") for c in TIME_COLUMNS],
        pl.col("student_params").first(),
        *[pl.col(c).mean().alias(c.replace("/", "_")) for c in SIZE_METRICS if c in done.columns],
    )
    table = _with_interval(table, "")
    table = _with_interval(table, "test_")
    for c in TIME_COLUMNS:
        table = _with_interval(table, f"{c}_", mean=c, std=f"{c}_std")
    if "student_flops" in table.columns:
        table = table.with_columns(
            (pl.col("mean") / (pl.col("student_flops") / 1e6)).alias("top1_per_mflop")
        )
    return _with_interval(table, "best_").sort("mean", descending=True)


def default_baseline(runs: pl.DataFrame) -> str | None:
    """The configuration without distillation (a plain ViT), if the study has one."""
    plain = runs.filter(pl.col("teachers") == "none")
    return None if plain.is_empty() else plain["config_hash"][0]


def paired_deltas(
    runs: pl.DataFrame, *, baseline: str | None = None, metric: str = "top1"
) -> pl.DataFrame:
    """Each configuration minus the baseline, paired by seed over the seeds both have;
    mean delta, std, 95% CI and the two-sided paired t-test p-value."""
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
