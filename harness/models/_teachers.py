"""The teacher registry: `resnet`, `rednet`, the born-again student, and `timm:<name>` for
any timm model. Names and width rules are read without torch (a study file is checked
against them); the networks (`_teacher_nets`) are imported when one is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness._registry import Registry
from harness.config import BORN_AGAIN, TIMM_PREFIX, TeacherConfig
from harness.models._image import ImageSpec
from harness.models._widths import rednet_width_problem

if TYPE_CHECKING:
    from torch import nn

TeacherFactory = Callable[[TeacherConfig, ImageSpec], "nn.Module"]


def _any_width(width: int) -> str | None:
    return None


@dataclass(frozen=True)
class TeacherArch:
    """A registered teacher architecture: how to build it, and its width rule (why a width
    cannot be built, or None), checked when a study file loads."""

    build: TeacherFactory
    width_problem: Callable[[int], str | None] = _any_width
    width_hint: str = ""


TEACHERS: Registry[TeacherArch] = Registry("teacher architecture")


def _network(name: str) -> TeacherFactory:
    """The builder `name` of `_teacher_nets`, imported (with torch) when first called."""

    def build(config: TeacherConfig, image: ImageSpec) -> nn.Module:
        from harness.models import _teacher_nets

        factory: TeacherFactory = getattr(_teacher_nets, name)
        return factory(config, image)

    return build


def timm_size_problem(config: TeacherConfig, image_size: int) -> str | None:
    """Why a timm teacher cannot take the images it is fed, or None (tried on a model, so
    torch is imported only for a timm teacher)."""
    if not config.arch.startswith(TIMM_PREFIX):
        return None
    from harness.models._teacher_nets import timm_problem

    return timm_problem(config, image_size)


TEACHERS.register("resnet")(TeacherArch(build=_network("resnet")))
TEACHERS.register("rednet")(
    TeacherArch(
        build=_network("rednet"),
        width_problem=rednet_width_problem,
        width_hint="use 8, 16 or a multiple of 32",
    )
)
TEACHERS.register(BORN_AGAIN)(TeacherArch(build=_network("born_again")))
_TIMM = TeacherArch(build=_network("timm_model"))


def teacher_arch(arch: str) -> TeacherArch:
    """The registered architecture `arch` names; `timm:<model>` for any model timm knows."""
    if arch.startswith(TIMM_PREFIX):
        return _TIMM
    return TEACHERS.get(arch)


def teacher_arch_known(arch: str) -> bool:
    if arch.startswith(TIMM_PREFIX):
        import timm

        return bool(timm.is_model(arch.removeprefix(TIMM_PREFIX)))
    return arch in TEACHERS


def build_teacher(config: TeacherConfig, image: ImageSpec) -> nn.Module:
    """A freshly initialised teacher network for images of the given shape."""
    return teacher_arch(config.arch).build(config, image)
