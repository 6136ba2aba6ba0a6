"""The ViT student: timm's VisionTransformer with a class token plus distillation tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from timm.layers.weight_init import trunc_normal_
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from harness._registry import Registry
from harness.config import DistillConfig, StudentConfig
from harness.errors import StudyError
from harness.models._image import ImageSpec
from harness.models._involution import Involution2d
from harness.models._tokens import TOKEN_MODES, patch_problem, token_names
from harness.models._widths import GROUP_CHANNELS


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


def conv_stem(image: ImageSpec, dim: int) -> nn.Module:
    """A convolution stem: two 3x3 convolutions, pooled to one token."""
    hidden = max(8, dim // 2)
    return nn.Sequential(
        nn.Conv2d(image.channels, hidden, 3, 1, 1, bias=False),
        nn.BatchNorm2d(hidden),
        nn.ReLU(),
        nn.Conv2d(hidden, dim, 3, 2, 1, bias=False),
        nn.BatchNorm2d(dim),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def involution_stem(image: ImageSpec, dim: int) -> nn.Module:
    """An involution stem: a 1x1 lift to one involution group, a 3x3 involution (kernels
    generated from the image itself), pooled to one token."""
    return nn.Sequential(
        nn.Conv2d(image.channels, GROUP_CHANNELS, 1, bias=False),
        Involution2d(GROUP_CHANNELS, kernel_size=3),
        nn.BatchNorm2d(GROUP_CHANNELS),
        nn.ReLU(),
        nn.Conv2d(GROUP_CHANNELS, dim, 1, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


STEMS: Registry[Callable[[ImageSpec, int], nn.Module]] = Registry("token stem")
STEMS.register("resnet")(conv_stem)
STEMS.register("rednet")(involution_stem)


def stem_for(arch: str) -> Callable[[ImageSpec, int], nn.Module]:
    """The stem of a teacher architecture's kind; timm models are convolutional here."""
    return STEMS.get(arch) if arch in STEMS else conv_stem


class DistilledViT(VisionTransformer):
    """Distillation tokens are timm's prefix ("register") tokens, each with its own head.
    With `stems` (token mode `stem`), each token is computed from the image by its teacher's
    stem instead of being a learned constant."""

    def __init__(
        self,
        *,
        config: StudentConfig,
        image: ImageSpec,
        tokens: tuple[str, ...],
        stems: dict[str, str] | None = None,
    ) -> None:
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
        self.stems = nn.ModuleDict(
            {name: stem_for(arch)(image, config.embed_dim) for name, arch in (stems or {}).items()}
        )
        if self.stems:
            del self.reg_token  # the stems make the tokens
            self.reg_token = None

    def forward_features(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        if not self.stems:
            return super().forward_features(x, attn_mask=attn_mask, is_causal=is_causal)
        # timm's feature pass with the stems' tokens between the class token and the patches
        # (the layout of the position embedding: class, distillation tokens, patches).
        assert self.cls_token is not None and self.pos_embed is not None  # class_token=True
        tokens = torch.stack([stem(x) for stem in self.stems.values()], dim=1)
        patches = self.patch_embed(x)
        patches = patches.view(patches.shape[0], -1, patches.shape[-1])
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        x = self.pos_drop(torch.cat([cls, tokens, patches], dim=1) + self.pos_embed)
        x = self.norm_pre(self.patch_drop(x))
        for block in self.blocks:
            x = block(x, attn_mask=attn_mask, is_causal=is_causal)
        return self.norm(x)

    def forward_heads(
        self,
        images: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> StudentOutput:
        tokens = self.forward_features(images, attn_mask=attn_mask, is_causal=is_causal)
        cls = self.head(tokens[:, 0])
        dist = {
            name: head(tokens[:, 1 + i]) for i, (name, head) in enumerate(self.dist_heads.items())
        }
        return StudentOutput(cls=cls, dist=dist)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """The prediction, with timm's signature (so the student is a VisionTransformer)."""
        return self.forward_heads(x, attn_mask=attn_mask, is_causal=is_causal).combined(
            self.inference
        )


TOKEN_STREAM = 104_729  # the distillation tokens' own random stream, apart from the body's


def build_student(
    student: StudentConfig,
    distill: DistillConfig,
    image: ImageSpec,
    *,
    seed: int | None = None,
    teacher_archs: dict[str, str] | None = None,
) -> DistilledViT:
    """The student. With `seed`, its body (patch embedding, class token, blocks, norm, class
    head, and the class and patch position embeddings) is initialised from the seed alone,
    the same for any number of distillation tokens; the tokens (or their stems, by
    `teacher_archs`: a teacher's architecture names its stem's kind), their positions and
    heads come from a stream of their own. So a plain, a 1-token and a 2-token student paired by
    seed start from the same network (timm's initialisation order depends on the token
    count, which shifted every block's weights)."""
    problem = patch_problem(student, image.size)
    if problem is not None:
        raise StudyError(problem)
    tokens = token_names(student, distill)
    stems = None
    if TOKEN_MODES.get(student.tokens).runs_as(len(distill.teachers)) == "stem":
        archs = teacher_archs or {}
        stems = {name: archs.get(name, "resnet") for name in tokens}
    if seed is None:
        return DistilledViT(config=student, image=image, tokens=tokens, stems=stems)
    torch.manual_seed(seed)
    model = body = DistilledViT(config=student, image=image, tokens=())
    if tokens:
        torch.manual_seed(seed + TOKEN_STREAM)
        model = DistilledViT(config=student, image=image, tokens=tokens, stems=stems)
        _adopt_body(model, body)
    torch.manual_seed(seed)  # what follows (drop path) starts alike for every token count
    return model


@torch.no_grad()
def _adopt_body(model: DistilledViT, body: DistilledViT) -> None:
    """Copy the token-independent parameters of `body` into `model`."""
    own = model.state_dict()
    for name, value in body.state_dict().items():
        if name == "pos_embed":
            # Layout [class, distillation tokens..., patches]: class and patches are shared.
            patches = body.patch_embed.num_patches
            own[name][:, :1] = value[:, :1]
            own[name][:, -patches:] = value[:, -patches:]
        elif own[name].shape == value.shape:
            own[name].copy_(value)
    model.load_state_dict(own)
