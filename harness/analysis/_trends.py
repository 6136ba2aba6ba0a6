"""A study's trends: how a paired delta (treatment minus control, by seed) changes along a
numeric factor.

Each seed that ran every level gives one slope: the least-squares slope of its deltas
against the factor (or its log). The slopes are independent across seeds, so their mean has
the paired t interval and tests of a contrast's deltas (`paired_test`), and a seed plan can
aim at the slope's interval exactly as at a contrast's (Stein's two stages). Each level's
own delta is reported beside it. Holm adjusts the slopes' p-values across the study's trends
(a family of their own: the contrasts are another).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from harness.analysis._aggregate import report_metric
from harness.analysis._contrasts import by_seed, metric_column
from harness.analysis._frames import complete_runs
from harness.analysis._inference import holm, paired_test, verdict
from harness.analysis._seeds import paired_values, per_seed_values, planned_pairs, trend_legs
from harness.analysis._text import interval_text
from harness.store import Store


@dataclass(frozen=True)
class TrendSpec:
    """A recorded trend: its factor, axis, metric, levels (as stored) and seed-plan target."""

    name: str
    factor: str
    scale: str
    levels: tuple[dict[str, Any], ...]
    metric: str | None = None
    halfwidth: float | None = None
    target_metric: str | None = None
    min_seeds: int | None = None
    max_seeds: int | None = None


def study_trends(store: Store, study: str) -> list[TrendSpec]:
    """The study's trends as recorded when it was queued."""
    return [
        TrendSpec(
            t.name,
            t.factor,
            t.scale,
            tuple(t.levels),
            t.metric,
            t.halfwidth,
            t.target_metric,
            t.min_seeds,
            t.max_seeds,
        )
        for t in store.trends(study)
    ]


TREND_COLUMNS = (
    "trend",
    "metric",
    "n",
    "slope",
    "slope_ci_low",
    "slope_ci_high",
    "verdict",
    "p_holm",
    "mde",
    "levels",
    "method",
    "p_t",
    "p_sign_flip",
)


def fitted_line(
    trend: dict[str, Any], levels: pl.DataFrame
) -> tuple[list[float], list[float], list[float]]:
    """(each level's position on the trend's axis, its mean delta, the fitted delta there):
    the fitted line is the trend's slope (the mean of the per-seed slopes) through the
    levels' mean, on the natural log of the factor on scale log. The dashboard's figure and
    publish's `trends.svg` draw it."""
    values = [float(v) for v in levels["value"].to_list()]
    axis = [math.log(v) if trend["scale"] == "log" else v for v in values]
    deltas = [float(d) for d in levels["delta_mean"].to_list()]
    middle_x, middle_y = sum(axis) / len(axis), sum(deltas) / len(deltas)
    return axis, deltas, [middle_y + trend["slope"] * (a - middle_x) for a in axis]


def trend_frames(runs: pl.DataFrame, trends: list[TrendSpec]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per trend, one row per trend and level). The slope is per unit of the axis:
    per doubling's ln 2 on scale log (a slope s means the delta grows by s * ln 2 each
    time the factor doubles)."""
    done = complete_runs(runs)
    if done.is_empty() or not trends:
        return pl.DataFrame(), pl.DataFrame()
    default = report_metric(runs).column
    rows, level_rows, tests = [], [], []
    for spec in trends:
        column = metric_column(spec.metric) if spec.metric else default
        values = by_seed(done, column)
        legs = trend_legs(spec.levels, spec.scale)
        seeds = sorted({s for leg in legs for s in values.get(leg.treatment, {})})
        first_stage = planned = None
        if spec.halfwidth is not None and spec.target_metric and spec.min_seeds and spec.max_seeds:
            aimed = by_seed(done, metric_column(spec.target_metric))
            first = per_seed_values(legs, aimed, range(spec.min_seeds))
            if len(first) < spec.min_seeds:
                planned = spec.min_seeds
            else:
                planned = planned_pairs(first, target=spec.halfwidth, max_seeds=spec.max_seeds)
                first_stage = spec.min_seeds
            seeds = [s for s in seeds if s < planned]
        # Only seeds with every level give a slope; each level's delta reads the same seeds.
        complete = [
            s
            for s in seeds
            if all(s in values.get(h, {}) for leg in legs for h in (leg.treatment, leg.control))
        ]
        test = paired_test(per_seed_values(legs, values, complete), first_stage=first_stage)
        level_texts = []
        for level, leg in zip(spec.levels, legs):
            delta = paired_test(paired_values(values, leg.treatment, leg.control, complete))
            level_rows.append(
                {
                    "trend": spec.name,
                    "factor": spec.factor,
                    "value": float(level["value"]),
                    "treatment": level.get("treatment_label", ""),
                    "control": level.get("control_label", ""),
                    "metric": column,
                    "n": delta.n,
                    "delta_mean": delta.mean,
                    "delta_ci_low": delta.ci_low,
                    "delta_ci_high": delta.ci_high,
                }
            )
            level_texts.append(
                f"{level['value']:g}: {interval_text(delta.mean, delta.ci_low, delta.ci_high)}"
            )
        rows.append(
            {
                "trend": spec.name,
                "factor": spec.factor,
                "scale": spec.scale,
                "metric": column,
                "n": test.n,
                "slope": test.mean,
                "slope_ci_low": test.ci_low,
                "slope_ci_high": test.ci_high,
                "p_t": test.p_t,
                "p_sign_flip": test.p_sign_flip,
                "mde": test.mde,
                "method": test.method,
                "target": spec.halfwidth,
                "levels": "; ".join(level_texts),
            }
        )
        tests.append((test, planned, spec))
    for row, (test, planned, spec), p in zip(rows, tests, holm([t.p_t for t, _, _ in tests])):
        axis = f"log {spec.factor}" if spec.scale == "log" else spec.factor
        words = (f"grows with {axis}", f"shrinks with {axis}", "no trend shown")
        row.update(p_holm=p, verdict=verdict(test, p, planned=planned, words=words))
    return pl.DataFrame(rows, infer_schema_length=None), pl.DataFrame(
        level_rows, infer_schema_length=None
    )
