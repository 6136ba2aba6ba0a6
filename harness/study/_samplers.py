"""Registries of Optuna samplers and pruners named in study files, with the facts a search
space is checked against when the file loads (which parameter types a sampler can draw)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness._registry import Registry
from harness.config import SearchConfig
from harness.distill import temperature_matters

if TYPE_CHECKING:
    import optuna

ALL_PARAM_TYPES = frozenset({"float", "int", "categorical"})


@dataclass(frozen=True)
class SamplerInfo:
    make: Callable[[SearchConfig], optuna.samplers.BaseSampler]
    param_types: frozenset[str] = ALL_PARAM_TYPES


PrunerFactory = Callable[[SearchConfig, int], "optuna.pruners.BasePruner"]
SAMPLERS: Registry[SamplerInfo] = Registry("sampler")
PRUNERS: Registry[PrunerFactory] = Registry("pruner")


def _tpe(search: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=search.sampler_seed, n_startup_trials=4)


def _gp(search: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.GPSampler(seed=search.sampler_seed)


def _random(search: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=search.sampler_seed)


def _nsga2(search: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=search.sampler_seed, population_size=8)


def _grid(search: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    space: dict[str, list[Any]] = {}
    for path, param in search.space.items():
        if param.type == "categorical":
            space[path] = [encode_choice(c) for c in param.choices]
        elif param.type == "int":
            space[path] = list(range(param.low, param.high + 1))
    return optuna.samplers.GridSampler(space, seed=search.sampler_seed)


SAMPLERS.register("tpe")(SamplerInfo(_tpe))
SAMPLERS.register("gp")(SamplerInfo(_gp))
SAMPLERS.register("random")(SamplerInfo(_random))
SAMPLERS.register("nsga2")(SamplerInfo(_nsga2))
# A grid enumerates its values: a float range has none to enumerate.
SAMPLERS.register("grid")(SamplerInfo(_grid, param_types=frozenset({"int", "categorical"})))


@PRUNERS.register("median")
def _median(search: SearchConfig, epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 4))


@PRUNERS.register("hyperband")
def _hyperband(search: SearchConfig, epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)


@PRUNERS.register("none")
def _none(search: SearchConfig, epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.NopPruner()


def encode_choice(choice: Any) -> Any:
    """Optuna's categorical choices are scalars: lists (teacher combinations) go as JSON text."""
    return json.dumps(choice) if isinstance(choice, list | tuple | dict) else choice


def decode_choice(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


LOSS, TEACHERS, TEMPERATURE = "distill.loss", "distill.teachers", "distill.temperature"
TOKENS = "student.tokens"


def _irrelevant(path: str, point: dict[str, Any], base: dict[str, Any]) -> bool:
    """Whether `path` cannot change the trial given what is drawn already: temperatures
    where the loss ignores them (hard) or nothing is distilled (no teachers)."""
    if not path.startswith(TEMPERATURE):
        return False
    distill = base.get("distill", {})
    loss = point.get(LOSS, distill.get("loss", "soft"))
    teachers = point.get(TEACHERS, distill.get("teachers", []))
    tokens = point.get(TOKENS, base.get("student", {}).get("tokens", "per_teacher"))
    return not teachers or not temperature_matters(loss, tokens, len(teachers))


def suggest(
    trial: optuna.Trial, search: SearchConfig, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The trial's point in the search space, as dotted paths to values. The loss kind, the
    teachers and the token mode are drawn first; a temperature they make irrelevant is not
    drawn at all (a conditional search space), so the sampler never learns from values that
    did nothing and the dashboards never show them."""
    point: dict[str, Any] = {}
    first = [p for p in (LOSS, TEACHERS, TOKENS) if p in search.space]
    for path in [*first, *(p for p in search.space if p not in first)]:
        param = search.space[path]
        if _irrelevant(path, point, base or {}):
            continue
        if param.type == "float":
            point[path] = trial.suggest_float(path, param.low, param.high, log=param.log)
        elif param.type == "int":
            point[path] = trial.suggest_int(path, param.low, param.high, log=param.log)
        else:
            choices = [encode_choice(c) for c in param.choices]
            point[path] = decode_choice(trial.suggest_categorical(path, choices))
    return point
