"""Replayable augmentation: the parameters of view v of sample i are a pure function of
(aug_seed, i, v), so a teacher's cached logits always match the pixels the student sees."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.config import AugmentConfig

_MASK = 0xFFFFFFFF
_MULT = 0x45D9F3B  # below 2**31, so products of 32-bit values stay inside int64


def _mix(x: torch.Tensor) -> torch.Tensor:
    x = x & _MASK
    x = (((x >> 16) ^ x) * _MULT) & _MASK
    x = (((x >> 16) ^ x) * _MULT) & _MASK
    return (x >> 16) ^ x


def counter_hash(*parts: torch.Tensor | int, salt: int) -> torch.Tensor:
    """A 32-bit counter-based hash of integer tensors; identical on every device."""
    tensors = [p for p in parts if isinstance(p, torch.Tensor)]
    device = tensors[0].device if tensors else None
    h = _mix(torch.as_tensor(salt + 0x9E3779B9, dtype=torch.int64, device=device))
    for part in parts:
        h = _mix(h ^ _mix(torch.as_tensor(part, dtype=torch.int64, device=device)))
    return h


@dataclass(frozen=True)
class ViewParams:
    """Per-sample crop offsets (0..2*pad) and horizontal flips."""

    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor


def view_params(policy: AugmentConfig, indices: torch.Tensor, views: torch.Tensor) -> ViewParams:
    span = 2 * policy.pad_crop + 1
    dy = counter_hash(policy.aug_seed, indices, views, salt=1) % span
    dx = counter_hash(policy.aug_seed, indices, views, salt=2) % span
    if policy.hflip:
        flip = (counter_hash(policy.aug_seed, indices, views, salt=3) & 1).bool()
    else:
        flip = torch.zeros_like(indices, dtype=torch.bool)
    return ViewParams(dy=dy, dx=dx, flip=flip)


def augment_views(images: torch.Tensor, params: ViewParams, *, pad: int) -> torch.Tensor:
    """Crop each zero-padded image at its own offset and flip it, batched on its device."""
    if pad == 0 and not bool(params.flip.any()):
        return images
    batch, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = params.dy[:, None] + torch.arange(height, device=images.device)
    cols = params.dx[:, None] + torch.arange(width, device=images.device)
    cols = torch.where(params.flip[:, None], cols.flip(-1), cols)
    b = torch.arange(batch, device=images.device)[:, None, None]
    # Advanced indexing puts the gathered axes first: [B, H, W, C].
    cropped = padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]
    return cropped.permute(0, 3, 1, 2).contiguous()


@dataclass(frozen=True)
class ViewSchedule:
    """Which of the V stored views sample i uses in epoch e; V == 0 means clean images."""

    policy: AugmentConfig
    views: int

    def views_for(self, epoch: int, indices: torch.Tensor) -> torch.Tensor:
        if self.views == 0:
            return torch.zeros_like(indices)
        return counter_hash(self.policy.aug_seed, epoch, indices, salt=4) % self.views

    def images(
        self, train_x: torch.Tensor, indices: torch.Tensor, views: torch.Tensor
    ) -> torch.Tensor:
        """The uint8 pixels of (sample, view) pairs, exactly as the teachers saw them."""
        batch = train_x[indices]
        if self.views == 0:
            return batch
        params = view_params(self.policy, indices, views)
        return augment_views(batch, params, pad=self.policy.pad_crop)
