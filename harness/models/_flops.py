"""Parameters and forward FLOPs (torch's FlopCounterMode) of a model for one image."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module, images: torch.Tensor) -> int:
    """FLOPs of one forward pass per image (a multiply-add counts as two)."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images)
    model.train(was_training)
    return counter.get_total_flops() // len(images)


def train_step_flops(step: Callable[[], None]) -> int:
    """FLOPs of one training step (forward and backward) as run by `step()`."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()
