"""What a model must accept and predict: the one shape every network is built for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageSpec:
    """What a model must accept and predict."""

    channels: int
    size: int
    num_classes: int
