"""What a study's time left needs from its study file (`Workload`), for the runner's ETA
and `libkd status` alike (no torch: status imports it)."""

from __future__ import annotations

from pydantic import ValidationError

from harness.analysis import Workload
from harness.config import StudyKind
from harness.errors import LibKDError
from harness.store import Store
from harness.study import Study, study_from_dict


def study_workload(study: Study, store: Store) -> Workload:
    """The study's configurations that build teachers per seed, the pairs it will copy,
    and for a search its trial budget and seeds."""
    if study.kind is StudyKind.SEARCH:
        search = study.file.search
        return Workload(search_trials=search.n_trials if search else 0, seeds=len(study.seeds))
    copies = store.copyable(study.name) if study.file.reuse_runs else set()
    per_seed = {
        p.config_hash
        for p in study.configs
        if p.config.distill.teachers and set(p.config.seed_scope) & {"teacher", "augment", "subset"}
    }
    return Workload(per_seed_builds=frozenset(per_seed), copies=frozenset(copies))


def recorded_workload(store: Store, name: str) -> Workload:
    """The workload of the study `name` as queued (its recorded study file); the default
    (no per-seed builds, no copies) where none is recorded or this libkd cannot read it."""
    record = store.study_record(name)
    if record is None:
        return Workload()
    try:
        return study_workload(study_from_dict(record.file), store)
    except (LibKDError, ValidationError):
        return Workload()
