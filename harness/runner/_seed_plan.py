"""The study's contrasts as recorded, and the seed plan's second stage: the pairs an aimed
contrast still needs once its first stage is in, queued like the grid's first seeds."""

from __future__ import annotations

import optuna

from harness.analysis import Aim, finished_runs, seeds_to_add
from harness.runner._optuna import queued_pairs
from harness.runner._queue import enqueue_grid
from harness.store import ContrastRow, Store
from harness.study import Study, TrialSpec


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
            target_metric=plan.target.metric if plan and contrast.targeted else None,
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
            plan.target.metric,
            plan.min,
            plan.max,
        )
        for c in study.contrasts
        if c.targeted
    ]


def seeds_wanted(opened: optuna.Study, study: Study, store: Store) -> list[TrialSpec]:
    """The (configuration, seed) runs the seed plan asks for now and that are not queued:
    for each targeted contrast whose first stage is in, the seeds its two-stage plan needs."""
    plan, aims = study.seed_plan, seed_aims(study)
    if plan is None or not aims:
        return []
    queued: dict[str, set[int]] = {}
    for config, seed in queued_pairs(opened):
        queued.setdefault(config, set()).add(seed)
    finished, values = finished_runs(store, study.name, plan.target.metric)
    points = {point.config_hash: point for point in study.configs}
    wanted = seeds_to_add(aims, queued=queued, finished=finished, values=values)
    return [points[config].with_seed(seed) for config, seed in sorted(wanted, key=_seed_first)]


def _seed_first(pair: tuple[str, int]) -> tuple[int, str]:
    return pair[1], pair[0]


def extend_seeds(opened: optuna.Study, study: Study, store: Store) -> int:
    """Queue what the seed plan asks for now, each (configuration, seed) only by the one
    worker whose claim on it succeeds: workers anywhere may look at the same moment."""
    wanted = seeds_wanted(opened, study, store)
    return enqueue_grid(opened, study, store, wanted) if wanted else 0
