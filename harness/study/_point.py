"""Configuration points (seed-less) and trial specs (a point and a seed), with their hash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.config import TrialConfig, config_hash

__all__ = ["ConfigPoint", "TrialSpec", "config_hash", "factor_label"]


@dataclass(frozen=True)
class ConfigPoint:
    """One canonical configuration of a study, before a seed is chosen."""

    config: TrialConfig
    config_hash: str
    factors: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # Every path the study varies (grid keys, search space): labels name each factor by the
    # same tail in every configuration, whichever factors this one has.
    paths: tuple[str, ...] = field(default=(), hash=False, compare=False)

    @property
    def label(self) -> str:
        return factor_label(self.factors, paths=self.paths)

    def with_seed(self, seed: int) -> TrialSpec:
        return TrialSpec(self.config, self.config_hash, self.factors, self.paths, seed=seed)


@dataclass(frozen=True)
class TrialSpec(ConfigPoint):
    """One (configuration, seed) to run: frozen, hashed without the seed."""

    seed: int = field(kw_only=True)


def factor_label(factors: dict[str, Any], *, paths: tuple[str, ...] = ()) -> str:
    """'teachers=conv+inv, temperature.conv=4': the shortest tail of each path unique among
    `paths` (all the study varies; default the factors' own)."""
    if not factors:
        return "base"
    universe = [path.split(".") for path in dict.fromkeys([*paths, *factors])]
    names = []
    for path in factors:
        parts = path.split(".")
        names.append(_unique_tail(parts, [q for q in universe if q != parts]))
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
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{_short(item)}" for key, item in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
