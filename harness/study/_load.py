"""Load a study file, check it against the registries, expand its grid into trial specs."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.errors import StudyError
from harness.study._errors import describe
from harness.study._schema import TRIAL_FIELDS, StudyFile, TrialConfig

OBJECTIVE_METRICS = (
    "val/top1",
    "val/top1_cls",
    "val/loss",
    "cost/train_seconds",
    "cost/total_seconds",
    "student/params",
)


def config_hash(config: TrialConfig) -> str:
    """sha256 of the canonical configuration; the seed and the cache directory are not in it.

    Fields at their default value are left out, so a field added to the schema later (with
    a default that keeps the old behaviour) does not change the hash of stored studies.
    """
    data = config.model_dump(mode="json", exclude_defaults=True)
    data.get("cache", {}).pop("dir", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class TrialSpec:
    """One (configuration, seed) to run: frozen, hashed without the seed."""

    config: TrialConfig
    seed: int
    config_hash: str
    factors: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        return factor_label(self.factors)


def factor_label(factors: dict[str, Any]) -> str:
    """'teachers=conv+inv, temperature.conv=4': the shortest unique tail of each path."""
    if not factors:
        return "base"
    paths = [path.split(".") for path in factors]
    names = [_unique_tail(path, [q for q in paths if q is not path]) for path in paths]
    return ", ".join(f"{name}={_short(value)}" for name, value in zip(names, factors.values()))


def _unique_tail(path: list[str], others: list[list[str]]) -> str:
    for keep in range(1, len(path) + 1):
        tail = path[-keep:]
        if all(other[-keep:] != tail for other in others):
            return ".".join(tail)
    return ".".join(path)


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "+".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass(frozen=True)
class Study:
    """A validated study file and its expanded configurations (one per distinct hash)."""

    file: StudyFile
    source: Path
    configs: tuple[TrialSpec, ...]  # seed-less points, seed set to -1

    @property
    def name(self) -> str:
        return self.file.name

    def trials(self) -> list[TrialSpec]:
        """Every (configuration, seed) of a grid study, seeds outermost: every configuration
        has its first seed before any has its second, so a study stopped early (`--timeout`,
        `--n-trials`) still compares every configuration."""
        return [
            TrialSpec(config=c.config, seed=s, config_hash=c.config_hash, factors=c.factors)
            for s in self.file.seeds
            for c in self.configs
        ]

    def teachers_to_train(self) -> dict[str, Any]:
        used: dict[str, Any] = {}
        for spec in self.configs:
            for name in spec.config.distill.teachers:
                used[name] = spec.config.teachers[name]
        return used


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; raises StudyError with a one-line message."""
    source = Path(path)
    if not source.is_file():
        raise StudyError(f"{source}: no such study file")
    try:
        data = yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise StudyError(f"{source}:{where}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise StudyError(f"{source}: a study file is a mapping of keys; got {type(data).__name__}")
    return study_from_dict(data, source=source)


def study_from_dict(data: dict[str, Any], *, source: Path = Path("<study>")) -> Study:
    try:
        study = StudyFile.model_validate(data)
    except ValidationError as exc:
        raise StudyError(f"{source}: {describe(exc, StudyFile)}") from None
    base = study.model_dump(mode="json", include=set(TRIAL_FIELDS))
    _check(TrialConfig.model_validate(base), where=f"{source}: ")
    _check_objectives(study, source)
    if study.grid and study.search is not None:
        raise StudyError(f"{source}: grid and search: a study has one of them; remove the other")
    if study.search is not None:
        for dotted, param in study.search.space.items():
            _check_path(base, dotted, source, section="search.space")
            low, high = getattr(param, "low", 0), getattr(param, "high", 1)
            if low > high or (getattr(param, "log", False) and low <= 0):
                raise StudyError(
                    f"{source}: search.space.{dotted}: low <= high (and low > 0 with log) must "
                    f"hold; got low={low}, high={high}"
                )
    configs: dict[str, TrialSpec] = {}
    for factors in _grid_points(study, source):
        spec = _resolve(base, factors, where=f"{source}: grid point {factors}: ")
        configs.setdefault(spec.config_hash, spec)
    return Study(file=study, source=source, configs=tuple(configs.values()))


def _resolve(base: dict[str, Any], factors: dict[str, Any], *, where: str) -> TrialSpec:
    point = copy.deepcopy(base)
    for dotted, value in factors.items():
        _set_path(point, dotted, value)
    try:
        config = TrialConfig.model_validate(point)
    except ValidationError as exc:
        raise StudyError(where + describe(exc, TrialConfig)) from None
    _check(config, where=where)
    config = canonical(config)
    return TrialSpec(config, -1, config_hash(config), _as_run(config, factors))


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


def resolve_point(study: Study, factors: dict[str, Any]) -> TrialSpec:
    """The canonical configuration of the study's base with `factors` (dotted paths) applied."""
    base = study.file.model_dump(mode="json", include=set(TRIAL_FIELDS))
    return _resolve(base, factors, where=f"{study.source}: point {factors}: ")


def _grid_points(study: StudyFile, source: Path) -> list[dict[str, Any]]:
    base = study.model_dump(mode="json", include=set(TRIAL_FIELDS))
    for dotted, values in study.grid.items():
        if not values:
            raise StudyError(f"{source}: grid.{dotted}: an empty list; give at least one value")
        _check_path(base, dotted, source)
    paths = list(study.grid)
    return [dict(zip(paths, combo)) for combo in itertools.product(*study.grid.values())]


_FREE_MAPPINGS = {"teachers", "distill.temperature", "distill.weights"}


def _check_path(base: dict[str, Any], dotted: str, source: Path, *, section: str = "grid") -> None:
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
            f"{source}: {section}.{dotted}: no such parameter; keys under "
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


def canonical(config: TrialConfig) -> TrialConfig:
    """Drop what cannot change the experiment, so equal experiments hash equal.

    Without teachers, the tokens, loss settings and cache cannot matter: a plain ViT.
    With teachers, only the teachers (and their temperatures and weights) in use remain;
    hard distillation has no temperature; one teacher's shared token is its own token;
    online distillation (cache off) has no storage format.
    """
    distill = config.distill
    used = distill.teachers
    if not used:
        return config.model_copy(
            update={
                "teachers": {},
                "student": config.student.model_copy(update={"tokens": "none"}),
                "distill": type(distill)(weights={"cls": distill.weight_of("cls")}),
                # The views stay: they define the augmentation the baseline trains on.
                "cache": type(config.cache)(views=config.cache.views, dir=config.cache.dir),
            }
        )
    temperature = distill.temperature
    if distill.loss == "hard":
        temperature = 1.0  # hard distillation takes the teacher's argmax: T cannot matter
    elif isinstance(temperature, dict):
        temperature = {name: temperature[name] for name in used}
    weights = {name: distill.weight_of(name) for name in ("cls", *used)}
    student = config.student
    if len(used) == 1 and student.tokens == "shared":
        # The ensemble of one teacher is that teacher: the same loss on the same one token.
        student = student.model_copy(update={"tokens": "per_teacher"})
    cache = config.cache
    if not cache.enabled:
        cache = type(cache)(enabled=False, views=cache.views, dir=cache.dir)
    return config.model_copy(
        update={
            "student": student,
            "cache": cache,
            "teachers": {name: config.teachers[name] for name in used},
            "distill": distill.model_copy(update={"temperature": temperature, "weights": weights}),
        }
    )


def _check(config: TrialConfig, *, where: str) -> None:
    """Checks that need the registries or span several fields."""
    from harness.data import DATASETS
    from harness.models import TEACHERS, rednet_width_problem, teacher_arch_known

    if config.dataset.name not in DATASETS:
        raise StudyError(
            f"{where}dataset.name: unknown dataset {config.dataset.name!r}; "
            f"known: {', '.join(DATASETS.names())}"
        )
    for name, teacher in config.teachers.items():
        if not teacher_arch_known(teacher.arch):
            raise StudyError(
                f"{where}teachers.{name}.arch: unknown teacher architecture {teacher.arch!r}; "
                f"known: {', '.join(TEACHERS.names())}, timm:<model name>"
            )
        problem = teacher.arch == "rednet" and rednet_width_problem(teacher.width)
        if problem:
            raise StudyError(
                f"{where}teachers.{name}.width: {problem}; use 8, 16 or a multiple of 32"
            )
    declared = ", ".join(config.teachers) or "(none declared)"
    distill = config.distill
    for name in distill.teachers:
        if name not in config.teachers:
            raise StudyError(
                f"{where}distill.teachers: unknown teacher {name!r}; declared teachers: {declared}"
            )
    if len(set(distill.teachers)) != len(distill.teachers):
        raise StudyError(f"{where}distill.teachers: {list(distill.teachers)} names a teacher twice")
    if isinstance(distill.temperature, dict):
        missing = [t for t in distill.teachers if t not in distill.temperature]
        if missing:
            raise StudyError(
                f"{where}distill.temperature: no temperature for {missing}; "
                "give one per teacher or a single number"
            )
    for name, value in _temperatures(distill.temperature):
        if value <= 0:
            raise StudyError(f"{where}distill.temperature{name}: must be > 0; got {value}")
    for term in distill.weights:
        if term != "cls" and term not in config.teachers:
            raise StudyError(
                f"{where}distill.weights.{term}: not a loss term; "
                f"use 'cls' or a teacher: {declared}"
            )
    if distill.teachers and config.student.tokens == "none":
        raise StudyError(
            f"{where}student.tokens: 'none' has no distillation token for teachers "
            f"{list(distill.teachers)}; use per_teacher or shared, or distill.teachers: []"
        )
    if config.student.tokens == "shared" and isinstance(distill.temperature, dict):
        values = {distill.temperature[t] for t in distill.teachers}
        if len(values) > 1:
            raise StudyError(
                f"{where}distill.temperature: the shared token averages teachers at one "
                f"temperature; got {distill.temperature}; give a single number"
            )
    student = config.student
    if student.embed_dim % student.num_heads:
        raise StudyError(
            f"{where}student.embed_dim: {student.embed_dim} is not divisible by "
            f"student.num_heads={student.num_heads}"
        )
    if (
        config.cache.enabled
        and config.cache.views > 0
        and config.augment.pad_crop == 0
        and (not config.augment.hflip)
    ):
        raise StudyError(
            f"{where}cache.views: {config.cache.views} views of an augmentation that changes "
            "nothing (pad_crop 0, no hflip); set cache.views: 0"
        )


def _temperatures(temperature: float | dict[str, float]) -> list[tuple[str, float]]:
    if isinstance(temperature, dict):
        return [(f".{name}", value) for name, value in temperature.items()]
    return [("", temperature)]


def _check_objectives(study: StudyFile, source: Path) -> None:
    for i, objective in enumerate(study.objectives):
        if objective.metric not in OBJECTIVE_METRICS:
            raise StudyError(
                f"{source}: objectives[{i}].metric: unknown metric {objective.metric!r}; "
                f"known: {', '.join(OBJECTIVE_METRICS)}"
            )
