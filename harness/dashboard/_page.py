"""The dashboard page: one self-contained HTML file (plotly.js inlined) holding a study's
figures, its summary, contrast, trend and seed-plan tables, the study file and provenance."""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
import polars as pl
import yaml
from plotly.offline import get_plotlyjs

from harness.analysis import (
    CONTRAST_COLUMNS,
    TREND_COLUMNS,
    Precision,
    best_values,
    complete_runs,
    contrast_frame,
    epoch_summary,
    final_values,
    format_cell,
    load_runs,
    report_frame,
    report_metric,
    seed_precision,
    study_contrasts,
    study_trends,
    trend_frames,
)
from harness.dashboard._figures import (
    forest,
    teacher_levels,
    teacher_references,
)
from harness.metrics import VAL_TOP1
from harness.store import (
    Store,
    commit_counts_text,
    redact,
    study_kind,
    study_objectives,
)

if TYPE_CHECKING:
    pass

from harness.dashboard._plots import forest_figure, optuna_figures, study_figures, trend_figure


def _html_table(frame: pl.DataFrame, columns: list[str], *, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for row in frame.select(columns).iter_rows():
        cells = "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row)
        rows.append(f"<tr>{cells}</tr>")
    return (
        f"<table id='{table_id}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _contrast_table(contrasts: pl.DataFrame) -> str:
    """The contrasts' numbers under the forest plot, with the seed plan's target if any."""
    if contrasts.is_empty():
        return ""
    columns = [c for c in (*CONTRAST_COLUMNS, "target") if c in contrasts.columns]
    return "<h2>contrasts</h2>" + _html_table(contrasts, columns, table_id="contrasts")


def _trend_table(trends: pl.DataFrame) -> str:
    """The trends' numbers under their figures."""
    if trends.is_empty():
        return ""
    columns = [c for c in (*TREND_COLUMNS, "target") if c in trends.columns]
    return "<h2>trends</h2>" + _html_table(trends, columns, table_id="trends")


def _precision_table(found: list[Precision]) -> str:
    """The seed plan: seeds each aimed contrast has and needs, its half-width and target."""
    if not found:
        return ""
    frame = pl.DataFrame(
        [
            {
                "contrast": p.name,
                "pairs": p.pairs,
                "planned": p.planned,
                "max": p.max_seeds,
                "half-width": p.halfwidth,
                "target": p.target,
                "metric": p.metric,
                "state": p.state,
            }
            for p in found
        ]
    )
    table = _html_table(frame, frame.columns, table_id="seed-plan")
    return "<h2>seed plan (two-stage)</h2>" + table


def _table(report: pl.DataFrame) -> str:
    columns = ["label", "n", "test_mean", "test_ci_low", "test_ci_high"]
    columns += ["mean", "std", "ci_low", "ci_high", "best_mean"]
    columns += [
        c for c in ("delta_mean", "delta_ci_low", "delta_ci_high", "p_value") if c in report.columns
    ]
    columns += ["train_seconds", "samples_per_second"]
    return _html_table(report, columns, table_id="summary")


def _div(key: str, fig: go.Figure) -> str:
    # The id lands inside a JavaScript string: derive it from a hash, never from a name a
    # study file chose (a teacher called `a"),(...` would run as script).
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"fig-{digest}",
            config={"displaylogo": False},
        )
    )


def _study_file_text(store: Store, name: str, study_file: Path | None) -> str:
    """The study as it ran: the file as queued (overrides applied, every value spelled out)
    from the database, with the overrides named; else the file on disk."""
    record = store.study_record(name)
    if record is not None:
        overrides = record.overrides.get("set", [])
        head = f"# queued from {record.source}"
        head += "".join(f"\n# --set {o}" for o in overrides) if overrides else ""
        return head + "\n" + yaml.safe_dump(record.file, sort_keys=False)
    return study_file.read_text() if study_file is not None and study_file.is_file() else ""


def _environment_text(environment: dict[str, Any], commits: dict[str, int]) -> str:
    """Where the runs came from, in words: each commit with its runs, then the software and
    the machine of the first run."""
    parts = [commit_counts_text(commits)]
    for key in ("torch", "python", "libkd", "device", "device_name", "host"):
        if environment.get(key) is not None:
            parts.append(f"{key} {environment[key]}")
    return "commits: " + " · ".join(parts)


def render_dashboard(store: Store, name: str, *, study_file: Path | None = None) -> str:
    """The study's dashboard as one self-contained HTML page. Each part is read once and
    shared by the summary table and every figure: the runs, and the epochs as the database
    aggregates them (best epoch per run, last epoch's heads, per-epoch means and spreads of
    each configuration); the epoch rows themselves are never loaded."""
    runs = load_runs(store, name)
    if runs.is_empty():
        raise store.no_runs_error(name)
    report = report_frame(store, name, runs=runs, best=best_values(store, name))
    summary = epoch_summary(store, name, prefix=VAL_TOP1)
    finals = final_values(store, name, prefix=VAL_TOP1)
    words = report_metric(runs).words
    contrasts = contrast_frame(runs, study_contrasts(store, name, runs))
    figures = study_figures(
        runs,
        summary,
        finals,
        report,
        references=teacher_references(store, name, runs),
        objectives=study_objectives(store.engine, name),
        search=study_kind(store.engine, name) == "search",
        teachers=teacher_levels(store, name, runs),
    )
    figures += optuna_figures(store, name)
    trends, levels = trend_frames(runs, study_trends(store, name))
    for i, trend in enumerate(trends.iter_rows(named=True)):
        mine = levels.filter(pl.col("trend") == trend["trend"])
        if trend["slope_ci_low"] is not None and not mine.is_empty():
            figures.insert(i, (f"trend-{trend['trend']}", trend_figure(trend, mine)))
    if not contrasts.is_empty():  # the main result: first
        figures.insert(0, ("forest", forest_figure(forest(contrasts), metric=words)))
    counts = runs.group_by("status").len().sort("status")
    progress = ", ".join(f"{s}: {n}" for s, n in counts.iter_rows())
    environment = store.first_environment(name) if not complete_runs(runs).is_empty() else {}
    source = _study_file_text(store, name, study_file)
    blocks = "\n".join(
        f"<section class='figure' id='{html.escape(key)}'>{_div(key, fig)}</section>"
        for key, fig in figures
    )
    summary_title = (
        f"summary over seeds (deltas: {words}, paired against the plain ViT; descriptive "
        "paired-t intervals, the contrasts table holds the tested ones)"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>libkd: {html.escape(name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
.figure {{ margin: 2em 0; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>libkd study: {html.escape(name)}</h1>
<p id="progress">runs: {html.escape(progress)} | database: {html.escape(redact(store.url))}</p>
<p id="environment">{html.escape(_environment_text(environment, store.commit_counts(name)))}</p>
<details><summary>study file</summary><pre id="study-file">{html.escape(source)}</pre></details>
{blocks}
<h2>{html.escape(summary_title)}</h2>
{_table(report)}
{_contrast_table(contrasts)}
{_trend_table(trends)}
{_precision_table(seed_precision(store, name))}
</body></html>
"""


def write_dashboard(
    store: Store, name: str, *, out: Path | None = None, study_file: Path | None = None
) -> Path:
    """Write the study's dashboard (default results/<study>/dashboard.html); returns the path."""
    text = render_dashboard(store, name, study_file=study_file)
    path = out or Path("results") / name / "dashboard.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
