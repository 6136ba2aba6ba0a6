"""The augmentation-consistent logit cache: teacher logits for V replayable views per sample.

Layout of <cache_dir>/logits/<key>/:
  logits.npy                [N, V', C] float16|float32 (V' = max(V, 1); V = 0: clean images)
  or values.npy, indices.npy [N, V', k] top-k log-probabilities and their classes
  meta.json                  the key's inputs, shape, sha256 of each array file, build cost
and, while a build of <key> is unfinished, <cache_dir>/logits/.<key>.views/view-<v>.pt: the
float32 logits [N, C] of each view it finished, so an interrupted build goes on from there.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from harness._atomic import build_or_load as atomic_build_or_load
from harness._atomic import (
    digest_file,
    digest_json,
    ensure_free_space,
    use_lock,
    write_json,
)
from harness._precision import autocast, batch_bounds, teacher_batch_size
from harness.config import AugmentConfig, CacheConfig
from harness.data import AUGMENT_VERSION, Dataset, ViewSchedule
from harness.distill._resume import load_state, save_quietly
from harness.errors import CacheError

CACHE_FORMAT = 1
LOGITS_DIR = "logits"


@dataclass(frozen=True)
class CacheSpec:
    """Everything the cached bytes depend on; its sha256 is the cache key."""

    teacher_digest: str
    dataset_fingerprint: str
    augment: AugmentConfig
    views: int
    dtype: str
    top_k: int | None
    precision: str = "fp32"  # of the teacher's forward pass: bf16 logits are other bytes

    @classmethod
    def of(
        cls,
        *,
        teacher_digest: str,
        data: Dataset,
        augment: AugmentConfig,
        cache: CacheConfig,
        precision: str = "fp32",
    ) -> CacheSpec:
        top_k = cache.top_k if cache.top_k is not None and cache.top_k < data.num_classes else None
        return cls(
            teacher_digest, data.fingerprint, augment, cache.views, cache.dtype, top_k, precision
        )

    @property
    def key(self) -> str:
        return digest_json(
            {
                "format": CACHE_FORMAT,
                "augment_version": AUGMENT_VERSION,
                "teacher": self.teacher_digest,
                "dataset": self.dataset_fingerprint,
                "augment": self.augment.model_dump(mode="json"),
                "views": self.views,
                "dtype": self.dtype,
                "top_k": self.top_k,
                "precision": self.precision,
            }
        )

    @property
    def schedule(self) -> ViewSchedule:
        return ViewSchedule(policy=self.augment, views=self.views)


@dataclass(frozen=True)
class LogitCache:
    """A verified cache entry on disk."""

    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    def dense(self) -> torch.Tensor:
        """Logits [N, V', C] in the stored dtype; top-k entries become log-probabilities with
        the remaining mass spread evenly over the other classes."""
        if self.meta["top_k"] is None:
            return torch.from_numpy(np.load(self.path / "logits.npy", mmap_mode="r").copy())
        values = torch.from_numpy(np.load(self.path / "values.npy")).float()
        indices = torch.from_numpy(np.load(self.path / "indices.npy")).long()
        classes = self.meta["num_classes"]
        kept = values.exp().sum(-1, keepdim=True).clamp(max=1.0)
        rest = ((1.0 - kept) / (classes - values.shape[-1])).clamp_min(1e-12).log()
        full = rest.expand(*values.shape[:-1], classes).clone()
        full.scatter_(-1, indices, values)
        return full.to(getattr(torch, self.meta["dtype"]))


@torch.no_grad()
def teacher_logits(
    teacher: nn.Module,
    data: Dataset,
    schedule: ViewSchedule,
    *,
    indices: torch.Tensor,
    views: torch.Tensor,
    precision: str = "fp32",
) -> torch.Tensor:
    """Online logits of the teacher for (sample, view) pairs, as float32: the reference."""
    teacher.eval()
    images = data.normalize(schedule.images(data.train_x, indices, views))
    with autocast(precision, images.device):
        return teacher(images).float()


OnStep = Callable[[int, int], None]
"""Progress of a long step: called with (done, total) as it goes."""


def compute_all(
    teacher: nn.Module,
    data: Dataset,
    spec: CacheSpec,
    *,
    batch_size: int | None = None,
    on_view: OnStep | None = None,
    done_views: Path | None = None,
) -> torch.Tensor:
    """Logits [N, V', C] float32 for every sample and view, in batches of `batch_size` images
    or a little more (`batch_bounds`; default: the device's `teacher_batch_size`);
    `on_view(done, views)` as each view it computes starts. With `done_views` (a folder of
    the key's: hold its lock), each finished view is written there and a view found there
    whole is read, not computed: an interrupted build goes on from the views it finished,
    to the same logits."""
    logits, _ = _compute_views(teacher, data, spec, batch_size, on_view, done_views)
    return logits


@torch.no_grad()
def _compute_views(
    teacher: nn.Module,
    data: Dataset,
    spec: CacheSpec,
    batch_size: int | None,
    on_view: OnStep | None,
    done_views: Path | None,
) -> tuple[torch.Tensor, float]:
    """`compute_all`'s logits and the seconds the views read back took to compute."""
    n, stored_views = len(data.train_y), max(spec.views, 1)
    device = data.train_x.device
    batch_size = batch_size or teacher_batch_size(device)
    out = torch.empty(n, stored_views, data.num_classes)
    earlier = 0.0
    for view in range(stored_views):
        kept = None if done_views is None else _read_view(done_views, view, out[:, view].shape)
        if kept is not None:
            out[:, view], seconds = kept
            earlier += seconds
            continue
        if on_view is not None:
            on_view(view, stored_views)
        start = time.perf_counter()
        for first, stop in batch_bounds(n, batch_size):
            idx = torch.arange(first, stop, device=device)
            logits = teacher_logits(
                teacher,
                data,
                spec.schedule,
                indices=idx,
                views=torch.full_like(idx, view),
                precision=spec.precision,
            )
            out[first : first + len(idx), view] = logits.cpu()
        if done_views is not None:
            _write_view(done_views, view, out[:, view], time.perf_counter() - start)
    return out, earlier


def done_views_dir(root: Path, key: str) -> Path:
    """Where an unfinished build of `key` keeps its finished views (see the module)."""
    return root / LOGITS_DIR / f".{key}.views"


def _write_view(folder: Path, view: int, logits: torch.Tensor, seconds: float) -> None:
    """One finished view and what computing it took, whole or not at all (a failed write
    only warns)."""
    save_quietly(folder / f"view-{view}.pt", {"logits": logits.clone(), "seconds": seconds})


def _read_view(folder: Path, view: int, shape: torch.Size) -> tuple[torch.Tensor, float] | None:
    """A finished view and its seconds if it reads whole with the expected shape, else None
    (computed again)."""
    saved = load_state(folder / f"view-{view}.pt") or {}
    logits, seconds = saved.get("logits"), saved.get("seconds")
    if not isinstance(logits, torch.Tensor) or not isinstance(seconds, float):
        return None
    return (logits, seconds) if logits.shape == shape and logits.dtype == torch.float32 else None


def _write_arrays(folder: Path, logits: torch.Tensor, spec: CacheSpec) -> dict[str, str]:
    """Write the arrays with plain writes: a full disk is an OSError, where writing through
    a memory map would kill the process with SIGBUS."""
    dtype = np.dtype(spec.dtype)
    if spec.top_k is None:
        needed = logits.numel() * dtype.itemsize
    else:
        needed = logits[..., :1].numel() * spec.top_k * (dtype.itemsize + 4)
    ensure_free_space(folder, needed + 64 * 1024, what=f"logit cache {spec.key[:16]}")
    if spec.top_k is None:
        np.save(folder / "logits.npy", logits.numpy().astype(dtype))
        names = ["logits.npy"]
    else:
        log_probs = F.log_softmax(logits, dim=-1)
        values, indices = log_probs.topk(spec.top_k, dim=-1)
        index_dtype = np.int16 if logits.shape[-1] < 2**15 else np.int32
        np.save(folder / "values.npy", values.numpy().astype(dtype))
        np.save(folder / "indices.npy", indices.numpy().astype(index_dtype))
        names = ["values.npy", "indices.npy"]
    return {name: digest_file(folder / name) for name in names}


def open_cache(path: Path) -> LogitCache | None:
    """The entry at `path` if it is whole and its checksums match, else None."""
    meta_path = path / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        for name, expected in meta["files"].items():
            file = path / name
            if not file.exists() or digest_file(file) != expected:
                return None
            header_shape = np.load(file, mmap_mode="r").shape
            if list(header_shape) != meta["shapes"][name]:
                return None
    except (ValueError, KeyError, OSError):
        return None
    return LogitCache(key=meta["key"], path=path, meta=meta)


@dataclass(frozen=True)
class CacheResult:
    cache: LogitCache
    built: bool
    seconds: float


def hold_entry(root: Path, spec: CacheSpec) -> AbstractContextManager[None]:
    """Hold the entry of `spec` while a run finds or builds it and loads it: `cache prune`
    never deletes an entry a run holds (the window before the run's use is recorded)."""
    return use_lock(root / LOGITS_DIR, spec.key)


def build_or_load(
    spec: CacheSpec,
    *,
    teacher: nn.Module,
    teacher_name: str,
    data: Dataset,
    root: Path,
    on_view: OnStep | None = None,
) -> CacheResult:
    """Load the cache of this key, or build it (`on_view` follows the build, view by view);
    a corrupt entry is rebuilt, never read."""
    start = time.perf_counter()
    done_views = done_views_dir(root, spec.key)
    earlier = 0.0

    def build(tmp: Path) -> None:
        nonlocal earlier
        logits, earlier = _compute_views(teacher, data, spec, None, on_view, done_views)
        files = _write_arrays(tmp, logits, spec)
        meta = {
            "key": spec.key,
            "format": CACHE_FORMAT,
            "teacher": teacher_name,
            "teacher_digest": spec.teacher_digest,
            "dataset": data.name,
            "dataset_fingerprint": spec.dataset_fingerprint,
            "dataset_config": data.config.model_dump(mode="json"),
            "augment": spec.augment.model_dump(mode="json"),
            "views": spec.views,
            "dtype": spec.dtype,
            "top_k": spec.top_k,
            "precision": spec.precision,
            "num_samples": len(data.train_y),
            "num_classes": data.num_classes,
            "files": files,
            "shapes": {name: list(np.load(tmp / name, mmap_mode="r").shape) for name in files},
            "build_seconds": earlier + time.perf_counter() - start,  # resumed: all sittings
            "created": time.time(),
        }
        write_json(tmp / "meta.json", meta)

    try:
        cache, built = atomic_build_or_load(
            root / LOGITS_DIR, spec.key, load=open_cache, build=build
        )
    except OSError as exc:  # a full disk, a read-only folder: the trial fails with why
        raise CacheError(f"logit cache {spec.key[:16]} not written: {exc}") from None
    if built:  # published: the finished views are in the entry now
        shutil.rmtree(done_views, ignore_errors=True)
    return CacheResult(cache, built=built, seconds=cache.meta["build_seconds"] if built else 0.0)


DAMAGED = "damaged"  # the meta key of an entry whose meta.json cannot be read


def list_caches(root: Path) -> list[LogitCache]:
    """Every published entry, whole or not: one whose meta.json cannot be read is listed
    with `meta == {"damaged": reason}` (ls shows it, verify fails it, a build replaces it)."""
    folder = root / LOGITS_DIR
    entries = []
    for path in sorted(folder.glob("*")) if folder.exists() else []:
        if path.is_dir() and not path.name.startswith(".") and (path / "meta.json").exists():
            try:
                meta = json.loads((path / "meta.json").read_text())
                if not isinstance(meta, dict):
                    raise ValueError("not a mapping")
            except (ValueError, OSError) as exc:
                meta = {DAMAGED: f"meta.json unreadable ({type(exc).__name__})"}
            entries.append(LogitCache(key=path.name, path=path, meta=meta))
    return entries


@dataclass(frozen=True)
class VerifyReport:
    key: str
    checksum_ok: bool
    samples: int
    max_abs_error: float
    mean_kl: float
    tolerance: float
    problem: str | None = None  # why the entry could not be checked at all

    @property
    def ok(self) -> bool:
        return self.problem is None and self.checksum_ok and self.max_abs_error <= self.tolerance

    @classmethod
    def unchecked(cls, key: str, problem: str) -> VerifyReport:
        return cls(key, False, 0, math.nan, math.nan, 0.0, problem=problem)


def tolerance_for(meta: dict[str, Any], reference: torch.Tensor) -> float:
    """float32: 1e-5 (relative to the logits' scale); float16: its rounding, 2^-10 relative."""
    scale = float(reference.abs().max().clamp_min(1.0))
    if meta["top_k"] is not None:
        return math.inf  # top-k stores log-probabilities, so compare by KL only
    if meta.get("precision", "fp32") == "bf16":
        return scale * 2.0**-5  # bf16 forward passes differ between kernels and devices
    return scale * (1e-5 if meta["dtype"] == "float32" else 2.0**-10)


def verify(
    cache: LogitCache, *, teacher: nn.Module, data: Dataset, spec: CacheSpec, samples: int = 256
) -> VerifyReport:
    """Recompute a sample of (sample, view) entries online and compare with the stored ones."""
    whole = open_cache(cache.path)
    if whole is None:
        return VerifyReport(cache.key, False, 0, math.inf, math.inf, 0.0)
    stored = whole.dense().float()
    generator = torch.Generator().manual_seed(0)
    n, v = stored.shape[:2]
    idx = torch.randint(n, (min(samples, n * v),), generator=generator)
    views = torch.randint(v, idx.shape, generator=generator)
    device = data.train_x.device
    reference = teacher_logits(
        teacher,
        data,
        spec.schedule,
        indices=idx.to(device),
        views=views.to(device),
        precision=spec.precision,
    ).cpu()
    got = stored[idx, views]
    # Top-k entries hold log-probabilities, not logits: only the KL compares them.
    error = float((got - reference).abs().max()) if whole.meta["top_k"] is None else 0.0
    kl = F.kl_div(
        F.log_softmax(got, -1), F.log_softmax(reference, -1), log_target=True, reduction="batchmean"
    )
    return VerifyReport(
        cache.key, True, len(idx), error, float(kl), tolerance_for(whole.meta, reference)
    )
