"""Resumable training, for teachers and students alike: the training state (weights,
optimizer, schedule, the shuffling generator and the random state) written at an epoch's
end, whole or not at all, and put back so that training goes on exactly where it was."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.inputs import TRAINING_BEHAVIOUR

RESUME_EVERY_SECONDS = 60.0
"""How often training writes its resume state (at an epoch's end): an interrupted training
loses at most this much and an epoch."""


def snapshot(
    parts: dict[str, Any], generator: torch.Generator, device: torch.device
) -> dict[str, Any]:
    """What training needs to go on exactly: the parts' states and every random state."""
    state = {name: part.state_dict() for name, part in parts.items()}
    state |= {"generator": generator.get_state(), "rng": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def restore(
    state: dict[str, Any], parts: dict[str, Any], generator: torch.Generator, device: torch.device
) -> tuple[int, int]:
    """Put a `snapshot` back; returns the epoch to go on from and the steps left."""
    for name, part in parts.items():
        part.load_state_dict(state[name])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return int(state["epoch"]), int(state["left"])


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` whole or not at all (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({**state, "behaviour": TRAINING_BEHAVIOUR}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_quietly(path: Path, state: dict[str, Any]) -> None:
    """`write_state`, where a failure (a full disk: torch reports it as RuntimeError) only
    warns: a saved state is a saving, never a reason to fail the work it saves."""
    try:
        write_state(path, state)
    except (OSError, RuntimeError) as exc:
        warnings.warn(f"{path} not written: {exc}", stacklevel=3)


def load_state(path: Path) -> dict[str, Any] | None:
    """What `write_state` wrote at `path`, or None where there is nothing whole to read."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # half-written or from another torch: start over, never fail
        return None
    return state if isinstance(state, dict) else None


def read_state(path: Path, epochs: int, per_epoch: int) -> dict[str, Any] | None:
    """The resume state at `path` if it is whole and for this training (same epochs and
    batches per epoch, same training behaviour); None otherwise (training starts over)."""
    state = load_state(path)
    if state is None:
        return None
    same = (state.get("epochs"), state.get("per_epoch"), state.get("behaviour"))
    return state if same == (epochs, per_epoch, TRAINING_BEHAVIOUR) else None


@dataclass
class Resumable:
    """One training's resume file: `load` puts a stored state back into the parts, `save`
    writes the state after an epoch when `every` seconds have passed since the last write
    (default `RESUME_EVERY_SECONDS`; `force` writes regardless). A write that fails (a full
    disk) warns and training goes on: the state is a saving, never a reason to fail."""

    path: Path
    parts: dict[str, Any]
    generator: torch.Generator
    device: torch.device
    epochs: int
    per_epoch: int
    every: float | None = None
    _saved: float = field(default_factory=time.monotonic, init=False)

    def load(self) -> dict[str, Any] | None:
        """The stored state (already restored into the parts and the random states), or
        None when there is none for this training."""
        state = read_state(self.path, self.epochs, self.per_epoch)
        if state is not None:
            restore(state, self.parts, self.generator, self.device)
        return state

    def save(self, *, epoch: int, left: int, extra: dict[str, Any], force: bool = False) -> None:
        """After `epoch` epochs (counted from 1) with `left` steps to go; `extra` travels
        with the state (what the trainer needs back besides the parts)."""
        every = RESUME_EVERY_SECONDS if self.every is None else self.every
        if not force and time.monotonic() - self._saved < every:
            return
        where = {"epoch": epoch, "left": left, "epochs": self.epochs, "per_epoch": self.per_epoch}
        save_quietly(self.path, snapshot(self.parts, self.generator, self.device) | where | extra)
        self._saved = time.monotonic()
