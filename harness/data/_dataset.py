"""Datasets as uint8 tensors, a registry of loaders, deterministic splits and subsets."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from harness._registry import Registry
from harness.config import DatasetConfig

PREPROCESSING_VERSION = "uint8-v1"


@dataclass(frozen=True)
class RawData:
    """A loader's output: uint8 images [N, C, H, W], labels, and the official test split if any."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    test_x: np.ndarray | None = None
    test_y: np.ndarray | None = None


@dataclass(frozen=True)
class Dataset:
    """Training and validation tensors of one resolved dataset configuration."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fingerprint: str
    config: DatasetConfig

    @property
    def channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_x.shape[-1]

    def to(self, device: torch.device | str) -> Dataset:
        move = functools.partial(torch.Tensor.to, device=device, non_blocking=True)
        return replace(
            self,
            train_x=move(self.train_x),
            train_y=move(self.train_y),
            val_x=move(self.val_x),
            val_y=move(self.val_y),
        )

    @functools.cached_property
    def _statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Built once per Dataset (and so per device, as `to` returns a new one), not per batch.
        device = self.train_x.device
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        return mean, torch.tensor(self.std, device=device).view(1, -1, 1, 1)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, H, W] -> float32 standardised with the training set's statistics."""
        mean, std = self._statistics
        if mean.device != images.device:
            mean, std = mean.to(images.device), std.to(images.device)
        return (images.float() / 255.0 - mean) / std


DatasetLoader = Callable[[DatasetConfig], RawData]


def _no_problem(config: DatasetConfig) -> str | None:
    return None


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: its loader and the facts a study file is checked against before
    anything loads (the image side the student's patches must divide; what would stop it),
    and whether its files are on this machine (checked by `validate` and `run`, not on load:
    a study is planned anywhere)."""

    load: DatasetLoader
    image_size: Callable[[DatasetConfig], int]
    problem: Callable[[DatasetConfig], str | None] = _no_problem
    missing: Callable[[DatasetConfig], str | None] = _no_problem  # files absent here


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register_dataset(
    name: str,
    *,
    image_size: int | Callable[[DatasetConfig], int],
    problem: Callable[[DatasetConfig], str | None] = _no_problem,
    missing: Callable[[DatasetConfig], str | None] = _no_problem,
) -> Callable[[DatasetLoader], DatasetLoader]:
    """Register a loader with its image side (a number, or a rule over the configuration)."""
    size = image_size if callable(image_size) else (lambda config: image_size)

    def add(loader: DatasetLoader) -> DatasetLoader:
        info = DatasetInfo(load=loader, image_size=size, problem=problem, missing=missing)
        DATASETS.register(name)(info)
        return loader

    return add


def _stratified_split(
    y: np.ndarray, *, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_val = max(1, round(len(members) * val_fraction))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _subset(y: np.ndarray, config: DatasetConfig) -> np.ndarray:
    """Deterministic per-class subset of the training indices (the low-data regime)."""
    if config.train_per_class is None and config.train_fraction is None:
        return np.arange(len(y))
    rng = np.random.default_rng(config.split_seed + 1)
    keep = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        if config.train_per_class is not None:
            count = config.train_per_class
        else:
            count = max(1, round(len(members) * float(config.train_fraction or 1.0)))
        keep.append(members[:count])
    return np.sort(np.concatenate(keep))


@functools.lru_cache(maxsize=8)
def load_dataset(config: DatasetConfig) -> Dataset:
    """Load, split and subset a dataset on the CPU; cached for the life of the process."""
    raw = DATASETS.get(config.name).load(config)
    if raw.test_x is None:
        train_idx, val_idx = _stratified_split(
            raw.y, val_fraction=config.val_fraction, seed=config.split_seed
        )
        train_x, train_y = raw.x[train_idx], raw.y[train_idx]
        val_x, val_y = raw.x[val_idx], raw.y[val_idx]
    else:
        train_x, train_y, val_x, val_y = raw.x, raw.y, raw.test_x, raw.test_y
    keep = _subset(train_y, config)
    train_x, train_y = train_x[keep], train_y[keep]

    scaled = train_x.astype(np.float64) / 255.0
    mean = tuple(float(m) for m in scaled.mean(axis=(0, 2, 3)))
    std = tuple(float(s) for s in scaled.std(axis=(0, 2, 3)) + 1e-6)
    digest = hashlib.sha256()
    settings = config.model_dump(mode="json", exclude_defaults=True)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(PREPROCESSING_VERSION.encode())
    for array in (train_x, train_y, val_x, val_y):
        digest.update(np.ascontiguousarray(array).tobytes())
    return Dataset(
        name=config.name,
        train_x=torch.from_numpy(np.ascontiguousarray(train_x)),
        train_y=torch.from_numpy(train_y.astype(np.int64)),
        val_x=torch.from_numpy(np.ascontiguousarray(val_x)),
        val_y=torch.from_numpy(val_y.astype(np.int64)),
        num_classes=raw.num_classes,
        mean=mean,
        std=std,
        fingerprint=digest.hexdigest(),
        config=config,
    )
