"""Pareto-optimal trials of a study with several objectives (Optuna's best_trials)."""

from __future__ import annotations

import polars as pl

from harness.runner import load_optuna_study


def pareto_trials(study: str, storage_url: str) -> pl.DataFrame:
    """One row per Pareto-optimal trial: its number, objective values and parameters.

    Empty for single-objective studies, where `libkd report` ranks configurations instead.
    """
    opened = load_optuna_study(study, storage_url)
    if len(opened.directions) < 2:
        return pl.DataFrame()
    file = opened.user_attrs.get("libkd_study_file", {})
    names = [o["metric"] for o in file.get("objectives", [])] or [
        f"objective_{i}" for i in range(len(opened.directions))
    ]
    rows = []
    for trial in sorted(opened.best_trials, key=lambda t: t.number):
        row = {"trial": trial.number, **dict(zip(names, trial.values))}
        row.update({k: str(v) for k, v in trial.params.items()})
        if not trial.params:
            row["configuration"] = str(trial.user_attrs.get("libkd_factors", {}))
        rows.append(row)
    return pl.DataFrame(rows)
