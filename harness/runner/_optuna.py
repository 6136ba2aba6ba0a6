"""Optuna storage, studies, and the grid queue (one waiting trial per configuration and seed)."""

from __future__ import annotations

import socket
from typing import Any, Literal

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from harness.analysis import Aim, finished_runs, seeds_to_add
from harness.config import TrialConfig
from harness.runner._context import pid_alive
from harness.status import RunStatus
from harness.store import (
    CONFIG_ATTR,
    FACTORS_ATTR,
    HASH_ATTR,
    KIND_ATTR,
    OVERRIDES_ATTR,
    SEED_ATTR,
    SOURCE_ATTR,
    STUDY_FILE_ATTR,
    WORKER_ATTR,
    ContrastRow,
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
    opened.set_user_attr(OVERRIDES_ATTR, list(study.overrides))
    return opened


def spec_attrs(spec: TrialSpec) -> dict[str, Any]:
    return {
        CONFIG_ATTR: spec.config.model_dump(mode="json"),
        HASH_ATTR: spec.config_hash,
        SEED_ATTR: spec.seed,
        FACTORS_ATTR: spec.factors,
    }


def spec_from_attrs(attrs: dict[str, Any], *, paths: tuple[str, ...] = ()) -> TrialSpec:
    """The queued trial's spec; `paths` (the study's grid keys) keep its label the grid's."""
    return TrialSpec(
        config=TrialConfig.model_validate(attrs[CONFIG_ATTR]),
        config_hash=attrs[HASH_ATTR],
        factors=attrs.get(FACTORS_ATTR, {}),
        paths=paths,
        seed=attrs[SEED_ATTR],
    )


def queued_pairs(opened: optuna.Study) -> set[tuple[str, int]]:
    """Every (configuration hash, seed) queued in the study, in any state."""
    present = set()
    for trial in opened.get_trials(deepcopy=False):
        fixed = trial.system_attrs.get("fixed_params", {})
        present.add((fixed.get("config"), fixed.get("seed")))
    return present


def enqueue_grid(opened: optuna.Study, study: Study, specs: list[TrialSpec] | None = None) -> int:
    """Enqueue every (configuration, seed) of `specs` (default: the study's first seeds)
    not yet in the study; returns how many were added.

    The trials already there are read once: Optuna's `skip_if_exists` reads them all again
    for every trial it enqueues, which made queueing 1,000 trials take minutes.
    """
    present = queued_pairs(opened)
    added = 0
    for spec in study.trials() if specs is None else specs:
        if (spec.config_hash, spec.seed) in present:
            continue
        opened.enqueue_trial(
            {"config": spec.config_hash, "seed": spec.seed}, user_attrs=spec_attrs(spec)
        )
        present.add((spec.config_hash, spec.seed))
        added += 1
    return added


def save_contrasts(store: Store, study: Study) -> None:
    """Record the study's contrasts (and the seed plan's target on those it aims at), so
    reports and `status` read them from the database alone."""
    plan = study.seed_plan
    rows = [
        ContrastRow(
            study=study.name,
            name=contrast.name,
            position=position,
            treatment_hash=contrast.treatment.config_hash,
            control_hash=contrast.control.config_hash,
            treatment_label=contrast.treatment.label,
            control_label=contrast.control.label,
            margin=contrast.margin,
            halfwidth=plan.target.halfwidth if plan and contrast.targeted else None,
            min_seeds=plan.min if plan and contrast.targeted else None,
            max_seeds=plan.max if plan and contrast.targeted else None,
        )
        for position, contrast in enumerate(study.contrasts)
    ]
    store.save_contrasts(study.name, rows)


def seed_aims(study: Study) -> list[Aim]:
    """The seed plan's targeted contrasts as the precision rule reads them."""
    plan = study.seed_plan
    if plan is None:
        return []
    return [
        Aim(
            c.name,
            c.treatment.config_hash,
            c.control.config_hash,
            plan.target.halfwidth,
            plan.min,
            plan.max,
        )
        for c in study.contrasts
        if c.targeted
    ]


def seeds_wanted(opened: optuna.Study, study: Study, store: Store) -> list[TrialSpec]:
    """The (configuration, seed) runs the seed plan asks for now and that are not queued:
    for each targeted contrast whose first stage is in, the seeds its two-stage plan needs."""
    aims = seed_aims(study)
    if not aims:
        return []
    queued: dict[str, set[int]] = {}
    for config, seed in queued_pairs(opened):
        queued.setdefault(config, set()).add(seed)
    finished, values = finished_runs(store, study.name)
    points = {point.config_hash: point for point in study.configs}
    wanted = seeds_to_add(aims, queued=queued, finished=finished, values=values)
    return [points[config].with_seed(seed) for config, seed in sorted(wanted, key=_seed_first)]


def _seed_first(pair: tuple[str, int]) -> tuple[int, str]:
    return pair[1], pair[0]


def extend_seeds(opened: optuna.Study, study: Study, store: Store) -> int:
    """Queue what the seed plan asks for now, each (configuration, seed) only by the one
    worker whose claim on it succeeds: workers anywhere may look at the same moment."""
    claimed = [
        spec
        for spec in seeds_wanted(opened, study, store)
        if store.claim_seed(study.name, spec.config_hash, spec.seed)
    ]
    return enqueue_grid(opened, study, claimed) if claimed else 0


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
