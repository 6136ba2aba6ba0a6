"""Optuna storage, studies, and the grid queue (one waiting trial per configuration and seed)."""

from __future__ import annotations

import socket
from typing import Any, Literal

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from harness.config import TrialConfig
from harness.runner._context import pid_alive
from harness.status import RunStatus
from harness.store import (
    CONFIG_ATTR,
    FACTORS_ATTR,
    HASH_ATTR,
    KIND_ATTR,
    SEED_ATTR,
    SOURCE_ATTR,
    STUDY_FILE_ATTR,
    WORKER_ATTR,
    Store,
)
from harness.study import Study, TrialSpec


def directions(study: Study) -> list[Literal["maximize", "minimize"]]:
    return [objective.direction for objective in study.file.objectives]


def open_study(
    study: Study,
    storage: RDBStorage,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    opened = optuna.create_study(
        study_name=study.name,
        storage=storage,
        directions=directions(study),
        load_if_exists=True,
        sampler=sampler or optuna.samplers.RandomSampler(seed=0),
        pruner=pruner or optuna.pruners.NopPruner(),
    )
    opened.set_user_attr(KIND_ATTR, study.kind.value)
    opened.set_user_attr(STUDY_FILE_ATTR, study.file.model_dump(mode="json"))
    opened.set_user_attr(SOURCE_ATTR, str(study.source))
    return opened


def spec_attrs(spec: TrialSpec) -> dict[str, Any]:
    return {
        CONFIG_ATTR: spec.config.model_dump(mode="json"),
        HASH_ATTR: spec.config_hash,
        SEED_ATTR: spec.seed,
        FACTORS_ATTR: spec.factors,
    }


def spec_from_attrs(attrs: dict[str, Any]) -> TrialSpec:
    return TrialSpec(
        config=TrialConfig.model_validate(attrs[CONFIG_ATTR]),
        config_hash=attrs[HASH_ATTR],
        factors=attrs.get(FACTORS_ATTR, {}),
        seed=attrs[SEED_ATTR],
    )


def enqueue_grid(opened: optuna.Study, study: Study) -> int:
    """Enqueue every (configuration, seed) not yet in the study; returns how many were added.

    The trials already there are read once: Optuna's `skip_if_exists` reads them all again
    for every trial it enqueues, which made queueing 1,000 trials take minutes.
    """
    present = set()
    for trial in opened.get_trials(deepcopy=False):
        fixed = trial.system_attrs.get("fixed_params", {})
        present.add((fixed.get("config"), fixed.get("seed")))
    added = 0
    for spec in study.trials():
        if (spec.config_hash, spec.seed) in present:
            continue
        opened.enqueue_trial(
            {"config": spec.config_hash, "seed": spec.seed}, user_attrs=spec_attrs(spec)
        )
        present.add((spec.config_hash, spec.seed))
        added += 1
    return added


def requeue(opened: optuna.Study, trial: FrozenTrial) -> None:
    """A waiting copy of `trial`, linked to it (Optuna's retry bookkeeping)."""
    latest = opened.get_trials(deepcopy=False)[trial.number]
    RetryHeartbeatStaleTrialCallback(max_retry=None)(opened, latest)


def requeue_interrupted(opened: optuna.Study, trial: optuna.Trial) -> None:
    """Ctrl-C: put a waiting copy of the running trial back, so a re-run resumes it."""
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
            requeue(opened, trial)
            count += 1
    reconcile_runs(opened, store)
    return count


def reconcile_runs(opened: optuna.Study, store: Store) -> None:
    """Run rows left 'running' by a worker that died: mark them failed."""
    states = {t.number: t.state for t in opened.get_trials(deepcopy=False)}
    for run in store.runs(opened.study_name):
        if run.trial_number is None:
            continue
        if run.status == RunStatus.RUNNING and states.get(run.trial_number) not in (
            TrialState.RUNNING,
            None,
        ):
            store.finish_run(run.id, status=RunStatus.FAILED, error=f"worker {run.worker} died")


def retry_failed(opened: optuna.Study) -> int:
    """Re-queue every failed trial that has no retry yet (`libkd run --retry-failed`)."""
    trials = opened.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    count = 0
    for trial in trials:
        runnable = CONFIG_ATTR in trial.user_attrs or trial.params
        if trial.state == TrialState.FAIL and trial.number not in retried and runnable:
            requeue(opened, trial)
            count += 1
    return count
