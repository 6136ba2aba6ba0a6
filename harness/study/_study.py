"""Load a study file, resolve it against the registries, expand its grid into points."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from harness.config import (
    TRIAL_FIELDS,
    DatasetConfig,
    SeedPlan,
    StudyFile,
    StudyKind,
    TeacherConfig,
    TrialConfig,
)
from harness.data import DATASETS, load_dataset
from harness.errors import LibKDError, StudyError
from harness.metrics import OBJECTIVE_METRICS, TEST_PREFIX, VAL_PREFIX
from harness.study._comparisons import StudyContrast, StudyTrend, resolve_contrasts
from harness.study._errors import describe
from harness.study._grid import check_path, factor_values, grid_points, resolve_factors
from harness.study._point import ConfigPoint, TrialSpec
from harness.study._resolve import check_config, check_search
from harness.study._yaml import check_size, quote, read_override_yaml, read_study_yaml


@dataclass(frozen=True)
class Study:
    """A validated study file and its expanded configurations (one per distinct hash)."""

    file: StudyFile
    source: Path
    kind: StudyKind
    configs: tuple[ConfigPoint, ...]
    contrasts: tuple[StudyContrast, ...] = ()
    trends: tuple[StudyTrend, ...] = ()
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

    def teachers_to_train(self) -> list[tuple[str, TeacherConfig, DatasetConfig]]:
        """(name, instance, the data it trains on) of every distinct teacher the study's
        first seeds train: one per name, or one per name and seed where the seed scope
        includes the teacher, and one per training set where the grid or the seed scope
        varies it (a teacher learns from its configuration's training subset)."""
        used: dict[tuple[str, str, str], tuple[TeacherConfig, DatasetConfig]] = {}
        for point in self.configs:
            for seed in self.seeds:
                config = point.config.for_seed(seed)
                for name in config.distill.teachers:
                    teacher = config.teachers[name]
                    key = (name, teacher.model_dump_json(), config.dataset.model_dump_json())
                    used.setdefault(key, (teacher, config.dataset))
        return [(key[0], teacher, data) for key, (teacher, data) in used.items()]

    @property
    def factor_values(self) -> dict[str, list[Any]]:
        """Every value each factor takes: the grid's, then the included configurations'."""
        return factor_values(self.file)

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
            check_path(base, dotted, where, section="search.space")
    grid = grid_points(file, base, where)
    paths = tuple(factor_values(file))
    points: dict[str, ConfigPoint] = {}
    for i, factors in enumerate(file.include):
        if not factors:
            raise StudyError(f"{where}include[{i}]: empty; give the factors (path: value)")
        for dotted in factors:
            check_path(base, dotted, where, section=f"include[{i}]")
    named = [(f"grid point {quote(factors)}", factors) for factors in grid]
    named += [(f"include[{i}]", factors) for i, factors in enumerate(file.include)]
    for at, factors in named:
        point = resolve_factors(base, factors, where=f"{where}{at}: ", paths=paths)
        points.setdefault(point.config_hash, point)
    configs = tuple(points.values())
    contrasts, trends = resolve_contrasts(file, kind, base, points, where)
    return Study(
        file=file, source=source, kind=kind, configs=configs, contrasts=contrasts, trends=trends
    )


def resolve_point(study: Study, factors: dict[str, Any]) -> ConfigPoint:
    """The canonical configuration of the study's base with `factors` (dotted paths) applied."""
    where = f"{study.source}: point {quote(factors)}: "
    return resolve_factors(study.base(), factors, where=where, paths=study.factor_paths)


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
            from harness.distill import checkpoint_problem  # torch, only for a checkpoint

            try:
                problem = checkpoint_problem(name, teacher, load_dataset(point.config.dataset))
            except LibKDError as exc:
                problem = str(exc)
            if problem is not None:
                raise StudyError(f"{study.source}: {problem}")
