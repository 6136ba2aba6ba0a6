"""A study's contrasts with honest inference: per contrast n, paired std, mean difference
with its 95% interval, t and sign-flip p-values, Holm's adjustment across the study's
contrasts, the minimum detectable effect, TOST where a margin is declared, and the words.

Contrasts are read from the database (recorded when the study was queued); studies queued
before contrasts existed get the old default, each configuration against the plain ViT.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import polars as pl

from harness.analysis._aggregate import default_baseline
from harness.analysis._inference import holm, paired_test, verdict
from harness.analysis._load import complete_runs
from harness.analysis._seeds import paired_values, planned_pairs
from harness.metrics import TEST_TOP1, VAL_TOP1
from harness.store import Store

TEST_COLUMN = TEST_TOP1  # the final model's test top-1, what reports compare
VAL_COLUMN = "top1"  # the final validation top-1
PLAN_COLUMNS = {VAL_TOP1: VAL_COLUMN, TEST_TOP1: TEST_COLUMN}  # what a seed plan aims at


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


def study_contrasts(store: Store, study: str, runs: pl.DataFrame) -> list[ContrastSpec]:
    """The study's recorded contrasts, or each configuration against the plain ViT."""
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
            )
            for r in recorded
        ]
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


class ReportMetric(NamedTuple):
    """The metric reports compare: its column in the runs frame, and how a reader is told."""

    column: str
    words: str


def report_metric(runs: pl.DataFrame) -> ReportMetric:
    """The test top-1 of the final model when every complete run has one, else (older
    databases) the final validation top-1."""
    done = complete_runs(runs)
    if TEST_COLUMN in done.columns and done[TEST_COLUMN].null_count() == 0 and len(done):
        return ReportMetric(TEST_COLUMN, "test top-1 of the final model (last epoch)")
    split = done["split"][0] if "split" in done.columns and len(done) else "train/val"
    return ReportMetric(VAL_COLUMN, f"validation top-1 of the final model (last epoch; {split})")


def _by_seed(done: pl.DataFrame, column: str) -> dict[str, dict[int, float]]:
    values: dict[str, dict[int, float]] = {}
    for config, seed, value in done.select("config_hash", "seed", column).iter_rows():
        if value is not None:
            values.setdefault(config, {})[int(seed)] = float(value)
    return values


def contrast_frame(
    runs: pl.DataFrame, contrasts: list[ContrastSpec], *, metric: str | None = None
) -> pl.DataFrame:
    """One row per contrast (see the module docstring), in the given order; Holm adjusts
    the t-test p-values across all of them."""
    done = complete_runs(runs)
    if done.is_empty() or not contrasts:
        return pl.DataFrame()
    column = metric or report_metric(runs).column
    values = _by_seed(done, column)
    # What each seed plan aimed at, read once per metric (every plan of a study shares one).
    aimed = {m: _by_seed(done, PLAN_COLUMNS[m]) for m in {c.target_metric for c in contrasts} if m}
    rows, tests = [], []
    for spec in contrasts:
        seeds = sorted(set(values.get(spec.treatment, {})) & set(values.get(spec.control, {})))
        first_stage = planned = None
        if spec.halfwidth is not None and spec.target_metric and spec.min_seeds and spec.max_seeds:
            first = paired_values(
                aimed[spec.target_metric], spec.treatment, spec.control, range(spec.min_seeds)
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


CONTRAST_COLUMNS = (
    "contrast",
    "n",
    "delta_mean",
    "delta_ci_low",
    "delta_ci_high",
    "delta_std",
    "method",
    "p_t",
    "p_sign_flip",
    "p_sign_flip_min",
    "p_holm",
    "mde",
    "margin",
    "equivalence",
    "verdict",
)
