"""Involution and RedNet, the teacher registry, and the ViT student with distillation tokens."""

from harness.models._flops import forward_flops, parameter_count, train_step_flops
from harness.models._involution import Involution2d, RedNet, rednet_width_problem
from harness.models._student import (
    SHARED_TOKEN,
    DistilledViT,
    StudentOutput,
    build_student,
    token_names,
)
from harness.models._teachers import (
    TEACHERS,
    ImageSpec,
    build_teacher,
    teacher_arch_known,
)

__all__ = [
    "SHARED_TOKEN",
    "TEACHERS",
    "DistilledViT",
    "ImageSpec",
    "Involution2d",
    "RedNet",
    "StudentOutput",
    "build_student",
    "build_teacher",
    "forward_flops",
    "parameter_count",
    "rednet_width_problem",
    "train_step_flops",
    "teacher_arch_known",
    "token_names",
]
