"""Losses, the training loop, evaluation, and teacher training."""

from harness.distill._diagnostics import (
    agreement,
    attention_distance,
    uniform_attention_distance,
)
from harness.distill._loss import (
    LOSSES,
    DistillationLoss,
    hard_kd,
    soft_kd,
    temperature_matters,
)
from harness.distill._teacher_logits import CachedTeachers, OnlineTeachers, TeacherSource
from harness.distill._teacher_training import (
    checkpoint_problem,
    read_checkpoint,
    top1,
    train_teacher,
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
    "OnlineTeachers",
    "StudentResult",
    "StudentStep",
    "TeacherSource",
    "agreement",
    "attention_distance",
    "checkpoint_problem",
    "evaluate",
    "hard_kd",
    "image_spec",
    "read_checkpoint",
    "soft_kd",
    "temperature_matters",
    "top1",
    "uniform_attention_distance",
    "train_student",
    "train_teacher",
]
