"""The Optuna-backed runner: one session per study, grid and search strategies, workers
(imported, with torch, on first use: `libkd status` reads a study's Slurm jobs without it)."""

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports

if TYPE_CHECKING:
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
        WorkerWatch,
        auto_workers,
        busy_cores,
        cpu_threads,
        run_local_workers,
        worker_command,
        worker_session,
    )

_WHERE = {
    "_context": (
        "Progress",
        "RunContext",
        "RunnerSettings",
        "SilentProgress",
        "StudyProgress",
        "environment",
        "resolve_device",
    ),
    "_session": ("RunnerSession", "RunSummary", "run_study"),
    "_strategies": ("STRATEGIES", "Strategy"),
    "_trial": ("RunOutcome", "run_identity", "run_trial"),
    "_workers": (
        "WorkerWatch",
        "auto_workers",
        "busy_cores",
        "cpu_threads",
        "run_local_workers",
        "worker_command",
        "worker_session",
    ),
}
__getattr__, __dir__ = lazy_exports(
    __name__, {name: module for module, names in _WHERE.items() for name in names}
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
    "WorkerWatch",
    "environment",
    "resolve_device",
    "run_identity",
    "run_trial",
    "worker_command",
    "worker_session",
    "auto_workers",
    "busy_cores",
    "cpu_threads",
    "run_local_workers",
    "run_study",
]
