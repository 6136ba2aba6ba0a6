"""The Optuna-backed runner: one session per study, grid and search strategies, workers."""

from harness.runner._context import (
    Progress,
    RunContext,
    SilentProgress,
    StudyProgress,
    environment,
    resolve_device,
)
from harness.runner._optuna import open_study, spec_for
from harness.runner._queue import enqueue_grid
from harness.runner._session import RunnerSession, RunnerSettings, RunSummary, run_study
from harness.runner._strategies import STRATEGIES, GridStrategy, SearchStrategy, Strategy
from harness.runner._trial import RunOutcome, run_identity, run_trial
from harness.runner._workers import (
    auto_workers,
    run_local_workers,
    study_from_database,
    worker_command,
    worker_session,
)

__all__ = [
    "STRATEGIES",
    "GridStrategy",
    "Progress",
    "RunContext",
    "RunOutcome",
    "RunSummary",
    "RunnerSession",
    "RunnerSettings",
    "SearchStrategy",
    "SilentProgress",
    "StudyProgress",
    "Strategy",
    "enqueue_grid",
    "environment",
    "open_study",
    "resolve_device",
    "run_identity",
    "run_trial",
    "spec_for",
    "study_from_database",
    "worker_command",
    "worker_session",
    "auto_workers",
    "run_local_workers",
    "run_study",
]
