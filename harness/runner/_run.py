"""Run a study: enqueue its grid (or sample its search space), then work off the queue."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from harness.errors import StorageError
from harness.runner._context import Progress, RunContext, SilentProgress, resolve_device
from harness.runner._defaults import GRACE_SECONDS, HEARTBEAT_SECONDS
from harness.runner._optuna import (
    CONFIG_ATTR,
    WORKER_ATTR,
    enqueue_grid,
    open_study,
    optuna_storage,
    reconcile_runs,
    requeue_dead_local,
    requeue_interrupted,
    retry_failed,
    spec_from_attrs,
    waiting,
)
from harness.runner._trial import run_trial
from harness.store import Store
from harness.study import Objective, Study


@dataclass(frozen=True)
class RunSummary:
    study: str
    enqueued: int
    requeued: int
    ran: int
    complete: int
    failed: int


def objective_values(objectives: tuple[Objective, ...], metrics: dict) -> list[float]:
    """The study's objective values, in order, from a finished run's metrics."""
    return [float(metrics[objective.metric]) for objective in objectives]


class GridObjective:
    """Runs the (configuration, seed) a waiting trial carries; counts what it completed."""

    def __init__(
        self,
        opened: optuna.Study,
        ctx: RunContext,
        objectives: tuple[Objective, ...],
        total: int,
    ) -> None:
        self.opened, self.ctx, self.objectives, self.total = opened, ctx, objectives, total
        self.started = 0
        self.completed = 0

    def __call__(self, trial: optuna.Trial) -> list[float] | float:
        if CONFIG_ATTR not in trial.user_attrs:
            # Another worker took the last waiting trial between our check and our ask.
            trial.set_user_attr("libkd_empty", True)
            self.opened.stop()
            raise optuna.TrialPruned("no waiting trial left")
        trial.set_user_attr(WORKER_ATTR, self.ctx.worker)
        spec = spec_from_attrs(trial.user_attrs)
        self.started += 1
        self.ctx.progress.trial_started(spec, number=self.started, total=self.total)
        status, metrics = "failed", {}
        try:
            outcome = run_trial(spec, self.ctx, trial_number=trial.number)
            status, metrics = "complete", outcome.metrics
        except KeyboardInterrupt:
            requeue_interrupted(self.opened, trial)
            status = "interrupted (re-queued)"
            raise
        finally:
            self.ctx.progress.trial_finished(spec, status=status, metrics=metrics)
        self.completed += 1
        values = objective_values(self.objectives, outcome.metrics)
        return values if len(values) > 1 else values[0]


def _stop_when_queue_empty(study: optuna.Study, _trial) -> None:
    if waiting(study) == 0:
        study.stop()


@dataclass(frozen=True)
class RunnerSettings:
    """How workers watch each other: heartbeats, the grace before a silent trial is failed,
    how often such a trial is retried, and how long a waiting worker sleeps between looks."""

    heartbeat: int = HEARTBEAT_SECONDS
    grace: int = GRACE_SECONDS
    max_retry: int = 1


def summarize(opened: optuna.Study, *, ran: int, enqueued: int, requeued: int) -> RunSummary:
    """Counts of the whole study, with `ran`: the trials this call completed."""
    trials = opened.get_trials(deepcopy=False)
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    return RunSummary(
        study=opened.study_name,
        enqueued=enqueued,
        requeued=requeued,
        ran=ran,
        complete=complete,
        failed=sum(t.state == TrialState.FAIL for t in trials),
    )


def complete_count(opened: optuna.Study) -> int:
    return len(opened.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def work(
    study: Study,
    *,
    storage_url: str,
    cache_dir: Path,
    device: str = "auto",
    progress: Progress | None = None,
    max_trials: int | None = None,
    timeout: float | None = None,
    retry: bool = False,
    enqueue: bool = True,
    settings: RunnerSettings | None = None,
) -> RunSummary:
    """Run waiting trials of `study` until none is waiting or running (or a limit is reached).

    While other workers still run trials, this one waits and checks their heartbeats: a trial
    whose worker died is failed after the grace period, re-queued, and taken here.
    """
    settings = settings or RunnerSettings()
    if study.file.search is not None:
        from harness.runner._search import work_search

        return work_search(
            study,
            storage_url=storage_url,
            cache_dir=cache_dir,
            device=device,
            progress=progress,
            max_trials=max_trials,
            timeout=timeout,
            retry=retry,
            settings=settings,
        )
    store = Store(storage_url)
    storage = optuna_storage(
        storage_url,
        heartbeat=settings.heartbeat,
        grace=settings.grace,
        max_retry=settings.max_retry,
    )
    opened = open_study(study, storage)
    requeued = requeue_dead_local(opened, storage, store)
    if retry:
        requeued += retry_failed(opened)
    enqueued = enqueue_grid(opened, study) if enqueue else 0
    ctx = RunContext(
        store=store,
        cache_dir=cache_dir,
        device=resolve_device(device),
        study=study.name,
        progress=progress or SilentProgress(),
    )
    budget = max_trials if max_trials is not None else float("inf")
    deadline = time.monotonic() + timeout if timeout is not None else float("inf")
    objective = GridObjective(opened, ctx, study.file.objectives, waiting(opened))
    taken = 0
    while taken < budget and time.monotonic() < deadline:
        todo = int(min(waiting(opened), budget - taken))
        if todo:
            opened.optimize(
                objective,
                n_trials=todo,
                catch=(Exception,),
                gc_after_trial=False,
                callbacks=[_stop_when_queue_empty],
                timeout=None if timeout is None else max(1.0, deadline - time.monotonic()),
            )
            taken += todo
            continue
        if not opened.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            break
        time.sleep(settings.heartbeat)
        optuna.storages.fail_stale_trials(opened)
    reconcile_runs(opened, store)
    return summarize(opened, ran=objective.completed, enqueued=enqueued, requeued=requeued)


def load_optuna_study(name: str, storage_url: str) -> optuna.Study:
    storage = optuna_storage(storage_url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "none"
        raise StorageError(
            f"study {name!r} is not in the database; studies there: {known}"
        ) from None
