"""`libkd data download`: fetch a dataset's files, check their published MD5 sums, install them
in the user cache. Needs internet; tests run it against a local file:// mirror."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.errors import DataError


@dataclass(frozen=True)
class RemoteFile:
    name: str
    md5: str  # as published by the dataset's authors


@dataclass(frozen=True)
class Remote:
    base_url: str
    files: tuple[RemoteFile, ...]
    extract: bool = False  # unpack tar archives into the target folder


REMOTES = {
    "fashion-mnist": Remote(
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        files=(
            RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
    ),
    "cifar10": Remote(
        base_url="https://www.cs.toronto.edu/~kriz/",
        files=(RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
        extract=True,
    ),
    "cifar100": Remote(
        base_url="https://www.cs.toronto.edu/~kriz/",
        files=(RemoteFile("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),),
        extract=True,
    ),
}


def download(name: str, *, base_url: str | None = None, target: Path | None = None) -> Path:
    """Download every file of `name`, verify it, and move the set into place at once."""
    if name not in REMOTES:
        raise DataError(f"data download: unknown dataset {name!r}; known: {', '.join(REMOTES)}")
    remote = REMOTES[name]
    url = base_url or os.environ.get("LIBKD_DATA_MIRROR") or remote.base_url
    target = target or Path.home() / ".cache" / "libkd" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        for file in remote.files:
            dest = Path(tmp) / file.name
            try:
                with urllib.request.urlopen(url.rstrip("/") + "/" + file.name, timeout=60) as r:
                    dest.write_bytes(r.read())
            except OSError as exc:
                raise DataError(
                    f"data download: {file.name} failed ({exc}); check the network "
                    "or put the files in $LIBKD_DATA yourself"
                ) from None
            digest = hashlib.md5(dest.read_bytes()).hexdigest()
            if digest != file.md5:
                raise DataError(
                    f"data download: {file.name} has md5 {digest}, expected "
                    f"{file.md5}; the download is corrupt, try again"
                )
        target.mkdir(exist_ok=True)
        for file in remote.files:
            if remote.extract:
                with tarfile.open(Path(tmp) / file.name) as archive:
                    archive.extractall(target, filter="data")
            else:
                shutil.move(str(Path(tmp) / file.name), target / file.name)
    return target
