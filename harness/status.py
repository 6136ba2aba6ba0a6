"""Run and cache statuses: stored in the database as their values (a leaf module)."""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """Where one (configuration, seed) run stands."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    PRUNED = "pruned"

    def __str__(self) -> str:
        return self.value


class CacheStatus(str, Enum):
    """How a run got its teachers' logits."""

    OFF = "off"  # online teachers, or no teacher
    HIT = "hit"  # every cache it needed was there
    BUILT = "built"  # it built at least one

    def __str__(self) -> str:
        return self.value
