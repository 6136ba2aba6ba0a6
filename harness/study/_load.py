"""Load a study file, resolve it against the registries, expand its grid into points."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config import TRIAL_FIELDS, StudyFile, StudyKind, TeacherConfig, TrialConfig
from harness.data import DATASETS
from harness.errors import StudyError
from harness.metrics import OBJECTIVE_METRICS
from harness.study._errors import describe
from harness.study._point import ConfigPoint, TrialSpec, config_hash
from harness.study._resolve import canonical, check_config, check_search
from harness.study._yaml import quote, read_study_yaml


@dataclass(frozen=True)
class Study:
    """A validated study file and its expanded configurations (one per distinct hash)."""

    file: StudyFile
    source: Path
    kind: StudyKind
    configs: tuple[ConfigPoint, ...]

    @property
    def name(self) -> str:
        return self.file.name

    def trials(self) -> list[TrialSpec]:
        """Every (configuration, seed) of a grid study, seeds outermost: every configuration
        has its first seed before any has its second, so a study stopped early (`--timeout`,
        `--n-trials`) still compares every configuration."""
        return [point.with_seed(seed) for seed in self.file.seeds for point in self.configs]

    def teachers_to_train(self) -> dict[str, TeacherConfig]:
        used: dict[str, TeacherConfig] = {}
        for point in self.configs:
            for name in point.config.distill.teachers:
                used[name] = point.config.teachers[name]
        return used

    def base(self) -> dict[str, Any]:
        """The study's base configuration as plain data (what grid and search points edit)."""
        return self.file.model_dump(mode="json", include=set(TRIAL_FIELDS))


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; raises StudyError with a one-line message."""
    source = Path(path)
    if not source.is_file():
        raise StudyError(f"{source}: no such study file")
    data = read_study_yaml(source)
    if not isinstance(data, dict):
        raise StudyError(f"{source}: a study file is a mapping of keys; got {type(data).__name__}")
    return study_from_dict(data, source=source)


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
    kind = StudyKind.GRID
    if file.search is not None:
        kind = StudyKind.SEARCH
        check_search(file.search, where=where)
        for dotted in file.search.space:
            _check_path(base, dotted, where, section="search.space")
    points: dict[str, ConfigPoint] = {}
    for factors in _grid_points(file, base, where):
        point = _resolve(base, factors, where=f"{where}grid point {quote(factors)}: ")
        points.setdefault(point.config_hash, point)
    return Study(file=file, source=source, kind=kind, configs=tuple(points.values()))


def resolve_point(study: Study, factors: dict[str, Any]) -> ConfigPoint:
    """The canonical configuration of the study's base with `factors` (dotted paths) applied."""
    return _resolve(study.base(), factors, where=f"{study.source}: point {quote(factors)}: ")


def _resolve(base: dict[str, Any], factors: dict[str, Any], *, where: str) -> ConfigPoint:
    point = copy.deepcopy(base)
    for dotted, value in factors.items():
        _set_path(point, dotted, value)
    try:
        config = TrialConfig.model_validate(point)
    except ValidationError as exc:
        raise StudyError(where + describe(exc, TrialConfig)) from None
    check_config(config, where=where)
    config = canonical(config)
    return ConfigPoint(config, config_hash(config), _as_run(config, factors))


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
        if node == value:
            kept[dotted] = value
    return kept


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
