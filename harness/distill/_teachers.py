"""Teachers: trained once by the harness (or loaded from a local checkpoint), stored
content-addressed under <cache_dir>/teachers/<key>: same config + data + seed = reuse."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from harness._atomic import (
    digest_file,
    digest_json,
    ensure_free_space,
    key_lock,
    publish,
    staging_dir,
    write_json,
)
from harness._precision import autocast, resolve_precision
from harness.config import AugmentConfig, TeacherConfig
from harness.data import AUGMENT_VERSION, Dataset, ViewSchedule
from harness.distill._optim import batches, make_optimizer
from harness.distill._train import image_spec
from harness.errors import CacheError, LibKDError
from harness.models import build_teacher

TEACHER_FORMAT = 1
WEIGHTS = "teacher.safetensors"
# Teachers see a fresh view every epoch (the view index is the epoch), so the schedule's
# stored-view count only has to be non-zero: augmented pixels, not clean images.
TEACHER_VIEWS = 1 << 30


@dataclass(frozen=True)
class TeacherArtifact:
    """A trained teacher in eval mode, with where it lives and what it cost."""

    name: str
    key: str
    path: Path
    digest: str  # sha256 of the weights file: the identity the logit cache is keyed on
    model: nn.Module
    built: bool
    seconds: float
    val_top1: float

    @property
    def bytes(self) -> int:
        return (self.path / WEIGHTS).stat().st_size


def teacher_key(config: TeacherConfig, data: Dataset, augment: AugmentConfig) -> str:
    source = digest_file(Path(config.checkpoint)) if config.checkpoint else None
    return digest_json(
        {
            "format": TEACHER_FORMAT,
            "augment_version": AUGMENT_VERSION,
            "teacher": config.model_dump(mode="json", exclude={"checkpoint"}),
            "checkpoint": source,
            "dataset": data.fingerprint,
            "augment": augment.model_dump(mode="json"),
        }
    )


@torch.no_grad()
def top1(model: nn.Module, data: Dataset, *, split: str = "val", batch_size: int = 512) -> float:
    """A teacher's top-1 on `split` ("val", or "test" for reports)."""
    model.eval()
    split_x, split_y = data.split(split)
    hits = 0
    for start in range(0, len(split_y), batch_size):
        logits = model(data.normalize(split_x[start : start + batch_size]))
        hits += int((logits.argmax(-1) == split_y[start : start + batch_size]).sum())
    return hits / len(split_y)


def train_teacher(
    config: TeacherConfig,
    *,
    data: Dataset,
    augment: AugmentConfig,
    device: torch.device,
    on_epoch: Callable[[int, int], None] | None = None,
) -> nn.Module:
    """Plain supervised training with the replayable augmentation; `on_epoch(done, epochs)`
    as each epoch starts."""
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
    for epoch in range(epochs):
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
    return model.eval()


def _publish_teacher(
    model: nn.Module, *, tmp_root: Path, final: Path, key: str, meta: dict[str, Any]
) -> str:
    """Write the weights and `meta` (plus their sha256) into a staging folder, rename it to
    `final`; returns the weights' digest."""
    with staging_dir(tmp_root, key) as tmp:
        ensure_free_space(tmp, _state_bytes(model) + 64 * 1024, what=f"teacher {key[:16]}")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / WEIGHTS)
        digest = digest_file(tmp / WEIGHTS)
        write_json(tmp / "meta.json", {**meta, "sha256": digest})
        publish(tmp, final)
    return digest


def _state_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def obtain_teacher(
    name: str,
    config: TeacherConfig,
    *,
    data: Dataset,
    augment: AugmentConfig,
    cache_dir: Path,
    device: torch.device,
    on_epoch: Callable[[int, int], None] | None = None,
) -> TeacherArtifact:
    """Load the stored teacher for this key, or train (or import) it and store it;
    `on_epoch` follows its training."""
    root = cache_dir / "teachers"
    key = teacher_key(config, data, augment)
    final = root / key
    with key_lock(root, key):
        artifact = _load(name, config, key, final, data=data, device=device)
        if artifact is not None:
            return artifact
        shutil.rmtree(final, ignore_errors=True)  # corrupt or half-written: never read it
        start = time.perf_counter()
        if config.checkpoint:
            model = build_teacher(config, image_spec(data)).to(device)
            model.load_state_dict(_read_checkpoint(Path(config.checkpoint), name))
            model.eval()
        else:
            model = train_teacher(
                config, data=data, augment=augment, device=device, on_epoch=on_epoch
            )
        seconds = time.perf_counter() - start
        accuracy = top1(model, data)
        try:
            digest = _publish_teacher(
                model,
                tmp_root=root,
                final=final,
                key=key,
                meta={
                    "key": key,
                    "name": name,
                    "arch": config.arch,
                    "config": config.model_dump(mode="json"),
                    "dataset": data.fingerprint,
                    "train_seconds": seconds,
                    "val_top1": accuracy,
                    "created": time.time(),
                },
            )
        except OSError as exc:  # a full disk, a read-only folder: the trial fails with why
            raise CacheError(f"teacher {name} ({key[:16]}) not written: {exc}") from None
        return TeacherArtifact(
            name=name,
            key=key,
            path=final,
            digest=digest,
            model=model,
            built=True,
            seconds=seconds,
            val_top1=accuracy,
        )


def _read_checkpoint(path: Path, name: str) -> dict[str, torch.Tensor]:
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
    stored = _read_checkpoint(Path(config.checkpoint), name)
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


def _load(
    name: str, config: TeacherConfig, key: str, path: Path, *, data: Dataset, device: torch.device
) -> TeacherArtifact | None:
    meta_path, weights = path / "meta.json", path / WEIGHTS
    if not (meta_path.exists() and weights.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    if digest_file(weights) != meta.get("sha256"):
        return None
    model = build_teacher(config, image_spec(data))
    model.load_state_dict(load_file(weights))
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # faster convolutions on GPUs
    return TeacherArtifact(
        name=name,
        key=key,
        path=path,
        digest=meta["sha256"],
        model=model.to(device).eval(),
        built=False,
        seconds=0.0,
        val_top1=meta["val_top1"],
    )
