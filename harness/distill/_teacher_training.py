"""Teachers trained by the harness (plain supervised training with the replayable
augmentation), their top-1, and local checkpoints read and checked against their
architecture. Where trained teachers are kept is the cache's teacher store."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from harness._precision import autocast, batch_bounds, resolve_precision, teacher_batch_size
from harness.config import AugmentConfig, TeacherConfig
from harness.data import Dataset, ViewSchedule
from harness.distill._optim import batches, make_optimizer
from harness.distill._resume import Resumable
from harness.distill._train import image_spec
from harness.errors import LibKDError
from harness.models import build_teacher

# Teachers see a fresh view every epoch (the view index is the epoch), so the schedule's
# stored-view count only has to be non-zero: augmented pixels, not clean images.
TEACHER_VIEWS = 1 << 30


@torch.no_grad()
def top1(
    model: nn.Module, data: Dataset, *, split: str = "val", batch_size: int | None = None
) -> float:
    """A teacher's top-1 on `split` ("val", or "test" for reports), in batches of
    `batch_size` images (`batch_bounds`; default: the device's `teacher_batch_size`)."""
    model.eval()
    split_x, split_y = data.split(split)
    hits = 0
    for start, stop in batch_bounds(len(split_y), batch_size or teacher_batch_size(split_x.device)):
        logits = model(data.normalize(split_x[start:stop]))
        hits += int((logits.argmax(-1) == split_y[start:stop]).sum())
    return hits / len(split_y)


@dataclass(frozen=True)
class TrainedTeacher:
    """A trained teacher (in eval mode) and what training it took: `seconds` in all, of which
    `earlier_seconds` in the interrupted sittings a resumed training went on from."""

    model: nn.Module
    seconds: float
    earlier_seconds: float = 0.0


def train_teacher(
    config: TeacherConfig,
    *,
    data: Dataset,
    augment: AugmentConfig,
    device: torch.device,
    on_epoch: Callable[[int, int], None] | None = None,
    resume: Path | None = None,
    resume_every: float | None = None,
) -> TrainedTeacher:
    """Plain supervised training with the replayable augmentation; `on_epoch(done, epochs)`
    as each epoch starts.

    With `resume`, the training state (`harness.distill._resume`) is written there at the
    end of an epoch every `resume_every` seconds (default `RESUME_EVERY_SECONDS`), and a
    later call with the same file goes on from the epoch it names: the teacher it returns
    is the one an uninterrupted call returns, bit for bit, on the same machine. The file is
    removed when training ends. Hold the teacher's key lock around the call (the teacher
    store does): the file is the key's."""
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    model = build_teacher(config, image_spec(data)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # faster convolutions on GPUs
    recipe = config.train
    precision = resolve_precision(recipe.precision, device)
    n = len(data.train_y)
    per_epoch = math.ceil(n / recipe.batch_size)
    optimizer, scheduler = make_optimizer(model, recipe, steps_per_epoch=per_epoch)
    schedule = ViewSchedule(policy=augment, views=TEACHER_VIEWS)
    generator = torch.Generator().manual_seed(config.seed)
    epochs, left = recipe.epochs_for(per_epoch), recipe.total_steps(per_epoch)
    parts: dict[str, Any] = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    first, earlier, state = 0, 0.0, None
    if resume is not None:
        state = Resumable(resume, parts, generator, device, epochs, per_epoch, resume_every)
        if (stored := state.load()) is not None:
            first, left = int(stored["epoch"]), int(stored["left"])
            earlier = float(stored.get("seconds", 0.0))
    for epoch in range(first, epochs):
        if on_epoch is not None:
            on_epoch(epoch, epochs)
        model.train()
        epoch_batches = batches(n, recipe.batch_size, generator=generator, device=device)
        for indices in epoch_batches[:left]:
            # A fresh view each epoch: view index e walks the sample's distinct views.
            views = torch.full_like(indices, epoch + config.seed * 7919)
            images = data.normalize(schedule.images(data.train_x, indices, views))
            with autocast(precision, device):
                logits = model(images)
            loss = F.cross_entropy(
                logits.float(), data.train_y[indices], label_smoothing=recipe.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            scheduler.step()
        left -= len(epoch_batches)
        if state is not None and epoch + 1 < epochs:
            seconds = earlier + time.perf_counter() - began
            state.save(epoch=epoch + 1, left=left, extra={"seconds": seconds})
    if resume is not None:
        resume.unlink(missing_ok=True)
    return TrainedTeacher(model.eval(), earlier + time.perf_counter() - began, earlier)


def read_checkpoint(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise LibKDError(
            f"teachers.{name}.checkpoint: cannot read {path} ({exc.__class__.__name__}); "
            "give a safetensors or torch state-dict file of this architecture"
        ) from None


def checkpoint_problem(name: str, config: TeacherConfig, data: Dataset) -> str | None:
    """Why `config.checkpoint` would not load into its architecture for `data` (unreadable,
    parameters missing or unexpected, shapes that differ), or None if it fits."""
    if config.checkpoint is None:
        return None
    stored = read_checkpoint(Path(config.checkpoint), name)
    expected = build_teacher(config, image_spec(data)).state_dict()
    where = f"teachers.{name}.checkpoint: {config.checkpoint}"
    missing = [k for k in expected if k not in stored]
    unexpected = [k for k in stored if k not in expected]
    shapes = [
        f"{k} {tuple(stored[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in stored and stored[k].shape != expected[k].shape
    ]
    for words, found in (
        ("lacks", missing),
        ("has unknown", unexpected),
        ("shapes differ:", shapes),
    ):
        if found:
            more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
            return (
                f"{where} {words} {', '.join(found[:3])}{more} for {config.arch} width "
                f"{config.width} depth {config.depth}; give weights of that architecture"
            )
    return None
