"""A study's comparisons, resolved to its configurations before anything runs: contrasts
(treatment minus control, paired by seed) and trends (how such a delta changes along a
numeric factor), and which of them the seed plan aims at."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from harness.config import SeedPlan, StudyFile, StudyKind
from harness.errors import StudyError
from harness.models import token_names
from harness.study._grid import check_path, factor_values, resolve_factors
from harness.study._point import ConfigPoint
from harness.study._yaml import quote


@dataclass(frozen=True)
class StudyContrast:
    """A contrast resolved to two configurations of the study (treatment minus control)."""

    name: str
    treatment: ConfigPoint
    control: ConfigPoint
    margin: float | None = None  # equivalence margin, if declared
    targeted: bool = False  # whether the seed plan's precision target applies to it
    metric: str | None = None  # what it compares (None: the report's metric)


@dataclass(frozen=True)
class TrendLevel:
    """One level of a trend's factor: its value and the two configurations there."""

    value: float
    treatment: ConfigPoint
    control: ConfigPoint


@dataclass(frozen=True)
class StudyTrend:
    """A trend resolved to a contrast at every level of its factor, in increasing order."""

    name: str
    factor: str
    scale: str  # "linear" or "log": what the slope is against
    levels: tuple[TrendLevel, ...]
    metric: str | None = None
    targeted: bool = False


def resolve_contrasts(
    file: StudyFile,
    kind: StudyKind,
    base: dict[str, Any],
    points: dict[str, ConfigPoint],
    where: str,
) -> tuple[tuple[StudyContrast, ...], tuple[StudyTrend, ...]]:
    """The declared contrasts (by default each configuration against the plain ViT) and
    trends resolved to configurations of the grid; checked against the seed plan's target."""
    plan = file.seeds if isinstance(file.seeds, SeedPlan) else None
    if kind is StudyKind.SEARCH and (plan or file.contrasts or file.trends):
        field = "seeds" if plan else ("contrasts" if file.contrasts else "trends")
        raise StudyError(
            f"{where}{field}: seed plans, contrasts and trends compare grid configurations; a "
            "search evaluates every seed of each trial: give seeds as a list and drop them"
        )
    if plan and plan.max < plan.min:
        raise StudyError(f"{where}seeds.max: {plan.max} is below seeds.min {plan.min}; raise it")
    margin = file.equivalence_margin
    contrasts: list[StudyContrast] = []
    for i, declared in enumerate(file.contrasts):
        at = f"contrasts[{i}]"
        if any(c.name == declared.name for c in contrasts):
            raise StudyError(f"{where}{at}.name: {quote(declared.name)} is used twice; rename one")
        treatment = grid_config(base, declared.treatment, points, where, f"{at}.treatment")
        control = grid_config(base, declared.control, points, where, f"{at}.control")
        if treatment.config_hash == control.config_hash:
            raise StudyError(
                f"{where}{at}: treatment and control are the same configuration "
                f"({treatment.label}); make them differ in a grid factor"
            )
        contrasts.append(
            StudyContrast(
                declared.name,
                treatment,
                control,
                declared.margin or margin,
                metric=declared.metric,
            )
        )
    if not file.contrasts:
        plain = [p for p in points.values() if not p.config.distill.teachers]
        if len(plain) == 1:
            contrasts = [
                StudyContrast(f"{p.label} vs {plain[0].label}", p, plain[0], margin)
                for p in points.values()
                if p is not plain[0]
            ]
    trends = resolve_trends(file, base, points, where, taken={c.name for c in contrasts})
    if plan is None:
        return tuple(contrasts), trends
    names = [c.name for c in contrasts] + [t.name for t in trends]
    wanted = plan.target.contrasts or tuple(c.name for c in contrasts)
    unknown = [name for name in wanted if name not in names]
    if unknown or not names:
        raise StudyError(
            f"{where}seeds.target.contrasts: no contrast or trend "
            f"{quote(unknown[0] if unknown else '')} to aim at; declared: "
            f"{', '.join(names) or 'none'} (declare contrasts, or give the grid one plain "
            "ViT, distill.teachers: [], to compare every configuration against)"
        )
    return (
        tuple(replace(c, targeted=c.name in wanted) for c in contrasts),
        tuple(replace(t, targeted=t.name in wanted) for t in trends),
    )


def resolve_trends(
    file: StudyFile,
    base: dict[str, Any],
    points: dict[str, ConfigPoint],
    where: str,
    *,
    taken: set[str],
) -> tuple[StudyTrend, ...]:
    """Each declared trend as a contrast at every value its factor takes in the grid."""
    values = factor_values(file)
    trends: list[StudyTrend] = []
    for i, declared in enumerate(file.trends):
        at = f"trends[{i}]"
        if declared.name in taken or any(t.name == declared.name for t in trends):
            raise StudyError(
                f"{where}{at}.name: {quote(declared.name)} names another contrast or trend; "
                "rename one"
            )
        levels = values.get(declared.factor)
        if levels is None:
            raise StudyError(
                f"{where}{at}.factor: {quote(declared.factor)} is not a grid factor; give one of "
                f"{', '.join(values) or 'none (the study has no grid)'}"
            )
        check_path(base, declared.factor, where, section=f"{at}.factor")
        numbers = [v for v in levels if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) != len(levels) or len(numbers) < 2:
            raise StudyError(
                f"{where}{at}.factor: {declared.factor} takes {quote(levels)}; a trend needs at "
                "least two numeric values"
            )
        if declared.scale == "log" and min(numbers) <= 0:
            raise StudyError(
                f"{where}{at}.scale: log of {declared.factor} needs values > 0; got "
                f"{min(numbers)}; use scale: linear"
            )
        for side in ("treatment", "control"):
            if declared.factor in getattr(declared, side):
                raise StudyError(
                    f"{where}{at}.{side}: gives {declared.factor}, the trend's factor; drop it "
                    "(the trend compares the two sides at each of its values)"
                )
        resolved = []
        for value in sorted(numbers):
            level = f"{at} at {declared.factor}={value}"
            treatment = grid_config(
                base, {**declared.treatment, declared.factor: value}, points, where, level
            )
            control = grid_config(
                base, {**declared.control, declared.factor: value}, points, where, level
            )
            if treatment.config_hash == control.config_hash:
                raise StudyError(
                    f"{where}{level}: treatment and control are the same configuration "
                    f"({treatment.label}); make them differ in a grid factor"
                )
            resolved.append(TrendLevel(float(value), treatment, control))
        trends.append(
            StudyTrend(
                declared.name, declared.factor, declared.scale, tuple(resolved), declared.metric
            )
        )
    return tuple(trends)


def grid_config(
    base: dict[str, Any],
    factors: dict[str, Any],
    points: dict[str, ConfigPoint],
    where: str,
    field: str,
) -> ConfigPoint:
    """The configuration of the grid that `factors` (applied to the base) resolves to."""
    for dotted in factors:
        check_path(base, dotted, where, section=field)
    point = resolve_factors(base, factors, where=f"{where}{field}: ")
    found = points.get(point.config_hash)
    if found is None:
        labels = "; ".join(p.label for p in points.values())
        raise StudyError(
            f"{where}{field}: {quote(factors)} is not a configuration of the grid; give the grid "
            f"factors of one of: {labels}"
        )
    return found


def _heads(point: ConfigPoint) -> int:
    """How many heads the combined prediction averages (1: the class head alone)."""
    student = point.config.student
    if student.inference == "cls":
        return 1
    return 1 + len(token_names(student, point.config.distill))


def mixed_head_warnings(
    contrasts: tuple[StudyContrast, ...], trends: tuple[StudyTrend, ...]
) -> list[str]:
    """A line for each contrast or trend that compares, on the combined prediction, students
    averaging different numbers of heads: their difference mixes the teachers' effect with
    the averaging's (the class head, `top1_cls`, compares like with like)."""
    pairs = [(c.name, c.metric, c.treatment, c.control) for c in contrasts]
    pairs += [(t.name, t.metric, lv.treatment, lv.control) for t in trends for lv in t.levels]
    warned, lines = set(), []
    for name, metric, treatment, control in pairs:
        combined = metric is None or not metric.endswith("_cls")
        heads = (_heads(treatment), _heads(control))
        if combined and heads[0] != heads[1] and name not in warned:
            warned.add(name)
            lines.append(
                f"warning: {name} compares a {heads[0]}-head and a {heads[1]}-head student on "
                f"the combined prediction ({metric or 'test/top1'}); declare metric: "
                f"{(metric or 'test/top1').split('/')[0]}/top1_cls to compare the class heads"
            )
    return lines
