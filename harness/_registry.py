"""One small registry type for every extensible kind (datasets, teachers, samplers, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from harness.errors import LibKDError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to entries, filled by a decorator; unknown names are answered with the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise LibKDError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
