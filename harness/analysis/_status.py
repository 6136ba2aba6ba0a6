"""Where each study stands: trial counts, best value, elapsed and remaining time (one
formula, `time_left`, for `libkd status` and the runner's ETA)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import StorageError
from harness.store import (
    Store,
    config_factors,
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
    configuration's mean training time, plus its teachers' and caches' build only where
    each seed builds its own; a copied pair costs nothing. A configuration with no run in
    yet costs what the configurations with its teachers cost (`sibling_costs`: teachers
    dominate a distillation run's cost), else the study's mean run, one-offs included. A
    search's trials left cost the study's mean run, once per seed."""
    means = store.mean_run_seconds(name)
    if not means:
        return None
    if workload.search_trials is not None:
        left = max(0, workload.search_trials - finished)
        return means[None] * left * workload.seeds / max(1, running)
    todo = pending_by_config(store.engine, name, except_pairs=workload.copies)
    training = store.mean_run_seconds(name, one_offs=False)
    builds = store.mean_build_seconds(name)
    costs = {
        config: seconds + (builds.get(config, 0.0) if config in workload.per_seed_builds else 0.0)
        for config, seconds in training.items()
        if config is not None
    }
    unseen = todo.keys() - costs.keys()
    siblings = sibling_costs(config_factors(store.engine, name), costs) if unseen else {}
    work = sum(costs.get(c, siblings.get(c, means[None])) * n for c, n in todo.items())
    return work / max(1, running)


TEACHERS_FACTOR = "distill.teachers"


def sibling_costs(
    factors: dict[str, dict[str, object]], costs: dict[str, float]
) -> dict[str, float]:
    """For each configuration without a cost (no run in yet) whose grid varies its
    teachers, the mean cost of the costed configurations with the same teachers: in a
    data-size grid a distilled run's teachers cost several times its student, so the
    study's mean run (half of them plain) would understate it. None where no costed
    configuration shares them."""
    by_teachers: dict[str, list[float]] = {}
    for config, cost in costs.items():
        if TEACHERS_FACTOR in factors.get(config, {}):
            key = repr(factors[config][TEACHERS_FACTOR])
            by_teachers.setdefault(key, []).append(cost)
    found: dict[str, float] = {}
    for config, named in factors.items():
        if config in costs or TEACHERS_FACTOR not in named:
            continue
        same = by_teachers.get(repr(named[TEACHERS_FACTOR]))
        if same:
            found[config] = sum(same) / len(same)
    return found


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
