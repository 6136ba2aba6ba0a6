"""Optuna's study of a libkd study: opened under one recipe per name, and the grid's trials in
Optuna's terms (params, distributions, the configuration a queued trial runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial
from pydantic import ValidationError

from harness.config import StudyFile, TrialConfig
from harness.errors import StudyError, TrialError
from harness.store import (
    CODES_ATTR,
    CONFIG_ATTR,
    FACTORS_ATTR,
    HASH_ATTR,
    KIND_ATTR,
    LABEL_ATTR,
    LABELS_ATTR,
    SEED_ATTR,
    Store,
    widen_choices,
)
from harness.study import Study, TrialSpec, quote


def directions(study: Study) -> list[Literal["maximize", "minimize"]]:
    return [objective.direction for objective in study.file.objectives]


def open_study(
    study: Study,
    storage: RDBStorage,
    *,
    store: Store,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Optuna's study for `study` (created or resumed), its objectives named; the study
    file itself is recorded in libkd's table, where workers read it. A study name binds one
    recipe: another recipe under a name the database holds is refused before anything is
    written."""
    check_recipe(store, study)
    opened = optuna.create_study(
        study_name=study.name,
        storage=storage,
        directions=directions(study),
        load_if_exists=True,
        sampler=sampler or optuna.samplers.RandomSampler(seed=0),
        pruner=pruner or optuna.pruners.NopPruner(),
    )
    opened.set_user_attr(KIND_ATTR, study.kind.value)
    if study.kind.value == "grid":
        mark_labelled(opened)
    opened.set_metric_names([objective.metric for objective in study.file.objectives])
    store.save_study(
        study.name,
        kind=study.kind.value,
        file=study.file.model_dump(mode="json"),
        source=str(study.source),
        overrides=list(study.overrides),
    )
    return opened


# What may change under one study name: the description, and which configurations and seeds
# it runs (a grid grows, a seed list extends); everything else is the recipe they share.
_NOT_RECIPE = {"description", "grid", "include"}


def recipe(file: StudyFile) -> dict[str, Any]:
    dumped = file.model_dump(mode="json", exclude=_NOT_RECIPE)
    if isinstance(file.seeds, tuple):
        dumped.pop("seeds")  # a seed list may grow; a seed plan is part of the recipe
    return dumped


def first_difference(before: Any, after: Any, path: str = "") -> str | None:
    """The first dotted path where two JSON values differ, as `path: old -> new`."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            found = first_difference(
                before.get(key), after.get(key), f"{path}.{key}" if path else key
            )
            if found:
                return found
        return None
    if before != after:
        return f"{path or '(top level)'}: {quote(before)} -> {quote(after)}"
    return None


def check_recipe(store: Store, study: Study) -> None:
    """Refuse a recipe other than the one `study.name` was queued with in this database
    (an edited file, or `--set name=` of an existing study): its runs would be mixed with
    the first recipe's under the same labels, and its contrasts would replace the first's."""
    record = store.study_record(study.name)
    if record is None:
        return
    try:
        queued = StudyFile.model_validate(record.file)
    except ValidationError:
        return  # recorded by a libkd whose schema this one no longer reads: nothing to match
    changed = first_difference(recipe(queued), recipe(study.file))
    if changed:
        raise StudyError(
            f"study {study.name!r} in this database was queued from another recipe "
            f"({changed}); run the changed file under a new name (--set name={study.name}-2) "
            "or into another database (--storage)"
        )


def spec_attrs(spec: TrialSpec) -> dict[str, Any]:
    """What a queued grid trial carries besides its params: hash, seed, label, factors (the
    configuration itself is the study file's, in libkd's tables)."""
    return {
        HASH_ATTR: spec.config_hash,
        SEED_ATTR: spec.seed,
        LABEL_ATTR: spec.label,
        FACTORS_ATTR: spec.factors,
    }


def spec_for(trial: FrozenTrial | optuna.Trial, study: Study) -> TrialSpec:
    """The (configuration, seed) a queued grid trial runs: the study's configuration of its
    hash; a trial queued before configurations left the trial attributes carries its own."""
    attrs = trial.user_attrs
    points = {point.config_hash: point for point in study.configs}
    point = points.get(attrs[HASH_ATTR])
    if point is not None:
        return point.with_seed(attrs[SEED_ATTR])
    if CONFIG_ATTR in attrs:
        return TrialSpec(
            config=TrialConfig.model_validate(attrs[CONFIG_ATTR]),
            config_hash=attrs[HASH_ATTR],
            factors=attrs.get(FACTORS_ATTR, {}),
            paths=study.factor_paths,
            seed=attrs[SEED_ATTR],
        )
    raise TrialError(
        f"configuration {attrs[HASH_ATTR][:12]} is no longer in the study file; restore it "
        "or run the changed file under another name (--set name=...)"
    )


SEED_PARAM = "seed"


def _numbers(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def choice_label(value: Any) -> str:
    """How a categorical grid value is named in Optuna's tools: conv+inv, none, hard."""
    if isinstance(value, list | tuple):
        return "+".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{item}" for key, item in value.items()) + "}"
    return str(value)


def mark_labelled(opened: optuna.Study) -> None:
    """A new grid names its categorical factors by label in Optuna's tools; one queued by
    an older libkd keeps the integer codes its trials were recorded with."""
    if LABELS_ATTR not in opened.user_attrs and not opened.get_trials(deepcopy=False):
        opened.set_user_attr(LABELS_ATTR, True)


def labelled(opened: optuna.Study) -> bool:
    """Whether the grid names its categorical factors by label (Optuna's categorical
    distribution) and keeps the seed out of its params. Grids queued by an older libkd
    recorded integer codes and the seed as a param, and keep doing so."""
    return bool(opened.user_attrs.get(LABELS_ATTR))


def grid_distributions(
    study: Study, codes: dict[str, list[str]], *, labels: bool = False
) -> dict[str, optuna.distributions.BaseDistribution]:
    """The Optuna distribution of each grid factor, chosen so Optuna's tools read it right
    and it stays valid when the grid grows: numbers get a range over the grid's values
    (Optuna accepts a changed range), booleans their two values, anything else (teacher
    sets, names) a categorical distribution over `codes[path]`, the append-only list of
    labels kept on the study (`update_codes` widens the recorded ones when it grows). Older
    grids (`labels` false) code those as integers and also record the seed, which Optuna's
    importance then ranked as a hyperparameter."""
    found: dict[str, optuna.distributions.BaseDistribution] = {}
    for path, values in study.factor_values.items():
        if _numbers(values) and all(isinstance(v, int) for v in values):
            found[path] = optuna.distributions.IntDistribution(min(values), max(values))
        elif _numbers(values):
            found[path] = optuna.distributions.FloatDistribution(min(values), max(values))
        elif all(isinstance(v, bool) for v in values):
            found[path] = optuna.distributions.CategoricalDistribution((False, True))
        elif labels:
            found[path] = optuna.distributions.CategoricalDistribution(tuple(codes[path]))
        else:
            found[path] = optuna.distributions.IntDistribution(0, max(0, len(codes[path]) - 1))
    if not labels:
        found[SEED_PARAM] = optuna.distributions.IntDistribution(0, max(study.max_seeds - 1, 0))
    return found


def grid_params(
    spec: TrialSpec, codes: dict[str, list[str]], *, labels: bool = False
) -> dict[str, Any]:
    """What a trial is queued with: its seed and factors, categorical values as their label
    (or, in older grids, their code)."""
    params: dict[str, Any] = {SEED_PARAM: spec.seed}
    for path, value in spec.factors.items():
        if path in codes:
            label = choice_label(value)
            params[path] = label if labels else codes[path].index(label)
        else:
            params[path] = value
    return params


def update_codes(opened: optuna.Study, study: Study, store: Store) -> dict[str, list[str]]:
    """The study's categorical labels with every value of the current grid added (existing
    ones never move, so trials queued earlier keep their meaning); where a labelled grid
    grew, the params already recorded get the wider choice list."""
    codes: dict[str, list[str]] = {
        k: list(v) for k, v in opened.user_attrs.get(CODES_ATTR, {}).items()
    }
    grown: list[str] = []
    for path, values in study.factor_values.items():
        if _numbers(values) or all(isinstance(v, bool) for v in values):
            continue
        known = codes.setdefault(path, [])
        for label in map(choice_label, values):
            if label not in known:
                known.append(label)
                if path not in grown:
                    grown.append(path)
    if grown:
        opened.set_user_attr(CODES_ATTR, codes)
        if labelled(opened):
            for path in grown:
                widen_choices(store.engine, study.name, path, codes[path])
    return codes


def record_params(
    trial: optuna.Trial,
    spec: TrialSpec,
    study: Study,
    codes: Callable[[], dict[str, list[str]]],
    fixed: dict[str, Any],
    *,
    labels: bool,
    storage: RDBStorage,
    trial_id: int,
) -> None:
    """Record the trial's queued factors (and, in older grids, its seed) as Optuna params, so
    its tools plot and rank them; the values are the queued ones (`fixed`). A trial queued
    by an older libkd (no factor params) records only what it was queued with.

    Categorical labels are written to the storage itself, not through this process's
    cache of the choices first recorded: a grid grown while this worker runs has widened
    them. A list read just before another process widened it is read again once."""
    current = codes()
    for attempt in (0, 1):
        try:
            _record(trial, spec, study, current, fixed, labels, storage, trial_id)
            return
        except ValueError:
            if attempt or not labels:
                raise
            current = codes()


def _record(
    trial: optuna.Trial,
    spec: TrialSpec,
    study: Study,
    codes: dict[str, list[str]],
    fixed: dict[str, Any],
    labels: bool,
    storage: RDBStorage,
    trial_id: int,
) -> None:
    distributions = grid_distributions(study, codes, labels=labels)
    recorded = set(storage.get_trial(trial_id).params)
    for name, value in grid_params(spec, codes, labels=labels).items():
        distribution = distributions.get(name)
        if name not in fixed or name in recorded:
            continue
        if isinstance(distribution, optuna.distributions.FloatDistribution):
            trial.suggest_float(name, distribution.low, distribution.high)
        elif isinstance(distribution, optuna.distributions.IntDistribution):
            trial.suggest_int(name, distribution.low, max(distribution.high, int(value)))
        elif isinstance(distribution, optuna.distributions.CategoricalDistribution):
            if labels and not all(isinstance(c, bool) for c in distribution.choices):
                storage.set_trial_param(
                    trial_id, name, distribution.to_internal_repr(value), distribution
                )
            else:
                trial.suggest_categorical(name, distribution.choices)


# The system attribute where Optuna keeps the params a trial was enqueued with.
FIXED_PARAMS = "fixed_params"


def fixed_params(storage: RDBStorage, study_id: int, number: int) -> dict[str, Any]:
    """The params a waiting trial was queued with (Optuna keeps them as a system attribute,
    which its Trial object no longer exposes)."""
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    return dict(storage.get_trial_system_attrs(trial_id).get(FIXED_PARAMS, {}))


def queued_pairs(opened: optuna.Study) -> set[tuple[str, int]]:
    """Every (configuration hash, seed) queued in the study, in any state."""
    present = set()
    for trial in opened.get_trials(deepcopy=False):
        fixed = trial.system_attrs.get(FIXED_PARAMS, {})
        present.add((fixed.get("config"), fixed.get("seed")))
    return present
