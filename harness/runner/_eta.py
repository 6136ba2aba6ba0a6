"""What a study's time left needs beyond its trials (`Workload`), for the runner's ETA and
`libkd status` alike. A grid's workload is read from its database (which configurations
build teachers per seed, by the configurations its runs were trained with; which pairs it
copies), so `status` imports neither the study schema nor Optuna; a search's trial budget
is in its study file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.analysis._status import Workload
from harness.errors import LibKDError
from harness.store import Store

if TYPE_CHECKING:
    from harness.study import Study

PER_SEED_SCOPES = frozenset({"teacher", "augment", "subset"})
"""A seed scope naming any of these gives each seed its own teachers or caches to build."""


def builds_per_seed(config: Mapping[str, Any]) -> bool:
    """Whether each seed of the configuration (a stored `TrialConfig`) builds its own
    teachers and caches: it has teachers and its seed scope varies them, their views or
    their training subset (a row without either field builds nothing per seed)."""
    teachers = (config.get("distill") or {}).get("teachers")
    return bool(teachers) and bool(set(config.get("seed_scope") or ()) & PER_SEED_SCOPES)


def grid_workload(store: Store, name: str, *, reuse_runs: bool) -> Workload:
    """A grid's workload from its database. Only configurations with runs have a build time
    to charge (`time_left` charges the others the study's mean run), so the configurations
    its runs were trained with say all that matters."""
    per_seed = {key for key, config in store.run_configs(name).items() if builds_per_seed(config)}
    copies = store.copyable(name) if reuse_runs else set()
    return Workload(per_seed_builds=frozenset(per_seed), copies=frozenset(copies))


def study_workload(study: Study, store: Store) -> Workload:
    """The workload of `study` as loaded (the runner's ETA)."""
    from harness.config import StudyKind

    if study.kind is StudyKind.SEARCH:
        search = study.file.search
        return Workload(search_trials=search.n_trials if search else 0, seeds=len(study.seeds))
    return grid_workload(store, study.name, reuse_runs=study.file.reuse_runs)


def recorded_workload(store: Store, name: str) -> Workload:
    """The workload of the study `name` as queued (its recorded study file); the default
    (no per-seed builds, no copies) where none is recorded or this libkd cannot read it."""
    record = store.study_record(name)
    if record is None:
        return Workload()
    if record.kind != "search":
        return grid_workload(store, name, reuse_runs=bool(record.file.get("reuse_runs", True)))
    from pydantic import ValidationError

    from harness.study import study_from_dict

    try:
        return study_workload(study_from_dict(record.file), store)
    except (LibKDError, ValidationError):
        return Workload()
