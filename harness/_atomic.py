"""Content-addressed directories: built in a temporary folder, published by rename, one builder
per key at a time (an flock, released by the kernel even when the holder is SIGKILLed)."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar


def digest_json(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def digest_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _held(path: Path, mode: int) -> Iterator[None]:
    """An flock on `path` for the block (released by the kernel if the holder is killed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _held_if_free(path: Path) -> Iterator[bool]:
    """The exclusive flock on `path` if nobody holds it (True), without waiting; False if
    somebody does."""
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def key_lock(root: Path, key: str) -> AbstractContextManager[None]:
    """Exclusive lock on one key: a second builder waits, then finds the published entry."""
    return _held(root / f".{key}.lock", fcntl.LOCK_EX)


def use_lock(root: Path, key: str) -> AbstractContextManager[None]:
    """A shared hold on one published entry while a run reads it (from finding or building it
    to having loaded it): `cache prune` deletes only entries nobody holds."""
    return _held(root / f".{key}.use", fcntl.LOCK_SH)


def try_sole_use(root: Path, key: str) -> AbstractContextManager[bool]:
    """True while nobody holds `use_lock` on the key (and nobody can take it); False at once
    if a run holds it."""
    return _held_if_free(root / f".{key}.use")


STAGING_PREFIX = ".tmp-"


@contextmanager
def staging_dir(root: Path, key: str) -> Iterator[Path]:
    """A private temporary folder next to the final one; removed unless published.

    Call it holding the key's lock: staging folders of the same key left by a builder that
    died (SIGKILL, a full disk) are removed first, so they never keep the disk full.
    """
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"{STAGING_PREFIX}{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{key}-", dir=root))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


T = TypeVar("T")


def build_or_load(
    root: Path, key: str, *, load: Callable[[Path], T | None], build: Callable[[Path], None]
) -> tuple[T, bool]:
    """The entry `key` under `root` as `load` reads it, and whether this call built it.

    Under the key's lock: the published entry if `load` reads it whole; otherwise the
    folder is removed (corrupt or half-written: never read), `build(staging)` writes the
    entry's files into a private staging folder, which is renamed into place, and the entry
    is read back through `load` like any other. A second builder of the same key waits on
    the lock and then finds the first one's entry. Both stores (teachers, logit caches) go
    through here; an OSError while writing (a full disk) propagates with nothing published.
    """
    final = root / key
    with key_lock(root, key):
        found = load(final)
        if found is not None:
            return found, False
        shutil.rmtree(final, ignore_errors=True)
        with staging_dir(root, key) as tmp:
            build(tmp)
            publish(tmp, final)
        made = load(final)
    if made is None:  # only if the filesystem lost the rename
        raise OSError(errno.EIO, f"{final} vanished right after it was written")
    return made, True


def remove_stale_staging(root: Path) -> int:
    """Remove staging folders whose builder is gone (its key is not locked); returns how many."""
    removed = 0
    for stale in sorted(root.glob(f"{STAGING_PREFIX}*")) if root.exists() else []:
        key = stale.name.removeprefix(STAGING_PREFIX).rsplit("-", 1)[0]
        with try_key_lock(root, key) as locked:
            if locked:
                shutil.rmtree(stale, ignore_errors=True)
                removed += 1
    return removed


def try_key_lock(root: Path, key: str) -> AbstractContextManager[bool]:
    """The key's lock if nobody holds it (True), without waiting; False if a builder does."""
    return _held_if_free(root / f".{key}.lock")


def ensure_free_space(folder: Path, needed: int, *, what: str) -> None:
    """Refuse before writing `needed` bytes into `folder` if its filesystem has less free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"{what} needs {needed / 2**20:.1f} MiB but {folder} has {free / 2**20:.1f} MiB "
            "free; free some space or point --cache-dir elsewhere",
        )


def publish(tmp: Path, final: Path) -> bool:
    """Atomically move `tmp` to `final`; False (and `tmp` left for cleanup) if `final` exists."""
    try:
        os.rename(tmp, final)
    except OSError:
        return False
    return True


def replace_files(folder: Path, files: dict[str, str], *, obsolete: tuple[str, ...] = ()) -> None:
    """Write a set of files into `folder` as one record: every file is written and synced to
    a temporary name first, and only when all are on disk are they renamed over the old
    ones (and the `obsolete` ones removed). A failure while writing (a full disk, a quota)
    leaves the old record as it was and no temporary file behind."""
    folder.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path]] = []
    try:
        for name, text in files.items():
            handle, tmp_name = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}{name}-", dir=folder)
            staged.append((Path(tmp_name), folder / name))
            os.fchmod(handle, 0o644)  # mkstemp's 0600 would make the record private
            with os.fdopen(handle, "wb") as out:
                out.write(text.encode())
                out.flush()
                os.fsync(out.fileno())
    except BaseException:
        for staged_file, _ in staged:
            staged_file.unlink(missing_ok=True)
        raise
    for staged_file, final in staged:
        os.replace(staged_file, final)
    for name in obsolete:
        if name not in files:
            (folder / name).unlink(missing_ok=True)


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json_text(data))
