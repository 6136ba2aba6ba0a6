"""Involution + RedNet, the teacher registry, and the ViT student with distillation tokens.

The registries and rules a study file is checked against (teacher architectures, token
modes, widths, patches) import without torch; the networks are imported on first use."""

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports
from harness.config import TIMM_PREFIX
from harness.models._image import ImageSpec
from harness.models._teachers import (
    TEACHERS,
    TeacherArch,
    build_teacher,
    teacher_arch,
    teacher_arch_known,
    timm_size_problem,
)
from harness.models._tokens import SHARED_TOKEN, TOKEN_MODES, TokenMode, patch_problem, token_names
from harness.models._widths import rednet_width_problem

if TYPE_CHECKING:
    from harness.models._flops import (
        FLOPS_METHOD,
        forward_flops,
        parameter_count,
        train_step_flops,
    )
    from harness.models._involution import Involution2d, RedNet
    from harness.models._student import DistilledViT, StudentOutput, build_student

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "FLOPS_METHOD": "_flops",
        "forward_flops": "_flops",
        "parameter_count": "_flops",
        "train_step_flops": "_flops",
        "Involution2d": "_involution",
        "RedNet": "_involution",
        "DistilledViT": "_student",
        "StudentOutput": "_student",
        "build_student": "_student",
    },
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
