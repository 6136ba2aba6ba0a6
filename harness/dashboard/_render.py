"""Draw the figure data with plotly into one self-contained HTML file (plotly.js inlined)."""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

from harness.analysis import (
    best_values,
    complete_runs,
    epoch_summary,
    factor_columns,
    final_values,
    format_cell,
    load_runs,
    report_frame,
)
from harness.dashboard._figures import (
    CacheData,
    CurveData,
    FactorData,
    HeadData,
    ParetoData,
    ProfileData,
    attention_profile,
    cache_usage,
    factor_comparison,
    head_accuracy,
    head_metrics,
    learning_curves,
    pareto,
    temperature_factors,
)
from harness.metrics import VAL_PREFIX, VAL_TOP1
from harness.store import Store, load_optuna_study, optuna_storage, redact, study_kind

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


def _error_bars(
    mean: list[float], low: list[float | None], high: list[float | None]
) -> dict[str, Any]:
    return {
        "type": "data",
        "symmetric": False,
        "array": [(h - m) if h is not None else 0 for m, h in zip(mean, high)],
        "arrayminus": [(m - lo) if lo is not None else 0 for m, lo in zip(mean, low)],
    }


def factor_figure(data: FactorData, *, lines: bool = False) -> go.Figure:
    fig = go.Figure()
    for i, s in enumerate(data.series):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=s.x,
                y=s.mean,
                name=s.name,
                mode="lines+markers" if lines else "markers",
                marker={"size": 12, "symbol": "diamond", "color": color},
                error_y=_error_bars(s.mean, s.ci_low, s.ci_high),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=s.points_x,
                y=s.points_y,
                mode="markers",
                name=f"{s.name} (seeds)",
                marker={"size": 6, "opacity": 0.5, "color": color},
                showlegend=False,
            )
        )
    fig.update_layout(
        title=f"val top-1 by {data.factor} (mean, 95% CI; dots: seeds)",
        xaxis_title=data.factor,
        yaxis_title="val top-1",
        xaxis_type="category" if not lines else None,
    )
    return fig


def curve_figure(data: CurveData) -> go.Figure:
    fig = go.Figure()
    for i, s in enumerate(data.series):
        color = PALETTE[i % len(PALETTE)]
        band_x = s.x + s.x[::-1]
        band_y = [h if h is not None else m for m, h in zip(s.mean, s.ci_high)] + [
            lo if lo is not None else m for m, lo in zip(s.mean[::-1], s.ci_low[::-1])
        ]
        fig.add_trace(
            go.Scatter(
                x=band_x,
                y=band_y,
                fill="toself",
                fillcolor=color,
                opacity=0.15,
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(go.Scatter(x=s.x, y=s.mean, name=s.name, line={"color": color}))
    fig.update_layout(
        title=f"learning curve: {data.metric} (mean, 95% CI band)",
        xaxis_title="epoch",
        yaxis_title=data.metric,
    )
    return fig


def pareto_figure(front: ParetoData) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=front.cost,
            y=front.top1,
            text=front.labels,
            mode="markers+text",
            textposition="top center",
            marker={"size": 12, "color": ["#d62728" if f else "#7f7f7f" for f in front.front]},
        )
    )
    on_front = sorted((c, t) for c, t, f in zip(front.cost, front.top1, front.front) if f)
    fig.add_trace(
        go.Scatter(
            x=[c for c, _ in on_front],
            y=[t for _, t in on_front],
            mode="lines",
            name="Pareto front",
            line={"dash": "dot", "color": "#d62728"},
        )
    )
    fig.update_layout(
        title="accuracy versus cost (red: Pareto-optimal)",
        xaxis_title="seconds per run (teachers + cache + training + evaluation)",
        yaxis_title="val top-1",
        showlegend=False,
    )
    return fig


def cache_figure(usage: CacheData) -> go.Figure:
    fig = go.Figure(
        [
            go.Bar(name="cache hit", x=usage.labels, y=usage.hits),
            go.Bar(name="cache built", x=usage.labels, y=usage.builds),
            go.Bar(name="online teachers / no teacher", x=usage.labels, y=usage.online),
        ]
    )
    fig.update_layout(
        barmode="stack", title="logit cache: runs that hit, built or skipped it", yaxis_title="runs"
    )
    return fig


def throughput_figure(usage: CacheData) -> go.Figure:
    fig = go.Figure(go.Bar(x=usage.labels, y=usage.train_samples_per_second))
    fig.update_layout(title="student training throughput", yaxis_title="samples / s")
    return fig


def attention_figure(profile: ProfileData) -> go.Figure:
    fig = go.Figure(
        [
            go.Scatter(x=profile.layers, y=d, name=label, mode="lines+markers")
            for label, d in zip(profile.labels, profile.distance)
        ]
    )
    fig.update_layout(
        title="mean attention distance per student layer (pixels; locality)",
        xaxis_title="layer",
        yaxis_title="pixels",
    )
    return fig


def heads_figure(heads: HeadData) -> go.Figure:
    fig = go.Figure(
        [
            go.Bar(name=metric.removeprefix(VAL_PREFIX), x=heads.labels, y=values)
            for metric, values in heads.heads.items()
        ]
    )
    fig.update_layout(
        barmode="group", title="accuracy of each head (final epoch, mean)", yaxis_title="val top-1"
    )
    return fig


def _figures(
    runs: pl.DataFrame, summary: pl.DataFrame, finals: pl.DataFrame, report: pl.DataFrame
) -> list[tuple[str, go.Figure]]:
    """Every figure of a study as (key, figure): each drawn from its own figure data."""
    usage = cache_usage(runs)
    profile = attention_profile(runs)
    figures = [
        (f"factor-{f[2:]}", factor_figure(factor_comparison(runs, f))) for f in factor_columns(runs)
    ]
    figures += [
        (f"temperature-{f[2:]}", factor_figure(factor_comparison(runs, f), lines=True))
        for f in temperature_factors(runs)
    ]
    figures += [
        (f"curve-{m}", curve_figure(learning_curves(summary, metric=m)))
        for m in head_metrics(summary)
    ]
    figures += [
        ("pareto", pareto_figure(pareto(report))),
        ("cache", cache_figure(usage)),
        ("throughput", throughput_figure(usage)),
    ]
    if profile.labels:
        figures.append(("attention-distance", attention_figure(profile)))
    figures.append(("heads", heads_figure(head_accuracy(finals, runs))))
    return figures


def _optuna_figures(store: Store, name: str) -> list[tuple[str, go.Figure]]:
    # Only searches get Optuna's figures; a grid study (or libkd rows without an Optuna
    # study) is known as such without loading Optuna.
    if study_kind(store.engine, name) != "search":
        return []
    import optuna

    study = load_optuna_study(name, optuna_storage(store.url))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return []
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    figures = [
        (
            "optuna-history",
            optuna.visualization.plot_optimization_history(
                study, target=target, target_name=VAL_TOP1
            ),
        ),
        (
            "optuna-parallel",
            optuna.visualization.plot_parallel_coordinate(
                study, target=target, target_name=VAL_TOP1
            ),
        ),
    ]
    # Importances need at least two distinct values of some parameter.
    with contextlib.suppress(RuntimeError, ValueError):
        figures.append(
            (
                "optuna-importance",
                optuna.visualization.plot_param_importances(
                    study, target=target, target_name=VAL_TOP1
                ),
            )
        )
    if len(study.directions) > 1:
        figures.append(("optuna-pareto", optuna.visualization.plot_pareto_front(study)))
    return figures


def _table(report: pl.DataFrame) -> str:
    columns = ["label", "n", "mean", "std", "ci_low", "ci_high", "best_mean"]
    columns += [
        c for c in ("delta_mean", "delta_ci_low", "delta_ci_high", "p_value") if c in report.columns
    ]
    columns += ["train_seconds", "samples_per_second"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for row in report.select(columns).iter_rows():
        cells = "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row)
        rows.append(f"<tr>{cells}</tr>")
    return (
        f"<table id='summary'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


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
    figures = _figures(runs, summary, finals, report) + _optuna_figures(store, name)
    counts = runs.group_by("status").len().sort("status")
    progress = ", ".join(f"{s}: {n}" for s, n in counts.iter_rows())
    environment = store.first_environment(name) if not complete_runs(runs).is_empty() else {}
    source = study_file.read_text() if study_file is not None and study_file.is_file() else ""
    blocks = "\n".join(
        f"<section class='figure' id='{html.escape(key)}'>{_div(key, fig)}</section>"
        for key, fig in figures
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
<p id="environment">environment: {html.escape(json.dumps(environment, sort_keys=True))}</p>
<details><summary>study file</summary><pre id="study-file">{html.escape(source)}</pre></details>
<h2>summary (val top-1 over seeds; deltas paired by seed against the plain ViT)</h2>
{_table(report)}
{blocks}
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
