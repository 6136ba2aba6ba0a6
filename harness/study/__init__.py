"""The resolve step: study files loaded, checked against the registries, made canonical,
expanded into configuration points and hashed."""

from harness.study._comparisons import (
    StudyContrast,
    StudyTrend,
    mixed_head_warnings,
)
from harness.study._point import ConfigPoint, TrialSpec, config_hash, factor_label
from harness.study._resolve import canonical, check_config, check_search
from harness.study._samplers import PRUNERS, SAMPLERS, SamplerInfo, suggest
from harness.study._study import (
    Study,
    check_runnable,
    load_study,
    resolve_point,
    study_from_dict,
)
from harness.study._yaml import quote

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "ConfigPoint",
    "SamplerInfo",
    "Study",
    "StudyContrast",
    "StudyTrend",
    "TrialSpec",
    "canonical",
    "check_runnable",
    "check_config",
    "check_search",
    "config_hash",
    "factor_label",
    "load_study",
    "mixed_head_warnings",
    "quote",
    "resolve_point",
    "study_from_dict",
    "suggest",
]
