"""A study's contrasts with honest inference: per contrast n, paired std, mean difference
with its 95% interval, t and sign-flip p-values, Holm's adjustment across the study's
contrasts, the minimum detectable effect, TOST where a margin is declared, and the words.

Contrasts are read from the database (recorded when the study was queued); studies queued
before contrasts existed get the old default, each configuration against the plain ViT.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import polars as pl

from harness.analysis._aggregate import (
    VAL_COLUMN,
    default_baseline,
    report_metric,
)
from harness.analysis._frames import complete_runs
from harness.analysis._inference import holm, interval, paired_test, verdict
from harness.analysis._seeds import paired_values, planned_pairs
from harness.analysis._text import interval_text
from harness.metrics import VAL_TOP1
from harness.store import Store


def metric_column(metric: str) -> str:
    """The runs frame's column of a compared metric (the final validation top-1 is `top1`)."""
    return VAL_COLUMN if metric == VAL_TOP1 else metric


def head_twin(metric: str) -> tuple[str, str]:
    """The combined prediction's and the class head's metric on the split `metric` reads:
    every contrast table shows both, whichever the contrast was declared on."""
    split = metric.split("/")[0] if "/" in metric else "val"
    return f"{split}/top1", f"{split}/top1_cls"


@dataclass(frozen=True)
class ContrastSpec:
    """Treatment minus control, paired by seed; the seed plan's target if it aims at it."""

    name: str
    treatment: str  # configuration hash
    control: str
    treatment_label: str
    control_label: str
    margin: float | None = None
    halfwidth: float | None = None
    target_metric: str | None = None
    min_seeds: int | None = None
    max_seeds: int | None = None
    metric: str | None = None  # None: the report's metric


def study_contrasts(store: Store, study: str, runs: pl.DataFrame) -> list[ContrastSpec]:
    """The study's recorded contrasts, or each configuration against the plain ViT; none
    for a study that declares trends alone (its comparisons are the trends: contrasts
    against one arbitrary baseline level would add unplanned tests beside them)."""
    recorded = store.contrasts(study)
    if recorded:
        return [
            ContrastSpec(
                r.name,
                r.treatment_hash,
                r.control_hash,
                r.treatment_label,
                r.control_label,
                r.margin,
                r.halfwidth,
                r.target_metric,
                r.min_seeds,
                r.max_seeds,
                r.metric,
            )
            for r in recorded
        ]
    if store.trends(study):
        return []
    done = complete_runs(runs)
    baseline = default_baseline(done)
    if baseline is None:
        return []
    labels = dict(done.select("config_hash", "label").unique().iter_rows())
    return [
        ContrastSpec(f"{labels[h]} vs {labels[baseline]}", h, baseline, labels[h], labels[baseline])
        for h in done["config_hash"].unique(maintain_order=True)
        if h != baseline
    ]


def by_seed(done: pl.DataFrame, column: str) -> dict[str, dict[int, float]]:
    """Configuration hash -> seed -> the runs' value in `column` (nothing for a column the
    runs do not have, an older database's)."""
    values: dict[str, dict[int, float]] = {}
    if column not in done.columns:
        return values
    for config, seed, value in done.select("config_hash", "seed", column).iter_rows():
        if value is not None:
            values.setdefault(config, {})[int(seed)] = float(value)
    return values


def contrast_frame(
    runs: pl.DataFrame, contrasts: list[ContrastSpec], *, metric: str | None = None
) -> pl.DataFrame:
    """One row per contrast (see the module docstring), in the given order, each on its
    declared metric (else `metric`, else the report's); Holm adjusts the t-test p-values
    across all of them. Beside it, on the same seeds, the combined prediction's and the
    class head's deltas (`combined_*`, `cls_*`): a student with more heads averages more
    of them, so the class head is the figure that compares like with like."""
    done = complete_runs(runs)
    if done.is_empty() or not contrasts:
        return pl.DataFrame()
    default = metric or report_metric(runs).column
    by_metric: dict[str, dict[str, dict[int, float]]] = {}

    def values_of(name: str) -> dict[str, dict[int, float]]:
        column = metric_column(name)
        if column not in by_metric:
            by_metric[column] = by_seed(done, column)
        return by_metric[column]

    rows, tests = [], []
    for spec in contrasts:
        column = metric_column(spec.metric) if spec.metric else default
        values = values_of(column)
        seeds = sorted(set(values.get(spec.treatment, {})) & set(values.get(spec.control, {})))
        first_stage = planned = None
        if spec.halfwidth is not None and spec.target_metric and spec.min_seeds and spec.max_seeds:
            first = paired_values(
                values_of(spec.target_metric), spec.treatment, spec.control, range(spec.min_seeds)
            )
            if len(first) < spec.min_seeds:
                planned = spec.min_seeds  # the plan is unknown until its first stage is in
            else:
                planned = planned_pairs(first, target=spec.halfwidth, max_seeds=spec.max_seeds)
                first_stage = spec.min_seeds
            # The seeds the plan chose, or its first stage's while it is unknown, no others:
            # Stein's interval is exact for those, and later seeds cannot make up a verdict.
            seeds = [s for s in seeds if s < planned]
        test = paired_test(
            paired_values(values, spec.treatment, spec.control, seeds),
            margin=spec.margin,
            first_stage=first_stage,
        )
        row: dict[str, object] = {
            "contrast": spec.name,
            "treatment": spec.treatment_label,
            "control": spec.control_label,
            "metric": column,
            "target": spec.halfwidth,
            **asdict(test),
        }
        for head, twin in zip(("combined", "cls"), head_twin(column)):
            # Only the interval is shown for the other heads: no tests computed for them.
            pairs = paired_values(values_of(twin), spec.treatment, spec.control, seeds)
            mean, low, high = head_interval(pairs, first_stage=first_stage)
            row.update(
                {
                    f"{head}_delta": mean,
                    f"{head}_ci_low": low,
                    f"{head}_ci_high": high,
                    HEAD_COLUMNS[head]: interval_text(mean, low, high),
                }
            )
        rows.append(row)
        tests.append((test, planned))
    for row, (test, planned), p in zip(rows, tests, holm([test.p_t for test, _ in tests])):
        row.update(p_holm=p, verdict=verdict(test, p, planned=planned))
    return pl.DataFrame(rows, infer_schema_length=None).rename(
        {
            "mean": "delta_mean",
            "std": "delta_std",
            "ci_low": "delta_ci_low",
            "ci_high": "delta_ci_high",
        }
    )


HEAD_COLUMNS = {"combined": "combined [95% CI]", "cls": "class head [95% CI]"}


def head_interval(
    deltas: list[float], *, first_stage: int | None
) -> tuple[float, float | None, float | None]:
    """A head's mean paired delta and its 95% interval (Stein's with `first_stage`, as the
    contrast's own); NaN and no interval without pairs, no interval with one."""
    if len(deltas) < 2:
        return (deltas[0] if deltas else math.nan), None, None
    found = interval(deltas, first_stage=first_stage)
    return found.mean, found.low, found.high


CONTRAST_COLUMNS = (
    "contrast",
    "metric",
    "n",
    "delta_mean",
    "delta_ci_low",
    "delta_ci_high",
    "verdict",
    "p_holm",
    "mde",
    *HEAD_COLUMNS.values(),
    "delta_std",
    "method",
    "p_t",
    "p_sign_flip",
    "p_sign_flip_min",
    "margin",
    "equivalence",
)
