"""The teacher registry: `resnet`, `rednet`, and `timm:<name>` for any timm model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import timm
from timm.models.resnet import BasicBlock, ResNet
from torch import nn

from harness._registry import Registry
from harness.models._involution import RedNet
from harness.study import TeacherConfig


@dataclass(frozen=True)
class ImageSpec:
    """What a model must accept and predict."""

    channels: int
    size: int
    num_classes: int


TeacherFactory = Callable[[TeacherConfig, ImageSpec], nn.Module]
TEACHERS: Registry[TeacherFactory] = Registry("teacher architecture")
TIMM_PREFIX = "timm:"


@TEACHERS.register("resnet")
def _resnet(config: TeacherConfig, image: ImageSpec) -> nn.Module:
    width = config.width
    model = ResNet(
        block=BasicBlock,
        layers=(config.depth,) * 4,
        channels=(width, 2 * width, 4 * width, 8 * width),
        in_chans=image.channels,
        num_classes=image.num_classes,
    )
    # Small images: a 3x3 stride-1 stem and no max-pool instead of ImageNet's 7x7/2 + pool/2.
    model.conv1 = nn.Conv2d(image.channels, model.conv1.out_channels, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model


@TEACHERS.register("rednet")
def _rednet(config: TeacherConfig, image: ImageSpec) -> nn.Module:
    return RedNet(
        in_chans=image.channels,
        num_classes=image.num_classes,
        width=config.width,
        depth=config.depth,
    )


def teacher_arch_known(arch: str) -> bool:
    if arch.startswith(TIMM_PREFIX):
        return timm.is_model(arch.removeprefix(TIMM_PREFIX))
    return arch in TEACHERS


def build_teacher(config: TeacherConfig, image: ImageSpec) -> nn.Module:
    """A freshly initialised teacher network for images of the given shape."""
    if config.arch.startswith(TIMM_PREFIX):
        return timm.create_model(
            config.arch.removeprefix(TIMM_PREFIX),
            pretrained=False,
            num_classes=image.num_classes,
            in_chans=image.channels,
        )
    return TEACHERS.get(config.arch)(config, image)
