"""A study's plotly figures, drawn from the figure data of `_figures`: the forest plot,
trends, factors, curves, Pareto front, cache, attention, heads and Optuna's own views."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
import polars as pl

from harness.analysis import (
    factor_columns,
    fitted_line,
    format_cell,
    report_metric,
)
from harness.dashboard._figures import (
    CacheData,
    CurveData,
    FactorData,
    ForestRow,
    HeadData,
    ParetoData,
    ProfileData,
    TeacherLevels,
    TeacherLine,
    attention_profile,
    cache_usage,
    factor_comparison,
    head_accuracy,
    head_metrics,
    learning_curves,
    numeric_levels,
    pareto,
    temperature_factors,
)
from harness.metrics import TEST_TOP1, VAL_PREFIX, VAL_TOP1
from harness.store import (
    Store,
    load_optuna_study,
    reading_storage,
    study_kind,
    study_objectives,
)

if TYPE_CHECKING:
    from optuna.study import StudyDirection
    from optuna.trial import FrozenTrial

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


def forest_figure(rows: list[ForestRow], *, metric: str) -> go.Figure:
    """Each contrast's paired delta with its 95% CI (whiskers), n and the verdict in the
    label, a zero line and, where declared, the equivalence band; the first contrast on top."""
    # The verdict beside each interval, not on hover only: "helps", "no difference shown"...
    labels = [f"{r.name} (n={r.n}): {r.verdict.split(' (')[0]}" for r in rows]
    fig = go.Figure(
        go.Scatter(
            x=[r.delta for r in rows],
            y=labels,
            mode="markers",
            marker={"size": 10, "color": PALETTE[0]},
            error_x=_error_bars(
                [r.delta for r in rows], [r.low for r in rows], [r.high for r in rows]
            ),
            text=[r.verdict for r in rows],
            hovertemplate="%{y}: %{x:+.4f}<br>%{text}<extra></extra>",
            name="paired delta",
        )
    )
    for label, r in zip(labels, rows):
        if r.margin:
            fig.add_shape(
                type="rect",
                x0=-r.margin,
                x1=r.margin,
                y0=labels.index(label) - 0.4,
                y1=labels.index(label) + 0.4,
                fillcolor="#2ca02c",
                opacity=0.15,
                line={"width": 0},
                layer="below",
            )
    fig.add_vline(x=0, line_dash="dash", line_color="#888")
    fig.update_layout(
        title=f"contrasts: paired difference in {metric} (95% CI; band: equivalence margin)",
        xaxis_title=f"treatment minus control ({metric})",
        yaxis={"autorange": "reversed", "type": "category"},
        height=160 + 40 * len(rows),
    )
    return fig


def trend_figure(trend: dict[str, Any], levels: pl.DataFrame) -> go.Figure:
    """A trend: each level's paired delta with its 95% CI, and the fitted slope (the mean of
    the per-seed slopes) through the levels' mean; the verdict in the title."""
    values = levels["value"].to_list()
    log = trend["scale"] == "log"
    _, deltas, fitted = fitted_line(trend, levels)
    fig = go.Figure(
        [
            go.Scatter(
                x=values,
                y=deltas,
                mode="markers",
                marker={"size": 10, "color": PALETTE[0]},
                error_y=_error_bars(
                    deltas, levels["delta_ci_low"].to_list(), levels["delta_ci_high"].to_list()
                ),
                name="delta per level (95% CI)",
            ),
            go.Scatter(
                x=values,
                y=fitted,
                mode="lines",
                line={"color": PALETTE[1], "dash": "dot"},
                name=f"fitted slope {trend['slope']:+.4f}",
            ),
        ]
    )
    fig.add_hline(y=0, line_dash="dash", line_color="#888")
    interval = f"[{trend['slope_ci_low']:+.4f}, {trend['slope_ci_high']:+.4f}]"
    fig.update_layout(
        title=(
            f"{trend['trend']}: {trend['verdict']}; slope {trend['slope']:+.4f} {interval} per "
            f"{'log ' if log else ''}{trend['factor']} (n={trend['n']}, Holm p "
            f"{format_cell(trend['p_holm'], 3)})"
        ),
        xaxis={"title": trend["factor"], "type": "log" if log else "linear"},
        yaxis_title=f"treatment minus control ({trend['metric']})",
        height=420,
    )
    return fig


def factor_figure(
    data: FactorData,
    *,
    lines: bool = False,
    metric: str = "val top-1",
    references: dict[str, TeacherLine] | None = None,
    teachers: dict[str, dict[str, TeacherLine]] | None = None,
) -> go.Figure:
    """The students' metric by the factor's levels; `references` draws each teacher as a
    dotted line across the chart, `teachers` (a factor that changes the teachers' data)
    as its own dotted curve over the levels, whiskers from lowest to highest instance."""
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
    for name, line in (references or {}).items():
        if line.n > 1 and line.highest > line.lowest:  # the instances' spread
            fig.add_hrect(
                y0=line.lowest, y1=line.highest, fillcolor="#888", opacity=0.12, line_width=0
            )
        spread = f", n={line.n}: {line.lowest:.3f}-{line.highest:.3f}" if line.n > 1 else ""
        fig.add_hline(
            y=line.mean,
            line_dash="dot",
            line_color="#555",
            annotation_text=f"teacher {name} {line.mean:.3f}{spread}",
            annotation_position="right",
        )
    # The students' levels in their order, then any level only a teacher has.
    order = list(dict.fromkeys(x for s in data.series for x in s.x))
    extra = sorted({lv for by in (teachers or {}).values() for lv in by} - set(order))
    order += sorted(extra, key=float) if numeric_levels(extra) else extra
    for i, (name, by_level) in enumerate((teachers or {}).items()):
        x = [level for level in order if level in by_level]
        shown = [by_level[level] for level in x]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[line.mean for line in shown],
                name=f"teacher {name}",
                mode="lines+markers",
                line={"dash": "dot", "color": "#555"},
                marker={"size": 9, "symbol": ("x", "cross", "star")[i % 3], "color": "#555"},
                error_y=_error_bars(
                    [line.mean for line in shown],
                    [line.lowest for line in shown],
                    [line.highest for line in shown],
                ),
                text=[f"n={line.n}" for line in shown],
                hovertemplate="%{x}: %{y:.4f} (%{text} instances)<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        title=f"{metric} by {data.factor} (mean, 95% CI; dots: seeds; dotted: teachers)",
        xaxis_title=data.factor,
        yaxis_title=metric,
        xaxis_type="category" if not lines else None,
    )
    return fig


def _epoch_tick(data: CurveData) -> int:
    """Ticks at whole epochs, at most about 20 of them."""
    last = max((max(s.x) for s in data.series if s.x), default=1)
    return max(1, math.ceil(last / 20))


def curve_figure(data: CurveData) -> go.Figure:
    fig = go.Figure()
    # An accuracy lies in [0, 1]: so does its band (a t interval of few seeds may not).
    low_cap, high_cap = (0.0, 1.0) if "top1" in data.metric else (-math.inf, math.inf)
    for i, s in enumerate(data.series):
        color = PALETTE[i % len(PALETTE)]
        band_x = s.x + s.x[::-1]
        band_y = [min(h, high_cap) if h is not None else m for m, h in zip(s.mean, s.ci_high)]
        band_y += [
            max(lo, low_cap) if lo is not None else m for m, lo in zip(s.mean[::-1], s.ci_low[::-1])
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
        xaxis={"title": "epoch", "tickmode": "linear", "dtick": _epoch_tick(data)},
        yaxis_title=data.metric,
    )
    return fig


def pareto_figure(front: ParetoData) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=front.x,
            y=front.y,
            text=front.labels,
            mode="markers+text",
            textposition="top center",
            marker={"size": 12, "color": ["#d62728" if f else "#7f7f7f" for f in front.front]},
        )
    )
    on_front = sorted((x, y) for x, y, f in zip(front.x, front.y, front.front) if f)
    fig.add_trace(
        go.Scatter(
            x=[x for x, _ in on_front],
            y=[y for _, y in on_front],
            mode="lines",
            name="Pareto front",
            line={"dash": "dot", "color": "#d62728"},
        )
    )
    fig.update_layout(
        title="Pareto front over the objectives (red: no configuration beats it on both)",
        xaxis_title=front.x_title,
        yaxis_title=front.y_title,
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
    if profile.uniform is not None:
        fig.add_hline(
            y=profile.uniform,
            line_dash="dash",
            line_color="#888",
            annotation_text="uniform attention",
        )
    fig.update_layout(
        title="mean attention distance per student layer (pixels; locality)",
        xaxis={"title": "layer", "tickmode": "linear", "dtick": 1},
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


def study_figures(
    runs: pl.DataFrame,
    summary: pl.DataFrame,
    finals: pl.DataFrame,
    report: pl.DataFrame,
    *,
    references: dict[str, TeacherLine],
    objectives: list[tuple[str, str]],
    search: bool = False,
    teachers: TeacherLevels | None = None,
) -> list[tuple[str, go.Figure]]:
    """Every figure of a study as (key, figure): each drawn from its own figure data."""
    usage = cache_usage(runs)
    profile = attention_profile(runs)
    column = report_metric(runs).column
    metric = "test top-1" if column == TEST_TOP1 else "val top-1"
    # A search samples numbers: its factors are drawn by the slice plots, not as categories.
    factors = [] if search else factor_columns(runs)
    figures = [
        (
            f"factor-{f[2:]}",
            factor_figure(
                factor_comparison(runs, f, metric=column),
                metric=metric,
                references=references,
                teachers=teachers.lines if teachers and teachers.factor == f else None,
            ),
        )
        for f in factors
    ]
    figures += [
        (
            f"temperature-{f[2:]}",
            factor_figure(factor_comparison(runs, f, metric=column), lines=True, metric=metric),
        )
        for f in ([] if search else temperature_factors(runs))
    ]
    figures += [
        (f"curve-{m}", curve_figure(learning_curves(summary, metric=m)))
        for m in head_metrics(summary)
    ]
    figures.append(("pareto", pareto_figure(pareto(runs, objectives))))
    if not search:  # per-configuration bars: a search has one configuration per trial
        figures += [("cache", cache_figure(usage)), ("throughput", throughput_figure(usage))]
    if profile.labels:
        figures.append(("attention-distance", attention_figure(profile)))
    if not search:
        figures.append(("heads", heads_figure(head_accuracy(finals, runs))))
    return figures


def slice_figure(path: str, trials: list[FrozenTrial], *, metric: str) -> go.Figure:
    """One point per trial: the sampled value of `path` (a numeric axis for numbers) against
    the trial's objective, coloured by another sampled number when there is one."""
    having = [t for t in trials if path in t.params]
    # Colour by a number every one of these trials drew (a conditional one may be absent).
    others = sorted(
        k
        for k in {k for t in having for k in t.params if k != path}
        if all(_is_number(t.params.get(k)) for t in having)
    )
    colour = others[0] if others else None
    marker: dict[str, Any] = {"size": 10}
    if colour is not None:
        marker.update(
            color=[t.params.get(colour) for t in having],
            colorscale="Viridis",
            showscale=True,
            colorbar={"title": colour},
        )
    values = [t.params[path] for t in having]
    fig = go.Figure(
        go.Scatter(
            x=values if all(_is_number(v) for v in values) else [str(v) for v in values],
            y=[t.values[0] for t in having],
            mode="markers",
            marker=marker,
            text=[f"trial {t.number}" for t in having],
        )
    )
    fig.update_layout(
        title=f"{metric} by {path} (one point per trial, mean over seeds"
        + (f"; colour: {colour})" if colour else ")"),
        xaxis_title=path,
        yaxis_title=metric,
    )
    return fig


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def importance_target(
    directions: list[StudyDirection],
) -> Callable[[FrozenTrial], float] | None:
    """What the importance chart explains. One objective: None, and Optuna's evaluator
    follows the study's direction. Several: the first, negated when maximised, because an
    explicit target is explained for *low* values (the chart used to rank what lowers top-1)."""
    if len(directions) == 1:
        return None
    sign = -1.0 if directions[0].name == "MAXIMIZE" else 1.0
    return lambda trial: sign * trial.values[0]


def optuna_figures(store: Store, name: str) -> list[tuple[str, go.Figure]]:
    # Only searches get Optuna's figures; a grid study (or libkd rows without an Optuna
    # study) is known as such without loading Optuna.
    if study_kind(store.engine, name) != "search":
        return []
    import optuna

    study = load_optuna_study(name, reading_storage(store))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return []
    metric = (study_objectives(store.engine, name) or [(VAL_TOP1, "maximize")])[0][0]
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    figures = [
        (
            "optuna-history",
            optuna.visualization.plot_optimization_history(
                study, target=target, target_name=metric
            ),
        ),
        (
            "optuna-parallel",
            optuna.visualization.plot_parallel_coordinate(study, target=target, target_name=metric),
        ),
    ]
    paths = sorted({k for t in complete for k in t.params})
    figures += [(f"slice-{path}", slice_figure(path, complete, metric=metric)) for path in paths]
    with contextlib.suppress(RuntimeError, ValueError), warnings.catch_warnings():
        # Optuna warns that an explicit target is explained for low values: we negate it.
        warnings.filterwarnings("ignore", message=".*low `target` values.*")
        figures.append(
            (
                "optuna-importance",
                optuna.visualization.plot_param_importances(
                    study,
                    target=importance_target(study.directions),
                    target_name=f"{metric} ({study.directions[0].name.lower()}d)",
                ),
            )
        )
    if len(study.directions) > 1:
        figures.append(("optuna-pareto", optuna.visualization.plot_pareto_front(study)))
    return figures
