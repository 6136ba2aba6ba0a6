"""The Optuna-backed runner: one session per study, grid and search strategies, workers."""

from harness.runner._context import (
    Progress,
    RunContext,
    RunnerSettings,
    SilentProgress,
    StudyProgress,
    environment,
    resolve_device,
)
from harness.runner._session import RunnerSession, RunSummary, run_study
from harness.runner._strategies import STRATEGIES, Strategy
from harness.runner._trial import RunOutcome, run_identity, run_trial
from harness.runner._workers import (
    auto_workers,
    run_local_workers,
    worker_command,
    worker_session,
)

__all__ = [
    "STRATEGIES",
    "Progress",
    "RunContext",
    "RunOutcome",
    "RunSummary",
    "RunnerSession",
    "RunnerSettings",
    "SilentProgress",
    "StudyProgress",
    "Strategy",
    "environment",
    "resolve_device",
    "run_identity",
    "run_trial",
    "worker_command",
    "worker_session",
    "auto_workers",
    "run_local_workers",
    "run_study",
]
