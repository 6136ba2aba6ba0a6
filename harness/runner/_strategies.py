"""The two strategies of a runner session: a grid queues every (configuration, seed) as a
waiting trial; a search samples a configuration per trial and evaluates it on every seed."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import optuna
from optuna.trial import TrialState

from harness._registry import Registry
from harness.config import Objective
from harness.errors import StudyError, TrialError
from harness.metrics import CURVE_METRICS
from harness.runner._context import RunContext, RunnerSettings, StudyProgress
from harness.runner._optuna_study import fixed_params, labelled, record_params, spec_for
from harness.runner._queue import enqueue_grid, repair_claims
from harness.runner._retry import requeue_interrupted
from harness.runner._seed_plan import extend_seeds, save_contrasts, seeds_wanted
from harness.runner._shield import answered, raise_if_terminated
from harness.runner._trial import run_identity, run_trial
from harness.status import RunStatus
from harness.store import CODES_ATTR, COPIED_ATTR, EMPTY_ATTR, HASH_ATTR, WORKER_ATTR, Store
from harness.study import PRUNERS, SAMPLERS, Study, TrialSpec, resolve_point, suggest

if TYPE_CHECKING:
    from optuna.storages import RDBStorage
    from optuna.trial import FrozenTrial


TrialCallback = Callable[[optuna.Study, "FrozenTrial"], None]
"""An Optuna trial callback, as `optuna.Study.optimize` takes it."""


def _real_trials_only(callback: TrialCallback) -> TrialCallback:
    """A user's callback that never sees the placeholder trial a worker closes when another
    took the last waiting trial first (it ran nothing)."""

    def call(study: optuna.Study, trial: FrozenTrial) -> None:
        if not trial.user_attrs.get(EMPTY_ATTR):
            callback(study, trial)

    return call


class StudyView(Protocol):
    """What a strategy reads of a runner session: the study, its store, Optuna's study and
    storage, the workers' settings, and counts and progress from the database. A strategy
    writes nothing back: `work` returns what it did."""

    study: Study
    store: Store
    storage: RDBStorage
    opened: optuna.Study
    settings: RunnerSettings

    def count(self, state: TrialState) -> int: ...

    def trials(self, *states: TrialState) -> list[FrozenTrial]: ...

    def progress(self) -> StudyProgress: ...


@dataclass
class WorkCounts:
    """What one call of a strategy's `work` did in this process."""

    ran: int = 0  # trials trained here
    copied: int = 0  # runs copied from another study of the database


class Strategy(Protocol):
    """How a kind of study picks its trials: a grid queues them, a search samples them."""

    def sampler(self, study: Study) -> optuna.samplers.BaseSampler: ...

    def pruner(self, study: Study) -> optuna.pruners.BasePruner: ...

    def enqueue(self, session: StudyView) -> int:
        """Queue what the study declares and is not queued yet; returns how many."""
        ...

    def work(
        self,
        session: StudyView,
        ctx: RunContext,
        *,
        max_trials: int | None,
        timeout: float | None,
        callbacks: tuple[TrialCallback, ...] = (),
    ) -> WorkCounts:
        """Run trials until the study is done or a limit is reached, calling `callbacks`
        after each trial; return what ran."""
        ...


def objective_values(objectives: tuple[Objective, ...], metrics: dict[str, Any]) -> list[float]:
    """The study's objective values, in order, from a finished run's metrics."""
    return [float(metrics[objective.metric]) for objective in objectives]


STRATEGIES: Registry[Strategy] = Registry("study kind")
IDLE_POLL_SECONDS = 0.5


def strategy_for(study: Study) -> Strategy:
    return STRATEGIES.get(study.kind.value)


ObjectiveFn = Callable[[optuna.Trial], "list[float] | float"]


def requeued_on_interrupt(opened: optuna.Study, objective: ObjectiveFn) -> ObjectiveFn:
    """The objective, with an interrupt (Ctrl-C, SIGTERM from a time limit, scancel or
    preemption) anywhere in a trial it took, loading data and copying a run included,
    re-queueing that trial before it propagates. A placeholder trial (no queued trial was
    left to take) is not re-queued: it stood for nothing."""

    def guarded(trial: optuna.Trial) -> list[float] | float:
        try:
            raise_if_terminated()
            return objective(trial)
        except KeyboardInterrupt:
            answered()
            if HASH_ATTR in trial.user_attrs:
                requeue_interrupted(opened, trial)
            raise

    return guarded


def _run_reported(
    session: StudyView,
    ctx: RunContext,
    spec: TrialSpec,
    trial: optuna.Trial,
    *,
    number: int,
    total: int,
    prune_metric: str | None = None,
) -> dict[str, Any]:
    """One run with progress events."""
    ctx.progress.trial_started(spec, number=number, total=total, study=session.progress())
    status, metrics = RunStatus.FAILED, {}
    try:
        outcome = run_trial(
            spec, ctx, trial_number=trial.number, trial=trial, prune_metric=prune_metric
        )
        status, metrics = RunStatus.COMPLETE, outcome.metrics
    except optuna.TrialPruned:
        status = RunStatus.PRUNED
        raise
    finally:
        ctx.progress.trial_finished(spec, status=status, metrics=metrics)
    return metrics


def _copy_into(
    session: StudyView,
    ctx: RunContext,
    spec: TrialSpec,
    trial: optuna.Trial,
    *,
    curve: str | None,
    counts: WorkCounts,
) -> dict[str, Any] | None:
    """The metrics of another study's complete run of `spec`, copied into this study (its
    curve reported to the Optuna trial, as a run trained here reports it); None when the
    study trains every run itself or no other study has one."""
    if not session.study.file.reuse_runs:
        return None
    run = session.store.copy_run(
        run_identity(spec, study=session.study.name, trial_number=trial.number),
        inputs=ctx.inputs_keys(spec.config.for_seed(spec.seed)),
    )
    if run is None:
        return None
    assert run.adopted_from is not None  # set by copy_run
    trial.set_user_attr(COPIED_ATTR, run.adopted_from)
    if curve is not None:
        for epoch, value in session.store.curve(run.adopted_from, curve):
            trial.report(value, epoch)
    ctx.progress.trial_copied(spec, source=run.adopted_from, metrics=run.metrics)
    counts.copied += 1
    return dict(run.metrics)


class GridStrategy:
    def sampler(self, study: Study) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=0)  # never asked: every trial is queued

    def pruner(self, study: Study) -> optuna.pruners.BasePruner:
        return optuna.pruners.NopPruner()

    def enqueue(self, session: StudyView) -> int:
        """The study's first seeds, what its seed plan asks for on the runs already in, and
        any pair another process claimed and never queued (a resumed study picks up its
        second stage even if the worker that would have queued it died after claiming it)."""
        opened, study, store = session.opened, session.study, session.store
        save_contrasts(store, study)
        return (
            repair_claims(opened, study, store, grace=session.settings.grace)
            + enqueue_grid(opened, study, store)
            + enqueue_grid(opened, study, store, seeds_wanted(opened, study, store))
        )

    def work(
        self,
        session: StudyView,
        ctx: RunContext,
        *,
        max_trials: int | None,
        timeout: float | None,
        callbacks: tuple[TrialCallback, ...] = (),
    ) -> WorkCounts:
        """Take waiting trials until none is waiting or running. While other workers still
        run trials, wait and check their heartbeats: a trial whose worker died is failed
        after the grace period, re-queued, and taken here."""
        opened, objectives = session.opened, session.study.file.objectives
        counts = WorkCounts()
        budget = max_trials if max_trials is not None else float("inf")
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        total = session.count(TrialState.WAITING)
        started = 0
        # The validation curve goes to Optuna as intermediate values (its tools plot them;
        # the grid's pruner never prunes).
        first = objectives[0].metric
        curve = first if first in CURVE_METRICS else None
        study_id = session.storage.get_study_id_from_name(session.study.name)
        labels = labelled(opened)

        def objective(trial: optuna.Trial) -> list[float] | float:
            nonlocal started
            if HASH_ATTR not in trial.user_attrs:
                # Another worker took the last waiting trial between our look and our ask.
                trial.set_user_attr(EMPTY_ATTR, True)
                opened.stop()
                raise optuna.TrialPruned("no waiting trial left")
            trial.set_user_attr(WORKER_ATTR, ctx.worker)
            started += 1
            spec = spec_for(trial, session.study)
            fixed = fixed_params(session.storage, study_id, trial.number)
            record_params(
                trial,
                spec,
                session.study,
                lambda: opened.user_attrs.get(CODES_ATTR, {}),
                fixed,
                labels=labels,
                storage=session.storage,
                trial_id=session.storage.get_trial_id_from_study_id_trial_number(
                    study_id, trial.number
                ),
            )
            done = session.store.complete_run_metrics(
                session.study.name, spec.config_hash, spec.seed
            )
            if done is not None:  # queued twice in a race: the run is not repeated
                values = objective_values(objectives, done)
                return values if len(values) > 1 else values[0]
            metrics = _copy_into(session, ctx, spec, trial, curve=curve, counts=counts)
            if metrics is None:
                metrics = _run_reported(
                    session, ctx, spec, trial, number=started, total=total, prune_metric=curve
                )
                counts.ran += 1
            values = objective_values(objectives, metrics)
            return values if len(values) > 1 else values[0]

        def stop_when_queue_empty(study: optuna.Study, _trial: object) -> None:
            if not session.count(TrialState.WAITING):
                study.stop()

        taken, last_stale_check = 0, time.monotonic()
        while taken < budget and time.monotonic() < deadline:
            todo = int(min(session.count(TrialState.WAITING), budget - taken))
            if todo:
                opened.optimize(
                    requeued_on_interrupt(opened, objective),
                    n_trials=todo,
                    catch=(Exception,),
                    gc_after_trial=False,
                    callbacks=[*map(_real_trials_only, callbacks), stop_when_queue_empty],
                    timeout=None if timeout is None else max(1.0, deadline - time.monotonic()),
                )
                taken += todo
                continue
            if extend_seeds(opened, session.study, session.store):
                continue  # a contrast's first stage is in: its second stage is queued
            grace = session.settings.grace
            if repair_claims(opened, session.study, session.store, grace=grace):
                continue  # a pair another worker claimed and never queued
            pending = session.store.pending_claims(session.study.name)
            if not pending and not session.count(TrialState.RUNNING):
                break
            # Look often, so an idle worker leaves as soon as the last trial ends; check for
            # dead workers' trials once a heartbeat.
            time.sleep(min(IDLE_POLL_SECONDS, session.settings.heartbeat))
            if time.monotonic() - last_stale_check >= session.settings.heartbeat:
                optuna.storages.fail_stale_trials(opened)
                last_stale_check = time.monotonic()
        return counts


class SearchStrategy:
    """Each Optuna trial is one configuration evaluated on every seed of the study; its value
    is the mean over seeds, and each seed is a run row of its own."""

    def sampler(self, study: Study) -> optuna.samplers.BaseSampler:
        assert study.file.search is not None  # a search study has a search section
        return SAMPLERS.get(study.file.search.sampler).make(study.file.search)

    def pruner(self, study: Study) -> optuna.pruners.BasePruner:
        assert study.file.search is not None
        return PRUNERS.get(study.file.search.pruner)(study.file.search, study.file.train.epochs)

    def enqueue(self, session: StudyView) -> int:
        return 0  # the sampler proposes each trial when it starts

    def work(
        self,
        session: StudyView,
        ctx: RunContext,
        *,
        max_trials: int | None,
        timeout: float | None,
        callbacks: tuple[TrialCallback, ...] = (),
    ) -> WorkCounts:
        """Run until `search.n_trials` trials are finished, or `max_trials` more."""
        search = session.study.file.search
        assert search is not None
        finished = session.trials(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        waiting = session.count(TrialState.WAITING)
        todo = max_trials if max_trials is not None else max(0, search.n_trials - len(finished))
        todo += waiting if max_trials is None else 0
        counts = WorkCounts()
        if todo:
            session.opened.optimize(
                requeued_on_interrupt(session.opened, self._objective(session, ctx, todo, counts)),
                n_trials=todo,
                timeout=timeout,
                catch=(Exception,),
                gc_after_trial=False,
                callbacks=list(callbacks),
            )
        return counts

    def _objective(
        self, session: StudyView, ctx: RunContext, total: int, counts: WorkCounts
    ) -> Callable[[optuna.Trial], list[float] | float]:
        study = session.study
        search, objectives = study.file.search, study.file.objectives
        assert search is not None
        # Optuna prunes single-objective studies only; the first seed's curve drives pruning.
        first = objectives[0].metric
        prune_metric = first if len(objectives) == 1 and first in CURVE_METRICS else None
        started = 0

        def objective(trial: optuna.Trial) -> list[float] | float:
            nonlocal started
            trial.set_user_attr(WORKER_ATTR, ctx.worker)
            try:
                point = resolve_point(study, suggest(trial, search, study.base()))
            except StudyError as exc:
                raise TrialError(f"invalid point: {exc}") from None
            trial.set_user_attr(HASH_ATTR, point.config_hash)
            started += 1
            per_seed: list[list[float]] = []
            for i, seed in enumerate(study.seeds):
                spec = point.with_seed(seed)
                metrics = session.store.complete_run_metrics(study.name, point.config_hash, seed)
                if metrics is None:
                    metrics = _copy_into(
                        session,
                        ctx,
                        spec,
                        trial,
                        curve=prune_metric if i == 0 else None,
                        counts=counts,
                    )
                if metrics is None:
                    metrics = _run_reported(
                        session,
                        ctx,
                        spec,
                        trial,
                        number=started,
                        total=total,
                        prune_metric=prune_metric if i == 0 else None,
                    )
                per_seed.append(objective_values(objectives, metrics))
            counts.ran += 1
            means = [statistics.fmean(values) for values in zip(*per_seed)]
            return means if len(means) > 1 else means[0]

        return objective


STRATEGIES.register("grid")(GridStrategy())
STRATEGIES.register("search")(SearchStrategy())
