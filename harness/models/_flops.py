"""Parameters and FLOPs of a model: torch's FlopCounterMode for torch's own operators, plus
the analytic count of custom ones it cannot see (the involution's multiply-adds run in an
autograd Function of unfolds and sums that FlopCounterMode counts as nothing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

FLOPS_METHOD = "FlopCounterMode + analytic custom ops"
"""Recorded with stored FLOPs: figures without it (before 2026-11-30) undercount RedNets."""


@runtime_checkable
class CustomFlops(Protocol):
    """A module whose forward runs operators FlopCounterMode does not count."""

    def custom_flops(self, inputs: tuple[Any, ...], output: torch.Tensor) -> int:
        """FLOPs (a multiply-add counts as two) of one forward call, whole batch."""
        ...


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextmanager
def _custom_counter(model: nn.Module) -> Iterator[list[int]]:
    """Sum `custom_flops` of every forward call of the model's custom modules."""
    found: list[int] = []

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        found.append(module.custom_flops(inputs, output))  # type: ignore[operator]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, CustomFlops)]
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


def forward_flops(model: nn.Module, images: torch.Tensor) -> int:
    """FLOPs of one forward pass per image (a multiply-add counts as two)."""
    was_training = model.training
    model.eval()
    with (
        torch.no_grad(),
        FlopCounterMode(display=False) as counter,
        _custom_counter(model) as custom,
    ):
        model(images)
    model.train(was_training)
    return (counter.get_total_flops() + sum(custom)) // len(images)


def train_step_flops(step: Callable[[], None]) -> int:
    """FLOPs of one training step (forward and backward) as run by `step()` (the student's:
    it has no custom operators)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()
