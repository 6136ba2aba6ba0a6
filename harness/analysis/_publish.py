"""`libkd publish`: the committed record of a study, `results/<study>/report.md` and
`environment.json`, written from the database alone."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from harness._atomic import json_text, replace_files
from harness.analysis._aggregate import (
    ACCURACY,
    CPU_SHARE,
    METRIC_WORDS,
    cpu_share_recorded,
    report_metric,
    t_interval,
)
from harness.analysis._contrasts import (
    CONTRAST_COLUMNS,
    ContrastSpec,
    contrast_frame,
    study_contrasts,
)
from harness.analysis._curves import FLAT_GAIN, curve_table
from harness.analysis._forest import forest_svg, trends_svg
from harness.analysis._frames import (
    complete_runs,
    epoch_summary,
    factor_columns,
    load_runs,
    teacher_setting_columns,
)
from harness.analysis._index import CONTRASTS_FILE, TRENDS_FILE
from harness.analysis._latex import latex_tables
from harness.analysis._report import markdown_table, markdown_text, report_frame
from harness.analysis._text import interval_text
from harness.analysis._trends import TREND_COLUMNS, study_trends, trend_frames
from harness.config import AugmentConfig, CacheConfig
from harness.errors import LibKDError
from harness.metrics import (
    AGREE_COMBINED_PREFIX,
    ATTENTION_DISTANCE_PREFIX,
    ATTENTION_UNIFORM,
    TEST_TOP1,
    TEST_TOP1_CLS,
    VAL_TOP1,
    VAL_TOP1_CLS,
)
from harness.status import RunStatus
from harness.store import RunRow, Store, active_seconds, commit_counts_text, commit_label


def _setting_label(values: dict[str, Any]) -> str:
    """`train_fraction=0.05` for the factor dataset.train_fraction at 0.05."""
    return ", ".join(f"{c.rsplit('.', 1)[-1]}={v}" for c, v in values.items())


def _teacher_rows(store: Store, study: str, runs: pl.DataFrame) -> list[dict[str, Any]]:
    """Every teacher instance the study's runs used, with the data setting it was trained
    in (the runs' values of `TEACHER_DATA_FACTORS`; '' in a study without such factors)."""
    settings = teacher_setting_columns(runs)
    by_run = {row["id"]: row for row in runs.select("id", *settings).iter_rows(named=True)}
    used = store.artifact_runs(study) if settings else {}
    rows = {}
    for role, artifact in store.study_artifacts(study):
        if artifact.kind != "teacher":
            continue
        run = next((by_run[i] for i in used.get(artifact.key, []) if i in by_run), {})
        rows[artifact.key] = {
            "teacher": role.removeprefix("teacher:"),
            "setting": _setting_label({c: run.get(c) for c in settings}),
            "arch": artifact.name.split(":", 1)[-1],
            "val_top1": artifact.meta.get("val_top1"),
            "test_top1": artifact.meta.get("test_top1"),
            "params": artifact.meta.get("params"),
            "forward_flops": artifact.meta.get("flops"),
            # Stored before the involution's own multiply-adds were counted: RedNets low.
            "flops_counted": artifact.meta.get("flops_method", "torch ops only (stale)"),
            "train_seconds": artifact.build_seconds,
            "key": artifact.key[:12],
        }
    return sorted(rows.values(), key=lambda row: (row["teacher"], row["setting"]))


def _teacher_instances(teachers: list[dict[str, Any]]) -> pl.DataFrame:
    """Each instance, its data setting as `data` where the study has one."""
    frame = pl.DataFrame(teachers)
    if not any(row["setting"] for row in teachers):
        return frame.drop("setting")
    return frame.rename({"setting": "data"})


def _plain_test(report: pl.DataFrame, setting: dict[str, Any]) -> float | None:
    """The plain ViT's mean test top-1 in a data setting: of the configurations without
    teachers at the setting's factor values, the one with fewest other factors set (the
    plain ViT, not its label-smoothed or all-views variants)."""
    if "teachers" not in report.columns or "test_mean" not in report.columns:
        return None
    plain = report.filter(pl.col("teachers") == "none")
    for column, value in setting.items():
        plain = plain.filter(pl.col(column).cast(pl.Utf8) == str(value))
    if plain.is_empty():
        return None
    others = [c for c in factor_columns(plain) if c not in setting and c != "f:distill.teachers"]
    overrides = [sum(row[c] is not None for c in others) for row in plain.iter_rows(named=True)]
    value = plain["test_mean"][overrides.index(min(overrides))]
    return float(value) if isinstance(value, int | float) else None


def teacher_summary(teachers: list[dict[str, Any]], report: pl.DataFrame) -> pl.DataFrame:
    """Per teacher (and data setting, where the study varies the teachers' data): instances,
    validation and test top-1 means (test with its 95% t-interval, clipped to [0, 1]), the
    plain ViT's mean test top-1 in the same setting and the teacher's margin over it."""
    settings = teacher_setting_columns(report)
    by_setting: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in teachers:
        by_setting.setdefault((row["teacher"], row.get("setting", "")), []).append(row)
    values = {
        _setting_label(dict(zip(settings, combo))): dict(zip(settings, combo))
        for combo in report.select(settings).unique(maintain_order=True).iter_rows()
    }
    rows = []
    for (name, setting), instances in by_setting.items():
        tests = [float(r["test_top1"]) for r in instances if r["test_top1"] is not None]
        vals = [float(r["val_top1"]) for r in instances if r["val_top1"] is not None]
        mean = sum(tests) / len(tests) if tests else None
        low = high = None
        if mean is not None and len(tests) > 1:
            low, high = t_interval(mean, statistics.stdev(tests), len(tests), bounds=ACCURACY)
        plain = _plain_test(report, values.get(setting, {}))
        rows.append(
            {
                "teacher": name,
                **({"data": setting} if settings else {}),
                "arch": instances[0]["arch"],
                "instances": len(instances),
                "val top-1": _fixed(sum(vals) / len(vals) if vals else None),
                "test top-1 [95% CI]": _cell(mean, low, high),
                "plain ViT (test)": _fixed(plain),
                "over the plain ViT (test)": (
                    _fixed(mean - plain, sign="+")
                    if mean is not None and plain is not None
                    else "-"
                ),
            }
        )
    return pl.DataFrame(rows)


def _diagnostics(runs: pl.DataFrame) -> pl.DataFrame:
    """Per configuration: mean over seeds of the agreement of the combined head with labels
    and each teacher, and the mean attention distance of the first and last layer."""
    complete = complete_runs(runs)
    layers = sorted(
        (c for c in complete.columns if c.startswith(ATTENTION_DISTANCE_PREFIX)),
        key=lambda c: int(c.rsplit("/", 1)[-1]),
    )
    agreement = sorted(c for c in complete.columns if c.startswith(AGREE_COMBINED_PREFIX))
    columns = {c.removeprefix(AGREE_COMBINED_PREFIX): c for c in agreement}
    if layers:
        columns["attn_dist_first"] = layers[0]
        columns["attn_dist_last"] = layers[-1]
    if ATTENTION_UNIFORM in complete.columns:
        columns["attn_dist_uniform"] = ATTENTION_UNIFORM
    if not columns:
        return pl.DataFrame()
    return (
        complete.group_by("label")
        .agg([pl.col(source).mean().alias(name) for name, source in columns.items()])
        .sort("label")
    )


RUNS_FILE = "runs.csv"
FOREST_FILE = "forest.svg"
TRENDS_FIGURE_FILE = "trends.svg"
REPORT_FILE = "report.md"
ENVIRONMENT_FILE = "environment.json"
LATEX_FILE = "tables.tex"


def per_run_table(runs: pl.DataFrame) -> pl.DataFrame:
    """Every complete run: configuration, seed, validation and test metrics, costs; what
    every figure of the report is computed from."""
    done = complete_runs(runs)
    wanted = [
        "config_hash",
        "label",
        *factor_columns(done),
        "seed",
        "adopted_from",  # a copy of another study's run: the run it copies (empty: trained here)
        "split",
        "top1",
        VAL_TOP1_CLS,
        TEST_TOP1,
        TEST_TOP1_CLS,
        "teacher_seconds",
        "cache_seconds",
        "train_seconds",
        "eval_seconds",
        "cache_status",
        "student_params",
    ]
    table = done.select([c for c in wanted if c in done.columns])
    return table.rename({"top1": VAL_TOP1})


def _with_commits(table: pl.DataFrame, frame: pl.DataFrame, runs: list[RunRow]) -> pl.DataFrame:
    """`runs.csv` with the commit each run was trained at (`+dirty`: uncommitted changes):
    a study trained across several commits says which run is which."""
    commits = {run.id: commit_label(run.environment) for run in runs}
    ids = complete_runs(frame)["id"].to_list()
    return table.with_columns(
        pl.Series("commit", [commits.get(i, "unknown") for i in ids], dtype=pl.Utf8)
    )


def _commits_text(environment: dict[str, Any]) -> str:
    """The record's commit: 'commit X' where every run came from one, else each commit with
    its runs ('commits X (6 runs), Y (3 runs)'), so a study trained across several is not
    credited to its first."""
    commits = environment.get("commits") or {}
    if len(commits) <= 1:
        return f"commit {next(iter(commits), str(environment.get('commit'))[:12])}"
    return "commits " + commit_counts_text(commits)


def _environment(runs: list[RunRow], command: str) -> dict[str, Any]:
    """Machine, commit and time span of the runs the study trained itself; a run copied
    from another study of the database keeps its own (in runs.csv). Every run's, when the
    study copied them all."""
    trained = [r for r in runs if r.adopted_from is None] or runs
    last = max(r.finished_at or r.started_at for r in trained)
    environment = dict(trained[0].environment)
    # The first trained run's commit heads the record; every commit the runs came from,
    # with how many runs each, follows it (runs.csv names each run's).
    commits: dict[str, int] = {}
    for run in runs:
        commit = commit_label(run.environment)
        commits[commit] = commits.get(commit, 0) + 1
    environment.update(
        commits=dict(sorted(commits.items())),
        command=command,
        runs=len(runs),
        copied=sum(r.adopted_from is not None for r in runs),
        started=min(r.started_at for r in trained).isoformat(),
        finished=last.isoformat(),
        # While any of them trained (teachers and caches included): a study resumed over
        # several sittings is not charged the hours between them.
        active_seconds=round(
            active_seconds([(r.started_at, r.finished_at) for r in trained], last)
        ),
    )
    return environment


def training_views(config: dict[str, Any]) -> str:
    """The augmented views a run's student trains on, in words: the replayable views are
    what the teachers' logits were cached for, and every configuration of a study sees the
    same ones, those without teachers too (so a comparison changes the teachers alone)."""
    views = config.get("cache", {}).get("views", CacheConfig().views)
    distinct = AugmentConfig.model_validate(config.get("augment", {})).distinct_views
    if views == 0:
        return "the clean images (no augmentation)"
    shown = min(views, distinct)
    return f"{shown} fixed view{'s' * (shown != 1)} per image of the {distinct} distinct ones"


def views_lines(runs: list[RunRow], order: list[str]) -> list[str]:
    """What each configuration's student trains on: one sentence where every configuration
    sees the same views, else a table in `order` (configuration labels; others after)."""
    seen: dict[str, str] = {}
    for run in runs:
        seen.setdefault(run.label, training_views(run.config))
    if len(set(seen.values())) == 1:
        return [f"Every configuration's student trains on {next(iter(seen.values()))}."]
    rank = {label: i for i, label in enumerate(order)}
    labels = sorted(seen, key=lambda label: rank.get(label, len(rank)))
    rows = [{"configuration": label, "student trains on": seen[label]} for label in labels]
    return [markdown_table(pl.DataFrame(rows))]


def _hours(seconds: float) -> str:
    """Seconds as h:mm."""
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def _copied(count: int) -> str:
    return f" ({count} copied from other studies of this database)" if count else ""


def _metrics_words(contrasts: pl.DataFrame, words: str) -> str:
    """What the contrasts compare: the one metric they all declare (the report's when they
    declare none), or that each row names its own."""
    metrics = set(contrasts["metric"].to_list()) if "metric" in contrasts.columns else set()
    if len(metrics) > 1:
        return "each on the metric its row names"
    (metric,) = metrics or {None}
    return words if metric is None else METRIC_WORDS.get(str(metric), str(metric))


def publish(
    store: Store,
    study: str,
    *,
    out_dir: Path,
    command: str,
    description: str = "",
    latex: bool = False,
) -> Path:
    """Write `out_dir/report.md` (the contrasts and their forest plot first), `forest.svg`,
    `trends.svg` (where a trend has a slope),
    `runs.csv` (every run, seed by seed) and `environment.json`, and with `latex` the
    booktabs tables of the configurations and contrasts (`tables.tex`); returns the
    report's path."""
    runs = [r for r in store.runs(study) if r.status == RunStatus.COMPLETE]
    if not runs:
        raise LibKDError(f"study {study!r} has no complete runs in this database; run it first")
    frame_runs = load_runs(store, study)
    frame = report_frame(store, study, runs=frame_runs)
    words = report_metric(frame_runs).words
    specs = study_contrasts(store, study, frame_runs)
    contrasts = contrast_frame(frame_runs, specs)
    splits = ", ".join(sorted(set(complete_runs(frame_runs)["split"].to_list())))
    environment = _environment(runs, command)
    costs = cost_table(frame)
    parts = [
        f"# {study}",
        "",
        markdown_text(description),
        "",
        f"`{command}`: {len(runs)} complete runs{_copied(environment['copied'])} on "
        f"{environment.get('device_name')} "
        f"({environment.get('device')}), torch {environment.get('torch')}, "
        f"{_commits_text(environment)}, {environment['started'][:16]} to "
        f"{environment['finished'][:16]} UTC ({_hours(environment['active_seconds'])} of "
        f"it training). Splits: {splits}. Every run, seed by seed: "
        f"[{RUNS_FILE}]({RUNS_FILE}).",
    ]
    files: dict[str, str] = {}
    if not contrasts.is_empty():
        files[FOREST_FILE] = forest_svg(
            contrasts,
            title=f"{study}: paired difference in {_metrics_words(contrasts, words)}, 95% CI",
        )
        parts += [
            "",
            f"## Contrasts ({_metrics_words(contrasts, words)})",
            "",
            f"![forest plot of the contrasts]({FOREST_FILE})",
            "",
            "Treatment minus control, paired by seed. Interval: 95%, paired t on n - 1 degrees "
            "of freedom, or Stein's two-stage interval where a seed plan chose n. p (t): "
            "two-sided; sign-flip: exact permutation test (Monte Carlo above 16 pairs) with the "
            "smallest p its n allows; Holm: adjusted across this table's contrasts; MDE: the "
            "difference detectable at 80% power (alpha 0.05). Verdict: helps/hurts only at "
            "Holm p < 0.05; equivalent only by TOST within the declared margin; interim "
            "while a seed plan still wants more pairs. Combined and class head: the same "
            "pairs' delta of the prediction averaged over every head and of the class head "
            "alone (a student with more distillation heads averages more of them).",
            "",
            markdown_table(compact_contrasts(contrasts)),
        ]
        parts += first_stage_section(frame_runs, specs, contrasts)
    trends, levels = trend_frames(frame_runs, study_trends(store, study))
    if not trends.is_empty():
        parts += [
            "",
            "## Trends",
            "",
            "Slope of the paired delta (treatment minus control) against the factor (its "
            "natural log on scale log), one least-squares slope per seed that ran every "
            "level, summarised over seeds like a contrast's deltas (95% interval, t and "
            "sign-flip p, Holm across this table's trends, MDE). Levels: each level's delta "
            "[95% CI] on the same seeds.",
            "",
        ]
        figure = trends_svg(trends, levels)
        if figure is not None:
            files[TRENDS_FIGURE_FILE] = figure
            parts += [f"![each level's delta and the fitted slope]({TRENDS_FIGURE_FILE})", ""]
        parts += [
            markdown_table(compact_trends(trends)),
            "",
            markdown_table(compact_levels(levels)),
        ]
    parts += [
        "",
        "## Student top-1 per configuration",
        "",
        "Mean over seeds with a 95% t-interval (clipped to [0, 1]). test top-1: the final "
        "model (last epoch) on the test split, read once per run; test class head: its class "
        "head alone; val top-1: the final validation top-1; best-epoch val: the best "
        "validation epoch (an optimistic figure: selected on the data it reports). delta: "
        f"{words}, paired by seed against the plain ViT, a descriptive paired-t interval: "
        "each contrast's tested interval (Stein's where a seed plan chose n) is the contrast "
        "table's.",
        "",
        markdown_table(compact_configurations(frame)),
        "",
        "### Costs",
        "",
        "train s: seconds of training per run, mean over runs with a bootstrap 95% interval; "
        "teacher s, cache s: the build seconds of the teachers and logit caches the "
        "configuration's runs used, each counted once (summed over seeds where each seed has "
        "its own); samples/s: training throughput; FLOPs: the student's forward pass per image"
        + (CPU_SHARE_CAPTION if CPU_WALL in costs.columns else "."),
        "",
        markdown_table(costs),
    ]
    parts += [
        "",
        "### What each configuration's student trains on",
        "",
        *views_lines(runs, frame["label"].to_list()),
    ]
    curves = curve_table(epoch_summary(store, study))
    if not curves.is_empty():
        parts += [
            "",
            "## Learning curves (validation top-1, mean over seeds)",
            "",
            "epoch_*: the mean curve at evaluated epochs (at_p%: at p% of each configuration's "
            "own schedule, when schedules differ); last_quarter_gain: its rise over the "
            f"last quarter of training; flat_at_end: that rise is below {FLAT_GAIN}. A decaying "
            "learning rate flattens every curve at its end, so a flat end does not show "
            "convergence: whether a longer schedule pays is a contrast between schedules "
            "(train.epochs as a factor).",
            "",
            markdown_table(curves),
        ]
    teachers = _teacher_rows(store, study, frame_runs)
    if teachers:
        parts += [
            "",
            "## Teachers (top-1 on the validation and test splits)",
            "",
            "Per teacher over its instances (one per seed where the seed scope includes the "
            "teacher), and per data setting where the study varies the data the teachers "
            "train on: test top-1 mean with a 95% t-interval, the plain ViT student's mean "
            "test top-1 on the same data (the configuration without teachers) and the "
            "teacher's margin over it; then each instance.",
            "",
            markdown_table(teacher_summary(teachers, frame)),
            "",
            markdown_table(_teacher_instances(teachers)),
        ]
    diagnostics = _diagnostics(frame_runs)
    if not diagnostics.is_empty():
        parts += [
            "",
            "## Diagnostics (mean over seeds)",
            "",
            "Agreement: top-1 match rate of the student's combined prediction with the labels "
            "and with each teacher. Attention distance: mean distance in pixels a head "
            "attends over, first and last layer; uniform: what attention spread evenly over "
            "every patch would give (a head at that value has learned no locality).",
            "",
            markdown_table(diagnostics),
        ]
    files[RUNS_FILE] = _with_commits(per_run_table(frame_runs), frame_runs, runs).write_csv()
    if not contrasts.is_empty():  # what the results index reads (never retyped)
        columns = ["contrast", "treatment", "control", *CONTRAST_COLUMNS]
        files[CONTRASTS_FILE] = contrasts.select(
            [c for c in dict.fromkeys(columns) if c in contrasts.columns]
        ).write_csv()
    if not trends.is_empty():
        columns = ["trend", "factor", "scale", *TREND_COLUMNS]
        files[TRENDS_FILE] = trends.select(
            [c for c in dict.fromkeys(columns) if c in trends.columns]
        ).write_csv()
    if latex:
        files[LATEX_FILE] = latex_tables(frame, contrasts, metric_words=words) + "\n"
    files[REPORT_FILE] = "\n".join(parts) + "\n"
    files[ENVIRONMENT_FILE] = json_text(environment)
    try:
        obsolete = (FOREST_FILE, CONTRASTS_FILE, TRENDS_FILE, TRENDS_FIGURE_FILE, LATEX_FILE)
        replace_files(out_dir, files, obsolete=obsolete)
    except OSError as exc:
        raise LibKDError(
            f"publish: could not write {out_dir} ({exc.strerror or exc}); the record there is "
            "unchanged: free some space, or publish elsewhere with --out"
        ) from None
    return out_dir / REPORT_FILE


def _fixed(value: object, digits: int = 3, sign: str = "") -> str:
    return f"{value:{sign}.{digits}f}" if isinstance(value, int | float) else "-"


def _cell(mean: Any, low: Any, high: Any, *, sign: str = "") -> str:
    """`mean [low, high]` to 3 decimals (the record's tables; the CSVs keep every digit)."""
    return interval_text(mean, low, high, digits=3, sign=sign)


def _p(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def first_stage_section(
    runs: pl.DataFrame, specs: list[ContrastSpec], contrasts: pl.DataFrame
) -> list[str]:
    """Where a seed plan extended some contrast past its first stage, the contrasts on the
    first stage's seeds alone (paired t, Holm across them), beside the final ones: what the
    study showed before it chose n."""
    firsts = {spec.min_seeds for spec in specs if spec.min_seeds}
    if len(firsts) != 1 or contrasts.is_empty():
        return []
    first = firsts.pop()
    if max((int(n) for n in contrasts["n"].to_list() if n is not None), default=0) <= first:
        return []
    seeds = sorted(set(complete_runs(runs)["seed"].to_list()))[:first]
    plain = [replace(spec, halfwidth=None, min_seeds=None, max_seeds=None) for spec in specs]
    staged = contrast_frame(runs.filter(pl.col("seed").is_in(seeds)), plain)
    return [
        "",
        f"### The first stage alone (seeds {', '.join(map(str, seeds))})",
        "",
        f"The seed plan's first {first} seeds of every contrast, before it chose n: paired t, "
        "Holm across this table's contrasts. The table above is the study's result; this "
        "one shows what the first stage alone said.",
        "",
        markdown_table(compact_contrasts(staged)),
    ]


def compact_contrasts(contrasts: pl.DataFrame) -> pl.DataFrame:
    """The contrast table as report.md shows it: one interval per cell, 3 decimals, the
    verdict beside the declared metric's delta, then the other head's figures."""
    rows = []
    for r in contrasts.iter_rows(named=True):
        rows.append(
            {
                "contrast": r["contrast"],
                "metric": r["metric"],
                "n": r["n"],
                "delta [95% CI]": _cell(
                    r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"], sign="+"
                ),
                "verdict": r["verdict"],
                "Holm p": _p(r.get("p_holm")),
                "MDE": _fixed(r.get("mde")),
                "combined [95% CI]": _cell(
                    r.get("combined_delta"),
                    r.get("combined_ci_low"),
                    r.get("combined_ci_high"),
                    sign="+",
                ),
                "class head [95% CI]": _cell(
                    r.get("cls_delta"), r.get("cls_ci_low"), r.get("cls_ci_high"), sign="+"
                ),
                "interval": r.get("method") or "-",
            }
        )
    return pl.DataFrame(rows)


def compact_trends(trends: pl.DataFrame) -> pl.DataFrame:
    """The trend table as report.md shows it, like the contrasts': the slope with its
    interval in one cell (per unit of the axis: of the factor's natural log on scale log),
    3 decimals, the verdict beside it (each level's delta is in the levels table)."""
    rows = []
    for r in trends.iter_rows(named=True):
        axis = f"log {r['factor']}" if r["scale"] == "log" else r["factor"]
        rows.append(
            {
                "trend": r["trend"],
                "metric": r["metric"],
                "n": r["n"],
                "slope [95% CI]": _cell(
                    r["slope"], r["slope_ci_low"], r["slope_ci_high"], sign="+"
                ),
                "per": f"unit of {axis}",
                "verdict": r["verdict"],
                "Holm p": _p(r.get("p_holm")),
                "MDE": _fixed(r.get("mde")),
                "interval": r.get("method") or "-",
            }
        )
    return pl.DataFrame(rows)


def compact_levels(levels: pl.DataFrame) -> pl.DataFrame:
    """Each trend level's paired delta on the trend's seeds, one interval per cell."""
    return pl.DataFrame(
        [
            {
                "trend": r["trend"],
                "level": f"{r['factor']} = {r['value']:g}",
                "treatment": r["treatment"],
                "control": r["control"],
                "n": r["n"],
                "delta [95% CI]": _cell(
                    r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"], sign="+"
                ),
            }
            for r in levels.iter_rows(named=True)
        ]
    )


def compact_configurations(frame: pl.DataFrame) -> pl.DataFrame:
    """Per configuration: test and validation top-1 with their intervals, the class head,
    the best validation epoch, and the descriptive paired delta against the plain ViT."""
    rows = []
    for r in frame.iter_rows(named=True):
        rows.append(
            {
                "configuration": r["label"],
                "n": r["n"],
                "test top-1 [95% CI]": _cell(
                    r.get("test_mean"), r.get("test_ci_low"), r.get("test_ci_high")
                ),
                "test class head": _fixed(r.get("test_cls_mean")),
                "val top-1 [95% CI]": _cell(r.get("mean"), r.get("ci_low"), r.get("ci_high")),
                "best-epoch val": _fixed(r.get("best_mean")),
                "delta [95% CI]": (
                    "baseline"
                    if r.get("delta_mean") is None
                    else _cell(
                        r.get("delta_mean"), r.get("delta_ci_low"), r.get("delta_ci_high"), sign="+"
                    )
                ),
                "p (paired t)": _p(r.get("p_value")),
            }
        )
    return pl.DataFrame(rows)


CPU_WALL = "CPU/wall"
CPU_SHARE_CAPTION = (
    f"; {CPU_WALL}: CPU seconds per wall-clock second of a run, mean over the runs that recorded "
    "it: about its thread count on cores of its own, less where other work shared them and "
    "its seconds above grew."
)


def cost_table(frame: pl.DataFrame) -> pl.DataFrame:
    """Per configuration: training seconds per run with their interval, one-off teacher and
    cache seconds, throughput, the student's size and, where runs recorded their CPU time,
    CPU seconds per wall-clock second (`CPU_SHARE`)."""
    cpu = cpu_share_recorded(frame)  # else no column rather than one of dashes
    rows = []
    for r in frame.iter_rows(named=True):
        flops = r.get("student_flops")
        rows.append(
            {
                "configuration": r["label"],
                "train s [95% CI]": (
                    f"{r['train_seconds']:.1f} [{r['train_seconds_ci_low']:.1f}, "
                    f"{r['train_seconds_ci_high']:.1f}]"
                    if isinstance(r.get("train_seconds_ci_low"), float)
                    else _fixed(r.get("train_seconds"), 1)
                ),
                "teacher s": _fixed(r.get("one_off_teacher_seconds"), 1),
                "cache s": _fixed(r.get("one_off_cache_seconds"), 1),
                "samples/s": _fixed(r.get("samples_per_second"), 0),
                "FLOPs": f"{flops / 1e6:.2f} M" if isinstance(flops, int | float) else "-",
                **({CPU_WALL: _fixed(r.get(CPU_SHARE), 2)} if cpu else {}),
            }
        )
    return pl.DataFrame(rows)
