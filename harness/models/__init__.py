"""Involution + RedNet, the teacher registry, and the ViT student with distillation tokens."""

from harness.models._flops import (
    FLOPS_METHOD,
    forward_flops,
    parameter_count,
    train_step_flops,
)
from harness.models._image import ImageSpec
from harness.models._involution import Involution2d, RedNet, rednet_width_problem
from harness.models._student import (
    SHARED_TOKEN,
    TOKEN_MODES,
    DistilledViT,
    StudentOutput,
    TokenMode,
    build_student,
    patch_problem,
    token_names,
)
from harness.models._teachers import (
    TEACHERS,
    TIMM_PREFIX,
    TeacherArch,
    build_teacher,
    teacher_arch,
    teacher_arch_known,
    timm_size_problem,
)

__all__ = [
    "FLOPS_METHOD",
    "SHARED_TOKEN",
    "TEACHERS",
    "TIMM_PREFIX",
    "TOKEN_MODES",
    "DistilledViT",
    "ImageSpec",
    "Involution2d",
    "RedNet",
    "StudentOutput",
    "TeacherArch",
    "TokenMode",
    "build_student",
    "build_teacher",
    "forward_flops",
    "parameter_count",
    "patch_problem",
    "rednet_width_problem",
    "teacher_arch",
    "teacher_arch_known",
    "timm_size_problem",
    "token_names",
    "train_step_flops",
]
