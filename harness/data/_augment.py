"""Replayable augmentation: the parameters of view v of sample i are a pure function of
(aug_seed, i, v), so a teacher's cached logits always match the pixels the student sees.

Views are drawn without replacement: sample i's views walk its own affine permutation of
the crop offsets x flips, so its first S views (S = the number of distinct crops and flips)
are all different. The schedule cycles: in every block of V epochs, a sample uses each of its
V stored views once, in an order of its own for each block.
"""

from __future__ import annotations

import math
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


AUGMENT_VERSION = 2
"""Version of the view and schedule rules: in the cache and teacher keys. 1: views and
epochs drawn with replacement. 2: views without replacement, cycling schedule."""


def view_space(policy: AugmentConfig) -> int:
    """How many distinct views the policy allows: crop offsets x flips."""
    return policy.distinct_views


def _coprime_step(space: int) -> int:
    """A step near the golden ratio of the space, coprime with it: an affine walk
    (start + v * step) mod space then visits every element once per `space` steps."""
    step = max(1, round(space * 0.618))
    while math.gcd(step, space) != 1:
        step += 1
    return step


def view_params(policy: AugmentConfig, indices: torch.Tensor, views: torch.Tensor) -> ViewParams:
    span = 2 * policy.pad_crop + 1
    space = view_space(policy)
    start = counter_hash(policy.aug_seed, indices, salt=1) % space
    combo = (start + views * _coprime_step(space)) % space
    flip = (combo // (span * span)).bool() if policy.hflip else torch.zeros_like(combo).bool()
    crop = combo % (span * span)
    return ViewParams(dy=crop // span, dx=crop % span, flip=flip)


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
        """Epoch e uses position e mod V of sample i's permutation of its V views for the
        block e // V (a permutation drawn by sorting hashed keys)."""
        if self.views == 0:
            return torch.zeros_like(indices)
        block, position = divmod(epoch, self.views)
        candidates = torch.arange(self.views, device=indices.device)
        keys = counter_hash(
            self.policy.aug_seed, block, indices[:, None], candidates[None, :], salt=4
        )
        return keys.argsort(dim=1, stable=True)[:, position]

    def images(
        self, train_x: torch.Tensor, indices: torch.Tensor, views: torch.Tensor
    ) -> torch.Tensor:
        """The uint8 pixels of (sample, view) pairs, exactly as the teachers saw them."""
        batch = train_x[indices]
        if self.views == 0:
            return batch
        params = view_params(self.policy, indices, views)
        return augment_views(batch, params, pad=self.policy.pad_crop)
