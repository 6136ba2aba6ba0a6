"""Trials put back in the queue: on Ctrl-C or SIGTERM, when their worker on this host died,
on `--retry-failed`; and run rows a dead worker left running, marked failed."""

from __future__ import annotations

import socket

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from harness.runner._context import pid_alive
from harness.runner._shield import shielded
from harness.status import RunStatus
from harness.store import HASH_ATTR, WORKER_ATTR, Store


def requeue(opened: optuna.Study, trial: FrozenTrial) -> bool:
    """A waiting copy of `trial`, linked to it (Optuna's retry bookkeeping), unless one was
    made already: a trial re-queued on Ctrl-C and then found dead is re-queued once."""
    trials = opened.get_trials(deepcopy=False)
    if any(trial.number in t.system_attrs.get("retry_history", ()) for t in trials):
        return False
    RetryHeartbeatStaleTrialCallback(max_retry=None)(opened, trials[trial.number])
    return True


def requeue_interrupted(opened: optuna.Study, trial: optuna.Trial) -> None:
    """Ctrl-C or SIGTERM: put a waiting copy of the running trial back, so a re-run resumes
    it; a second signal waits until the copy is queued."""
    with shielded():
        requeue(opened, opened.get_trials(deepcopy=False)[trial.number])


def requeue_dead_local(opened: optuna.Study, storage: RDBStorage, store: Store) -> int:
    """Fail and re-queue running trials whose worker process on this host no longer exists.

    Heartbeats find dead workers anywhere after the grace period; on the same host the check
    is immediate, so `libkd run` right after a crash resumes without waiting.
    """
    host = socket.gethostname()
    study_id = storage.get_study_id_from_name(opened.study_name)
    count = 0
    for trial in opened.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(WORKER_ATTR, "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_system_attr(trial_id, "fail_reason", f"worker {owner} died")
        if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            count += requeue(opened, trial)
    reconcile_runs(opened, store)
    return count


def reconcile_runs(opened: optuna.Study, store: Store) -> None:
    """Run rows left 'running' by a worker that died: mark them failed. Only the trials of
    such rows are read (a study of 10,000 waiting trials has a handful running)."""
    running = [r for r in store.runs(opened.study_name, status=RunStatus.RUNNING)]
    if not running:
        return
    storage = opened._storage
    study_id = storage.get_study_id_from_name(opened.study_name)
    for run in running:
        if run.trial_number is None:
            continue
        try:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, run.trial_number)
        except KeyError:
            continue  # no such trial (a row written outside Optuna's queue)
        if storage.get_trial(trial_id).state != TrialState.RUNNING:
            store.finish_run(run.id, status=RunStatus.FAILED, error=f"worker {run.worker} died")


def retry_failed(opened: optuna.Study) -> int:
    """Re-queue every failed trial that has no retry yet (`libkd run --retry-failed`)."""
    trials = opened.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    count = 0
    for trial in trials:
        runnable = HASH_ATTR in trial.user_attrs or trial.params
        if trial.state == TrialState.FAIL and trial.number not in retried and runnable:
            count += requeue(opened, trial)
    return count
