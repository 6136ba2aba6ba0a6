"""Pareto-optimal trials of a study with several objectives (Optuna's best_trials)."""

from __future__ import annotations

import polars as pl

from harness.store import (
    FACTORS_ATTR,
    STUDY_FILE_ATTR,
    Store,
    load_optuna_study,
    objective_count,
    optuna_storage,
)


def pareto_trials(store: Store, study: str) -> pl.DataFrame:
    """One row per Pareto-optimal trial: its number, objective values and parameters.

    Empty for single-objective studies, where `libkd report` ranks configurations instead
    (known without loading Optuna).
    """
    if objective_count(store.engine, study) < 2:
        return pl.DataFrame()
    opened = load_optuna_study(study, optuna_storage(store.url))
    if len(opened.directions) < 2:
        return pl.DataFrame()
    file = opened.user_attrs.get(STUDY_FILE_ATTR, {})
    names = [o["metric"] for o in file.get("objectives", [])] or [
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
