"""Where a training step gets teacher logits: online from the models, or from the cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from harness._precision import autocast


class TeacherSource(Protocol):
    @property
    def names(self) -> tuple[str, ...]:
        """The teachers whose logits `logits` returns."""
        ...

    def logits(
        self, indices: torch.Tensor, views: torch.Tensor, images: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Teacher logits for samples `indices` seen as `views` (pixels: `images`)."""
        ...


@dataclass(frozen=True)
class OnlineTeachers:
    """Runs every teacher on the very pixels the student sees (the cost a cache removes)."""

    models: dict[str, nn.Module]
    precision: str = "fp32"  # resolved; the cache builds with the same, so the logits match

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.models)

    @torch.no_grad()
    def logits(
        self, indices: torch.Tensor, views: torch.Tensor, images: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        with autocast(self.precision, images.device):
            return {name: model(images).float() for name, model in self.models.items()}


@dataclass(frozen=True)
class CachedTeachers:
    """Reads precomputed logits [N, V, C] (already on the training device) by sample and view."""

    tables: dict[str, torch.Tensor]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.tables)

    def logits(
        self, indices: torch.Tensor, views: torch.Tensor, images: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return {name: table[indices, views].float() for name, table in self.tables.items()}
