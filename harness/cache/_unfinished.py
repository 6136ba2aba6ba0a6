"""What unfinished work leaves in the cache directory so that it can go on: a teacher's
training state (`teachers/.<key>.resume.pt`), a logit cache's finished views
(`logits/.<key>.views/`) and a student's training state (`students/.<key>.resume.pt`), each
beside its key's lock, which the process doing the work holds."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness._atomic import try_key_lock
from harness.cache._logits import LOGITS_DIR
from harness.cache._teacher_store import TEACHERS_DIR

STUDENTS_DIR = "students"

_KINDS = (  # (folder, suffix of the saved state, whether a published entry completes it)
    (TEACHERS_DIR, ".resume.pt", True),
    (LOGITS_DIR, ".views", True),
    (STUDENTS_DIR, ".resume.pt", False),
)


@dataclass(frozen=True)
class Unfinished:
    """One saved state of unfinished work."""

    path: Path
    key: str
    folder: Path
    finished: bool  # its entry is published: a process died between publishing and removing

    @property
    def written(self) -> float:
        return self.path.stat().st_mtime

    def describe(self) -> str:
        """What is saved, in words: whose work and how far it got, for `cache ls`."""
        what = {TEACHERS_DIR: "teacher training", STUDENTS_DIR: "student training"}
        if self.path.is_dir():
            views = len(list(self.path.glob("view-*.pt")))
            return f"logit cache build, {views} view(s) finished"
        size = self.path.stat().st_size / 2**20
        return f"{what.get(self.folder.name, self.folder.name)}, {size:.2f} MiB state"


def unfinished(root: Path) -> Iterator[Unfinished]:
    """Every saved state of unfinished work under the cache directory `root`."""
    for name, suffix, published in _KINDS:
        folder = root / name
        for path in sorted(folder.glob(f".*{suffix}")) if folder.exists() else []:
            key = path.name[1 : -len(suffix)]
            finished = published and (folder / key).exists()
            yield Unfinished(path=path, key=key, folder=folder, finished=finished)


def remove_unfinished(root: Path, *, before: float | None) -> int:
    """Remove the saved states nothing will go on from (their entry is published) and, with
    `before` (a POSIX time), those last written before it; never one whose key a process
    holds. Returns how many."""
    removed = 0
    for state in list(unfinished(root)):
        if not state.finished and (before is None or state.written >= before):
            continue
        with try_key_lock(state.folder, state.key) as free:
            if free:
                if state.path.is_dir():
                    shutil.rmtree(state.path, ignore_errors=True)
                else:
                    state.path.unlink(missing_ok=True)
                if state.folder.name == STUDENTS_DIR:  # a run's key: nothing else locks it
                    (state.folder / f".{state.key}.lock").unlink(missing_ok=True)
                removed += 1
    return removed
