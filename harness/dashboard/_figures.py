"""Figure data computed from the database frames, apart from drawing (tests check these)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import polars as pl

from harness.analysis import (
    complete_runs,
    factor_columns,
    pareto_configurations,
    t_interval,
    teacher_setting_columns,
)
from harness.metrics import (
    ATTENTION_DISTANCE_PREFIX,
    ATTENTION_UNIFORM,
    SAMPLES_PER_SECOND,
    VAL_TOP1,
)
from harness.status import CacheStatus
from harness.store import Store


class Series(NamedTuple):
    """One trace: x positions, mean, 95% CI bounds, and the individual seed points."""

    name: str
    x: list[Any]
    mean: list[float]
    ci_low: list[float | None]
    ci_high: list[float | None]
    points_x: list[Any]
    points_y: list[float]


class FactorData(NamedTuple):
    factor: str
    series: list[Series]


def _stats(values: list[float]) -> tuple[float, float | None, float | None]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    low, high = t_interval(mean, std, n)
    return mean, low, high


def numeric_levels(values: list[str]) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return True


def factor_comparison(runs: pl.DataFrame, factor: str, *, metric: str = "top1") -> FactorData:
    """x = the factor's levels; one series per combination of the other factors."""
    done = complete_runs(runs)
    others = [c for c in factor_columns(done) if c != factor]
    levels = list(dict.fromkeys(done[factor].drop_nulls().to_list()))  # runs it applies to
    if numeric_levels(levels):
        levels.sort(key=float)
    series = []
    groups = done.partition_by(others, maintain_order=True) if others else [done]
    for group in groups:
        name = ", ".join(f"{c[2:]}={_level(group[c][0])}" for c in others) or metric
        x, means, lows, highs, px, py = [], [], [], [], [], []
        for level in levels:
            values = group.filter(pl.col(factor) == level)[metric].drop_nulls().to_list()
            if not values:
                continue
            mean, low, high = _stats(values)
            x.append(level)
            means.append(mean)
            lows.append(low)
            highs.append(high)
            px.extend([level] * len(values))
            py.extend(values)
        series.append(Series(name, x, means, lows, highs, px, py))
    return FactorData(factor[2:], series)


def _level(value: str | None) -> str:
    return "n/a" if value is None else value  # a factor the configuration does not have


def temperature_factors(runs: pl.DataFrame) -> list[str]:
    return [c for c in factor_columns(runs) if "temperature" in c]


class CurveData(NamedTuple):
    metric: str
    series: list[Series]  # x = epochs; no seed points


def learning_curves(summary: pl.DataFrame, *, metric: str) -> CurveData:
    """Mean and 95% CI band over seeds per epoch, one series per configuration, from the
    per-(configuration, epoch) summary (`epoch_summary`): a band per configuration, never a
    trace per seed."""
    rows = summary.filter(pl.col("name") == metric).sort("config_hash", "epoch")
    series = []
    for group in rows.partition_by("config_hash", maintain_order=True):
        x, means, lows, highs = [], [], [], []
        for epoch, n, mean, std in group.select("epoch", "n", "mean", "std").iter_rows():
            low, high = t_interval(mean, std, n)
            x.append(epoch + 1)
            means.append(mean)
            lows.append(low)
            highs.append(high)
        series.append(Series(group["label"][0], x, means, lows, highs, [], []))
    return CurveData(metric, series)


def head_metrics(frame: pl.DataFrame) -> list[str]:
    """The accuracy metrics of the student's heads found in a frame with a `name` column."""
    names = frame["name"].unique().to_list() if not frame.is_empty() else []
    return sorted(n for n in names if n.startswith(VAL_TOP1))


class ParetoData(NamedTuple):
    """Configuration means on two objectives (x, y, each with its direction); `front`
    marks the configurations no other beats on both."""

    labels: list[str]
    x: list[float]
    y: list[float]
    front: list[bool]
    x_title: str
    y_title: str


PER_RUN_SECONDS = "seconds per run"


def pareto(runs: pl.DataFrame, objectives: list[tuple[str, str]]) -> ParetoData:
    """The study's first two declared objectives over configuration means; with a single
    objective, it against the per-run cost (training + evaluation seconds, minimised). The
    one-off costs (teachers, caches) are left out: they are paid once, not per run."""
    done = complete_runs(runs)
    if len(objectives) < 2:
        done = done.with_columns(
            (pl.col("train_seconds") + pl.col("eval_seconds")).alias(PER_RUN_SECONDS)
        )
        objectives = [objectives[0] if objectives else (VAL_TOP1, "maximize")]
        objectives.append((PER_RUN_SECONDS, "minimize"))
    table = pareto_configurations(done, objectives[:2])
    if table.is_empty():
        return ParetoData([], [], [], [], "", "")
    (y_metric, y_way), (x_metric, x_way) = objectives[:2]
    return ParetoData(
        table["label"].to_list(),
        table[x_metric].to_list(),
        table[y_metric].to_list(),
        table["front"].to_list(),
        f"{x_metric} ({x_way}, mean over seeds)",
        f"{y_metric} ({y_way}, mean over seeds)",
    )


class CacheData(NamedTuple):
    labels: list[str]
    hits: list[int]
    builds: list[int]
    online: list[int]
    cache_seconds: list[float]
    train_samples_per_second: list[float]


def cache_usage(runs: pl.DataFrame) -> CacheData:
    """Per configuration: how many runs hit, built or did not use a cache, and their costs."""
    done = complete_runs(runs)
    table = done.group_by("label", maintain_order=True).agg(
        (pl.col("cache_status") == CacheStatus.HIT.value).sum().alias("hits"),
        (pl.col("cache_status") == CacheStatus.BUILT.value).sum().alias("builds"),
        (pl.col("cache_status") == CacheStatus.OFF.value).sum().alias("online"),
        pl.col("cache_seconds").mean(),
        pl.col(SAMPLES_PER_SECOND).mean(),
    )
    return CacheData(
        table["label"].to_list(),
        table["hits"].to_list(),
        table["builds"].to_list(),
        table["online"].to_list(),
        table["cache_seconds"].to_list(),
        table[SAMPLES_PER_SECOND].to_list(),
    )


class HeadData(NamedTuple):
    labels: list[str]
    heads: dict[str, list[float | None]]  # head metric -> mean final value per configuration


def head_accuracy(finals: pl.DataFrame, runs: pl.DataFrame) -> HeadData:
    """Final-epoch accuracy of the class head, each distillation head and the combination;
    `finals` holds the last evaluated epoch's values (`final_values`)."""
    done = complete_runs(runs)
    labels_of = done.select(pl.col("id").alias("run_id"), "label")
    last = finals.join(labels_of, on="run_id", how="inner")
    if last.is_empty():
        return HeadData([], {})
    labels = list(dict.fromkeys(done["label"].to_list()))
    heads: dict[str, list[float | None]] = {}
    for metric in head_metrics(last):
        means = last.filter(pl.col("name") == metric).group_by("label").agg(pl.col("value").mean())
        lookup = dict(means.iter_rows())
        heads[metric] = [lookup.get(label) for label in labels]
    return HeadData(labels, heads)


class ProfileData(NamedTuple):
    """Mean attention distance (pixels) per student layer, one series per configuration,
    and the distance uniform attention over the patches would give (None if not stored)."""

    labels: list[str]
    layers: list[int]
    distance: list[list[float]]
    uniform: float | None = None


def attention_profile(runs: pl.DataFrame) -> ProfileData:
    columns = sorted(
        (c for c in runs.columns if c.startswith(ATTENTION_DISTANCE_PREFIX)),
        key=lambda c: int(c.rsplit("/", 1)[1]),
    )
    done = complete_runs(runs)
    if not columns or done.is_empty():
        return ProfileData([], [], [])
    table = done.group_by("label", maintain_order=True).agg(pl.col(c).mean() for c in columns)
    uniform = None
    if ATTENTION_UNIFORM in done.columns and done[ATTENTION_UNIFORM].null_count() < len(done):
        uniform = float(done[ATTENTION_UNIFORM].drop_nulls()[0])
    return ProfileData(
        table["label"].to_list(),
        [int(c.rsplit("/", 1)[1]) for c in columns],
        [list(row[1:]) for row in table.iter_rows()],
        uniform,
    )


class ForestRow(NamedTuple):
    """One contrast in the forest plot: paired delta, its 95% CI, n, equivalence margin."""

    name: str
    n: int
    delta: float
    low: float | None
    high: float | None
    margin: float | None
    verdict: str


def forest(contrasts: pl.DataFrame) -> list[ForestRow]:
    """The forest plot's rows, in the study's contrast order."""
    if contrasts.is_empty():
        return []
    return [
        ForestRow(
            r["contrast"],
            r["n"],
            r["delta_mean"],
            r["delta_ci_low"],
            r["delta_ci_high"],
            r["margin"],
            r["verdict"],
        )
        for r in contrasts.iter_rows(named=True)
    ]


@dataclass(frozen=True)
class TeacherLine:
    """A teacher's accuracy over its instances: the mean (the reference line) and the
    lowest and highest instance (its band), n instances."""

    mean: float
    lowest: float
    highest: float
    n: int


def _teacher_accuracies(store: Store, study: str) -> list[tuple[str, str, float]]:
    """(teacher name, instance key, accuracy) of each teacher instance the study's runs
    used: its test top-1, or its validation top-1 (the name marked "(val)") for teachers
    recorded before the test split."""
    found = []
    for role, artifact in store.study_artifacts(study):  # each (role, instance) once
        if artifact.kind != "teacher":
            continue
        accuracy = artifact.meta.get("test_top1")
        name = role.removeprefix("teacher:")
        if accuracy is None and artifact.meta.get("val_top1") is not None:
            accuracy, name = artifact.meta["val_top1"], f"{name} (val)"
        if accuracy is not None:
            found.append((name, artifact.key, float(accuracy)))
    return found


def _line(values: list[float]) -> TeacherLine:
    return TeacherLine(sum(values) / len(values), min(values), max(values), len(values))


def teacher_references(
    store: Store, study: str, runs: pl.DataFrame | None = None
) -> dict[str, TeacherLine]:
    """Each teacher's own test top-1 (validation for teachers recorded before the test
    split), by teacher name, over its instances (one per seed where the seed scope includes
    the teacher): the reference lines of the accuracy charts, never one instance's. None
    where the `runs` vary the data the teachers train on (a data-fraction study): one line
    would pool every fraction's teachers; `teacher_levels` draws them per level."""
    if runs is not None and teacher_setting_columns(runs):
        return {}
    found: dict[str, list[float]] = {}
    for name, _key, accuracy in _teacher_accuracies(store, study):
        found.setdefault(name, []).append(accuracy)
    return {name: _line(values) for name, values in sorted(found.items())}


@dataclass(frozen=True)
class TeacherLevels:
    """Each teacher's accuracy per level of the one factor that changes its training data
    (`factor`, a runs column such as f:dataset.train_fraction): {teacher: {level: line}}."""

    factor: str
    lines: dict[str, dict[str, TeacherLine]]


def teacher_levels(store: Store, study: str, runs: pl.DataFrame) -> TeacherLevels | None:
    """Where the runs vary the teachers' data by one factor, each teacher's instances
    summarised per level of it (an instance's level is that of the runs that used it): the
    teachers' own curve beside the students' on that factor's chart. None where no factor
    or several do (the report's Teachers table has every setting)."""
    settings = teacher_setting_columns(runs)
    if len(settings) != 1:
        return None
    [factor] = settings
    level_of = dict(zip(runs["id"].to_list(), runs[factor].to_list()))
    used = store.artifact_runs(study)
    found: dict[str, dict[str, list[float]]] = {}
    for name, key, accuracy in _teacher_accuracies(store, study):
        levels = {level_of[i] for i in used.get(key, []) if level_of.get(i) is not None}
        if len(levels) == 1:  # an instance trained at one level (as the seed scope says)
            found.setdefault(name, {}).setdefault(str(levels.pop()), []).append(accuracy)
    lines = {
        name: {level: _line(values) for level, values in by_level.items()}
        for name, by_level in sorted(found.items())
    }
    return TeacherLevels(factor, lines) if lines else None
