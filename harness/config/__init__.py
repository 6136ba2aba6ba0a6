"""The study-file schema: frozen pydantic models, the leaf of the configuration layers."""

from harness.config._hash import config_hash
from harness.config._schema import (
    TRIAL_FIELDS,
    AugmentConfig,
    CacheConfig,
    CategoricalParam,
    DatasetConfig,
    DistillConfig,
    FloatParam,
    IntParam,
    Objective,
    SearchConfig,
    StudentConfig,
    StudyFile,
    StudyKind,
    TeacherConfig,
    TrainRecipe,
    TrialConfig,
)

__all__ = [
    "TRIAL_FIELDS",
    "AugmentConfig",
    "CacheConfig",
    "CategoricalParam",
    "DatasetConfig",
    "DistillConfig",
    "FloatParam",
    "IntParam",
    "Objective",
    "SearchConfig",
    "StudentConfig",
    "StudyFile",
    "StudyKind",
    "TeacherConfig",
    "TrainRecipe",
    "TrialConfig",
    "config_hash",
]
