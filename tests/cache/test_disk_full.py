"""A cache directory that fills up: the build fails with the reason (never SIGBUS), leaves
no staging folder behind, and publishes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from harness._atomic import remove_stale_staging
from harness.cache import build_or_load, list_caches, obtain_teacher
from harness.errors import CacheError
from harness.study import study_from_dict
from tests.cache.test_cache import _setup
from tests.helpers import tiny_dict


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs; `fill(root)` fills it to the last byte."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    root = tmp_path / "small"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)])
    if mounted.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        (root / "logits").mkdir()
        (root / "teachers").mkdir()
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def fill(root: Path) -> None:
    fd = os.open(root / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 512):
            pass
    except OSError:
        pass  # full
    finally:
        os.close(fd)


@pytest.fixture
def full_disk(small_disk):
    fill(small_disk)
    return small_disk


def _staging(root: Path) -> list[Path]:
    return [*root.glob("*/.tmp-*")]


@pytest.mark.e2e
def test_a_full_disk_is_found_before_writing(full_disk):
    _, data, teacher, spec = _setup()
    with pytest.raises(CacheError, match="needs .* MiB but .* free"):
        build_or_load(spec, teacher=teacher, teacher_name="conv", data=data, root=full_disk)
    assert _staging(full_disk) == [] and list_caches(full_disk) == []


@pytest.mark.e2e
def test_a_write_that_hits_a_full_disk_fails_with_the_reason(full_disk, monkeypatch):
    # As if the size were unknown: the write itself runs out of space.
    monkeypatch.setattr("harness.cache._logits.ensure_free_space", lambda *a, **k: None)
    _, data, teacher, spec = _setup()
    with pytest.raises(CacheError, match="No space left on device"):
        build_or_load(spec, teacher=teacher, teacher_name="conv", data=data, root=full_disk)
    assert _staging(full_disk) == [] and list_caches(full_disk) == []


@pytest.mark.e2e
def test_a_teacher_on_a_full_disk_fails_with_the_reason(full_disk):
    config = study_from_dict(tiny_dict()).configs[-1].config
    data = _setup()[1]
    with pytest.raises(CacheError, match="teacher conv .* not written"):
        obtain_teacher(
            "conv",
            config.teachers["conv"],
            data=data,
            augment=config.augment,
            cache_dir=full_disk,
            device=torch.device("cpu"),
        )
    assert _staging(full_disk) == []


def test_abandoned_staging_is_removed_unless_a_builder_holds_it(tmp_path):
    folder = tmp_path / "logits"
    (folder / ".tmp-abc-x1").mkdir(parents=True)
    assert remove_stale_staging(folder) == 1 and list(folder.glob(".tmp-*")) == []


def test_a_full_database_disk_is_one_line(small_disk, tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app
    from harness.store import Store, optuna_storage
    from tests.helpers import write_study

    url = f"sqlite:///{small_disk / 'libkd.db'}"
    Store(url), optuna_storage(url)  # the tables exist; then the disk fills up
    fill(small_disk)
    path = write_study(tmp_path, tiny_dict(seeds=[0, 1, 2, 3, 4, 5, 6, 7]))
    result = CliRunner().invoke(
        app, ["run", str(path), "--storage", url, "--cache-dir", str(tmp_path / "c")]
    )
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert lines[-1].startswith("error: ") and "full" in lines[-1]
    assert "Traceback" not in result.output
