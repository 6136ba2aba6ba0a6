"""The teacher store: teachers trained once by the harness (or imported from a local
checkpoint), kept content-addressed under <cache_dir>/teachers/<key> beside the logit
caches: same configuration, data and augmentation = the same teacher, reused. Entries are
built and read through `harness._atomic.build_or_load`, like the logit caches, and
`stored_teachers` is how anything else (`cache verify`) reads them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from harness._atomic import build_or_load, digest_file, digest_json, ensure_free_space, write_json
from harness.config import AugmentConfig, TeacherConfig
from harness.data import AUGMENT_VERSION, Dataset
from harness.distill import image_spec, read_checkpoint, top1, train_teacher
from harness.errors import CacheError
from harness.models import build_teacher

TEACHERS_DIR = "teachers"
TEACHER_FORMAT = 1
WEIGHTS = "teacher.safetensors"
META = "meta.json"


@dataclass(frozen=True)
class TeacherArtifact:
    """A trained teacher in eval mode, with where it lives and what it cost."""

    name: str
    key: str
    path: Path
    digest: str  # sha256 of the weights file: the identity the logit cache is keyed on
    model: nn.Module
    built: bool
    seconds: float  # what building it cost, a resumed build's earlier sittings too; 0 if found
    val_top1: float
    build_seconds: float = 0.0  # what training (or importing) it cost, whoever did

    @property
    def bytes(self) -> int:
        return (self.path / WEIGHTS).stat().st_size


@dataclass(frozen=True)
class StoredTeacher:
    """A published teacher entry as its record says: configuration, weights' digest, folder."""

    config: TeacherConfig
    digest: str
    path: Path
    meta: dict[str, Any]


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
    key = teacher_key(config, data, augment)
    start = time.perf_counter()
    seconds = 0.0

    def build(tmp: Path) -> None:
        nonlocal seconds
        earlier = 0.0
        if config.checkpoint:
            model = build_teacher(config, image_spec(data)).to(device)
            model.load_state_dict(read_checkpoint(Path(config.checkpoint), name))
        else:
            # Under the key's lock: an interrupted build's state is this key's, and the
            # next builder goes on from it.
            trained = train_teacher(
                config,
                data=data,
                augment=augment,
                device=device,
                on_epoch=on_epoch,
                resume=cache_dir / TEACHERS_DIR / f".{key}.resume.pt",
            )
            model, earlier = trained.model, trained.earlier_seconds
        # A resumed build costs what the sittings it went on from trained too.
        seconds = earlier + time.perf_counter() - start
        ensure_free_space(tmp, _state_bytes(model) + 64 * 1024, what=f"teacher {key[:16]}")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / WEIGHTS)
        meta = {
            "key": key,
            "name": name,
            "arch": config.arch,
            "config": config.model_dump(mode="json"),
            "dataset": data.fingerprint,
            "train_seconds": seconds,
            "val_top1": top1(model.eval(), data),
            "created": time.time(),
        }
        write_json(tmp / META, {**meta, "sha256": digest_file(tmp / WEIGHTS)})

    def load(path: Path) -> TeacherArtifact | None:
        return _load(name, config, key, path, data=data, device=device)

    try:
        artifact, built = build_or_load(cache_dir / TEACHERS_DIR, key, load=load, build=build)
    except OSError as exc:  # a full disk, a read-only folder: the trial fails with why
        raise CacheError(f"teacher {name} ({key[:16]}) not written: {exc}") from None
    return replace(artifact, built=True, seconds=seconds) if built else artifact


def _load(
    name: str, config: TeacherConfig, key: str, path: Path, *, data: Dataset, device: torch.device
) -> TeacherArtifact | None:
    """The entry at `path` if its record and weights are whole (the digest matches)."""
    meta_path, weights = path / META, path / WEIGHTS
    if not (meta_path.exists() and weights.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, OSError):
        return None
    if not isinstance(meta, dict) or digest_file(weights) != meta.get("sha256"):
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
        build_seconds=float(meta.get("train_seconds", 0.0)),
    )


def stored_teachers(cache_dir: Path) -> Iterator[StoredTeacher]:
    """Every published teacher whose record reads (a damaged one is skipped)."""
    for meta_path in sorted((cache_dir / TEACHERS_DIR).glob(f"*/{META}")):
        try:
            meta = json.loads(meta_path.read_text())
            config = TeacherConfig.model_validate(meta["config"])
        except (ValueError, OSError, KeyError, TypeError):
            continue
        yield StoredTeacher(config, str(meta.get("sha256")), meta_path.parent, meta)
