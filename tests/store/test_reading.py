"""Commands that only read never write: databases of every schema version since libkd 0.1.0
open unchanged, a file on read-only storage is read, and no process leaves a file in WAL
mode. The fixtures are real databases written by libkd 0.1.0 (093ee2d, schema 1) and by
18ba7a5 (schema 2), each holding the study `legacy` (tests/fixtures/legacy.yaml)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store import SCHEMA_VERSION, Store, stored_version

FIXTURES = Path(__file__).parent.parent / "fixtures"
OLD = ["libkd-0.1.0.db", "libkd-schema-2.db"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reading_commands(url: str, out: Path) -> list[list[str]]:
    storage = ["--storage", url]
    return [
        ["status", *storage],
        ["status", "legacy", *storage],
        ["report", "legacy", *storage],
        ["export", "legacy", "--out", str(out / "export"), *storage],
        ["dashboard", "legacy", "--out", str(out / "dashboard.html"), *storage],
        ["publish", str(FIXTURES / "legacy.yaml"), "--out", str(out / "record"), *storage],
        ["cache", "ls", "--cache-dir", str(out / "cache"), *storage],
    ]


@pytest.mark.parametrize("name", OLD)
def test_an_old_database_opens_in_every_reading_command_and_is_left_as_it_was(tmp_path, name):
    db = tmp_path / name
    shutil.copy(FIXTURES / name, db)
    before, url = _digest(db), f"sqlite:///{db}"
    for args in _reading_commands(url, tmp_path):
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
    report = CliRunner().invoke(app, ["report", "legacy", "--storage", url]).output
    assert "teachers=conv" in report and "teachers=none" in report
    assert _digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name)) == [name]
    # A command that writes migrates it; `libkd db upgrade` does only that.
    result = CliRunner().invoke(app, ["db", "upgrade", "--storage", url])
    assert result.exit_code == 0 and f"-> {SCHEMA_VERSION}" in result.output
    assert stored_version(Store(url, read_only=True).engine) == SCHEMA_VERSION
    assert len(Store(url, read_only=True).runs("legacy")) == 4


@pytest.mark.e2e
def test_a_process_that_wrote_a_database_leaves_it_out_of_wal_mode(tmp_path):
    db = tmp_path / "libkd.db"
    url = f"sqlite:///{db}"
    code = (
        f"from harness.store import Store, optuna_storage; Store({url!r}); optuna_storage({url!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def _read_only_mount_works(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    command = f"mount --bind -o ro {probe} {probe} && ! touch {probe}/x"
    try:
        done = subprocess.run(["unshare", "-m", "sh", "-c", command], capture_output=True)
    except FileNotFoundError:
        return False
    return done.returncode == 0


@pytest.mark.e2e
def test_reading_commands_work_on_read_only_storage_even_in_wal_mode(tmp_path):
    """The database of a study, as copied onto read-only storage (a mounted archive, a
    shared read-only folder), with a WAL file still beside it."""
    if not _read_only_mount_works(tmp_path):
        pytest.skip("needs root and `unshare -m` to mount a folder read-only")
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "libkd.db"
    shutil.copy(FIXTURES / OLD[1], db)
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    Store(f"sqlite:///{db}")  # a current database
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    url = f"sqlite:///{db}"
    out = tmp_path / "out"
    for args in _reading_commands(url, out):
        libkd = " ".join([sys.executable, "-m", "harness.cli", *args])
        command = f"mount --bind -o ro {folder} {folder} && {libkd}"
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", command], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
