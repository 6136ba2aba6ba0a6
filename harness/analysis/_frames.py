"""Read a study's runs and per-epoch metrics from any supported database into polars."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

import polars as pl
from sqlalchemy import Select, Selectable, func, select

from harness.metrics import (
    COST_CPU_SECONDS,
    COST_TOTAL_SECONDS,
    DIAG_PREFIX,
    SAMPLES_PER_SECOND,
    SIZE_METRICS,
    SPLIT_TEST,
    TEST_TOP1,
    TEST_TOP1_CLS,
    VAL_LOSS,
    VAL_TOP1,
    VAL_TOP1_CLS,
)
from harness.status import RunStatus
from harness.store import EpochRow, RunRow, Store

RUN_COLUMNS = (
    "id",
    "study",
    "trial_number",
    "config_hash",
    "seed",
    "label",
    "status",
    "error",
    "device",
    "worker",
    "epochs_done",
    "teacher_seconds",
    "cache_seconds",
    "train_seconds",
    "eval_seconds",
    "cache_status",
    "student_params",
    "top1",
    "started_at",
    "finished_at",
    "adopted_from",  # the run this row copies, trained by another study (None: trained here)
)
EXTRA_METRICS = (
    VAL_TOP1_CLS,
    VAL_LOSS,
    TEST_TOP1,
    TEST_TOP1_CLS,
    SPLIT_TEST,
    SAMPLES_PER_SECOND,
    COST_TOTAL_SECONDS,
    COST_CPU_SECONDS,
    *SIZE_METRICS,
)
LEGACY_VAL_IS_TEST = frozenset({"fashion-mnist", "cifar10", "cifar100", "imagefolder"})
"""Datasets whose validation split was their official test split before libkd split every
dataset three ways (runs stored then have no test metrics)."""


def split_label(dataset: str, has_test: bool) -> str:
    """How a run's splits read in reports."""
    if has_test:
        return "train/val/test"
    return "validation = test" if dataset in LEGACY_VAL_IS_TEST else "train/val (no test)"


EPOCH_SCHEMA = {"run_id": pl.Int64, "epoch": pl.Int64, "name": pl.Utf8, "value": pl.Float64}
RUN_KEY_SCHEMA = {"run_id": pl.Int64, "config_hash": pl.Utf8, "seed": pl.Int64, "label": pl.Utf8}
SUMMARY_SCHEMA = {
    "config_hash": pl.Utf8,
    "label": pl.Utf8,
    "name": pl.Utf8,
    "epoch": pl.Int64,
    "n": pl.Int64,
    "mean": pl.Float64,
    "sum_squares": pl.Float64,
}


def _factor_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "+".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _plain(value: Any) -> Any:
    """Enum members (run and cache statuses) as their stored text."""
    return value.value if isinstance(value, Enum) else value


def load_runs(store: Store, study: str) -> pl.DataFrame:
    """One row per run; each grid factor becomes a string column `f:<path>`.

    Read with one Core select of the columns it needs (no ORM objects): the full config is
    not read, only its teachers.
    """
    columns = [getattr(RunRow, name) for name in RUN_COLUMNS]
    query = (
        select(
            *columns,
            RunRow.factors,
            RunRow.metrics,
            RunRow.config["distill"]["teachers"],
            RunRow.config["dataset"]["name"],
        )
        .where(RunRow.study == study)
        .order_by(RunRow.id)
    )
    rows = []
    factor_names: list[str] = []
    with store.session() as s:
        for *values, factors, metrics, teachers, dataset in s.execute(query):
            row = {name: _plain(value) for name, value in zip(RUN_COLUMNS, values)}
            for path, value in factors.items():
                if f"f:{path}" not in factor_names:
                    factor_names.append(f"f:{path}")
                row[f"f:{path}"] = _factor_value(value)
            for name in EXTRA_METRICS:
                row[name] = metrics.get(name)
            row.update({k: v for k, v in metrics.items() if k.startswith(DIAG_PREFIX)})
            row["teachers"] = "+".join(_json_list(teachers)) or "none"
            row["split"] = split_label(_json_text(dataset), SPLIT_TEST in metrics)
            rows.append(row)
    if not rows:
        return pl.DataFrame(schema={name: pl.Utf8 for name in RUN_COLUMNS})
    diagnostics = sorted({k for row in rows for k in row if k.startswith(DIAG_PREFIX)})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(
        [pl.col(name).cast(pl.Utf8) for name in factor_names]
        + [pl.col(name).cast(pl.Float64) for name in (*EXTRA_METRICS, *diagnostics)]
    )


def _json_text(value: Any) -> str:
    """A JSON string read out of a column: SQLite may hand it over quoted."""
    if isinstance(value, str) and value.startswith('"'):
        return str(json.loads(value))
    return str(value)


def _json_list(value: Any) -> list[str]:
    """A JSON list read out of a column: SQLite may hand it over as text."""
    if isinstance(value, str):
        value = json.loads(value)
    return [str(v) for v in value or []]


def _read(store: Store, query: Selectable, schema: dict[str, Any]) -> pl.DataFrame:
    """A select straight into a frame: rows go column-wise into polars, never through ORM
    objects or per-row Python tuples of our own."""
    with store.engine.connect() as connection:
        frame = pl.read_database(query, connection, schema_overrides=schema)
    if frame.is_empty():
        return pl.DataFrame(schema=schema)
    return frame.select(list(schema)).cast(pl.Schema(schema))


def load_epochs(store: Store, study: str) -> pl.DataFrame:
    """Every epoch row of a study (what `libkd export` writes), long format: run_id,
    config_hash, seed, label, epoch, name, value."""
    query = (
        select(EpochRow.run_id, EpochRow.epoch, EpochRow.name, EpochRow.value)
        .join(RunRow, RunRow.id == EpochRow.run_id)
        .where(RunRow.study == study)
    )
    epochs = _read(store, query, EPOCH_SCHEMA)
    runs = _read(
        store,
        select(RunRow.id.label("run_id"), RunRow.config_hash, RunRow.seed, RunRow.label).where(
            RunRow.study == study
        ),
        RUN_KEY_SCHEMA,
    )
    joined = epochs.join(runs, on="run_id", how="left").sort("run_id", "epoch", maintain_order=True)
    return joined.select("run_id", "config_hash", "seed", "label", "epoch", "name", "value")


def best_values(store: Store, study: str, *, metric: str = VAL_TOP1) -> pl.DataFrame:
    """run_id, best: the best (highest) value of `metric` over each run's evaluated epochs,
    aggregated by the database."""
    return _read(store, _best_query(study, metric), {"run_id": pl.Int64, "best": pl.Float64})


def _best_query(study: str, metric: str) -> Select[int, float]:
    return (
        select(EpochRow.run_id, func.max(EpochRow.value).label("best"))
        .join(RunRow, RunRow.id == EpochRow.run_id)
        .where(RunRow.study == study, EpochRow.name == metric)
        .group_by(EpochRow.run_id)
    )


def final_values(store: Store, study: str, *, prefix: str = VAL_TOP1) -> pl.DataFrame:
    """run_id, name, value: the last evaluated epoch's value of every metric starting with
    `prefix`, for the complete runs."""
    schema = {"run_id": pl.Int64, "name": pl.Utf8, "value": pl.Float64}
    return _read(store, _final_query(study, prefix), schema)


def _final_query(study: str, prefix: str) -> Select[int, str, float]:
    return (
        select(EpochRow.run_id, EpochRow.name, EpochRow.value)
        .join(RunRow, RunRow.id == EpochRow.run_id)
        .where(
            RunRow.study == study,
            RunRow.status == RunStatus.COMPLETE,
            EpochRow.epoch == RunRow.epochs_done - 1,
            EpochRow.name.startswith(prefix, autoescape=True),
        )
    )


def epoch_summary(store: Store, study: str, *, prefix: str = VAL_TOP1) -> pl.DataFrame:
    """Per configuration, metric (those starting with `prefix`) and epoch, over the complete
    runs: n, mean and sample std, aggregated by the database (the curves a dashboard draws,
    never the rows of every seed)."""
    return _with_std(_read(store, _summary_query(study, prefix), SUMMARY_SCHEMA))


def _summary_query(study: str, prefix: str) -> Select[Any]:
    value = EpochRow.value
    return (
        select(
            RunRow.config_hash,
            func.min(RunRow.label).label("label"),
            EpochRow.name,
            EpochRow.epoch,
            func.count().label("n"),
            func.avg(value).label("mean"),
            func.sum(value * value).label("sum_squares"),
        )
        .join(RunRow, RunRow.id == EpochRow.run_id)
        .where(
            RunRow.study == study,
            RunRow.status == RunStatus.COMPLETE,
            EpochRow.name.startswith(prefix, autoescape=True),
        )
        .group_by(RunRow.config_hash, EpochRow.name, EpochRow.epoch)
    )


def aggregate_queries(study: str) -> dict[str, Select[Any]]:
    """The aggregates report and dashboard ask the database for (to show their plans)."""
    return {
        "best epoch per run": _best_query(study, VAL_TOP1),
        "last epoch per run": _final_query(study, VAL_TOP1),
        "curves per configuration": _summary_query(study, VAL_TOP1),
    }


def summarize_epochs(epochs: pl.DataFrame, runs: pl.DataFrame, *, prefix: str) -> pl.DataFrame:
    """`epoch_summary` computed from a long epochs frame (for frames already in memory)."""
    done = complete_runs(runs)["id"].to_list()
    frame = (
        epochs.filter(pl.col("run_id").is_in(done) & pl.col("name").str.starts_with(prefix))
        .group_by("config_hash", "name", "epoch", maintain_order=True)
        .agg(
            pl.col("label").min(),
            pl.len().alias("n"),
            pl.col("value").mean().alias("mean"),
            (pl.col("value") ** 2).sum().alias("sum_squares"),
        )
    )
    return _with_std(frame.cast({"n": pl.Int64}))


def _with_std(frame: pl.DataFrame) -> pl.DataFrame:
    """Sample std from n, mean and the sum of squares (clipped at 0 against rounding)."""
    n, mean = pl.col("n"), pl.col("mean")
    variance = ((pl.col("sum_squares") - n * mean * mean) / (n - 1)).clip(lower_bound=0.0)
    std = pl.when(n > 1).then(variance.sqrt()).otherwise(None)
    return frame.with_columns(std.alias("std")).drop("sum_squares").sort("config_hash", "epoch")


def factor_columns(runs: pl.DataFrame) -> list[str]:
    return [c for c in runs.columns if c.startswith("f:")]


TEACHER_DATA_FACTORS = ("dataset.", "augment.", "teachers.")
"""Grid factors that change what a teacher instance is trained on (or is): a study over
data fractions trains its teachers on each fraction, so they are summarised per value."""


def teacher_setting_columns(runs: pl.DataFrame) -> list[str]:
    """The factor columns of `TEACHER_DATA_FACTORS` the runs vary."""
    return [
        c for c in factor_columns(runs) if c.removeprefix("f:").startswith(TEACHER_DATA_FACTORS)
    ]


def complete_runs(runs: pl.DataFrame) -> pl.DataFrame:
    """The runs that finished (the ones every aggregate and figure is made of)."""
    return runs.filter(pl.col("status") == RunStatus.COMPLETE.value)
