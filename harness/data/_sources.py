"""The bundled datasets: scikit-learn's digits and Fashion-MNIST from IDX files."""

from __future__ import annotations

import gzip
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import DatasetConfig
from harness.data._dataset import RawData, register_dataset
from harness.errors import DataError

FASHION_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def data_search_path(name: str) -> list[Path]:
    """Where a dataset's files are looked for, in order: $LIBKD_DATA, the user cache, Debian's."""
    roots = []
    if os.environ.get("LIBKD_DATA"):
        roots.append(Path(os.environ["LIBKD_DATA"]) / name)
    roots.append(Path.home() / ".cache" / "libkd" / name)
    roots.append(Path("/usr/share/datasets") / name)
    return roots


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as `load_digits` returns them (images 0..16 as float64, shape
    (1797, 8, 8); integer targets), read from the CSV file scikit-learn ships, the way its
    loader reads it, without importing `sklearn.datasets` (1.7 s on a 2-core machine, most of
    `libkd plan`). Falls back to the loader where the file is not where it was."""
    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = [Path(f) / "datasets" / "data" / "digits.csv.gz" for f in folders]
    if not found or not found[0].is_file():
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(found[0], "rt", encoding="utf-8") as handle:
        data = np.loadtxt(handle, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


@register_dataset("digits", image_size=8)
def _digits(config: DatasetConfig) -> RawData:
    pixels, target = digits_arrays()
    # The 8x8 images hold 0..16; scale to the uint8 range so every dataset shares one pipeline.
    images = np.rint(pixels * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return RawData(x=images, y=target.astype(np.int64), num_classes=10)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): big-endian header, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes; re-download the dataset")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: holds {body.size} bytes, header says {shape}; re-download it")
    return body.reshape(shape).copy()


def _find_idx(root: Path, stem: str) -> Path | None:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _fashion_mnist_files() -> dict[str, Path]:
    for root in data_search_path("fashion-mnist"):
        found = {key: _find_idx(root, stem) for key, stem in FASHION_MNIST_FILES.items()}
        paths = {key: path for key, path in found.items() if path is not None}
        if len(paths) == len(found):
            return paths
    searched = ", ".join(str(root) for root in data_search_path("fashion-mnist"))
    raise DataError(
        f"dataset 'fashion-mnist' not found in {searched}; install the Debian package "
        "dataset-fashion-mnist, or put the four IDX files in $LIBKD_DATA/fashion-mnist"
    )


def _missing(find: Callable[[], object]) -> str | None:
    """The reason a dataset's files are not on this machine, or None."""
    try:
        find()
    except DataError as exc:
        return str(exc)
    return None


@register_dataset(
    "fashion-mnist", image_size=28, missing=lambda config: _missing(_fashion_mnist_files)
)
def _fashion_mnist(config: DatasetConfig) -> RawData:
    arrays = {key: read_idx(path) for key, path in _fashion_mnist_files().items()}
    return RawData(
        x=arrays["train_x"][:, None],
        y=arrays["train_y"].astype(np.int64),
        num_classes=10,
        test_x=arrays["test_x"][:, None],
        test_y=arrays["test_y"].astype(np.int64),
    )


def _unpickle(path: Path) -> dict[bytes, Any]:
    import pickle

    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="bytes")


def _cifar_images(flat: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(flat.reshape(-1, 3, 32, 32).astype(np.uint8))


def _find_root(name: str, folder: str) -> Path:
    for root in data_search_path(name):
        if (root / folder).is_dir():
            return root / folder
        if root.is_dir() and root.name == folder:
            return root
    searched = ", ".join(str(r / folder) for r in data_search_path(name))
    raise DataError(
        f"dataset {name!r} not found in {searched}; run `libkd data download {name}` on a "
        f"machine with internet, or unpack the python version into $LIBKD_DATA/{name}"
    )


@register_dataset(
    "cifar10",
    image_size=32,
    missing=lambda config: _missing(lambda: _find_root("cifar10", "cifar-10-batches-py")),
)
def _cifar10(config: DatasetConfig) -> RawData:
    root = _find_root("cifar10", "cifar-10-batches-py")
    train = [_unpickle(root / f"data_batch_{i}") for i in range(1, 6)]
    test = _unpickle(root / "test_batch")
    return RawData(
        x=_cifar_images(np.concatenate([b[b"data"] for b in train])),
        y=np.concatenate([np.asarray(b[b"labels"]) for b in train]).astype(np.int64),
        num_classes=10,
        test_x=_cifar_images(test[b"data"]),
        test_y=np.asarray(test[b"labels"], dtype=np.int64),
    )


@register_dataset(
    "cifar100",
    image_size=32,
    missing=lambda config: _missing(lambda: _find_root("cifar100", "cifar-100-python")),
)
def _cifar100(config: DatasetConfig) -> RawData:
    root = _find_root("cifar100", "cifar-100-python")
    train, test = _unpickle(root / "train"), _unpickle(root / "test")
    return RawData(
        x=_cifar_images(train[b"data"]),
        y=np.asarray(train[b"fine_labels"], dtype=np.int64),
        num_classes=100,
        test_x=_cifar_images(test[b"data"]),
        test_y=np.asarray(test[b"fine_labels"], dtype=np.int64),
    )


@register_dataset("synthetic-cifar100", image_size=32)
def _synthetic_cifar100(config: DatasetConfig) -> RawData:
    """Random 32x32 RGB images with 100 classes, CIFAR-100's shapes: for throughput benchmarks
    on machines without the real data (accuracy on it means nothing)."""
    rng = np.random.default_rng(0)
    return RawData(
        x=rng.integers(0, 256, (50_000, 3, 32, 32), dtype=np.uint8),
        y=np.arange(50_000, dtype=np.int64) % 100,
        num_classes=100,
        test_x=rng.integers(0, 256, (10_000, 3, 32, 32), dtype=np.uint8),
        test_y=np.arange(10_000, dtype=np.int64) % 100,
    )


def _imagefolder_problem(config: DatasetConfig) -> str | None:
    if config.path is None:
        return "dataset.path: imagefolder needs the folder holding train/ and val/"
    root = Path(config.path)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            return (
                f"dataset.path: {root / split} is not a folder; "
                "an imagefolder dataset needs train/<class>/ and val/<class>/"
            )
    return None


@register_dataset(
    "imagefolder", image_size=lambda config: config.image_size, problem=_imagefolder_problem
)
def _imagefolder(config: DatasetConfig) -> RawData:
    """An ImageNet-style tree (<path>/train/<class>/*.jpg and <path>/val/<class>/...), decoded
    once by DataLoader workers, resized and center-cropped to `image_size`, kept as uint8."""
    problem = _imagefolder_problem(config)
    if problem is not None:
        raise DataError(problem)
    root = Path(str(config.path))
    train_x, train_y, classes = _decode_folder(root / "train", config.image_size)
    val_x, val_y, val_classes = _decode_folder(root / "val", config.image_size)
    if val_classes != classes:
        raise DataError(f"dataset.path: {root}/val has other classes than train/")
    return RawData(x=train_x, y=train_y, num_classes=len(classes), test_x=val_x, test_y=val_y)


def _decode_folder(folder: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import torch
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.Resize(size),
            transforms.CenterCrop(size),
            transforms.PILToTensor(),
        ]
    )
    tree = datasets.ImageFolder(str(folder), transform=transform)
    loader = torch.utils.data.DataLoader(
        tree, batch_size=256, num_workers=min(8, os.cpu_count() or 1)
    )
    images, labels = [], []
    for batch, target in loader:
        if batch.shape[1] == 1:  # grey-scale files in a colour tree
            batch = batch.expand(-1, 3, -1, -1)
        images.append(batch.numpy())
        labels.append(target.numpy())
    return np.concatenate(images), np.concatenate(labels).astype(np.int64), tree.classes
