from __future__ import annotations

import math

import polars as pl
import pytest

from harness.analysis import (
    aggregate,
    best_of_epochs,
    markdown_table,
    paired_deltas,
    report_columns,
    t_interval,
)

T_975_DF2 = 4.302652729749462  # Student t, 97.5th percentile, 2 degrees of freedom (tables: 4.303)


def _runs(rows):
    base = {
        "status": "complete",
        "teacher_seconds": 1.0,
        "cache_seconds": 0.0,
        "train_seconds": 2.0,
        "eval_seconds": 0.5,
        "samples_per_second": 100.0,
        "student_params": 10,
    }
    frame = [dict(base, id=i, **row) for i, row in enumerate(rows)]
    return pl.DataFrame(frame)


def _row(config, teachers, seed, top1, **extra):
    return {
        "config_hash": config,
        "label": f"teachers={teachers}",
        "teachers": teachers,
        "f:distill.teachers": teachers,
        "seed": seed,
        "top1": top1,
        **extra,
    }


def test_mean_std_and_t_interval_match_hand_computation():
    runs = _runs([_row("a", "conv", s, v) for s, v in enumerate([0.80, 0.82, 0.84])])
    [row] = aggregate(runs).iter_rows(named=True)
    assert row["n"] == 3 and row["seeds"] == [0, 1, 2]
    assert row["mean"] == pytest.approx(0.82)
    assert row["std"] == pytest.approx(0.02)
    half = T_975_DF2 * 0.02 / math.sqrt(3)
    assert row["ci_low"] == pytest.approx(0.82 - half)
    assert row["ci_high"] == pytest.approx(0.82 + half)
    assert row["train_seconds"] == 2.0 and "teacher_seconds" not in row  # one-off: not per run
    assert (row["train_seconds_ci_low"], row["train_seconds_ci_high"]) == (2.0, 2.0)


def test_accuracy_intervals_stop_at_zero_and_one():
    """Two seeds at 1.00 and 0.96: the t interval reaches 0.98 +- 0.25, past 1; an accuracy
    cannot, so the interval is clipped (the mean and the lower end are the t interval's)."""
    runs = _runs([_row("a", "conv", s, v) for s, v in enumerate([1.00, 0.96])])
    [row] = aggregate(runs).iter_rows(named=True)
    low, high = t_interval(row["mean"], row["std"], 2)
    assert high is not None and high > 1 and low is not None
    assert row["ci_high"] == 1.0 and row["ci_low"] == pytest.approx(low)


def test_cost_intervals_never_go_below_zero():
    """Seconds are non-negative: a t interval of [0.1, 0.1, 9.0] reaches -9.9; the bootstrap
    interval stays inside the values. Fewer than 3 runs: no interval."""
    runs = _runs(
        [_row("a", "conv", s, 0.8, train_seconds=t) for s, t in enumerate([0.1, 0.1, 9.0])]
    )
    [row] = aggregate(runs).iter_rows(named=True)
    assert t_interval(row["train_seconds"], row["train_seconds_std"], 3)[0] < -9
    assert 0.1 <= row["train_seconds_ci_low"] < row["train_seconds_ci_high"] <= 9.0
    two = _runs([_row("a", "conv", s, 0.8) for s in range(2)])
    [row] = aggregate(two).iter_rows(named=True)
    assert row["train_seconds_ci_low"] is None and row["ci_low"] is not None


def test_single_seed_has_no_interval_and_failed_runs_are_left_out():
    runs = _runs([_row("a", "conv", 0, 0.9), _row("a", "conv", 1, 0.1, status="failed")])
    [row] = aggregate(runs).iter_rows(named=True)
    assert row["n"] == 1 and row["mean"] == 0.9 and row["ci_low"] is None
    assert t_interval(0.5, None, 1) == (None, None)


def test_best_epoch_comes_from_the_epoch_table():
    runs = _runs([_row("a", "conv", 0, 0.7), _row("a", "conv", 1, 0.8)])
    epochs = pl.DataFrame(
        {
            "run_id": [0, 0, 1, 1],
            "name": ["val/top1"] * 4,
            "epoch": [0, 1, 0, 1],
            "value": [0.9, 0.7, 0.6, 0.8],
        }
    )
    [row] = aggregate(runs, best=best_of_epochs(epochs)).iter_rows(named=True)
    assert row["mean"] == pytest.approx(0.75) and row["best_mean"] == pytest.approx(0.85)


def test_paired_deltas_pair_by_seed():
    # Seed effects dominate: unpaired, B's advantage would drown in the spread across seeds.
    base = [_row("plain", "none", s, v) for s, v in enumerate([0.5, 0.7, 0.9])]
    better = [_row("b", "conv", s, v) for s, v in enumerate([0.52, 0.71, 0.93])]
    extra = [_row("b", "conv", 9, 0.1)]  # no baseline for seed 9: not paired
    table = paired_deltas(_runs(base + better + extra))
    [row] = table.iter_rows(named=True)
    assert row["config_hash"] == "b" and row["n_pairs"] == 3
    assert row["delta_mean"] == pytest.approx(0.02)
    assert row["delta_std"] == pytest.approx(0.01)
    half = T_975_DF2 * 0.01 / math.sqrt(3)
    assert row["delta_ci_low"] == pytest.approx(0.02 - half)
    assert row["p_value"] == pytest.approx(0.07417990022744855, rel=1e-6)


def test_explicit_baseline_and_no_baseline():
    runs = _runs([_row("x", "conv", 0, 0.5), _row("y", "inv", 0, 0.6)])
    assert paired_deltas(runs).is_empty()  # no plain ViT in the study
    [row] = paired_deltas(runs, baseline="x").iter_rows(named=True)
    assert row["config_hash"] == "y" and row["delta_mean"] == pytest.approx(0.1)


def test_costs_are_aggregated_with_intervals_too():
    rows = [_row("a", "conv", s, 0.5, train_seconds=t) for s, t in enumerate([10.0, 12.0, 14.0])]
    [row] = aggregate(_runs(rows)).iter_rows(named=True)
    assert row["train_seconds"] == pytest.approx(12.0)
    assert row["train_seconds_std"] == pytest.approx(2.0)
    # Bootstrap of the mean of [10, 12, 14]: a resample's mean is 10 + 2k/3 with k = 0..6,
    # P(k = 0) = P(k = 6) = 1/27 = 3.7% > 2.5%, so the 95% percentile interval is [10, 14].
    assert (row["train_seconds_ci_low"], row["train_seconds_ci_high"]) == (10.0, 14.0)
    assert row["eval_seconds_ci_high"] == pytest.approx(0.5)  # equal values: zero width


def test_runs_stored_before_the_test_split_load_labelled(tmp_path):
    """A database written when validation was Fashion-MNIST's test split: no test metrics;
    reports fall back to validation and say so."""
    from harness.analysis import load_runs, report_metric
    from harness.store import RunIdentity, Store
    from tests.helpers import record_run

    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    for seed, dataset in ((0, "fashion-mnist"), (1, "fashion-mnist")):
        record_run(
            store,
            RunIdentity(
                study="old",
                trial_number=seed,
                config_hash="a" * 64,
                seed=seed,
                label="base",
                factors={},
            ),
            config={"dataset": {"name": dataset}, "distill": {"teachers": []}},
            metrics={"val/top1": 0.7},
        )
    runs = load_runs(store, "old")
    assert runs["split"].to_list() == ["validation = test"] * 2
    column, words = report_metric(runs)
    assert column == "top1" and "validation = test" in words


def test_report_gives_the_class_head_beside_the_combined_prediction():
    rows = [
        _row("a", "conv", s, 0.8, **{"test/top1": t, "test/top1_cls": c})
        for s, (t, c) in enumerate([(0.9, 0.7), (0.8, 0.6)])
    ]
    [row] = aggregate(_runs(rows)).iter_rows(named=True)
    assert row["test_mean"] == pytest.approx(0.85) and row["test_cls_mean"] == pytest.approx(0.65)


def test_cpu_share_is_the_mean_of_each_runs_cpu_over_wall_seconds_and_null_without_it():
    runs = _runs(
        [
            _row("a", "conv", 0, 0.8, **{"cost/cpu_seconds": 90.0, "cost/total_seconds": 100.0}),
            _row("a", "conv", 1, 0.8, **{"cost/cpu_seconds": 50.0, "cost/total_seconds": 100.0}),
            # Stored before CPU time was recorded: left out of the mean, not counted as 0.
            _row("a", "conv", 2, 0.8, **{"cost/cpu_seconds": None, "cost/total_seconds": 80.0}),
            _row("b", "none", 0, 0.7, **{"cost/cpu_seconds": None, "cost/total_seconds": 80.0}),
        ]
    )
    table = {r["config_hash"]: r for r in aggregate(runs).iter_rows(named=True)}
    assert table["a"]["cpu_share"] == pytest.approx((0.9 + 0.5) / 2)
    assert table["b"]["cpu_share"] is None
    # Frames without either column (runs read from older exports) aggregate too.
    assert aggregate(_runs([_row("a", "conv", 0, 0.8)]))["cpu_share"].to_list() == [None]


def test_the_markdown_report_shows_cpu_share_only_where_some_run_recorded_cpu_time():
    cpu = {"cost/cpu_seconds": 90.0, "cost/total_seconds": 100.0}
    old = {"cost/cpu_seconds": None, "cost/total_seconds": 80.0}
    measured = aggregate(_runs([_row("a", "conv", 0, 0.8, **cpu), _row("b", "x", 0, 0.7, **old)]))
    header = markdown_table(measured, report_columns(measured)).splitlines()[0]
    assert "| cpu_share |" in header and "| label | n |" in header
    unmeasured = aggregate(_runs([_row("a", "conv", 0, 0.8, **old)]))
    header = markdown_table(unmeasured, report_columns(unmeasured)).splitlines()[0]
    assert "cpu_share" not in header and "| label | n |" in header
