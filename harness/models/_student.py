"""The ViT student: timm's VisionTransformer with a class token plus distillation tokens."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from harness.models._teachers import ImageSpec
from harness.study import DistillConfig, StudentConfig

SHARED_TOKEN = "shared"


@dataclass(frozen=True)
class StudentOutput:
    """Logits of the class head and of each distillation head, by token name."""

    cls: torch.Tensor
    dist: dict[str, torch.Tensor]

    def combined(self, inference: str) -> torch.Tensor:
        """The prediction: mean of every head's logits (DeiT, CivT) or the class head alone."""
        if inference == "cls" or not self.dist:
            return self.cls
        return torch.stack([self.cls, *self.dist.values()]).mean(dim=0)


def token_names(student: StudentConfig, distill: DistillConfig) -> tuple[str, ...]:
    """`per_teacher`: one token per teacher; `shared`: one token for the ensemble; `none`: none."""
    if student.tokens == "none" or not distill.teachers:
        return ()
    if student.tokens == "shared":
        return (SHARED_TOKEN,)
    return tuple(distill.teachers)


class DistilledViT(VisionTransformer):
    """Distillation tokens are timm's prefix ("register") tokens, each with its own head."""

    def __init__(self, *, config: StudentConfig, image: ImageSpec, tokens: tuple[str, ...]) -> None:
        super().__init__(
            img_size=image.size,
            patch_size=config.patch_size,
            in_chans=image.channels,
            num_classes=image.num_classes,
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            drop_path_rate=config.drop_path,
            class_token=True,
            reg_tokens=len(tokens),
            global_pool="token",
        )
        self.inference = config.inference
        self.dist_heads = nn.ModuleDict(
            {name: nn.Linear(config.embed_dim, image.num_classes) for name in tokens}
        )
        if self.reg_token is not None:
            trunc_normal_(self.reg_token, std=0.02)  # as DeiT's distillation token

    def forward_heads(self, images: torch.Tensor) -> StudentOutput:
        tokens = self.forward_features(images)
        cls = self.head(tokens[:, 0])
        dist = {
            name: head(tokens[:, 1 + i]) for i, (name, head) in enumerate(self.dist_heads.items())
        }
        return StudentOutput(cls=cls, dist=dist)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_heads(images).combined(self.inference)


def build_student(student: StudentConfig, distill: DistillConfig, image: ImageSpec) -> DistilledViT:
    if image.size % student.patch_size:
        from harness.errors import StudyError

        raise StudyError(
            f"student.patch_size: {student.patch_size} does not divide the image size "
            f"{image.size}; pick a divisor"
        )
    return DistilledViT(config=student, image=image, tokens=token_names(student, distill))
