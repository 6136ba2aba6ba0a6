"""Losses, the training loop, evaluation, and teacher training (the loss kinds import without
torch; everything else on first use)."""

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports
from harness.distill._loss_kinds import LOSSES, hard_kd, soft_kd, temperature_matters

if TYPE_CHECKING:
    from harness.distill._diagnostics import (
        agreement,
        attention_distance,
        uniform_attention_distance,
    )
    from harness.distill._loss import DistillationLoss
    from harness.distill._teacher_logits import CachedTeachers, OnlineTeachers, TeacherSource
    from harness.distill._teacher_training import (
        TrainedTeacher,
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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ("agreement", "attention_distance", "uniform_attention_distance"), "_diagnostics"
        ),
        "DistillationLoss": "_loss",
        **dict.fromkeys(("CachedTeachers", "OnlineTeachers", "TeacherSource"), "_teacher_logits"),
        **dict.fromkeys(
            ("TrainedTeacher", "checkpoint_problem", "read_checkpoint", "top1", "train_teacher"),
            "_teacher_training",
        ),
        **dict.fromkeys(
            (
                "EpochReport",
                "StudentResult",
                "StudentStep",
                "evaluate",
                "image_spec",
                "train_student",
            ),
            "_train",
        ),
    },
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
    "TrainedTeacher",
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
