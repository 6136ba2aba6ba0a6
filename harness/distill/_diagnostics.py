"""Diagnostics of a trained student: how often each head agrees with each teacher and with
the labels, and how far each layer attends (mean attention distance, in pixels)."""

from __future__ import annotations

from typing import cast

import torch
from timm.layers.attention import Attention
from timm.models.vision_transformer import Block
from torch import nn

from harness._precision import autocast
from harness.data import Dataset
from harness.models import DistilledViT


@torch.no_grad()
def agreement(
    model: DistilledViT,
    data: Dataset,
    teachers: dict[str, nn.Module],
    *,
    precision: str = "fp32",
    batch_size: int = 512,
) -> dict[str, float]:
    """Top-1 match rate on validation of every head (and the combination) with every teacher
    and with the labels: `diag/agree/<head>/<teacher or labels>`."""
    model.eval()
    hits: dict[str, torch.Tensor] = {}
    for start in range(0, len(data.val_y), batch_size):
        images = data.normalize(data.val_x[start : start + batch_size])
        references = {"labels": data.val_y[start : start + batch_size]}
        with autocast(precision, images.device):
            out = model.forward_heads(images)
            for name, teacher in teachers.items():
                references[name] = teacher(images).argmax(-1)
        heads = {"combined": out.combined(model.inference), "cls": out.cls, **out.dist}
        for head, logits in heads.items():
            prediction = logits.argmax(-1)
            for ref, target in references.items():
                key = f"diag/agree/{head}/{ref}"
                hits[key] = hits.get(key, 0) + (prediction == target).sum()
    return {key: float(value) / len(data.val_y) for key, value in hits.items()}


@torch.no_grad()
def attention_distance(model: DistilledViT, images: torch.Tensor) -> list[float]:
    """Per layer, the mean over heads, queries and images of the attention-weighted distance
    (in input pixels) between a patch and the patches it attends to (Dosovitskiy et al.).
    Prefix tokens (class, distillation) are left out and patch attention renormalised."""
    model.eval()
    captured: list[torch.Tensor] = []
    hooks, fused = [], []
    attentions = [cast(Attention, cast(Block, block).attn) for block in model.blocks]
    for attn in attentions:
        fused.append(attn.fused_attn)
        # The explicit path exposes the attention matrix. timm marks the flag Final (for
        # TorchScript); it is flipped for this one forward pass and restored below.
        setattr(attn, "fused_attn", False)  # noqa: B010
        hooks.append(
            attn.attn_drop.register_forward_hook(
                lambda _m, args, _out: captured.append(args[0].float())
            )
        )
    try:
        model.forward_features(images)
    finally:
        for hook in hooks:
            hook.remove()
        for attn, was_fused in zip(attentions, fused):
            setattr(attn, "fused_attn", was_fused)  # noqa: B010
    distance = _patch_distances(model).to(images.device)
    prefix = model.num_prefix_tokens
    layers = []
    for matrix in captured:
        patches = matrix[:, :, prefix:, prefix:]
        patches = patches / patches.sum(-1, keepdim=True).clamp_min(1e-12)
        layers.append(float((patches * distance).sum(-1).mean()))
    return layers


def _patch_distances(model: DistilledViT) -> torch.Tensor:
    """[P, P] distances in input pixels between the centres of the student's patches."""
    rows, cols = model.patch_embed.grid_size
    patch = model.patch_embed.patch_size[0]
    ys, xs = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()], dim=-1).float() * patch
    return torch.cdist(coords, coords)


def uniform_attention_distance(model: DistilledViT) -> float:
    """The attention distance a head attending equally to every patch would have: the
    reference a learned head's distance is read against (it depends on the patch grid only)."""
    return float(_patch_distances(model).mean())
