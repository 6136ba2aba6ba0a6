"""Study files: schema, loading, grid expansion and hashing."""

from harness.study._load import (
    OBJECTIVE_METRICS,
    Study,
    TrialSpec,
    canonical,
    config_hash,
    factor_label,
    load_study,
    resolve_point,
    study_from_dict,
)
from harness.study._schema import (
    AugmentConfig,
    CacheConfig,
    DatasetConfig,
    DistillConfig,
    Objective,
    SearchConfig,
    StudentConfig,
    StudyFile,
    TeacherConfig,
    TrainRecipe,
    TrialConfig,
)

__all__ = [
    "OBJECTIVE_METRICS",
    "AugmentConfig",
    "CacheConfig",
    "DatasetConfig",
    "DistillConfig",
    "Objective",
    "SearchConfig",
    "StudentConfig",
    "Study",
    "StudyFile",
    "TeacherConfig",
    "TrainRecipe",
    "TrialConfig",
    "TrialSpec",
    "canonical",
    "config_hash",
    "factor_label",
    "load_study",
    "resolve_point",
    "study_from_dict",
]
