"""The Optuna-backed runner: objective, queue, workers, storage URLs."""

from harness.runner._context import (
    Progress,
    RunContext,
    SilentProgress,
    environment,
    resolve_device,
)
from harness.runner._optuna import enqueue_grid, open_study, optuna_storage, spec_from_attrs
from harness.runner._run import RunnerSettings, RunSummary, load_optuna_study, work
from harness.runner._trial import RunOutcome, run_trial

__all__ = [
    "Progress",
    "RunContext",
    "RunOutcome",
    "RunSummary",
    "RunnerSettings",
    "SilentProgress",
    "enqueue_grid",
    "environment",
    "load_optuna_study",
    "open_study",
    "optuna_storage",
    "resolve_device",
    "run_trial",
    "spec_from_attrs",
    "work",
]
