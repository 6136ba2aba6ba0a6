"""The teacher networks: a ResNet and a RedNet for small images, the born-again student,
and any timm model (registered by name in `_teachers`, imported when one is built)."""

from __future__ import annotations

from typing import Any, cast

import timm
import torch
from timm.models.resnet import BasicBlock, ResNet
from torch import nn
from torch.nn import functional as F

from harness.config import TIMM_PREFIX, DistillConfig, StudentConfig, TeacherConfig, plain_student
from harness.models._image import ImageSpec
from harness.models._involution import RedNet
from harness.models._student import build_student


def resnet(config: TeacherConfig, image: ImageSpec) -> nn.Module:
    width = config.width
    model = ResNet(
        block=cast(BasicBlock, BasicBlock),  # timm annotates the class as an instance
        layers=(config.depth,) * 4,
        channels=(width, 2 * width, 4 * width, 8 * width),
        in_chans=image.channels,
        num_classes=image.num_classes,
    )
    # Small images: a 3x3 stride-1 stem and no max-pool instead of ImageNet's 7x7/2 + pool/2.
    stem_channels = cast(nn.Conv2d, model.conv1).out_channels
    model.add_module("conv1", nn.Conv2d(image.channels, stem_channels, 3, 1, 1, bias=False))
    model.add_module("maxpool", nn.Identity())
    return model


def rednet(config: TeacherConfig, image: ImageSpec) -> nn.Module:
    return RedNet(
        in_chans=image.channels,
        num_classes=image.num_classes,
        width=config.width,
        depth=config.depth,
    )


def born_again(config: TeacherConfig, image: ImageSpec) -> nn.Module:
    """The student's ViT without distillation tokens (its `forward` is the class head): the
    configuration's student, which a study fills in, else the default student."""
    student = config.student or plain_student(StudentConfig())
    return build_student(student, DistillConfig(), image, seed=config.seed)


class Resized(nn.Module):
    """A network fed images resized (bilinear) to `size` x `size` first."""

    def __init__(self, model: nn.Module, size: int) -> None:
        super().__init__()
        self.model, self.size = model, size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        resized = F.interpolate(
            images, size=(self.size, self.size), mode="bilinear", align_corners=False
        )
        return self.model(resized)


def timm_model(config: TeacherConfig, image: ImageSpec) -> nn.Module:
    """A timm model for the study's images: built for `input_size` (ViTs take the side as
    `img_size`) and fed resized images when one is declared."""
    side = config.input_size or image.size
    name = config.arch.removeprefix(TIMM_PREFIX)

    kwargs: dict[str, Any] = {"num_classes": image.num_classes, "in_chans": image.channels}
    try:
        model = timm.create_model(name, pretrained=False, img_size=side, **kwargs)
    except TypeError:  # convolutional models take any side and no img_size
        model = timm.create_model(name, pretrained=False, **kwargs)
    return model if side == image.size else Resized(model, side)


def timm_problem(config: TeacherConfig, image_size: int) -> str | None:
    """Why a timm teacher cannot take the images it is fed (a patch or kernel larger than
    the side), or None. Tried, not computed from the model's stride: a convolution network
    whose total stride exceeds the side still sees the image through a padded 1x1 map (a
    stride-32 ResNet learns 8x8 digits), a ViT with 16-pixel patches on 8 pixels sees
    nothing."""
    if not config.arch.startswith(TIMM_PREFIX):
        return None
    side = config.input_size or image_size
    model: nn.Module | None = None
    try:
        model = timm_model(config, ImageSpec(channels=1, size=side, num_classes=2)).eval()
        with torch.no_grad():
            out = model(torch.zeros(2, 1, side, side))
        if out.shape == (2, 2) and bool(torch.isfinite(out).all()):
            return None
        reason = f"it gives {tuple(out.shape)} for 2 images of 2 classes"
    except (RuntimeError, ValueError, AssertionError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    inner = model.model if isinstance(model, Resized) else model
    info = getattr(inner, "feature_info", None) or []
    reduction = max((int(f.get("reduction", 1)) for f in info), default=side)
    del model
    return (
        f"{config.arch} cannot take {side}x{side} images ({reason}); set input_size to "
        f"{2 * reduction} or more (images are resized) or pick another model"
    )
