from __future__ import annotations

import polars as pl
import pytest

from harness.analysis import summarize_epochs
from harness.dashboard import cache_usage, factor_comparison, learning_curves, pareto


def _runs():
    rows = []
    for i, (teachers, temp, seed, top1) in enumerate(
        [
            ("none", "1.0", 0, 0.5),
            ("none", "1.0", 1, 0.6),
            ("conv", "1.0", 0, 0.7),
            ("conv", "1.0", 1, 0.8),
            ("conv", "4.0", 0, 0.9),
        ]
    ):
        rows.append(
            {
                "id": i,
                "status": "complete",
                "config_hash": f"{teachers}{temp}",
                "label": f"{teachers} T={temp}",
                "f:distill.teachers": teachers,
                "f:distill.temperature": temp,
                "seed": seed,
                "top1": top1,
                "cache_status": "hit" if teachers != "none" else "off",
                "cache_seconds": 0.1,
                "samples_per_second": 10.0,
            }
        )
    return pl.DataFrame(rows)


def test_factor_comparison_groups_by_the_other_factors():
    data = factor_comparison(_runs(), "f:distill.teachers")
    assert data.factor == "distill.teachers"
    by_name = {s.name: s for s in data.series}
    t1 = by_name["distill.temperature=1.0"]
    assert t1.x == ["none", "conv"]
    assert t1.mean == pytest.approx([0.55, 0.75])
    assert t1.points_y == [0.5, 0.6, 0.7, 0.8]
    assert t1.ci_low[0] < 0.55 < t1.ci_high[0]
    t4 = by_name["distill.temperature=4.0"]
    assert t4.x == ["conv"] and t4.ci_low == [None]


def test_numeric_levels_sort_numerically():
    data = factor_comparison(_runs(), "f:distill.temperature")
    assert data.series[-1].x == ["1.0", "4.0"]


def test_a_factor_a_configuration_lacks_is_no_level_of_it():
    # The plain ViT has no temperature (its factor is null): not a point on the temperature
    # axis, and a series of its own when teachers are compared.
    runs = _runs().with_columns(
        pl.when(pl.col("f:distill.teachers") == "none")
        .then(None)
        .otherwise(pl.col("f:distill.temperature"))
        .alias("f:distill.temperature")
    )
    by_temperature = factor_comparison(runs, "f:distill.temperature")
    assert [s.x for s in by_temperature.series if s.x] == [["1.0", "4.0"]]
    by_teachers = {s.name: s.x for s in factor_comparison(runs, "f:distill.teachers").series}
    assert by_teachers == {
        "distill.temperature=n/a": ["none"],
        "distill.temperature=1.0": ["conv"],
        "distill.temperature=4.0": ["conv"],
    }


def test_learning_curve_means_over_seeds_per_epoch():
    runs = _runs()
    epochs = pl.DataFrame(
        {
            "run_id": [0, 0, 1, 1],
            "config_hash": ["none1.0"] * 4,
            "label": ["none T=1.0"] * 4,
            "seed": [0, 0, 1, 1],
            "epoch": [0, 1, 0, 1],
            "name": ["val/top1"] * 4,
            "value": [0.2, 0.4, 0.4, 0.6],
        }
    )
    curve = learning_curves(summarize_epochs(epochs, runs, prefix="val/top1"), metric="val/top1")
    [series] = curve.series
    assert series.x == [1, 2] and series.mean == pytest.approx([0.3, 0.5])


def test_pareto_front_marks_non_dominated_configurations():
    report = pl.DataFrame(
        {
            "label": ["cheap-bad", "mid", "dominated", "dear-good"],
            "mean": [0.5, 0.7, 0.6, 0.9],
            "teacher_seconds": [0.0] * 4,
            "cache_seconds": [0.0] * 4,
            "eval_seconds": [0.0] * 4,
            "train_seconds": [1.0, 2.0, 3.0, 4.0],
        }
    )
    assert pareto(report).front == [True, True, False, True]


def test_cache_usage_counts_hits_builds_and_online():
    usage = cache_usage(_runs())
    assert usage.labels[0] == "none T=1.0" and usage.online[0] == 2 and usage.hits[1] == 2
