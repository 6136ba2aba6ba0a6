"""Trend contrasts: the slope of a paired delta against a numeric factor, one least-squares
slope per seed, summarised over seeds; checked against a hand computation (numpy's fit per
seed, the t interval from scipy), and the seed plan aimed at a slope."""

from __future__ import annotations

import io
import json
import math
import re
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import sqlalchemy
from scipy import stats

from harness.analysis import (
    Aim,
    assess,
    contrast_frame,
    finished_runs,
    load_runs,
    publish,
    seeds_to_add,
    study_contrasts,
    study_trends,
    trend_frames,
    trend_legs,
)
from harness.analysis._publish import training_views, views_lines
from harness.dashboard import render_dashboard
from harness.metrics import TEST_TOP1, TEST_TOP1_CLS, VAL_TOP1
from harness.store import ContrastRow, RunIdentity, RunRow, Store, TrendRow
from tests.helpers import record_run

FRACTIONS = [0.0125, 0.05, 0.2]
# Per seed and level: treatment minus control on test top-1 of the class head.
DELTAS = [
    [0.010, 0.020, 0.045],
    [0.000, 0.025, 0.030],
    [0.015, 0.010, 0.040],
    [0.005, 0.030, 0.035],
]


def _hashes(level: int) -> tuple[str, str]:
    return f"t{level}".ljust(64, "0"), f"c{level}".ljust(64, "0")


def _trend_store(url: str, *, halfwidth: float | None = None, seeds: int = 4) -> Store:
    store = Store(url)
    levels = []
    for level, fraction in enumerate(FRACTIONS):
        treatment, control = _hashes(level)
        levels.append(
            {
                "value": fraction,
                "treatment_hash": treatment,
                "control_hash": control,
                "treatment_label": f"kd @ {fraction}",
                "control_label": f"plain @ {fraction}",
            }
        )
    aimed = {"halfwidth": halfwidth, "target_metric": TEST_TOP1_CLS, "min_seeds": 3}
    store.save_trends(
        "s",
        [
            TrendRow(
                study="s",
                name="gain_vs_data",
                position=0,
                factor="dataset.train_fraction",
                scale="log",
                metric=TEST_TOP1_CLS,
                levels=levels,
                **(aimed | {"max_seeds": 12} if halfwidth else {}),
            )
        ],
    )
    number = 0
    for seed in range(seeds):
        for level in range(len(FRACTIONS)):
            for config, delta in zip(_hashes(level), (DELTAS[seed][level], 0.0)):
                identity = RunIdentity("s", number, config, seed, config[:2], {})
                number += 1
                # The combined metric moves the other way: the trend must read the class head.
                metrics = {VAL_TOP1: 0.6, TEST_TOP1: 0.7 - delta, TEST_TOP1_CLS: 0.7 + delta}
                record_run(store, identity, metrics=metrics)
    return store


def test_the_slope_its_interval_and_p_are_the_hand_computed_ones(storage_url):
    store = _trend_store(storage_url)
    trends, levels = trend_frames(load_runs(store, "s"), study_trends(store, "s"))
    x = np.log(FRACTIONS)
    slopes = [np.polyfit(x, row, 1)[0] for row in DELTAS]
    mean, se = np.mean(slopes), np.std(slopes, ddof=1) / math.sqrt(len(slopes))
    half = stats.t.ppf(0.975, len(slopes) - 1) * se
    [row] = trends.iter_rows(named=True)
    assert row["metric"] == TEST_TOP1_CLS
    assert row["n"] == 4
    assert row["slope"] == pytest.approx(mean, abs=1e-12)
    assert (row["slope_ci_low"], row["slope_ci_high"]) == pytest.approx(
        (mean - half, mean + half), abs=1e-12
    )
    assert row["p_t"] == pytest.approx(2 * stats.t.sf(abs(mean / se), 3), rel=1e-9)
    assert row["verdict"].startswith("grows with log dataset.train_fraction")
    # Each level's delta on the same seeds, in increasing order of the factor.
    assert levels["value"].to_list() == FRACTIONS
    assert levels["delta_mean"].to_list() == pytest.approx(np.mean(DELTAS, axis=0).tolist())


def test_a_seed_missing_a_level_gives_no_slope(storage_url):
    store = _trend_store(storage_url)
    runs = load_runs(store, "s")
    # Drop seed 3's treatment at the middle level: three seeds have every level.
    runs = runs.filter(~((runs["seed"] == 3) & (runs["config_hash"] == _hashes(1)[0])))
    trends, levels = trend_frames(runs, study_trends(store, "s"))
    assert trends["n"].to_list() == [3]
    assert levels["n"].to_list() == [3, 3, 3]


def test_a_seed_plan_aimed_at_a_slope_asks_every_level_for_more_seeds(storage_url):
    store = _trend_store(storage_url, halfwidth=0.001, seeds=3)
    [trend] = study_trends(store, "s")
    legs = trend_legs(trend.levels, trend.scale)
    aim = Aim(trend.name, legs, 0.001, TEST_TOP1_CLS, 3, 12)
    finished, values = finished_runs(store, "s", TEST_TOP1_CLS)
    state = assess(aim, finished=finished, values=values)
    first = [np.polyfit(np.log(FRACTIONS), row, 1)[0] for row in DELTAS[:3]]
    need = math.ceil((stats.t.ppf(0.975, 2) * np.std(first, ddof=1) / 0.001) ** 2)
    assert state.planned == min(12, need) == 12
    wanted = seeds_to_add([aim], queued=finished, finished=finished, values=values)
    every = {h for level in range(3) for h in _hashes(level)}
    assert wanted == {(h, s) for h in every for s in range(3, 12)}
    # The report holds the verdict until the planned seeds are in.
    trends, _ = trend_frames(load_runs(store, "s"), [trend])
    assert trends["verdict"][0].startswith("interim (3 of 12")


def _kd_vs_plain(name: str, position: int, **declared: object) -> ContrastRow:
    """The distilled student against the plain ViT at the largest level, as declared."""
    treatment, control = _hashes(2)
    return ContrastRow(
        study="s",
        name=name,
        position=position,
        treatment_hash=treatment,
        control_hash=control,
        treatment_label="kd",
        control_label="plain",
        **declared,
    )


def _contrast_store(store: Store) -> None:
    """Beside the trend, two contrasts at the largest level: one declared on the class head,
    one on the report's metric (the combined prediction)."""
    store.save_contrasts(
        "s",
        [_kd_vs_plain("on_cls", 0, metric=TEST_TOP1_CLS), _kd_vs_plain("on_combined", 1)],
    )


def test_each_contrast_compares_its_declared_metric_with_both_heads_beside(storage_url):
    store = _trend_store(storage_url)
    _contrast_store(store)
    runs = load_runs(store, "s")
    frame = contrast_frame(runs, study_contrasts(store, "s", runs))
    on_cls, on_combined = frame.iter_rows(named=True)
    deltas = [row[2] for row in DELTAS]
    assert on_cls["metric"] == TEST_TOP1_CLS
    assert on_cls["delta_mean"] == pytest.approx(np.mean(deltas))
    assert on_combined["metric"] == TEST_TOP1
    assert on_combined["delta_mean"] == pytest.approx(-np.mean(deltas))
    for row in (on_cls, on_combined):
        assert row["cls_delta"] == pytest.approx(np.mean(deltas))
        assert row["combined_delta"] == pytest.approx(-np.mean(deltas))
        assert row["class head [95% CI]"].startswith(f"{np.mean(deltas):+.4f} [")


def test_report_publish_and_dashboard_show_metrics_trends_and_views(storage_url, tmp_path):
    store = _trend_store(storage_url)
    _contrast_store(store)
    out = publish(store, "s", out_dir=tmp_path / "s", command="libkd run s.yaml")
    report = out.read_text()
    assert "## Contrasts (each on the metric its row names)" in report
    header = next(line for line in report.splitlines() if line.startswith("| contrast |"))
    assert header.split(" | ")[:5] == ["| contrast", "metric", "n", "delta [95% CI]", "verdict"]
    assert "class head [95% CI]" in header and "combined [95% CI]" in header
    # One interval per cell, 3 decimals, the verdict beside it (the CSV keeps every digit).
    runs = load_runs(store, "s")
    [on_cls, _] = contrast_frame(runs, study_contrasts(store, "s", runs)).iter_rows(named=True)
    cell = (
        f"{on_cls['delta_mean']:+.3f} [{on_cls['delta_ci_low']:+.3f}, "
        f"{on_cls['delta_ci_high']:+.3f}] | {on_cls['verdict']} |"
    )
    assert f"| on_cls | test/top1_cls | 4 | {cell}" in report
    assert "### Costs" in report
    assert "## Trends" in report
    assert "![each level's delta and the fitted slope](trends.svg)" in report
    assert "gain_vs_data: " in (out.parent / "trends.svg").read_text()
    # The trend's slope and each level's delta are cells like a contrast's: one interval
    # each, 3 decimals, the verdict beside the slope.
    [trend], levels = (
        frame.rows(named=True) for frame in trend_frames(runs, study_trends(store, "s"))
    )
    slope = _cell3(trend["slope"], trend["slope_ci_low"], trend["slope_ci_high"])
    per = "unit of log dataset.train_fraction"
    assert f"| gain_vs_data | test/top1_cls | 4 | {slope} | {per} | {trend['verdict']} |" in report
    for level in levels:
        delta = _cell3(level["delta_mean"], level["delta_ci_low"], level["delta_ci_high"])
        assert f"| dataset.train_fraction = {level['value']:g} |" in report
        assert f"| 4 | {delta} |" in report
    assert "nan" not in report
    assert "### What each configuration's student trains on" in report
    # Every configuration sees the same views: one sentence, not a table of equal rows.
    assert "\nEvery configuration's student trains on 8 fixed views per image" in report
    assert "| student trains on |" not in report
    page = render_dashboard(store, "s")
    assert "id='trend-gain_vs_data'" in page
    assert "grows with log dataset.train_fraction" in page
    assert "<h2>trends</h2>" in page


def test_a_study_declaring_trends_alone_gets_no_baseline_contrasts(storage_url, tmp_path):
    """Its comparisons are its trends: no contrast of every configuration against one
    arbitrary level is added beside them (nor Holm-adjusted with them)."""
    store = _trend_store(storage_url)
    runs = load_runs(store, "s")
    assert study_contrasts(store, "s", runs) == []
    report = publish(store, "s", out_dir=tmp_path / "s", command="c").read_text()
    assert "## Contrasts" not in report and "## Trends" in report
    # Without trends, every configuration against the baseline, as before.
    with store.session() as session:
        session.execute(sqlalchemy.delete(TrendRow))
    assert len(study_contrasts(store, "s", runs)) == 2 * len(FRACTIONS) - 1


def _cell3(mean: float, low: float, high: float) -> str:
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def test_views_a_student_trains_on_in_words():
    config = {"augment": {"pad_crop": 2, "hflip": True}, "cache": {"views": 8}}
    assert training_views(config) == "8 fixed views per image of the 50 distinct ones"
    config["cache"]["views"] = 50
    assert training_views(config) == "50 fixed views per image of the 50 distinct ones"
    config["cache"]["views"] = 0
    assert training_views(config) == "the clean images (no augmentation)"


def test_views_differing_across_configurations_are_a_table_in_the_given_order():
    def run(label, views):
        config = {"augment": {"pad_crop": 2, "hflip": True}, "cache": {"views": views}}
        return SimpleNamespace(label=label, config=config)

    runs = [run("b", 8), run("a", 50), run("b", 8), run("c", 8)]
    [table] = views_lines(runs, order=["c", "a", "b"])
    rows = table.splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| c", "| a", "| b"]
    assert "| 50 fixed views per image of the 50 distinct ones |" in rows[1]
    assert views_lines(runs[:1] + runs[2:], order=[]) == [
        "Every configuration's student trains on 8 fixed views per image of the 50 distinct ones."
    ]


def test_paired_deltas_compare_what_reports_compare_by_default(storage_url):
    from harness.analysis import paired_deltas

    store = _trend_store(storage_url)
    treatment, control = _hashes(2)
    runs = load_runs(store, "s").filter(pl.col("config_hash").is_in([treatment, control]))
    [row] = paired_deltas(runs, baseline=control).iter_rows(named=True)
    # The report's metric, test top-1 (the combined prediction here moves against the
    # class head), not the final validation top-1 (equal on both sides: a zero delta).
    assert row["delta_mean"] == pytest.approx(-np.mean([r[2] for r in DELTAS]))


def test_the_static_forest_plot_states_each_verdict_on_an_axis_with_ticks():
    from harness.analysis._forest import _ticks, forest_svg

    frame = pl.DataFrame(
        {
            "contrast": ["a", "b"],
            "n": [5, 5],
            "delta_mean": [-0.0042, 0.015],
            "delta_ci_low": [-0.0081, 0.0052],
            "delta_ci_high": [-0.0004, 0.025],
            "verdict": ["no difference shown (could detect ±0.005 at 80% power)", "helps"],
            "margin": [None, None],
        }
    )
    svg = forest_svg(frame, title="t")
    verdicts = re.findall(r'<tspan class="verdict"[^>]*>([^<]*)</tspan>', svg)
    assert verdicts == ["no difference shown", "helps"]
    labels = re.findall(r'class="tick-label"[^>]*>([^<]*)<', svg)
    assert "+0" in labels and len(labels) >= 3
    assert _ticks(-0.0105, 0.027) == pytest.approx([-0.01, 0.0, 0.01, 0.02])


def _trend_rows(slope: float | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    trends = pl.DataFrame(
        {
            "trend": ["t"],
            "factor": ["dataset.train_fraction"],
            "scale": ["log"],
            "metric": ["test/top1_cls"],
            "n": [5],
            "slope": [slope],
            "slope_ci_low": [None if slope is None else slope - 0.002],
            "slope_ci_high": [None if slope is None else slope + 0.002],
            "verdict": ["shrinks with log dataset.train_fraction"],
        }
    )
    levels = pl.DataFrame(
        {
            "trend": ["t"] * 3,
            "value": [0.4, 0.1, 0.2],  # not in order: the figure sorts them
            "delta_mean": [0.01, 0.03, 0.02],
            "delta_ci_low": [0.0, 0.02, 0.01],
            "delta_ci_high": [0.02, 0.04, 0.03],
        }
    )
    return trends, levels


def test_the_static_trend_figure_puts_each_level_on_a_log_axis_with_the_fitted_slope():
    from harness.analysis._forest import trends_svg

    trends, levels = _trend_rows(-0.0144)
    svg = trends_svg(trends, levels)
    found = re.findall(r'class="estimate" cx="([\d.]+)" cy="([\d.]+)"', svg)
    dots = [(float(x), float(y)) for x, y in found]
    # Doublings are equal steps on a log axis, in increasing order of the factor.
    xs = [x for x, _ in dots]
    assert xs == sorted(xs) and xs[1] - xs[0] == pytest.approx(xs[2] - xs[1], abs=0.2)
    # A larger delta is drawn higher (smaller y): 0.03 at 0.1, 0.02 at 0.2, 0.01 at 0.4.
    ys = [y for _, y in dots]
    assert ys[0] < ys[1] < ys[2]
    assert re.findall(r'class="tick-label"[^>]*>([^<]*)<', svg)[:3] == ["0.1", "0.2", "0.4"]
    # The fitted line falls with a negative slope, and one whisker per level.
    [points] = re.findall(r'class="fitted"[^>]*points="([^"]+)"', svg)
    fitted = [tuple(map(float, p.split(","))) for p in points.split()]
    assert fitted[0][1] < fitted[-1][1]
    assert svg.count('class="whisker"') == 3
    assert "t: shrinks with log dataset.train_fraction" in svg
    assert "slope -0.0144 [-0.0164, -0.0124] per log dataset.train_fraction (n=5)" in svg
    # A trend with no slope yet (a seed short of every level) draws nothing: no figure at all.
    assert trends_svg(*_trend_rows(None)) is None


def test_publish_names_the_commit_of_every_run_and_the_time_spent_training(storage_url, tmp_path):
    import datetime

    store = Store(storage_url)
    day = datetime.datetime(2026, 1, 1)
    # Two sittings: 10:00-10:30 and 14:00-14:10; the study trained 40 minutes of them.
    spans = [(day.replace(hour=10), day.replace(hour=10, minute=30))]
    spans.append((day.replace(hour=14), day.replace(hour=14, minute=10)))
    for number, (config, commit, dirty) in enumerate(
        [("a" * 64, "1111111111111111", False), ("b" * 64, "2222222222222222", True)]
    ):
        identity = RunIdentity("s", number, config, 0, config[:1], {})
        run_id = record_run(
            store,
            identity,
            metrics={VAL_TOP1: 0.5, TEST_TOP1: 0.5},
            environment={"commit": commit, "commit_dirty": dirty},
        )
        with store.session() as session:
            started, finished = spans[number]
            session.execute(
                sqlalchemy.update(RunRow)
                .where(RunRow.id == run_id)
                .values(started_at=started, finished_at=finished)
            )
    out = publish(store, "s", out_dir=tmp_path / "s", command="libkd run s.yaml")
    assert "2026-01-01T10:00 to 2026-01-01T14:10 UTC (0:40 of it training)" in out.read_text()
    # Trained across two commits: the record names both, not the first run's alone.
    assert "commits 111111111111 (1 run), 222222222222+dirty (1 run), " in out.read_text()
    runs = pl.read_csv(out.with_name("runs.csv"))
    assert runs["commit"].to_list() == ["111111111111", "222222222222+dirty"]
    environment = json.loads(out.with_name("environment.json").read_text())
    assert environment["commits"] == {"111111111111": 1, "222222222222+dirty": 1}
    assert environment["active_seconds"] == 40 * 60


def test_a_run_resumed_from_epochs_of_another_commit_names_both():
    from harness.store import commit_label

    here = {"commit": "2" * 40, "commit_dirty": True}
    assert commit_label(here) == "222222222222+dirty"
    same = here | {"resumed_from": [{"commit": "2" * 40, "commit_dirty": True, "epochs": 3}]}
    assert commit_label(same) == "222222222222+dirty"  # one commit trained it all
    earlier = [{"commit": "1" * 40, "commit_dirty": False, "epochs": 3}, {"epochs": 1}]
    assert (
        commit_label(here | {"resumed_from": earlier})
        == "222222222222+dirty resumed from 111111111111 and unknown"
    )


def test_the_dashboard_shows_the_study_as_queued_with_its_overrides(storage_url, tmp_path):
    from harness.runner import RunnerSession
    from harness.study import load_study
    from tests.helpers import tiny_dict, write_study

    path = write_study(tmp_path, tiny_dict(seeds=[0]))
    study = load_study(path, overrides=["train.lr=0.002"])
    store = Store(storage_url)
    RunnerSession(study, store=store).prepare()
    point = study.configs[0]
    identity = RunIdentity(study.name, 0, point.config_hash, 0, point.label, {})
    record_run(store, identity, metrics={VAL_TOP1: 0.5}, environment={"commit": "c" * 40})
    page = render_dashboard(store, study.name)  # by name: no file given
    assert f"# queued from {path}" in page and "# --set train.lr=0.002" in page
    assert "lr: 0.002" in page
    assert "commits: cccccccccccc (1 run)" in page


def test_report_as_latex_holds_both_tables_escaped(storage_url):
    from typer.testing import CliRunner

    from harness.cli import app

    store = _trend_store(storage_url)
    _contrast_store(store)
    result = CliRunner().invoke(app, ["report", "s", "--storage", storage_url, "--format", "latex"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.count(r"\begin{tabular}") == 2 and text.count(r"\toprule") == 2
    assert r"on\_cls & test/top1\_cls & 4 &" in text  # names escaped, n, then the delta
    assert "_" not in text.replace(r"\_", "")  # no unescaped underscore reaches LaTeX


def test_publish_with_latex_writes_the_same_tables_beside_the_record(storage_url, tmp_path):
    from typer.testing import CliRunner

    from harness.analysis import publish
    from harness.cli import app

    store = _trend_store(storage_url)
    _contrast_store(store)
    latex = CliRunner().invoke(app, ["report", "s", "--storage", storage_url, "--format", "latex"])
    out = tmp_path / "s"
    publish(store, "s", out_dir=out, command="libkd run s.yaml", latex=True)
    assert (out / "tables.tex").read_text() == latex.output  # one rendering, two doors
    publish(store, "s", out_dir=out, command="libkd run s.yaml")
    assert not (out / "tables.tex").exists()  # republished without: no stale tables


def test_compare_puts_two_studies_contrasts_side_by_side(storage_url, tmp_path):
    """`libkd compare`: each contrast once, each study's own n, delta [CI], verdict and
    Holm p beside the other's (here the same study run with 4 and with 3 seeds, in two
    databases)."""
    import polars as pl
    from typer.testing import CliRunner

    from harness.analysis import contrast_frame, load_runs, study_contrasts
    from harness.cli import app

    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    first, second = _trend_store(storage_url), _trend_store(other_url, seeds=3)
    _contrast_store(first)
    _contrast_store(second)
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "s",
            "s",
            "--storage",
            storage_url,
            "--second-storage",
            other_url,
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    compared = pl.read_csv(io.StringIO(result.stdout))
    assert compared["contrast"].to_list() == ["on_cls", "on_combined"]
    assert compared["a_n"].to_list() == [4, 4] and compared["b_n"].to_list() == [3, 3]
    for tag, store in (("a", first), ("b", second)):
        runs = load_runs(store, "s")
        own = contrast_frame(runs, study_contrasts(store, "s", runs))
        for row, mine in zip(
            compared.iter_rows(named=True), own.iter_rows(named=True), strict=True
        ):
            assert row[f"{tag}_delta"].startswith(f"{mine['delta_mean']:+.4f} [")
            assert row[f"{tag}_verdict"] == mine["verdict"]
            assert row[f"{tag}_metric"] == mine["metric"]
    assert compared["same_verdict"].to_list() == [
        a.split(" (")[0] == b.split(" (")[0]
        for a, b in zip(compared["a_verdict"], compared["b_verdict"], strict=True)
    ]
    missing = CliRunner().invoke(app, ["compare", "s", "nope", "--storage", storage_url])
    assert missing.exit_code == 2 and "study 'nope' has no complete runs" in missing.output


def test_the_teacher_summary_is_each_teachers_mean_interval_and_margin():
    """C1 at a glance: each teacher's instances summarised (mean test top-1 with its t
    interval from scipy) and its margin over the plain ViT's mean test top-1."""
    from harness.analysis._publish import teacher_summary

    tests = [0.80, 0.84, 0.82]
    teachers = [
        {"teacher": "conv", "arch": "resnet", "val_top1": 0.8, "test_top1": t} for t in tests
    ] + [{"teacher": "inv", "arch": "rednet", "val_top1": 0.7, "test_top1": 0.75}]
    report = pl.DataFrame(
        {
            "label": ["teachers=none", "teachers=conv", "teachers=none, label_smoothing=0.1"],
            "teachers": ["none", "conv", "none"],
            "f:distill.teachers": ["none", "conv", "none"],
            "f:train.label_smoothing": [None, None, "0.1"],
            "test_mean": [0.78, 0.8, 0.79],
        }
    )
    rows = {r["teacher"]: r for r in teacher_summary(teachers, report).iter_rows(named=True)}
    low, high = stats.t.interval(0.95, 2, loc=np.mean(tests), scale=stats.sem(tests))
    assert rows["conv"]["instances"] == 3
    assert rows["conv"]["test top-1 [95% CI]"] == f"0.820 [{low:.3f}, {min(high, 1):.3f}]"
    assert rows["conv"]["over the plain ViT (test)"] == "+0.040"
    assert rows["inv"]["test top-1 [95% CI]"] == "0.750"  # one instance: no interval
    assert rows["inv"]["over the plain ViT (test)"] == "-0.030"
    assert rows["conv"]["plain ViT (test)"] == "0.780"  # not the label-smoothed one
    assert "data" not in rows["conv"]  # a study whose teachers all train on the same data


def test_teachers_are_summarised_per_data_setting_against_the_plain_vit_on_the_same_data():
    """A study over data fractions: each teacher's instances at each fraction, against the
    plain ViT trained on that fraction (C1 holds, or not, per fraction)."""
    from harness.analysis._publish import teacher_summary

    teachers = [
        {"teacher": "conv", "setting": f"train_fraction={f}", "arch": "resnet"}
        | {"val_top1": t, "test_top1": t}
        for f, t in [("0.05", 0.84), ("0.05", 0.86), ("0.2", 0.90)]
    ]
    report = pl.DataFrame(
        {
            "teachers": ["none", "conv", "none", "conv"],
            "f:dataset.train_fraction": ["0.05", "0.05", "0.2", "0.2"],
            "f:distill.teachers": ["none", "conv", "none", "conv"],
            "test_mean": [0.81, 0.83, 0.88, 0.89],
        }
    )
    rows = {r["data"]: r for r in teacher_summary(teachers, report).iter_rows(named=True)}
    assert rows["train_fraction=0.05"]["instances"] == 2
    assert rows["train_fraction=0.05"]["plain ViT (test)"] == "0.810"
    assert rows["train_fraction=0.05"]["over the plain ViT (test)"] == "+0.040"
    assert rows["train_fraction=0.2"]["plain ViT (test)"] == "0.880"
    assert rows["train_fraction=0.2"]["over the plain ViT (test)"] == "+0.020"


def test_publish_shows_the_first_stage_beside_a_contrast_the_seed_plan_extended(
    storage_url, tmp_path
):
    """A seed plan that took a contrast from 3 seeds to 4: the record also shows the 3-seed
    result (paired t on seeds 0-2), so a reader sees what the first stage alone said."""
    store = _trend_store(storage_url)
    aim = {"halfwidth": 0.001, "target_metric": TEST_TOP1_CLS, "min_seeds": 3, "max_seeds": 9}
    store.save_contrasts("s", [_kd_vs_plain("on_cls", 0, metric=TEST_TOP1_CLS, **aim)])
    report = publish(store, "s", out_dir=tmp_path / "s", command="libkd run s.yaml").read_text()
    # Its one contrast declares the class head: the heading says so, not the report's metric.
    assert "## Contrasts (test top-1 of the final model's class head)" in report
    final, first = report.split("### The first stage alone (seeds 0, 1, 2)")
    assert "| on_cls | test/top1_cls | 4 |" in final
    staged = [d[2] for d in DELTAS[:3]]
    mean = np.mean(staged)
    low, high = stats.t.interval(0.95, 2, loc=mean, scale=stats.sem(staged))
    assert f"| on_cls | test/top1_cls | 3 | {mean:+.3f} [{low:+.3f}, {high:+.3f}] |" in first


def _cost_rows(report: str) -> dict[str, list[str]]:
    """The cost table's rows by configuration: cells, header first."""
    lines = report.split("### Costs", 1)[1].split("###", 1)[0].splitlines()
    table = [line.strip("| ").split(" | ") for line in lines if line.startswith("| ")]
    return {row[0]: row for row in table}


def test_the_cost_table_shows_cpu_per_wall_second_only_where_runs_recorded_it(
    storage_url, tmp_path
):
    store = Store(storage_url)
    number = 0
    for seed, cpu in enumerate([45.0, 30.0]):
        for label, recorded in (("plain", False), ("kd", True)):
            metrics = {VAL_TOP1: 0.8, "cost/total_seconds": 60.0}
            if recorded:
                metrics["cost/cpu_seconds"] = cpu
            identity = RunIdentity("s", number, label.ljust(64, "0"), seed, label, {})
            record_run(store, identity, metrics=metrics)
            number += 1
    report = publish(store, "s", out_dir=tmp_path / "s", command="libkd run s.yaml").read_text()
    rows = _cost_rows(report)
    assert rows["configuration"][-1] == "CPU/wall"
    assert rows["kd"][-1] == f"{(45 / 60 + 30 / 60) / 2:.2f}"  # 0.62
    assert rows["plain"][-1] == "-"  # stored before runs recorded their CPU time
    assert "CPU/wall: CPU seconds per wall-clock second" in report
    # A study none of whose runs recorded it: neither the column nor its caption.
    bare = Store(f"sqlite:///{tmp_path / 'bare.db'}")
    for seed in range(2):
        identity = RunIdentity("s", seed, "p".ljust(64, "0"), seed, "plain", {})
        record_run(bare, identity, metrics={VAL_TOP1: 0.8, "cost/total_seconds": 60.0})
    report = publish(bare, "s", out_dir=tmp_path / "bare", command="libkd run s.yaml").read_text()
    assert "CPU/wall" not in report
    assert "configuration" in _cost_rows(report)
