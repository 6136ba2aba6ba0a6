"""Load a study file, resolve it against the registries, expand its grid into points."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from harness.config import (
    TRIAL_FIELDS,
    SeedPlan,
    StudyFile,
    StudyKind,
    TeacherConfig,
    TrialConfig,
)
from harness.data import DATASETS, load_dataset
from harness.distill import checkpoint_problem
from harness.errors import LibKDError, StudyError
from harness.metrics import OBJECTIVE_METRICS, TEST_PREFIX, VAL_PREFIX
from harness.study._errors import describe
from harness.study._point import ConfigPoint, TrialSpec, config_hash
from harness.study._resolve import canonical, check_config, check_search
from harness.study._yaml import check_size, quote, read_override_yaml, read_study_yaml


@dataclass(frozen=True)
class StudyContrast:
    """A contrast resolved to two configurations of the study (treatment minus control)."""

    name: str
    treatment: ConfigPoint
    control: ConfigPoint
    margin: float | None = None  # equivalence margin, if declared
    targeted: bool = False  # whether the seed plan's precision target applies to it


@dataclass(frozen=True)
class Study:
    """A validated study file and its expanded configurations (one per distinct hash)."""

    file: StudyFile
    source: Path
    kind: StudyKind
    configs: tuple[ConfigPoint, ...]
    contrasts: tuple[StudyContrast, ...] = ()
    overrides: tuple[str, ...] = ()  # `--set path=value` applied to the file

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def seed_plan(self) -> SeedPlan | None:
        return self.file.seeds if isinstance(self.file.seeds, SeedPlan) else None

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds every configuration runs from the start (a seed plan's first `min`)."""
        plan = self.seed_plan
        return tuple(range(plan.min)) if plan else cast(tuple[int, ...], self.file.seeds)

    @property
    def max_seeds(self) -> int:
        plan = self.seed_plan
        return plan.max if plan else len(self.seeds)

    def trials(self) -> list[TrialSpec]:
        """Every (configuration, seed) of a grid study, seeds outermost: every configuration
        has its first seed before any has its second, so a study stopped early (`--timeout`,
        `--n-trials`) still compares every configuration."""
        return [point.with_seed(seed) for seed in self.seeds for point in self.configs]

    def teachers_to_train(self) -> list[tuple[str, TeacherConfig]]:
        """(name, instance) of every distinct teacher the study's first seeds train: one
        per name, or one per name and seed where the seed scope includes the teacher."""
        used: dict[tuple[str, str], TeacherConfig] = {}
        for point in self.configs:
            for seed in self.seeds:
                config = point.config.for_seed(seed)
                for name in config.distill.teachers:
                    teacher = config.teachers[name]
                    used.setdefault((name, teacher.model_dump_json()), teacher)
        return [(name, teacher) for (name, _), teacher in used.items()]

    @property
    def factor_values(self) -> dict[str, list[Any]]:
        """Every value each factor takes: the grid's, then the included configurations'."""
        return _factor_values(self.file)

    @property
    def factor_paths(self) -> tuple[str, ...]:
        """Every path the study varies (grid keys, included factors, search space)."""
        if self.file.search is not None:
            return tuple(self.file.search.space)
        return tuple(self.factor_values)

    def base(self) -> dict[str, Any]:
        """The study's base configuration as plain data (what grid and search points edit)."""
        return self.file.model_dump(mode="json", include=set(TRIAL_FIELDS))


def load_study(path: str | Path, *, overrides: Sequence[str] = ()) -> Study:
    """Read and validate a study file, with `path=value` overrides (`libkd run --set`)
    applied first; raises StudyError with a one-line message.

    Overrides that make configurations the file does not declare run as a study of their
    own, named `<name>-<8 hex digits of the overrides>` (unless they set `name`), so a
    study's results are always the file's and the same overrides resume the same study.
    """
    source = Path(path)
    if not source.is_file():
        raise StudyError(f"{source}: no such study file")
    data = read_study_yaml(source)
    if not isinstance(data, dict):
        raise StudyError(f"{source}: a study file is a mapping of keys; got {type(data).__name__}")
    if not overrides:
        return study_from_dict(data, source=source)
    changed = apply_overrides(data, overrides)
    study = replace(study_from_dict(changed, source=source), overrides=tuple(overrides))
    if "name" in {o.split("=", 1)[0].strip() for o in overrides}:
        return study
    declared = {point.config_hash for point in study_from_dict(data, source=source).configs}
    if {point.config_hash for point in study.configs} <= declared:
        return study
    changed["name"] = f"{study.name}-{override_digest(study)}"
    return replace(study_from_dict(changed, source=source), overrides=tuple(overrides))


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of a study file's data with each `path=value` set (the value read as YAML).
    `grid.<dotted>` and `search.space.<dotted>` name one grid or search entry."""
    changed = copy.deepcopy(data)
    for override in overrides:
        parts, value = parse_override(override)
        node = changed
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise StudyError(f"--set {override!r}: {part} holds a value, not keys")
            node = node[part]
        node[parts[-1]] = value
    check_size(changed, "the study file with its --set overrides")
    return changed


def parse_override(override: str) -> tuple[list[str], Any]:
    """The keys a `path=value` override sets, outermost first, and its value (YAML).
    `grid.<dotted>` and `search.space.<dotted>` name one grid or search entry."""
    path, sep, text = override.partition("=")
    path = path.strip()
    if not sep or not path:
        raise StudyError(f"--set {quote(override)}: write path=value, e.g. train.epochs=3")
    value = read_override_yaml(override, text)
    for section in ("grid.", "search.space."):
        if path.startswith(section) and len(path) > len(section):
            return [*section.rstrip(".").split("."), path[len(section) :]], value
    return path.split("."), value


def override_digest(study: Study) -> str:
    """8 hex digits naming what the overrides changed, read back from the validated file:
    `train.epochs=4`, `= 4` and `=4.0` set the same value and name the same study."""
    dumped = study.file.model_dump(mode="json")
    settled = []
    for override in study.overrides:
        parts, _ = parse_override(override)
        node: Any = dumped
        for part in parts:
            node = node.get(part) if isinstance(node, dict) else None
        settled.append([".".join(parts), node])
    text = json.dumps(sorted(settled, key=lambda item: item[0]), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def study_from_dict(data: dict[str, Any], *, source: Path = Path("<study>")) -> Study:
    try:
        file = StudyFile.model_validate(data)
    except ValidationError as exc:
        raise StudyError(f"{source}: {describe(exc, StudyFile)}") from None
    where = f"{source}: "
    base = file.model_dump(mode="json", include=set(TRIAL_FIELDS))
    check_config(TrialConfig.model_validate(base), where=where)
    _check_objectives(file, where)
    if file.grid and file.search is not None:
        raise StudyError(f"{where}grid and search: a study has one of them; remove the other")
    if file.include and file.search is not None:
        raise StudyError(
            f"{where}include: a search samples its configurations; drop include or the search"
        )
    kind = StudyKind.GRID
    if file.search is not None:
        kind = StudyKind.SEARCH
        check_search(file.search, where=where)
        for dotted in file.search.space:
            _check_path(base, dotted, where, section="search.space")
    grid = _grid_points(file, base, where)
    paths = tuple(_factor_values(file))
    points: dict[str, ConfigPoint] = {}
    for i, factors in enumerate(file.include):
        if not factors:
            raise StudyError(f"{where}include[{i}]: empty; give the factors (path: value)")
        for dotted in factors:
            _check_path(base, dotted, where, section=f"include[{i}]")
    named = [(f"grid point {quote(factors)}", factors) for factors in grid]
    named += [(f"include[{i}]", factors) for i, factors in enumerate(file.include)]
    for at, factors in named:
        point = _resolve(base, factors, where=f"{where}{at}: ", paths=paths)
        points.setdefault(point.config_hash, point)
    configs = tuple(points.values())
    contrasts = _contrasts(file, kind, base, points, where)
    return Study(file=file, source=source, kind=kind, configs=configs, contrasts=contrasts)


def _contrasts(
    file: StudyFile,
    kind: StudyKind,
    base: dict[str, Any],
    points: dict[str, ConfigPoint],
    where: str,
) -> tuple[StudyContrast, ...]:
    """The declared contrasts resolved to configurations of the grid, or by default each
    configuration against the plain ViT; checked against the seed plan's target."""
    plan = file.seeds if isinstance(file.seeds, SeedPlan) else None
    if kind is StudyKind.SEARCH and (plan or file.contrasts):
        field = "seeds" if plan else "contrasts"
        raise StudyError(
            f"{where}{field}: seed plans and contrasts compare grid configurations; a search "
            "evaluates every seed of each trial: give seeds as a list and drop contrasts"
        )
    if plan and plan.max < plan.min:
        raise StudyError(f"{where}seeds.max: {plan.max} is below seeds.min {plan.min}; raise it")
    margin = file.equivalence_margin
    contrasts: list[StudyContrast] = []
    for i, declared in enumerate(file.contrasts):
        at = f"contrasts[{i}]"
        if any(c.name == declared.name for c in contrasts):
            raise StudyError(f"{where}{at}.name: {quote(declared.name)} is used twice; rename one")
        treatment = _grid_config(base, declared.treatment, points, where, f"{at}.treatment")
        control = _grid_config(base, declared.control, points, where, f"{at}.control")
        if treatment.config_hash == control.config_hash:
            raise StudyError(
                f"{where}{at}: treatment and control are the same configuration "
                f"({treatment.label}); make them differ in a grid factor"
            )
        contrasts.append(
            StudyContrast(declared.name, treatment, control, declared.margin or margin)
        )
    if not file.contrasts:
        plain = [p for p in points.values() if not p.config.distill.teachers]
        if len(plain) == 1:
            contrasts = [
                StudyContrast(f"{p.label} vs {plain[0].label}", p, plain[0], margin)
                for p in points.values()
                if p is not plain[0]
            ]
    if plan is None:
        return tuple(contrasts)
    wanted = plan.target.contrasts or tuple(c.name for c in contrasts)
    unknown = [name for name in wanted if name not in {c.name for c in contrasts}]
    if unknown or not contrasts:
        known = ", ".join(c.name for c in contrasts) or "none"
        raise StudyError(
            f"{where}seeds.target.contrasts: no contrast {quote(unknown[0] if unknown else '')}"
            f" to aim at; contrasts: {known} (declare contrasts, or give the grid one plain "
            "ViT, distill.teachers: [], to compare every configuration against)"
        )
    return tuple(replace(c, targeted=c.name in wanted) for c in contrasts)


def _grid_config(
    base: dict[str, Any],
    factors: dict[str, Any],
    points: dict[str, ConfigPoint],
    where: str,
    field: str,
) -> ConfigPoint:
    """The configuration of the grid that `factors` (applied to the base) resolves to."""
    for dotted in factors:
        _check_path(base, dotted, where, section=field)
    point = _resolve(base, factors, where=f"{where}{field}: ")
    found = points.get(point.config_hash)
    if found is None:
        labels = "; ".join(p.label for p in points.values())
        raise StudyError(
            f"{where}{field}: {quote(factors)} is not a configuration of the grid; give the grid "
            f"factors of one of: {labels}"
        )
    return found


def resolve_point(study: Study, factors: dict[str, Any]) -> ConfigPoint:
    """The canonical configuration of the study's base with `factors` (dotted paths) applied."""
    where = f"{study.source}: point {quote(factors)}: "
    return _resolve(study.base(), factors, where=where, paths=study.factor_paths)


def _resolve(
    base: dict[str, Any], factors: dict[str, Any], *, where: str, paths: tuple[str, ...] = ()
) -> ConfigPoint:
    point = copy.deepcopy(base)
    for dotted, value in factors.items():
        _set_path(point, dotted, value)
    try:
        config = TrialConfig.model_validate(point)
    except ValidationError as exc:
        raise StudyError(where + describe(exc, TrialConfig)) from None
    check_config(config, where=where)
    config = canonical(config)
    return ConfigPoint(config, config_hash(config), _as_run(config, factors), paths)


def _as_run(config: TrialConfig, factors: dict[str, Any]) -> dict[str, Any]:
    """The factors that the canonical configuration still has as the grid set them. The
    rest cannot matter and would mislabel it: the plain ViT of a grid over token modes has
    no tokens, hard distillation no temperature."""
    dumped = config.model_dump(mode="json")
    kept = {}
    for dotted, value in factors.items():
        node: Any = dumped
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node == value or _sets_keys(node, value):
            kept[dotted] = value
    return kept


def _sets_keys(node: Any, value: Any) -> bool:
    """Whether a mapping factor (teacher weights) still holds each key it set: the canonical
    configuration spells out the keys it left at their defaults."""
    if not (isinstance(node, dict) and isinstance(value, dict)):
        return False
    return all(key in node and node[key] == item for key, item in value.items())


def _factor_values(file: StudyFile) -> dict[str, list[Any]]:
    values = {path: list(choices) for path, choices in file.grid.items()}
    for factors in file.include:
        for path, value in factors.items():
            known = values.setdefault(path, [])
            if value not in known:
                known.append(value)
    return values


def _grid_points(file: StudyFile, base: dict[str, Any], where: str) -> list[dict[str, Any]]:
    for dotted, values in file.grid.items():
        if not values:
            raise StudyError(f"{where}grid.{dotted}: an empty list; give at least one value")
        _check_path(base, dotted, where)
    paths = list(file.grid)
    return [dict(zip(paths, combo)) for combo in itertools.product(*file.grid.values())]


_FREE_MAPPINGS = {"teachers", "distill.temperature", "distill.weights"}


def _check_path(base: dict[str, Any], dotted: str, where: str, *, section: str = "grid") -> None:
    node: Any = base
    walked: list[str] = []
    for part in dotted.split("."):
        parent = ".".join(walked)
        if isinstance(node, dict) and (part in node or parent in _FREE_MAPPINGS):
            node = node.get(part)
            walked.append(part)
            continue
        known = ", ".join(node) if isinstance(node, dict) else "none (not a mapping)"
        raise StudyError(
            f"{where}{section}.{dotted}: no such parameter; keys under "
            f"'{parent or '(top level)'}': {known}"
        )


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = copy.deepcopy(value)


def _check_objectives(file: StudyFile, where: str) -> None:
    for i, objective in enumerate(file.objectives):
        if objective.metric.startswith(TEST_PREFIX):
            raise StudyError(
                f"{where}objectives[{i}].metric: {quote(objective.metric)} reads the test "
                "split, which selection never reads; use its validation twin "
                f"{quote(VAL_PREFIX + objective.metric.removeprefix(TEST_PREFIX))}"
            )
        if objective.metric not in OBJECTIVE_METRICS:
            raise StudyError(
                f"{where}objectives[{i}].metric: unknown metric {quote(objective.metric)}; "
                f"known: {', '.join(OBJECTIVE_METRICS)}"
            )


def check_runnable(study: Study) -> None:
    """What would stop the study running on this machine although its file is valid: the
    datasets' files (checked by `validate` and `run`; loading a study works anywhere, so a
    study can be planned and hashed where it will not run)."""
    datasets = {point.config.dataset for point in study.configs}
    for dataset in sorted(datasets, key=lambda d: d.name):
        missing = DATASETS.get(dataset.name).missing(dataset)
        if missing is not None:
            raise StudyError(f"{study.source}: dataset.name: {missing}")
    # Checkpoints must fit their architecture on the data they will see (its channels and
    # classes): found now, not when the first trial loads them.
    checked = set()
    for point in study.configs:
        for name in point.config.distill.teachers:
            teacher = point.config.teachers[name]
            key = (name, teacher, point.config.dataset)
            if teacher.checkpoint is None or key in checked:
                continue
            checked.add(key)
            try:
                problem = checkpoint_problem(name, teacher, load_dataset(point.config.dataset))
            except LibKDError as exc:
                problem = str(exc)
            if problem is not None:
                raise StudyError(f"{study.source}: {problem}")
