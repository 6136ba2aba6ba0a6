"""Search studies: each Optuna trial is one configuration evaluated on every seed of the study;
its value is the mean over seeds, and each seed is a run row of its own."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import optuna
from optuna.trial import TrialState
from sqlalchemy import select

from harness.errors import StudyError, TrialError
from harness.runner._context import Progress, RunContext, SilentProgress, resolve_device
from harness.runner._optuna import (
    WORKER_ATTR,
    open_study,
    optuna_storage,
    reconcile_runs,
    requeue_dead_local,
    requeue_interrupted,
    retry_failed,
)
from harness.runner._run import (
    RunnerSettings,
    RunSummary,
    complete_count,
    objective_values,
    summarize,
)
from harness.runner._samplers import PRUNERS, SAMPLERS, suggest
from harness.runner._trial import run_trial
from harness.store import RunRow, Store
from harness.study import Study, resolve_point


def _finished_run(store: Store, study: str, config_hash: str, seed: int) -> dict | None:
    """Metrics of a complete run of this (configuration, seed), so it is never trained twice."""
    with store.session() as s:
        row = s.scalars(
            select(RunRow).where(
                RunRow.study == study,
                RunRow.config_hash == config_hash,
                RunRow.seed == seed,
                RunRow.status == "complete",
            )
        ).first()
        return None if row is None else dict(row.metrics)


def _search_objective(opened: optuna.Study, study: Study, ctx: RunContext, total: int):
    search = study.file.search
    objectives = study.file.objectives
    # Optuna prunes single-objective studies only; the first seed's curve drives pruning.
    prune_metric = objectives[0].metric if len(objectives) == 1 else None
    prune_metric = (
        prune_metric if prune_metric in ("val/top1", "val/top1_cls", "val/loss") else None
    )
    counter = {"n": 0}

    def objective(trial: optuna.Trial):
        trial.set_user_attr(WORKER_ATTR, ctx.worker)
        point = suggest(trial, search)
        try:
            base = resolve_point(study, point)
        except StudyError as exc:
            raise TrialError(f"invalid point: {exc}") from None
        trial.set_user_attr("libkd_hash", base.config_hash)
        counter["n"] += 1
        per_seed: list[list[float]] = []
        for i, seed in enumerate(study.file.seeds):
            spec = replace(base, seed=seed)
            metrics = _finished_run(ctx.store, study.name, spec.config_hash, seed)
            if metrics is None:
                ctx.progress.trial_started(spec, number=counter["n"], total=total)
                status = "failed"
                try:
                    outcome = run_trial(
                        spec,
                        ctx,
                        trial_number=trial.number,
                        trial=trial if i == 0 else None,
                        prune_metric=prune_metric,
                    )
                    status, metrics = "complete", outcome.metrics
                except optuna.TrialPruned:
                    status = "pruned"
                    raise
                except KeyboardInterrupt:
                    requeue_interrupted(opened, trial)
                    status = "interrupted (re-queued)"
                    raise
                finally:
                    ctx.progress.trial_finished(spec, status=status, metrics=metrics or {})
            per_seed.append(objective_values(objectives, metrics))
        means = [statistics.fmean(values) for values in zip(*per_seed)]
        return means if len(means) > 1 else means[0]

    return objective


def work_search(
    study: Study,
    *,
    storage_url: str,
    cache_dir: Path,
    device: str = "auto",
    progress: Progress | None = None,
    max_trials: int | None = None,
    timeout: float | None = None,
    retry: bool = False,
    settings: RunnerSettings | None = None,
) -> RunSummary:
    """Run the search until `search.n_trials` trials are finished, or `max_trials` more."""
    search = study.file.search
    settings = settings or RunnerSettings()
    store = Store(storage_url)
    storage = optuna_storage(
        storage_url,
        heartbeat=settings.heartbeat,
        grace=settings.grace,
        max_retry=settings.max_retry,
    )
    opened = open_study(
        study,
        storage,
        sampler=SAMPLERS.get(search.sampler)(search),
        pruner=PRUNERS.get(search.pruner)(search, study.file.train.epochs),
    )
    requeued = requeue_dead_local(opened, storage, store)
    if retry:
        requeued += retry_failed(opened)
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    done = len(opened.get_trials(deepcopy=False, states=finished))
    waiting = len(opened.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    todo = max_trials if max_trials is not None else max(0, search.n_trials - done) + waiting
    ctx = RunContext(
        store=store,
        cache_dir=cache_dir,
        device=resolve_device(device),
        study=study.name,
        progress=progress or SilentProgress(),
    )
    before = complete_count(opened)
    if todo:
        opened.optimize(
            _search_objective(opened, study, ctx, todo),
            n_trials=todo,
            timeout=timeout,
            catch=(Exception,),
            gc_after_trial=False,
        )
    reconcile_runs(opened, store)
    ran = complete_count(opened) - before
    return summarize(opened, ran=ran, enqueued=0, requeued=requeued)
