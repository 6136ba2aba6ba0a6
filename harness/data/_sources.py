"""The bundled datasets: scikit-learn's digits and Fashion-MNIST from IDX files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

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


@register_dataset("digits")
def _digits() -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # The 8x8 images hold 0..16; scale to the uint8 range so every dataset shares one pipeline.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return RawData(x=images, y=bunch.target.astype(np.int64), num_classes=10)


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


@register_dataset("fashion-mnist")
def _fashion_mnist() -> RawData:
    for root in data_search_path("fashion-mnist"):
        found = {key: _find_idx(root, stem) for key, stem in FASHION_MNIST_FILES.items()}
        if all(found.values()):
            arrays = {key: read_idx(path) for key, path in found.items()}
            return RawData(
                x=arrays["train_x"][:, None],
                y=arrays["train_y"].astype(np.int64),
                num_classes=10,
                test_x=arrays["test_x"][:, None],
                test_y=arrays["test_y"].astype(np.int64),
            )
    searched = ", ".join(str(root) for root in data_search_path("fashion-mnist"))
    raise DataError(
        f"dataset 'fashion-mnist' not found in {searched}; install the Debian package "
        "dataset-fashion-mnist, or put the four IDX files in $LIBKD_DATA/fashion-mnist"
    )
