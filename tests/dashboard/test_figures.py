from __future__ import annotations

import polars as pl
import pytest

from harness.analysis import load_runs, summarize_epochs
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


def _pareto_runs(**columns) -> pl.DataFrame:
    labels = ["cheap-bad", "mid", "dominated", "dear-good"]
    return pl.DataFrame(
        {
            "config_hash": labels * 2,
            "label": labels * 2,
            "status": ["complete"] * 8,
            "top1": [0.5, 0.7, 0.6, 0.9] * 2,
            "eval_seconds": [0.0] * 8,
            "train_seconds": [1.0, 2.0, 3.0, 4.0] * 2,
            # One-off costs, paid by the first seed only: never part of the per-run cost.
            "teacher_seconds": [0.0, 0.0, 0.0, 100.0] + [0.0] * 4,
            **columns,
        }
    )


def test_pareto_front_marks_non_dominated_configurations():
    front = pareto(_pareto_runs(), [("val/top1", "maximize")])
    assert front.front == [True, True, False, True]
    assert front.x == [1.0, 2.0, 3.0, 4.0]  # per-run seconds, means over the seeds
    assert front.x_title.startswith("seconds per run")


def test_pareto_uses_the_declared_objectives_and_their_directions():
    runs = _pareto_runs(student_params=[40, 30, 10, 20] * 2)
    # Maximise top-1, minimise parameters: "dominated" is now the smallest model (on the
    # front), and dear-good (0.9, 20) beats mid (0.7, 30) on both.
    front = pareto(runs, [("val/top1", "maximize"), ("student/params", "minimize")])
    assert front.front == [False, False, True, True]
    assert front.x == [40.0, 30.0, 10.0, 20.0] and front.x_title.startswith("student/params")


def test_cache_usage_counts_hits_builds_and_online():
    usage = cache_usage(_runs())
    assert usage.labels[0] == "none T=1.0" and usage.online[0] == 2 and usage.hits[1] == 2


def _teacher(store, run_id: int, key: str, accuracy: float) -> None:
    """A conv teacher instance `key` of test top-1 `accuracy`, used by the run."""
    store.record_artifact(
        key=key,
        kind="teacher",
        name="conv",
        path=key,
        size=1,
        build_seconds=1.0,
        meta={"test_top1": accuracy},
    )
    store.link_artifact(run_id, key, role="teacher:conv", hit=False)


def test_teacher_lines_are_the_mean_over_instances_with_their_spread(tmp_path):
    """Each seed trains its own conv teacher (0.80, 0.84, 0.82): the chart's line is their
    mean, 0.82, with a band from the lowest to the highest, not the instance read last."""
    from harness.dashboard._figures import TeacherLine, teacher_references
    from harness.dashboard._plots import factor_figure
    from harness.store import RunIdentity, Store
    from tests.helpers import record_run

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    for seed, accuracy in enumerate([0.80, 0.84, 0.82]):
        run_id = record_run(store, RunIdentity("s", seed, "h" * 64, seed, "teachers=conv", {}))
        _teacher(store, run_id, f"teacher-{seed}", accuracy)
    lines = teacher_references(store, "s")
    assert lines == {"conv": TeacherLine(pytest.approx(0.82), 0.80, 0.84, 3)}
    figure = factor_figure(
        factor_comparison(_runs(), "f:distill.teachers"), metric="top1", references=lines
    )
    [line] = [s for s in figure.layout.shapes if s.type == "line"]
    [band] = [s for s in figure.layout.shapes if s.type == "rect"]
    assert line.y0 == pytest.approx(0.82) and (band.y0, band.y1) == (0.80, 0.84)
    assert "teacher conv 0.820, n=3: 0.800-0.840" in figure.layout.annotations[0].text


def test_no_pooled_teacher_line_where_the_teachers_data_varies(tmp_path):
    """A study over data fractions trains its teachers on each fraction: one line over all
    their instances would mix fractions, so the charts draw none (the report's Teachers table
    gives each fraction's teachers against the plain ViT on the same data)."""
    from harness.dashboard._figures import teacher_references
    from harness.store import RunIdentity, Store
    from tests.helpers import record_run

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    for seed, fraction in enumerate(["0.05", "0.2"]):
        factors = {"dataset.train_fraction": fraction, "distill.teachers": "conv"}
        identity = RunIdentity("s", seed, f"{seed}" * 64, 0, f"f={fraction}", factors)
        _teacher(store, record_run(store, identity), f"t{seed}", 0.8 + seed / 10)
    runs = load_runs(store, "s")
    assert "f:dataset.train_fraction" in runs.columns
    assert teacher_references(store, "s", runs) == {}
    assert teacher_references(store, "s")["conv"].n == 2  # without the runs: pooled, as before


def test_where_the_teachers_data_varies_each_level_gets_its_teachers_own_point(tmp_path):
    """Two fractions x two seeds, each (fraction, seed) with its own conv teacher: the
    fraction chart draws the teacher's curve, each fraction's point the mean of its two
    instances with whiskers to the lowest and highest (not one line over all four), and
    a fraction only a teacher reached so far still gets its point."""
    from harness.dashboard._figures import TeacherLine, teacher_levels
    from harness.dashboard._plots import factor_figure
    from harness.metrics import TEST_TOP1, VAL_TOP1
    from harness.status import RunStatus
    from harness.store import RunIdentity, Store
    from tests.helpers import record_run

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    accuracies = {("0.05", 0): 0.70, ("0.05", 1): 0.74, ("0.2", 0): 0.85, ("0.2", 1): 0.87}
    for trial, ((fraction, seed), accuracy) in enumerate(accuracies.items()):
        factors = {"dataset.train_fraction": fraction, "distill.teachers": "conv"}
        identity = RunIdentity("s", trial, fraction * 16, seed, f"f={fraction}", factors)
        student = {VAL_TOP1: accuracy - 0.05, TEST_TOP1: accuracy - 0.05}
        _teacher(store, record_run(store, identity, metrics=student), f"t{trial}", accuracy)
    # A third fraction whose teacher is trained but whose student is still running.
    identity = RunIdentity("s", 9, "9" * 64, 0, "f=0.4", {"dataset.train_fraction": "0.4"})
    _teacher(store, record_run(store, identity, status=RunStatus.RUNNING), "t9", 0.9)

    runs = load_runs(store, "s")
    found = teacher_levels(store, "s", runs)
    assert found is not None and found.factor == "f:dataset.train_fraction"
    assert found.lines == {
        "conv": {
            "0.05": TeacherLine(pytest.approx(0.72), 0.70, 0.74, 2),
            "0.2": TeacherLine(pytest.approx(0.86), 0.85, 0.87, 2),
            "0.4": TeacherLine(0.9, 0.9, 0.9, 1),
        }
    }
    figure = factor_figure(
        factor_comparison(runs, found.factor, metric=TEST_TOP1),
        metric="test top-1",
        teachers=found.lines,
    )
    [curve] = [t for t in figure.data if t.name == "teacher conv"]
    assert list(curve.x) == ["0.05", "0.2", "0.4"]
    assert list(curve.y) == pytest.approx([0.72, 0.86, 0.9])
    assert list(curve.error_y.array) == pytest.approx([0.02, 0.01, 0.0])
    assert list(curve.error_y.arrayminus) == pytest.approx([0.02, 0.01, 0.0])
    assert not figure.layout.shapes  # no pooled line across fractions
    # A study whose teachers see one data setting has no per-level curve.
    assert teacher_levels(store, "s", runs.drop("f:dataset.train_fraction")) is None
