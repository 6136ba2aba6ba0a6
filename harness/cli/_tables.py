"""Every table the commands print: plans, results, contrasts, trends, seed plans, status,
the cache and the benchmark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from harness.analysis._seeds import FIRST_STAGE
from harness.analysis._text import format_cell

if TYPE_CHECKING:
    import polars as pl

    from harness.analysis import Precision, StudyStatus
    from harness.bench import BenchReport
    from harness.cache import LogitCache
    from harness.config import DatasetConfig, TrainRecipe
    from harness.runner._slurm import SlurmTask
    from harness.study import Study

from harness.cli._console import console, duration


def _length(recipe: TrainRecipe) -> str:
    return f"{recipe.steps} steps" if recipe.steps is not None else f"{recipe.epochs} epochs"


def _subset_words(data: DatasetConfig) -> str:
    """The training subset a teacher learns from, in the words of the study file."""
    share = (
        f"{data.train_per_class} per class"
        if data.train_per_class is not None
        else f"fraction {data.train_fraction:g}"
        if data.train_fraction is not None
        else "all"
    )
    return f"{data.name}, {share}, subset seed {data.subset_seed}"


def plan_tables(study: Study, *, copies: set[tuple[str, int]] | None = None) -> list[Table]:
    """The teachers a study would train (or reuse) and its configurations with their hashes;
    given `copies` (what other studies of a database ran), the seeds each would copy."""
    listed = study.teachers_to_train()
    datasets = {data.model_dump_json(): data for _, _, data in listed}
    teachers = Table(title=f"teachers to train (or reuse from the cache): {len(listed)}")
    columns = ["name", "arch", "width", "depth", "seed", "training"]
    for column in columns + (["trained on"] if len(datasets) > 1 else []):
        teachers.add_column(column)
    for name, t, data in listed:
        source = f"checkpoint {t.checkpoint}" if t.checkpoint else _length(t.train)
        width, depth = str(t.width), str(t.depth)
        if t.student is not None:  # a born-again teacher: the student's ViT
            width, depth = f"dim {t.student.embed_dim}", str(t.student.depth)
        row = [escape(name), escape(t.arch), width, depth, str(t.seed), source]
        if len(datasets) > 1:
            row.append(escape(_subset_words(data)))
        teachers.add_row(*row)
    trials = Table(title=f"{escape(study.name)}: trials")
    for column in ("#", "configuration", "hash", "seeds", "cache"):
        trials.add_column(column)
    if copies is not None:
        trials.add_column("seeds copied, not trained")
    seeds = ", ".join(map(str, study.seeds))
    for i, point in enumerate(study.configs):
        cache = point.config.cache
        cache_text = f"on, {cache.views} views" if cache.enabled else "off"
        row = [str(i), escape(point.label), point.config_hash[:12], seeds, cache_text]
        if copies is not None:
            copied = [s for s in study.seeds if (point.config_hash, s) in copies]
            row.append(", ".join(map(str, copied)) or "-")
        trials.add_row(*row)
    tables = [teachers, trials]
    if study.contrasts:
        plan = study.seed_plan
        aim = ""
        if plan is not None:
            aim = (
                f" (seed plan: {plan.min}..{plan.max} seeds, "
                f"half-width {plan.target.halfwidth:g} on {plan.target.metric})"
            )
        contrasts = Table(title=f"{escape(study.name)}: contrasts{aim}")
        for column in ("contrast", "treatment", "control", "metric", "margin", "aimed at"):
            contrasts.add_column(column)
        for c in study.contrasts:
            contrasts.add_row(
                escape(c.name),
                escape(c.treatment.label),
                escape(c.control.label),
                escape(c.metric or "report's (test/top1)"),
                "-" if c.margin is None else f"±{c.margin:g}",
                "yes" if c.targeted else "-",
            )
        tables.append(contrasts)
    if study.trends:
        trends = Table(title=f"{escape(study.name)}: trends")
        for column in ("trend", "factor", "levels", "treatment", "control", "metric", "aimed at"):
            trends.add_column(column)
        for trend in study.trends:
            trends.add_row(
                escape(trend.name),
                escape(f"{trend.factor} ({trend.scale})"),
                ", ".join(f"{level.value:g}" for level in trend.levels),
                escape(trend.levels[0].treatment.label),
                escape(trend.levels[0].control.label),
                escape(trend.metric or "report's (test/top1)"),
                "yes" if trend.targeted else "-",
            )
        tables.append(trends)
    return tables


def split_table(sizes: dict[str, dict[str, int] | str]) -> Table:
    """Images per split of each dataset configuration: train (after any subset), val (what
    selection reads), test (read once per run, for reports)."""
    table = Table(title="splits")
    for column in ("dataset", "train", "val (selection)", "test (reports only)"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for dataset, found in sizes.items():
        if isinstance(found, str):
            table.add_row(escape(dataset), escape(found), "", "")
        else:
            table.add_row(escape(dataset), *(str(found[k]) for k in ("train", "val", "test")))
    return table


def _interval(low: float | None, high: float | None, sign: str = "") -> str:
    return "-" if low is None or high is None else f"[{low:{sign}.4f}, {high:{sign}.4f}]"


def results_table(report: pl.DataFrame, *, title: str) -> Table:
    """Per configuration: seeds done, the final model's test top-1 with its 95% CI, the
    final and best-epoch validation top-1, and the paired delta against the baseline."""
    table = Table(title=title)
    for column in (
        "configuration",
        "seeds",
        "test top1 [95% CI]",
        "val top1 [95% CI]",
        "best-epoch val",
        "delta vs baseline [95% CI, paired t]",
        "p",
    ):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    has_deltas = "delta_mean" in report.columns
    for row in report.iter_rows(named=True):
        delta_text, p_text = "-", "-"
        if has_deltas and row["delta_mean"] is None:
            delta_text = "baseline"
        elif has_deltas:
            interval = _interval(row["delta_ci_low"], row["delta_ci_high"], "+")
            delta_text = f"{row['delta_mean']:+.4f} {interval}"
            p_text = format_cell(row["p_value"], 3)
        test = "-" if row["test_mean"] is None else format_cell(row["test_mean"])
        table.add_row(
            escape(row["label"]),
            str(row["n"]),
            f"{test} {_interval(row['test_ci_low'], row['test_ci_high'])}",
            f"{format_cell(row['mean'])} {_interval(row['ci_low'], row['ci_high'])}",
            format_cell(row["best_mean"]),
            delta_text,
            p_text,
        )
    return table


def contrasts_table(contrasts: pl.DataFrame, *, title: str) -> Table:
    """Per contrast: the metric, n, the paired delta with its 95% CI and the verdict beside
    it, Holm's p, the MDE at 80% power, the combined and class-head deltas on the same
    pairs, then the method and the other p-values."""
    table = Table(title=title)
    columns = ("contrast", "metric", "n", "delta [95% CI]", "verdict", "p (Holm)", "MDE")
    more = ("combined", "class head", "method", "p (t)", "p (sign-flip, min)", "equivalence")
    for column in (*columns, *more):
        table.add_column(column, justify="left" if column in ("contrast", "verdict") else "right")
    for row in contrasts.iter_rows(named=True):
        delta = (
            f"{row['delta_mean']:+.4f} {_interval(row['delta_ci_low'], row['delta_ci_high'], '+')}"
        )
        flip = f"{format_cell(row['p_sign_flip'], 3)} ({format_cell(row['p_sign_flip_min'], 3)})"
        equivalence = "-"
        if row["margin"] is not None:
            equivalence = f"{row['equivalence']} (±{row['margin']:g})"
        table.add_row(
            escape(row["contrast"]),
            escape(str(row["metric"])),
            str(row["n"]),
            delta,
            escape(row["verdict"]),
            format_cell(row["p_holm"], 3),
            format_cell(row["mde"]),
            row["combined [95% CI]"],
            row["class head [95% CI]"],
            row["method"],
            format_cell(row["p_t"], 3),
            flip,
            equivalence,
        )
    return table


def trends_table(trends: pl.DataFrame, *, title: str) -> Table:
    """Per trend: the metric, the seeds with every level, the slope with its 95% CI and the
    verdict beside it, Holm's p, the MDE, and each level's delta."""
    table = Table(title=title)
    for column in (
        "trend",
        "metric",
        "n",
        "slope [95% CI]",
        "verdict",
        "p (Holm)",
        "MDE",
        "levels: delta [95% CI]",
    ):
        table.add_column(column, justify="left" if column in ("trend", "verdict") else "right")
    for row in trends.iter_rows(named=True):
        axis = f"per log {row['factor']}" if row["scale"] == "log" else f"per {row['factor']}"
        interval = _interval(row["slope_ci_low"], row["slope_ci_high"], "+")
        table.add_row(
            escape(row["trend"]),
            escape(str(row["metric"])),
            str(row["n"]),
            f"{row['slope']:+.4f} {interval} {escape(axis)}",
            escape(row["verdict"]),
            format_cell(row["p_holm"], 3),
            format_cell(row["mde"]),
            escape(row["levels"]),
        )
    return table


def frame_table(frame: pl.DataFrame, *, title: str) -> Table:
    """Any small DataFrame as a rich table."""
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(column)
    for row in frame.iter_rows():
        table.add_row(*(escape(format_cell(v)) for v in row))
    return table


def precision_table(found: list[Precision], *, title: str) -> Table:
    """Per aimed contrast: pairs so far, pairs the two-stage plan asked for, the interval's
    half-width now (Stein, on the plan's metric) against the target, and the state."""
    table = Table(title=title)
    columns = ("contrast", "pairs", "planned", "max", "half-width", "target", "metric", "state")
    for column in columns:
        table.add_column(column, justify="right" if column in columns[1:6] else "left")
    for p in found:
        table.add_row(
            escape(p.name),
            str(p.pairs),
            "-" if p.planned is None else str(p.planned),
            str(p.max_seeds),
            format_cell(p.halfwidth),
            format_cell(p.target),
            p.metric,
            p.state,
        )
    if any(p.state == FIRST_STAGE for p in found):
        table.caption = (
            "'remaining' counts the trials queued now: a contrast in its first stage may yet "
            "queue more seeds of its configurations, up to its max"
        )
    return table


def status_table(found: list[StudyStatus]) -> Table:
    table = Table(title="studies")
    columns = ["study", "kind", "waiting", "running", "complete", "pruned", "failed"]
    columns += ["retried", "best"]
    for column in (*columns, "elapsed", "remaining"):
        table.add_column(column, justify="left" if column in ("study", "kind") else "right")
    for s in found:
        c = s.counts
        table.add_row(
            escape(s.name),
            s.kind,
            str(c["waiting"]),
            str(c["running"]),
            str(c["complete"]),
            str(c["pruned"]),
            str(c["fail"]),
            str(c.get("retried", 0)),
            "-" if s.best is None else f"{s.best:.4f}",
            duration(s.elapsed_seconds),
            duration(s.remaining_seconds),
        )
    return table


def cache_table(root: Path, entries: list[LogitCache], uses: dict[str, int]) -> Table:
    """Every cache entry: key, teacher, dataset, views, dtype, size, created, runs using it."""
    table = Table(title=f"logit caches in {escape(str(root))}")
    columns = ("key", "teacher", "dataset", "views", "dtype", "top-k", "size", "created", "runs")
    for column in columns:
        table.add_column(column)
    for entry in entries:
        m = entry.meta
        if "damaged" in m:
            table.add_row(entry.key[:16], f"[red]{escape(m['damaged'])}[/]", *["-"] * 5, "", "")
            continue
        created = dt.datetime.fromtimestamp(m["created"]).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            entry.key[:16],
            escape(str(m["teacher"])),
            escape(str(m["dataset"])),
            str(m["views"]),
            m["dtype"],
            str(m["top_k"] or "-"),
            f"{entry.bytes / 1024:.1f} KiB",
            created,
            str(uses.get(entry.key, 0)),
        )
    return table


def print_bench(report: BenchReport) -> None:
    """The tables of a `libkd bench` result."""
    for batch_size, result in report["batch_sizes"].items():
        table = Table(
            title=f"student training throughput, batch {batch_size} "
            f"({report['environment']['device']}, median of {report['windows']})"
        )
        table.add_column("mode")
        table.add_column("samples/s", justify="right")
        table.add_column("vs plain", justify="right")
        plain = result["samples_per_second"]["plain"]
        for mode, rate in result["samples_per_second"].items():
            table.add_row(mode, f"{rate:.1f}", f"{rate / plain:.3f}")
        console.print(table)
        ratios = Table(title="throughput ratios, paired within each round")
        for column in ("ratio", "median", "95% CI", "min", "max"):
            ratios.add_column(column, justify="left" if column == "ratio" else "right")
        for name, value in result["ratios"].items():
            if isinstance(value, dict):
                low, high = value["ci95"]
                ratios.add_row(
                    name,
                    f"{value['median']:.3f}",
                    f"[{low:.3f}, {high:.3f}]",
                    f"{value['min']:.3f}",
                    f"{value['max']:.3f}",
                )
            else:  # computed from separately timed parts
                ratios.add_row(name, f"{value:.3f}", "-", "-", "-")
        console.print(ratios)
        step = result["student_step"]
        fraction = step["fraction_of_bf16_peak"]
        console.print(
            f"student step: {step['tflops_per_second']:.3f} TFLOP/s"
            + ("" if fraction is None else f" = {fraction:.1%} of the bf16 peak")
        )
    for name, part in report["cache"].items():
        console.print(
            f"cache {name}: build {part['build_entries_per_second']:.0f} entries/s, raw teacher "
            f"inference {part['raw_inference_samples_per_second']:.0f} samples/s, "
            f"{part['bytes_per_sample']:.1f} bytes/sample on disk"
        )
    console.print(
        f"peak memory: {report['peak_memory_mib']:.0f} MiB ({report['peak_memory_kind']})"
    )


def slurm_table(jobs: list[dict[str, Any]], tasks: list[SlurmTask], *, title: str) -> Table:
    """Each submitted array: its tasks Slurm still lists (state, node), or that none is
    left, and where its script and logs are."""
    table = Table(title=title)
    for column in ("job", "task", "state", "node", "logs"):
        table.add_column(column)
    for job in jobs:
        mine = [t for t in tasks if t.job == job["job"]]
        for task in mine:
            table.add_row(job["job"], task.task, task.state, task.node, job["logs"])
        if not mine:
            table.add_row(job["job"], f"0-{job['tasks'] - 1}", "ended", "-", job["logs"])
    return table
