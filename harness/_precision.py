"""Numeric precision (bf16 autocast on CUDA by default, fp32 on the CPU) and the batch a
teacher infers in on each kind of device."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' is bf16 on CUDA and fp32 elsewhere; 'fp32' and 'bf16' are taken as given."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Autocast to bfloat16 for 'bf16'; a no-op context for 'fp32'."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


TEACHER_BATCH_CPU = 32
"""A teacher's inference batch on the CPU (its logit cache, its top-1). The RedNet's
involutions make one pass over their activations per kernel offset (49 at K = 7): at 512
images those outgrow the core's caches, and a RedNet inferred about 3x slower per image
than at 32 (`benchmarks/teacher_inference.py`: 6.5 against 2.2 s per 1,000 images)."""
TEACHER_BATCH_ACCELERATOR = 512


def teacher_batch_size(device: torch.device) -> int:
    """How many images a teacher infers at once on `device` (see `TEACHER_BATCH_CPU`)."""
    return TEACHER_BATCH_CPU if device.type == "cpu" else TEACHER_BATCH_ACCELERATOR


def batch_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """(start, stop) of `size`-image batches over `n` images, the remainder joined to the last
    full batch: no batch is smaller than `size` (unless `n` is). On the CPU a batch under 16
    images takes other convolution kernels, which round differently; from 16 images up an
    image's logits were the same at every batch size tried (`tests/cache/test_cache.py`
    checks the ResNet and the RedNet at 32 against one big batch), so a teacher's cache
    does not depend on its batch."""
    starts = list(range(0, n, size))
    if len(starts) > 1 and n - starts[-1] < size:
        starts.pop()
    return list(zip(starts, [*starts[1:], n]))
