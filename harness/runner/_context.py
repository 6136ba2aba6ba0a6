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
from harness.config import DatasetConfig
from harness.data import Dataset, load_dataset
from harness.distill import EpochReport
from harness.errors import LibKDError
from harness.status import RunStatus
from harness.store import Store
from harness.study import TrialSpec


class Progress(Protocol):
    """What a runner tells its user; the CLI draws it with rich, tests ignore it."""

    def trial_started(self, spec: TrialSpec, *, number: int, total: int) -> None: ...

    def epoch_done(self, spec: TrialSpec, report: EpochReport, *, epochs: int) -> None: ...

    def trial_finished(
        self, spec: TrialSpec, *, status: RunStatus, metrics: dict[str, Any]
    ) -> None: ...


class SilentProgress:
    def trial_started(self, spec: TrialSpec, *, number: int, total: int) -> None:
        pass

    def epoch_done(self, spec: TrialSpec, report: EpochReport, *, epochs: int) -> None:
        pass

    def trial_finished(
        self, spec: TrialSpec, *, status: RunStatus, metrics: dict[str, Any]
    ) -> None:
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
def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "libkd": harness.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": name or platform.machine(),
        "host": socket.gethostname(),
        "commit": _commit(),
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
