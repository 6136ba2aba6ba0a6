from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pytest
import torch

from harness.config import DatasetConfig
from harness.data import load_dataset, read_idx
from harness.errors import DataError
from tests.helpers import write_image_folder


def _samples(x: torch.Tensor, y: torch.Tensor) -> Counter[tuple[bytes, int]]:
    return Counter(zip((image.numpy().tobytes() for image in x), y.tolist()))


def test_digits_three_splits_are_deterministic_stratified_and_disjoint():
    from sklearn.datasets import load_digits

    data = load_dataset(DatasetConfig(name="digits", val_fraction=0.2))
    again = load_dataset(DatasetConfig(name="digits", val_fraction=0.2, split_seed=0))
    assert data.fingerprint == again.fingerprint
    # digits has no official test split: 20% carved for test, 20% of the rest for validation.
    assert data.sizes == {"train": 1151, "val": 287, "test": 359}
    assert data.train_x.dtype.is_floating_point is False and data.train_x.shape[1:] == (1, 8, 8)
    assert np.bincount(data.val_y.numpy(), minlength=10).min() >= 25  # every class
    assert np.bincount(data.test_y.numpy(), minlength=10).min() >= 35
    # Every image is in exactly one split: the three multisets add up to the whole dataset.
    raw = load_digits()
    images = torch.from_numpy(np.rint(raw.images * (255.0 / 16.0)).astype(np.uint8)[:, None])
    whole = _samples(images, torch.from_numpy(raw.target))
    parts = _samples(data.train_x, data.train_y)
    parts += _samples(data.val_x, data.val_y)
    parts += _samples(data.test_x, data.test_y)
    assert parts == whole
    other = load_dataset(DatasetConfig(name="digits", val_fraction=0.2, split_seed=1))
    assert other.fingerprint != data.fingerprint


def test_digits_read_from_the_shipped_file_equal_scikit_learns_loader():
    """`plan` reads the digits without importing sklearn.datasets: the same arrays, bit for
    bit, as `load_digits` (so every split and cached logit stays the same)."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from harness.data._sources import digits_arrays

    images, target = digits_arrays()
    bunch = load_digits()
    assert images.dtype == bunch.images.dtype and np.array_equal(images, bunch.images)
    assert np.array_equal(target, bunch.target)
    probe = "import sys; from harness.data._sources import digits_arrays; digits_arrays(); "
    probe += "print('sklearn.datasets' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr[-1000:]


def test_subset_options_pick_from_the_training_pool_only():
    full = load_dataset(DatasetConfig(name="digits"))
    few = load_dataset(DatasetConfig(name="digits", train_per_class=5))
    assert torch.equal(few.val_x, full.val_x) and torch.equal(few.test_x, full.test_x)
    assert set(_samples(few.train_x, few.train_y)) <= set(_samples(full.train_x, full.train_y))


def test_train_per_class_keeps_that_many_of_each_class():
    data = load_dataset(DatasetConfig(name="digits", train_per_class=5))
    assert np.bincount(data.train_y.numpy()).tolist() == [5] * 10


def test_normalize_standardises_training_images():
    data = load_dataset(DatasetConfig(name="digits"))
    x = data.normalize(data.train_x)
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-2


def test_normalized_one_channel_images_have_plain_strides_a_narrow_resnet_trains_on():
    from harness.config import TeacherConfig
    from harness.models import build_teacher
    from harness.models._teachers import ImageSpec

    data = load_dataset(DatasetConfig(name="digits"))
    # A 1-channel batch with channels-last strides, as a crop or flip of the pixels gives.
    batch = data.train_x[:16].clone(memory_format=torch.channels_last)
    assert batch.stride()[1] == 1
    x = data.normalize(batch)
    assert x.stride() == torch.empty(x.shape).stride()
    # On such strides oneDNN corrupted memory in a width-4 ResNet's backward (torch 2.14.1):
    # the process died ("double free or corruption") or hung.
    model = build_teacher(TeacherConfig(arch="resnet", width=4), ImageSpec(1, 8, 10))
    torch.nn.functional.cross_entropy(model(x), data.train_y[:16]).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def _write_idx(path, array, *, compress=False):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def test_read_idx_round_trip_plain_and_gzip(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    assert np.array_equal(read_idx(_write_idx(tmp_path / "a", array)), array)
    assert np.array_equal(read_idx(_write_idx(tmp_path / "b", array, compress=True)), array)
    (tmp_path / "c").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(DataError, match="holds 3 bytes"):
        read_idx(tmp_path / "c")


def test_fashion_mnist_from_libkd_data(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    _write_idx(
        folder / "train-images-idx3-ubyte", rng.integers(0, 255, (40, 28, 28)), compress=True
    )
    _write_idx(folder / "train-labels-idx1-ubyte", np.arange(40) % 10, compress=True)
    _write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 255, (20, 28, 28)))
    _write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(20) % 10)
    monkeypatch.setenv("LIBKD_DATA", str(tmp_path))
    monkeypatch.setattr("harness.data._sources.Path.home", lambda: tmp_path / "nohome")
    load_dataset.cache_clear()
    data = load_dataset(DatasetConfig(name="fashion-mnist", train_per_class=2))
    load_dataset.cache_clear()
    # Validation is carved from the 40 training images (one per class), the subset comes
    # from the other 30, and the official t10k files are the test split, untouched.
    assert data.train_x.shape == (20, 1, 28, 28) and len(data.val_y) == 10
    assert data.test_y.tolist() == (np.arange(20) % 10).tolist()
    assert not set(_samples(data.val_x, data.val_y)) & set(_samples(data.train_x, data.train_y))


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    from harness.data import _sources

    monkeypatch.setattr(_sources, "data_search_path", lambda name: [tmp_path / "none"])
    load_dataset.cache_clear()
    with pytest.raises(DataError, match="install the Debian package dataset-fashion-mnist"):
        load_dataset(DatasetConfig(name="fashion-mnist"))
    load_dataset.cache_clear()


def test_imagefolder_tree_is_decoded_resized_and_labelled(tmp_path):
    from PIL import Image

    write_image_folder(tmp_path, train=3, val=2)
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(tmp_path / "train" / "dog" / "g.png")
    load_dataset.cache_clear()
    data = load_dataset(DatasetConfig(name="imagefolder", path=str(tmp_path), image_size=16))
    load_dataset.cache_clear()
    # train/ holds 3 cats and 4 dogs: one of each is carved for validation; val/ is the test.
    assert data.train_x.shape == (5, 3, 16, 16) and data.train_x.dtype == torch.uint8
    assert data.num_classes == 2 and data.train_y.tolist().count(1) == 3
    assert data.val_y.tolist() == [0, 1] and len(data.test_y) == 4


def test_imagefolder_without_path_says_so():
    load_dataset.cache_clear()
    with pytest.raises(DataError, match="dataset.path: imagefolder needs the folder"):
        load_dataset(DatasetConfig(name="imagefolder"))
