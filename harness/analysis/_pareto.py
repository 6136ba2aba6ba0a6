"""Pareto fronts over a study's declared objectives: configuration means for a grid (each
configuration's runs averaged over seeds), Optuna's best trials for a search (each trial is
already a configuration's mean over seeds)."""

from __future__ import annotations

import polars as pl

from harness.analysis._frames import complete_runs, load_runs
from harness.metrics import COST_TRAIN_SECONDS, STUDENT_PARAMS, VAL_TOP1
from harness.store import (
    FACTORS_ATTR,
    Store,
    load_optuna_study,
    objective_count,
    reading_storage,
    study_kind,
    study_objectives,
)

# Objective metrics stored as columns of their own in the runs frame.
_COLUMNS = {VAL_TOP1: "top1", COST_TRAIN_SECONDS: "train_seconds", STUDENT_PARAMS: "student_params"}


def pareto_configurations(runs: pl.DataFrame, objectives: list[tuple[str, str]]) -> pl.DataFrame:
    """Per configuration: n and the mean over its complete runs of each objective (metric,
    direction), and `front`: whether no other configuration is at least as good in every
    objective and better in one."""
    done = complete_runs(runs)
    columns = {metric: _COLUMNS.get(metric, metric) for metric, _ in objectives}
    if done.is_empty() or any(c not in done.columns for c in columns.values()):
        return pl.DataFrame()
    table = done.group_by("config_hash", "label", maintain_order=True).agg(
        pl.len().alias("n"), *[pl.col(c).mean().alias(m) for m, c in columns.items()]
    )
    signs = [1.0 if direction == "maximize" else -1.0 for _, direction in objectives]
    points = [
        [sign * value for sign, value in zip(signs, row)]
        for row in table.select([m for m, _ in objectives]).iter_rows()
    ]
    front = [
        not any(all(o >= p for o, p in zip(other, point)) and other != point for other in points)
        for point in points
    ]
    return table.with_columns(pl.Series("front", front, dtype=pl.Boolean))


def pareto_trials(store: Store, study: str) -> pl.DataFrame:
    """The Pareto-optimal configurations (grid: means over seeds) or trials (search) over
    the study's declared objectives.

    Empty for single-objective studies, where `libkd report` ranks configurations instead
    (known without loading Optuna).
    """
    if objective_count(store.engine, study) < 2:
        return pl.DataFrame()
    if study_kind(store.engine, study) != "search":
        front = pareto_configurations(
            load_runs(store, study), study_objectives(store.engine, study)
        )
        return front.filter(pl.col("front")).drop("front") if not front.is_empty() else front
    opened = load_optuna_study(study, reading_storage(store))
    if len(opened.directions) < 2:
        return pl.DataFrame()
    names = [metric for metric, _ in study_objectives(store.engine, study)] or [
        f"objective_{i}" for i in range(len(opened.directions))
    ]
    rows = []
    for trial in sorted(opened.best_trials, key=lambda t: t.number):
        row = {"trial": trial.number, **dict(zip(names, trial.values))}
        row.update({k: str(v) for k, v in trial.params.items()})
        if not trial.params:
            row["configuration"] = str(trial.user_attrs.get(FACTORS_ATTR, {}))
        rows.append(row)
    return pl.DataFrame(rows)
