"""Where each study stands: trial counts, best value, elapsed and remaining time (one
formula, `time_left`, for `libkd status` and the runner's ETA)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import StorageError
from harness.store import (
    EMPTY_ATTR,
    KIND_ATTR,
    RETRIED_FROM,
    Store,
    load_optuna_study,
    pending_by_config,
    reading_storage,
    study_names,
)

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class StudyStatus:
    name: str
    kind: str
    counts: dict[str, int]  # Optuna trial state (lower case) -> trials
    best: float | None
    elapsed_seconds: float
    remaining_seconds: float | None


@dataclass(frozen=True)
class Workload:
    """What the time left needs beyond the database's rows (from the study file): the
    configurations each of whose seeds builds its own teachers and caches (the seed scope
    names the teachers, views or subset), the (configuration, seed) pairs another study of
    the database ran (copied, free), and for a search its trial budget times its seeds."""

    per_seed_builds: frozenset[str] = frozenset()
    copies: frozenset[tuple[str, int]] = frozenset()
    search_trials: int | None = None
    seeds: int = 1


def time_left(
    store: Store, name: str, workload: Workload, *, finished: int, running: int
) -> float | None:
    """Seconds until the study is done, spread over the trials running now; None before
    any run completes. A grid's waiting and running trials each cost their own
    configuration's mean training time (the study's mean, one-offs included, for a
    configuration with none in yet), plus its teachers' and caches' build only where each
    seed builds its own; a copied pair costs nothing. A search's trials left cost the
    study's mean run, once per seed."""
    means = store.mean_run_seconds(name)
    if not means:
        return None
    if workload.search_trials is not None:
        left = max(0, workload.search_trials - finished)
        return means[None] * left * workload.seeds / max(1, running)
    todo = pending_by_config(store.engine, name, except_pairs=workload.copies)
    training = store.mean_run_seconds(name, one_offs=False)
    builds = store.mean_build_seconds(name)
    work = 0.0
    for config, n in todo.items():
        if config not in training:
            work += means[None] * n
            continue
        build = builds.get(config, 0.0) if config in workload.per_seed_builds else 0.0
        work += (training[config] + build) * n
    return work / max(1, running)


def study_status(
    study: optuna.Study, store: Store, workload: Workload | None = None
) -> StudyStatus:
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(EMPTY_ATTR)]
    counts = {state.name.lower(): 0 for state in TrialState}
    # A failed (or interrupted) trial that was re-queued is not a failure of the study: its
    # waiting copy is the trial now. It counts as "retried", apart from the failures.
    retried = {t.system_attrs[RETRIED_FROM] for t in trials if RETRIED_FROM in t.system_attrs}
    counts["retried"] = 0
    for trial in trials:
        if trial.state == TrialState.FAIL and trial.number in retried:
            counts["retried"] += 1
        else:
            counts[trial.state.name.lower()] += 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = None
    if complete:
        values = [t.values[0] for t in complete]
        best = max(values) if study.directions[0].name == "MAXIMIZE" else min(values)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    elapsed = 0.0
    if starts:
        last = dt.datetime.now() if counts["running"] else max(ends or starts)
        elapsed = (last - min(starts)).total_seconds()
    remaining = time_left(
        store,
        study.study_name,
        workload or Workload(),
        finished=counts["complete"] + counts["fail"],
        running=counts["running"],
    )
    kind = study.user_attrs.get(KIND_ATTR, "optuna")
    return StudyStatus(study.study_name, kind, counts, best, elapsed, remaining)


def statuses(
    store: Store,
    name: str | None = None,
    workload: Callable[[str], Workload] | None = None,
) -> list[StudyStatus]:
    """Every study in the database, or the one named (an error listing them if unknown);
    `workload` gives a study's `Workload` by name (what its study file says)."""
    storage = reading_storage(store)
    names = study_names(storage)
    if name is not None:
        if name not in names:
            raise StorageError(
                f"study {name!r} is not in this database; studies there: "
                f"{', '.join(names) or 'none'}"
            )
        names = [name]
    return [
        study_status(load_optuna_study(n, storage), store, workload(n) if workload else None)
        for n in names
    ]
