"""Datasets as uint8 tensors, a registry of loaders, deterministic splits and subsets."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from harness._registry import Registry
from harness.config import DatasetConfig

if TYPE_CHECKING:
    import torch

PREPROCESSING_VERSION = "uint8-v1"
EVAL_SPLITS = ("val", "test")


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
    """Training, validation and test tensors of one resolved dataset configuration.

    Validation is carved from the training images and is what selection reads (search
    objectives, pruning, best epochs); test is the official test split (or, where a dataset
    has none, a second carve) and is evaluated once, on the final model, for reporting.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
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
        import torch

        move = functools.partial(torch.Tensor.to, device=device, non_blocking=True)
        return replace(
            self,
            train_x=move(self.train_x),
            train_y=move(self.train_y),
            val_x=move(self.val_x),
            val_y=move(self.val_y),
            test_x=move(self.test_x),
            test_y=move(self.test_y),
        )

    @property
    def sizes(self) -> dict[str, int]:
        """Images per split: train (after any subset), val, test."""
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels of `name` ("val" or "test")."""
        if name not in EVAL_SPLITS:
            raise ValueError(f"split {name!r}: use one of {', '.join(EVAL_SPLITS)}")
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")

    @functools.cached_property
    def _statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Built once per Dataset (and so per device, as `to` returns a new one), not per batch.
        import torch

        device = self.train_x.device
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        return mean, torch.tensor(self.std, device=device).view(1, -1, 1, 1)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, H, W] -> float32 standardised with the training set's statistics."""
        mean, std = self._statistics
        if mean.device != images.device:
            mean, std = mean.to(images.device), std.to(images.device)
        standardised = (images.float() / 255.0 - mean) / std
        # Plain NCHW strides: a 1-channel batch can carry channels-last strides (a channel
        # of size 1 leaves them ambiguous), and oneDNN (torch 2.14.1, CPU) corrupts memory
        # on such input to a width-4 ResNet ("double free or corruption", or a hung run).
        import torch

        return standardised.clone(memory_format=torch.contiguous_format)


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


TEST_SEED_OFFSET = 7_919  # the test carve draws from its own stream, apart from validation's


def _stratified_split(
    y: np.ndarray, *, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, carved) indices: `fraction` of each class carved out (at least one image)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_val = max(1, round(len(members) * fraction))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _subset(y: np.ndarray, config: DatasetConfig) -> np.ndarray:
    """Deterministic per-class subset of the training indices (the low-data regime)."""
    if config.train_per_class is None and config.train_fraction is None:
        return np.arange(len(y))
    rng = np.random.default_rng([config.split_seed + 1, config.subset_seed])
    keep = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        if config.train_per_class is not None:
            count = config.train_per_class
        else:
            count = max(1, round(len(members) * float(config.train_fraction or 1.0)))
        keep.append(members[:count])
    return np.sort(np.concatenate(keep))


@dataclass(frozen=True)
class _Splits:
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int


def _splits(config: DatasetConfig) -> _Splits:
    """The configuration's splits as arrays (numpy only; not cached: `load_dataset` keeps
    what it builds from them, and clearing its cache must reread the files).

    Test: the official test split, or (where there is none) `test_fraction` of the images,
    stratified. Validation: `val_fraction` of the remaining training images, stratified.
    The subset options then pick from what is left, so no image is in two splits.
    """
    raw = DATASETS.get(config.name).load(config)
    if raw.test_x is None or raw.test_y is None:
        pool, test = _stratified_split(
            raw.y, fraction=config.test_fraction, seed=config.split_seed + TEST_SEED_OFFSET
        )
        x, y, test_x, test_y = raw.x[pool], raw.y[pool], raw.x[test], raw.y[test]
    else:
        x, y, test_x, test_y = raw.x, raw.y, raw.test_x, raw.test_y
    train_idx, val_idx = _stratified_split(y, fraction=config.val_fraction, seed=config.split_seed)
    train_x, train_y = x[train_idx], y[train_idx]
    keep = _subset(train_y, config)
    return _Splits(
        train_x=train_x[keep],
        train_y=train_y[keep],
        val_x=x[val_idx],
        val_y=y[val_idx],
        test_x=test_x,
        test_y=test_y,
        num_classes=raw.num_classes,
    )


def dataset_sizes(config: DatasetConfig) -> dict[str, int]:
    """Images per split (train after any subset, val, test), without torch."""
    found = _splits(config)
    return {"train": len(found.train_y), "val": len(found.val_y), "test": len(found.test_y)}


@functools.lru_cache(maxsize=8)
def load_dataset(config: DatasetConfig) -> Dataset:
    """Load, split and subset a dataset on the CPU (see `_splits`); cached for the life of
    the process."""
    import torch

    found = _splits(config)
    train_x, train_y = found.train_x, found.train_y
    val_x, val_y, test_x, test_y = found.val_x, found.val_y, found.test_x, found.test_y
    scaled = train_x.astype(np.float64) / 255.0
    mean = tuple(float(m) for m in scaled.mean(axis=(0, 2, 3)))
    std = tuple(float(s) for s in scaled.std(axis=(0, 2, 3)) + 1e-6)
    digest = hashlib.sha256()
    settings = config.model_dump(mode="json", exclude_defaults=True)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(PREPROCESSING_VERSION.encode())
    for array in (train_x, train_y, val_x, val_y, test_x, test_y):
        digest.update(np.ascontiguousarray(array).tobytes())
    return Dataset(
        name=config.name,
        train_x=torch.from_numpy(np.ascontiguousarray(train_x)),
        train_y=torch.from_numpy(train_y.astype(np.int64)),
        val_x=torch.from_numpy(np.ascontiguousarray(val_x)),
        val_y=torch.from_numpy(val_y.astype(np.int64)),
        test_x=torch.from_numpy(np.ascontiguousarray(test_x)),
        test_y=torch.from_numpy(test_y.astype(np.int64)),
        num_classes=found.num_classes,
        mean=mean,
        std=std,
        fingerprint=digest.hexdigest(),
        config=config,
    )
