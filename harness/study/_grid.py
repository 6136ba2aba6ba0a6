"""A study's grid: its factors and their values, the crossing and `include` entries
expanded into configuration points, each resolved from the base configuration."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from pydantic import ValidationError

from harness.config import StudyFile, TrialConfig
from harness.errors import StudyError
from harness.study._errors import describe
from harness.study._point import ConfigPoint, config_hash
from harness.study._resolve import canonical, check_config


def resolve_factors(
    base: dict[str, Any], factors: dict[str, Any], *, where: str, paths: tuple[str, ...] = ()
) -> ConfigPoint:
    point = copy.deepcopy(base)
    for dotted, value in factors.items():
        set_path(point, dotted, value)
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


def factor_values(file: StudyFile) -> dict[str, list[Any]]:
    values = {path: list(choices) for path, choices in file.grid.items()}
    for factors in file.include:
        for path, value in factors.items():
            known = values.setdefault(path, [])
            if value not in known:
                known.append(value)
    return values


def grid_points(file: StudyFile, base: dict[str, Any], where: str) -> list[dict[str, Any]]:
    for dotted, values in file.grid.items():
        if not values:
            raise StudyError(f"{where}grid.{dotted}: an empty list; give at least one value")
        check_path(base, dotted, where)
    paths = list(file.grid)
    return [dict(zip(paths, combo)) for combo in itertools.product(*file.grid.values())]


_FREE_MAPPINGS = {"teachers", "distill.temperature", "distill.weights"}


def check_path(base: dict[str, Any], dotted: str, where: str, *, section: str = "grid") -> None:
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


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = copy.deepcopy(value)
