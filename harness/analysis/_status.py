"""Where each study stands: trial counts, best value, elapsed and remaining time (one
formula, `time_left`, for `libkd status` and the runner's ETA)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import StorageError
from harness.store import (
    Store,
    optuna_study_names,
    pending_by_config,
    study_kind,
    trial_overview,
)


@dataclass(frozen=True)
class StudyStatus:
    name: str
    kind: str
    counts: dict[str, int]  # Optuna trial state (lower case) -> trials
    best: float | None
    elapsed_seconds: float  # while any trial ran: the gaps between sittings are not counted
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


def study_status(store: Store, name: str, workload: Workload | None = None) -> StudyStatus:
    """Where the study `name` stands, counted by the database (no Optuna trial is built)."""
    found = trial_overview(store.engine, name)
    counts = found.counts
    remaining = time_left(
        store,
        name,
        workload or Workload(),
        finished=counts["complete"] + counts["fail"],
        running=counts["running"],
    )
    kind = study_kind(store.engine, name) or "optuna"
    return StudyStatus(name, kind, counts, found.best, found.active_seconds, remaining)


def statuses(
    store: Store,
    name: str | None = None,
    workload: Callable[[str], Workload] | None = None,
) -> list[StudyStatus]:
    """Every study in the database, or the one named (an error listing them if unknown);
    `workload` gives a study's `Workload` by name (what its study file says)."""
    names = optuna_study_names(store.engine)
    if name is not None:
        if name not in names:
            raise StorageError(
                f"study {name!r} is not in this database; studies there: "
                f"{', '.join(names) or 'none'}"
            )
        names = [name]
    return [study_status(store, n, workload(n) if workload else None) for n in names]
