"""The resolve step: a validated schema object checked against the registries (datasets,
teacher architectures, token modes, losses, samplers) and made canonical.

Each registry entry carries its own facts (a loss kind whether it uses a temperature, a
token mode what it runs as, a teacher architecture its width rule, a dataset its image
side), so the rules below ask the entries instead of branching on names.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from harness.config import BORN_AGAIN, SearchConfig, TrialConfig, plain_student
from harness.data import DATASETS
from harness.distill import temperature_matters
from harness.errors import StudyError
from harness.models import (
    TEACHERS,
    TIMM_PREFIX,
    TOKEN_MODES,
    patch_problem,
    teacher_arch,
    teacher_arch_known,
    timm_size_problem,
)
from harness.study._samplers import PRUNERS, SAMPLERS
from harness.study._yaml import quote

# Teacher names become loss-term names, head names, metric names and file-name parts.
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def canonical(config: TrialConfig) -> TrialConfig:
    """Drop what cannot change the experiment, so equal experiments hash equal.

    Without teachers, the tokens, loss settings and cache cannot matter: a plain ViT.
    With teachers, only the teachers (and their temperatures and weights) in use remain;
    a loss kind that ignores the temperature has none; the token mode is the one it runs as
    (one teacher's shared token is its own token); online distillation (cache off) has no
    storage format.
    """
    distill = config.distill
    used = distill.teachers
    config = _born_again_fields(config)
    # What a seed varies is a set: one order; teachers' instances only where there are any.
    scope = sorted(set(config.seed_scope) - (set() if used else {"teacher"}))
    config = config.model_copy(update={"seed_scope": tuple(scope)})
    student = config.student.model_copy(
        update={"tokens": TOKEN_MODES.get(config.student.tokens).runs_as(len(used))}
    )
    if not used:
        return config.model_copy(
            update={
                "teachers": {},
                "student": student,
                "distill": type(distill)(weights={"cls": distill.weight_of("cls")}),
                # The views stay: they define the augmentation the baseline trains on.
                "cache": type(config.cache)(views=config.cache.views, dir=config.cache.dir),
            }
        )
    temperature = distill.temperature
    if not temperature_matters(distill.loss, student.tokens, len(used)):
        temperature = 1.0
    elif isinstance(temperature, dict):
        temperature = {name: temperature[name] for name in used}
    weights = {name: distill.weight_of(name) for name in ("cls", *used)}
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


def _born_again_fields(config: TrialConfig) -> TrialConfig:
    """A born-again teacher without student fields is the configuration's own student,
    as a plain ViT: a grid over the student's fields changes its teacher alike."""
    filled = {
        name: teacher.model_copy(update={"student": plain_student(config.student)})
        for name, teacher in config.teachers.items()
        if teacher.arch == BORN_AGAIN and teacher.student is None
    }
    if not filled:
        return config
    return config.model_copy(update={"teachers": {**config.teachers, **filled}})


def check_config(config: TrialConfig, *, where: str) -> None:
    """Everything a trial of this configuration would reject at run time, before it runs."""
    _check_dataset(config, where)
    _check_teachers(config, where)
    _check_distill(config, where)
    _check_student(config, where)
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


def _check_dataset(config: TrialConfig, where: str) -> None:
    name = config.dataset.name
    if name not in DATASETS:
        raise StudyError(
            f"{where}dataset.name: unknown dataset {quote(name)}; "
            f"known: {', '.join(DATASETS.names())}"
        )
    problem = DATASETS.get(name).problem(config.dataset)
    if problem is not None:
        raise StudyError(where + problem)


def _check_teachers(config: TrialConfig, where: str) -> None:
    for name, teacher in config.teachers.items():
        if not NAME_PATTERN.match(name):
            raise StudyError(
                f"{where}teachers: {quote(name)} is not a teacher name: a letter or '_' followed "
                "by letters, digits, '_' or '-' (it names loss terms, heads and files); rename it"
            )
        if not teacher_arch_known(teacher.arch):
            raise StudyError(
                f"{where}teachers.{name}.arch: unknown teacher architecture {quote(teacher.arch)}; "
                f"known: {', '.join(TEACHERS.names())}, timm:<model name>"
            )
        arch = teacher_arch(teacher.arch)
        problem = arch.width_problem(teacher.width)
        if problem:
            raise StudyError(f"{where}teachers.{name}.width: {problem}; {arch.width_hint}")
        if teacher.checkpoint is not None and not Path(teacher.checkpoint).is_file():
            raise StudyError(
                f"{where}teachers.{name}.checkpoint: {teacher.checkpoint} is not a file; "
                "give the path of a saved teacher or remove the key to train one"
            )
        if teacher.input_size is not None and not teacher.arch.startswith(TIMM_PREFIX):
            raise StudyError(
                f"{where}teachers.{name}.input_size: {teacher.input_size} resizes images for "
                f"timm: teachers only; {teacher.arch} is built for the study's images; remove it"
            )
        side = DATASETS.get(config.dataset.name).image_size(config.dataset)
        problem = timm_size_problem(teacher, side)
        if problem is not None:
            raise StudyError(f"{where}teachers.{name}.arch: {problem}")


def _check_distill(config: TrialConfig, where: str) -> None:
    declared = ", ".join(config.teachers) or "(none declared)"
    distill = config.distill
    for name in distill.teachers:
        if name not in config.teachers:
            raise StudyError(
                f"{where}distill.teachers: unknown teacher {quote(name)}; "
                f"declared teachers: {declared}"
            )
    if len(set(distill.teachers)) != len(distill.teachers):
        raise StudyError(
            f"{where}distill.teachers: {quote(list(distill.teachers))} names a teacher twice"
        )
    if isinstance(distill.temperature, dict):
        missing = [t for t in distill.teachers if t not in distill.temperature]
        if missing:
            raise StudyError(
                f"{where}distill.temperature: no temperature for {missing}; "
                "give one per teacher or a single number"
            )
    for suffix, value in _temperatures(distill.temperature):
        if not value > 0 or not math.isfinite(value):
            raise StudyError(
                f"{where}distill.temperature{suffix}: must be a finite number > 0; got {value}"
            )
    for term in distill.weights:
        if term != "cls" and term not in config.teachers:
            raise StudyError(
                f"{where}distill.weights.{term}: not a loss term; "
                f"use 'cls' or a teacher: {declared}"
            )
    mode = TOKEN_MODES.get(config.student.tokens)
    if distill.teachers and not mode.takes_teachers:
        raise StudyError(
            f"{where}student.tokens: {quote(config.student.tokens)} has no distillation token for "
            f"teachers {quote(list(distill.teachers))}; use per_teacher or shared, or "
            "distill.teachers: []"
        )
    if mode.tokens(distill.teachers) != tuple(distill.teachers) and isinstance(
        distill.temperature, dict
    ):
        # One token for several teachers: they are mixed at one temperature.
        values = {distill.temperature[t] for t in distill.teachers}
        if len(values) > 1:
            raise StudyError(
                f"{where}distill.temperature: the shared token averages teachers at one "
                f"temperature; got {quote(distill.temperature)}; give a single number"
            )


def _check_student(config: TrialConfig, where: str) -> None:
    student = config.student
    if student.embed_dim % student.num_heads:
        raise StudyError(
            f"{where}student.embed_dim: {student.embed_dim} is not divisible by "
            f"student.num_heads={student.num_heads}"
        )
    problem = patch_problem(student, DATASETS.get(config.dataset.name).image_size(config.dataset))
    if problem is not None:
        raise StudyError(where + problem)


def _temperatures(temperature: float | dict[str, float]) -> list[tuple[str, float]]:
    if isinstance(temperature, dict):
        return [(f".{name}", value) for name, value in temperature.items()]
    return [("", temperature)]


def check_search(search: SearchConfig, *, where: str) -> None:
    """The search space's bounds, and that its sampler can draw every parameter type."""
    sampler = SAMPLERS.get(search.sampler)
    PRUNERS.get(search.pruner)
    for dotted, param in search.space.items():
        if param.type not in sampler.param_types:
            allowed = " or ".join(sorted(sampler.param_types))
            raise StudyError(
                f"{where}search.space.{dotted}: the {search.sampler} sampler cannot draw a "
                f"{param.type} parameter; make it {allowed}, or pick another search.sampler"
            )
        if param.type == "categorical":
            continue
        if param.low > param.high or (param.log and param.low <= 0):
            raise StudyError(
                f"{where}search.space.{dotted}: low <= high (and low > 0 with log) must "
                f"hold; got low={param.low}, high={param.high}"
            )
