"""The study's contrasts as recorded, and the seed plan's second stage: the pairs an aimed
contrast still needs once its first stage is in, queued like the grid's first seeds."""

from __future__ import annotations

from typing import Any

import optuna

from harness.analysis import Aim, finished_runs, seeds_to_add, trend_legs
from harness.runner._optuna_study import queued_pairs
from harness.runner._queue import enqueue_grid
from harness.store import ContrastRow, Store, TrendRow
from harness.study import Study, StudyTrend, TrialSpec


def save_contrasts(store: Store, study: Study) -> None:
    """Record the study's contrasts and trends (and the seed plan's target on those it aims
    at), so reports and `status` read them from the database alone."""
    plan = study.seed_plan

    def target(targeted: bool) -> dict[str, Any]:
        """The plan's target on a comparison it aims at; nothing on the others."""
        if plan is None or not targeted:
            return {"halfwidth": None, "target_metric": None, "min_seeds": None, "max_seeds": None}
        return {
            "halfwidth": plan.target.halfwidth,
            "target_metric": plan.target.metric,
            "min_seeds": plan.min,
            "max_seeds": plan.max,
        }

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
            metric=contrast.metric,
            **target(contrast.targeted),
        )
        for position, contrast in enumerate(study.contrasts)
    ]
    store.save_contrasts(study.name, rows)
    trends = [
        TrendRow(
            study=study.name,
            name=trend.name,
            position=position,
            factor=trend.factor,
            scale=trend.scale,
            metric=trend.metric,
            levels=_levels(trend),
            **target(trend.targeted),
        )
        for position, trend in enumerate(study.trends)
    ]
    store.save_trends(study.name, trends)


def _levels(trend: StudyTrend) -> list[dict[str, Any]]:
    """A trend's levels as stored (`libkd_trends.levels`)."""
    return [
        {
            "value": level.value,
            "treatment_hash": level.treatment.config_hash,
            "control_hash": level.control.config_hash,
            "treatment_label": level.treatment.label,
            "control_label": level.control.label,
        }
        for level in trend.levels
    ]


def seed_aims(study: Study) -> list[Aim]:
    """The seed plan's targeted contrasts and trends as the precision rule reads them."""
    plan = study.seed_plan
    if plan is None:
        return []
    target, metric = plan.target.halfwidth, plan.target.metric
    aims = [
        Aim.contrast(
            c.name,
            c.treatment.config_hash,
            c.control.config_hash,
            target,
            metric,
            plan.min,
            plan.max,
        )
        for c in study.contrasts
        if c.targeted
    ]
    for trend in study.trends:
        if trend.targeted:
            legs = trend_legs(_levels(trend), trend.scale)
            aims.append(Aim(trend.name, legs, target, metric, plan.min, plan.max))
    return aims


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
