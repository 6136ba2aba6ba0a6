"""Read a study's runs and per-epoch metrics from any supported database into polars."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

import polars as pl
from sqlalchemy import select

from harness.metrics import (
    COST_TOTAL_SECONDS,
    DIAG_PREFIX,
    SAMPLES_PER_SECOND,
    SIZE_METRICS,
    VAL_LOSS,
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
)
EXTRA_METRICS = (VAL_TOP1_CLS, VAL_LOSS, SAMPLES_PER_SECOND, COST_TOTAL_SECONDS, *SIZE_METRICS)


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
    """One row per run; each grid factor becomes a string column `f:<path>`."""
    rows = []
    factor_names: list[str] = []
    for run in store.runs(study):
        row = {name: _plain(getattr(run, name)) for name in RUN_COLUMNS}
        for path, value in run.factors.items():
            if f"f:{path}" not in factor_names:
                factor_names.append(f"f:{path}")
            row[f"f:{path}"] = _factor_value(value)
        for name in EXTRA_METRICS:
            row[name] = run.metrics.get(name)
        row.update({k: v for k, v in run.metrics.items() if k.startswith(DIAG_PREFIX)})
        row["teachers"] = "+".join(run.config["distill"]["teachers"]) or "none"
        rows.append(row)
    if not rows:
        return pl.DataFrame(schema={name: pl.Utf8 for name in RUN_COLUMNS})
    diagnostics = sorted({k for row in rows for k in row if k.startswith(DIAG_PREFIX)})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(
        [pl.col(name).cast(pl.Utf8) for name in factor_names]
        + [pl.col(name).cast(pl.Float64) for name in (*EXTRA_METRICS, *diagnostics)]
    )


def load_epochs(store: Store, study: str) -> pl.DataFrame:
    """Long format: run_id, config_hash, seed, label, epoch, name, value."""
    with store.session() as s:
        query = (
            select(
                EpochRow.run_id,
                RunRow.config_hash,
                RunRow.seed,
                RunRow.label,
                EpochRow.epoch,
                EpochRow.name,
                EpochRow.value,
            )
            .join(RunRow, RunRow.id == EpochRow.run_id)
            .where(RunRow.study == study)
            .order_by(EpochRow.run_id, EpochRow.epoch)
        )
        rows = s.execute(query).all()
    schema = {
        "run_id": pl.Int64,
        "config_hash": pl.Utf8,
        "seed": pl.Int64,
        "label": pl.Utf8,
        "epoch": pl.Int64,
        "name": pl.Utf8,
        "value": pl.Float64,
    }
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def factor_columns(runs: pl.DataFrame) -> list[str]:
    return [c for c in runs.columns if c.startswith("f:")]


def complete_runs(runs: pl.DataFrame) -> pl.DataFrame:
    """The runs that finished (the ones every aggregate and figure is made of)."""
    return runs.filter(pl.col("status") == RunStatus.COMPLETE.value)
