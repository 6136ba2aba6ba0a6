"""One runner session: a study opened on a store and Optuna's storage, owning queueing,
re-queueing, retries, the counts and the summary. Grid and search are its strategies;
`libkd run`, `libkd run --workers N` and `libkd worker` all go through it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from harness.analysis import time_left
from harness.config import StudyKind
from harness.runner._context import (
    Progress,
    RunContext,
    RunnerSettings,
    SilentProgress,
    StudyProgress,
    resolve_device,
)
from harness.runner._eta import study_workload
from harness.runner._optuna_study import open_study
from harness.runner._queue import take_next_waiting
from harness.runner._retry import reconcile_runs, requeue_dead_local, retry_failed
from harness.runner._strategies import TrialCallback, strategy_for
from harness.store import (
    Store,
    count_in_state,
    optuna_storage,
    trial_overview,
    utcnow,
)
from harness.study import Study


@dataclass(frozen=True)
class FailedTrial:
    label: str
    seed: int
    error: str


@dataclass(frozen=True)
class RunSummary:
    """What one call did (`enqueued`, `requeued`, `ran`, the trials it left failed, `copied`:
    the runs it copied from other studies instead of training) and where the study stands
    (`complete`, `failed`, `waiting` trials in all; `retried`: failed or interrupted trials
    a re-queued copy stands for, not counted as failed, as `libkd status` counts them)."""

    study: str
    enqueued: int
    requeued: int
    ran: int
    complete: int
    failed: int
    waiting: int = 0
    failed_now: tuple[FailedTrial, ...] = ()
    copied: int = 0
    retried: int = 0


class RunnerSession:
    """A study opened for running. Counts are the session's own: `enqueued` and `requeued`
    by `prepare`, `ran` by the trials it completed (or its local workers completed)."""

    def __init__(self, study: Study, *, store: Store, settings: RunnerSettings | None = None):
        self.study, self.store = study, store
        self.settings = settings or RunnerSettings()
        self.storage = optuna_storage(
            store.url,
            heartbeat=self.settings.heartbeat,
            grace=self.settings.grace,
            max_retry=self.settings.max_retry,
        )
        self.strategy = strategy_for(study)
        self.opened = open_study(
            study,
            self.storage,
            store=store,
            sampler=self.strategy.sampler(study),
            pruner=self.strategy.pruner(study),
        )
        take_next_waiting(self.opened, self.storage)
        self.enqueued = self.requeued = self.ran = self.copied = 0
        self.started_at = utcnow()
        self.worker_exit_codes: list[int] = []  # of local worker processes, if any
        self.local_workers = 1  # workers this machine runs the study with (`run_local_workers`)

    def prepare(self, *, retry: bool = False, enqueue: bool = True) -> None:
        """Re-queue trials of dead local workers (and failed ones with `retry`), then queue
        what the study declares (unless a worker only takes what is queued)."""
        self.requeued += requeue_dead_local(self.opened, self.storage, self.store)
        if retry:
            self.requeued += retry_failed(self.opened)
        if enqueue:
            self.enqueued += self.strategy.enqueue(self)

    def work(
        self,
        *,
        cache_dir: Path,
        device: str = "auto",
        progress: Progress | None = None,
        max_trials: int | None = None,
        timeout: float | None = None,
        callbacks: Sequence[TrialCallback] = (),
    ) -> RunSummary:
        """Run trials in this process until none is left (or a limit); returns the summary.
        `callbacks` are Optuna's: each is called with the study and every trial this
        process finishes, as `optuna.Study.optimize` calls them (a tracker, a notifier)."""
        ctx = RunContext(
            store=self.store,
            cache_dir=cache_dir,
            device=resolve_device(device),
            study=self.study.name,
            progress=progress or SilentProgress(),
        )
        counts = self.strategy.work(
            self, ctx, max_trials=max_trials, timeout=timeout, callbacks=tuple(callbacks)
        )
        self.ran += counts.ran
        self.copied += counts.copied
        reconcile_runs(self.opened, self.store)
        return self.summary()

    def trials(self, *states: TrialState) -> list[optuna.trial.FrozenTrial]:
        return self.opened.get_trials(deepcopy=False, states=states or None)

    def progress(self) -> StudyProgress:
        """The study's progress over every worker, from the database."""
        # A failed trial a re-queued copy stands for is not finished: its copy counts.
        counts = trial_overview(self.storage.engine, self.study.name).counts
        finished = counts["complete"] + counts["fail"]
        waiting, running = counts["waiting"], counts["running"]
        if self.study.kind is StudyKind.SEARCH:
            search = self.study.file.search
            total = max(finished, search.n_trials if search else 0)
        else:
            total = finished + waiting + running
        workload = study_workload(self.study, self.store)
        # This machine's workers share what is left even before each has taken its trial
        # (the first trial's line is printed while the second worker is starting).
        sharing = max(running, min(self.local_workers, running + waiting))
        eta = time_left(self.store, self.study.name, workload, finished=finished, running=sharing)
        return StudyProgress(finished=finished, total=total, eta_seconds=eta)

    def count(self, state: TrialState) -> int:
        """How many trials are in `state`, without reading them."""
        return count_in_state(self.storage.engine, self.study.name, state.name)

    def summary(self) -> RunSummary:
        failures = self.store.unresolved_failures(self.study.name, since=self.started_at)
        counts = trial_overview(self.storage.engine, self.study.name).counts
        return RunSummary(
            study=self.study.name,
            enqueued=self.enqueued,
            requeued=self.requeued,
            ran=self.ran,
            complete=counts["complete"],
            failed=counts["fail"],  # less the retried, whose copies stand for them
            waiting=counts["waiting"],
            failed_now=tuple(FailedTrial(r.label, r.seed, r.error or "") for r in failures),
            copied=self.copied,
            retried=counts["retried"],
        )


def run_study(
    study: Study,
    *,
    store: Store,
    cache_dir: Path,
    device: str = "auto",
    progress: Progress | None = None,
    max_trials: int | None = None,
    timeout: float | None = None,
    retry: bool = False,
    settings: RunnerSettings | None = None,
    callbacks: Sequence[TrialCallback] = (),
) -> RunSummary:
    """Queue a study (re-queueing what dead workers left, and failed trials with `retry`)
    and run it in this process: the library's `libkd run`. `callbacks`: Optuna trial
    callbacks, called after each trial this process finishes."""
    session = RunnerSession(study, store=store, settings=settings)
    session.prepare(retry=retry)
    return session.work(
        cache_dir=cache_dir,
        device=device,
        progress=progress,
        max_trials=max_trials,
        timeout=timeout,
        callbacks=callbacks,
    )
