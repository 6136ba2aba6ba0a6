"""What one worker process holds while it runs trials: storage, cache dir, device, data."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

import harness
from harness._atomic import digest_file
from harness.config import DatasetConfig, TrialConfig
from harness.data import Dataset, load_dataset
from harness.distill import EpochReport
from harness.errors import LibKDError
from harness.inputs import inputs_key, legacy_inputs_key, reads_user_files
from harness.status import RunStatus
from harness.store import GRACE_SECONDS, HEARTBEAT_SECONDS, Store
from harness.study import TrialSpec


@dataclass(frozen=True)
class RunnerSettings:
    """How workers watch each other: heartbeats, the grace before a silent trial is failed,
    and how often such a trial is retried."""

    heartbeat: int = HEARTBEAT_SECONDS
    grace: int = GRACE_SECONDS
    max_retry: int = 1


@dataclass(frozen=True)
class StudyProgress:
    """Where the whole study stands, read from the database (every worker's trials): trials
    finished and in all, and the time left at the mean duration of finished trials, spread
    over the trials running now (None before any trial has finished)."""

    finished: int
    total: int
    eta_seconds: float | None


class Progress(Protocol):
    """What a runner tells its user; the CLI draws it with rich (or one line per event when
    not on a terminal), tests ignore it."""

    def trial_started(
        self, spec: TrialSpec, *, number: int, total: int, study: StudyProgress | None = None
    ) -> None: ...

    def phase(self, spec: TrialSpec, name: str, done: int, total: int) -> None:
        """A step before the student trains: a teacher's epoch, a cache's view."""
        ...

    def epoch_done(self, spec: TrialSpec, report: EpochReport, *, epochs: int) -> None: ...

    def trial_finished(
        self, spec: TrialSpec, *, status: RunStatus, metrics: dict[str, Any]
    ) -> None: ...

    def trial_copied(self, spec: TrialSpec, *, source: int, metrics: dict[str, Any]) -> None:
        """Another study's run `source` of the same configuration and seed was copied in."""
        ...

    def other_worker(self, line: str) -> None:
        """A trial another local worker started or finished (`libkd run --workers N`: the
        workers print nothing themselves)."""
        ...


class SilentProgress:
    def trial_started(
        self, spec: TrialSpec, *, number: int, total: int, study: StudyProgress | None = None
    ) -> None:
        pass

    def phase(self, spec: TrialSpec, name: str, done: int, total: int) -> None:
        pass

    def epoch_done(self, spec: TrialSpec, report: EpochReport, *, epochs: int) -> None:
        pass

    def trial_finished(
        self, spec: TrialSpec, *, status: RunStatus, metrics: dict[str, Any]
    ) -> None:
        pass

    def trial_copied(self, spec: TrialSpec, *, source: int, metrics: dict[str, Any]) -> None:
        pass

    def other_worker(self, line: str) -> None:
        pass


def resolve_device(name: str) -> torch.device:
    """auto, cpu, cuda or cuda:N, checked against this machine: a LibKDError otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LibKDError(
            f"--device: {name!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type not in ("cpu", "cuda"):
        raise LibKDError(f"--device: {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LibKDError(f"--device: {name!r} asked for, but no CUDA device is visible; use cpu")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise LibKDError(
            f"--device: {name!r}, but this machine has {torch.cuda.device_count()} CUDA "
            "device(s); use cuda:0 to cuda:N-1"
        )
    return device


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def provenance() -> dict[str, Any]:
    """Where the code that runs comes from, read from the installed package itself: libkd's
    version, and its commit and dirty flag when it runs from a checkout of libkd; apart from
    it, the commit of the working directory's repository (the user's study files), if any."""
    package_root = Path(harness.__file__).resolve().parent.parent
    found: dict[str, Any] = {"libkd": harness.__version__, "commit": None, "commit_dirty": None}
    top = _git(package_root, "rev-parse", "--show-toplevel")
    if top is not None and Path(top).resolve() == package_root:  # a libkd checkout
        found["commit"] = _git(package_root, "rev-parse", "HEAD") or None
        changes = _git(package_root, "status", "--porcelain", "--untracked-files=no")
        found["commit_dirty"] = None if changes is None else bool(changes)
    workdir_top = _git(Path.cwd(), "rev-parse", "--show-toplevel")
    if workdir_top is not None and Path(workdir_top).resolve() != package_root:
        found["workdir_commit"] = _git(Path.cwd(), "rev-parse", "HEAD") or None
    return found


def environment(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        **provenance(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": name or platform.machine(),
        "host": socket.gethostname(),
    }


@dataclass
class RunContext:
    store: Store
    cache_dir: Path
    device: torch.device
    study: str
    progress: Progress = field(default_factory=SilentProgress)
    worker: str = field(default_factory=worker_id)
    _data: dict[DatasetConfig, Dataset] = field(default_factory=dict)

    def dataset(self, config: DatasetConfig) -> Dataset:
        """Each dataset is loaded once per process and kept on the training device."""
        if config not in self._data:
            self._data[config] = load_dataset(config).to(self.device)
        return self._data[config]

    def inputs_keys(self, config: TrialConfig) -> tuple[str, ...]:
        """The inputs keys (`harness.inputs`) a run of `config` trained here has: the full
        key, and the legacy key of runs stored before keys when it reads no user file. The
        first is what a run trained now stores; a stored run with either may be copied."""
        data = self.dataset(config.dataset)
        checkpoints = {
            name: _file_digest(Path(str(config.teachers[name].checkpoint)))
            for name in config.distill.teachers
            if config.teachers[name].checkpoint
        }
        kind, precision = self.device.type, config.train.precision
        full = inputs_key(
            device_kind=kind, precision=precision, data=data.fingerprint, checkpoints=checkpoints
        )
        if reads_user_files(config.model_dump(mode="json")):
            return (full,)
        return full, legacy_inputs_key(device_kind=kind, precision=precision)


def _file_digest(path: Path) -> str:
    """sha256 of a file, read once per process while its size and modification time hold."""
    stat = path.stat()
    return _digest_at(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _digest_at(path: Path, size: int, mtime_ns: int) -> str:
    return digest_file(path)
