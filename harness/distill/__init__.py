"""Losses, the training loop, evaluation, and teacher training."""

from harness.distill._diagnostics import (
    agreement,
    attention_distance,
    uniform_attention_distance,
)
from harness.distill._loss import (
    LOSSES,
    DistillationLoss,
    LossKind,
    hard_kd,
    soft_kd,
    temperature_matters,
)
from harness.distill._sources import CachedTeachers, OnlineTeachers, TeacherSource
from harness.distill._teachers import (
    TeacherArtifact,
    checkpoint_problem,
    obtain_teacher,
    teacher_key,
    top1,
)
from harness.distill._train import (
    EpochReport,
    StudentResult,
    StudentStep,
    evaluate,
    image_spec,
    train_student,
)

__all__ = [
    "LOSSES",
    "CachedTeachers",
    "DistillationLoss",
    "EpochReport",
    "LossKind",
    "OnlineTeachers",
    "StudentResult",
    "StudentStep",
    "TeacherArtifact",
    "TeacherSource",
    "agreement",
    "attention_distance",
    "checkpoint_problem",
    "evaluate",
    "hard_kd",
    "image_spec",
    "obtain_teacher",
    "soft_kd",
    "teacher_key",
    "temperature_matters",
    "top1",
    "uniform_attention_distance",
    "train_student",
]
