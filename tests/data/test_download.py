"""`libkd data download` against a local file:// mirror holding a small fake archive."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest

from harness.config import DatasetConfig
from harness.data import _download, download, load_dataset
from harness.data._download import Remote, RemoteFile
from harness.errors import DataError


def _fake_cifar10(folder):
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for name in names:
            batch = {
                b"data": rng.integers(0, 255, (20, 3072), dtype=np.uint8),
                b"labels": list(np.arange(20) % 10),
            }
            payload = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    path = folder / "cifar-10-python.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path


def test_download_checks_md5_and_unpacks(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = _fake_cifar10(mirror)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(
        _download.REMOTES,
        "cifar10",
        Remote(
            base_url=mirror.as_uri() + "/", files=(RemoteFile(archive.name, md5),), extract=True
        ),
    )
    target = download("cifar10", target=tmp_path / "data" / "cifar10")
    assert (target / "cifar-10-batches-py" / "test_batch").exists()
    monkeypatch.setenv("LIBKD_DATA", str(tmp_path / "data"))
    load_dataset.cache_clear()
    data = load_dataset(DatasetConfig(name="cifar10", train_per_class=3))
    load_dataset.cache_clear()
    assert data.train_x.shape == (30, 3, 32, 32) and data.num_classes == 10


def test_download_rejects_a_corrupt_file_and_installs_nothing(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = _fake_cifar10(mirror)
    monkeypatch.setitem(
        _download.REMOTES,
        "cifar10",
        Remote(
            base_url=mirror.as_uri() + "/",
            files=(RemoteFile(archive.name, "0" * 32),),
            extract=True,
        ),
    )
    with pytest.raises(DataError, match="the download is corrupt"):
        download("cifar10", target=tmp_path / "data" / "cifar10")
    assert not (tmp_path / "data" / "cifar10").exists()


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="known: fashion-mnist, cifar10, cifar100"):
        download("imagenet")
