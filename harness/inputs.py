"""What a run read besides its configuration: the key two runs must share for one to be
copied as the other. Same configuration hash and seed is not enough: a dataset folder or a
teacher checkpoint can change on disk under the same path, a GPU run is not a CPU run
(`auto` precision is bf16 on CUDA, fp32 on the CPU), and a change in libkd's training code
can change what the same inputs give.

A leaf: the store's migration keys old runs with it, and the runner keys new ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness._atomic import digest_json

TRAINING_BEHAVIOUR = 1
"""The version of what libkd's training code does with its inputs. Bump it with any change
that makes the same configuration, seed, data and device give different numbers: runs
trained before are then never copied into a study again (they stay in their own)."""

LEGACY_PREFIX = "legacy:"


def resolved_precision(precision: str, device_kind: str) -> str:
    """'auto' is bf16 on CUDA and fp32 elsewhere; 'fp32' and 'bf16' are taken as given."""
    if precision == "auto":
        return "bf16" if device_kind == "cuda" else "fp32"
    return precision


def inputs_key(
    *, device_kind: str, precision: str, data: str, checkpoints: Mapping[str, str]
) -> str:
    """The key of a run trained now: libkd's training behaviour, the device kind and the
    resolved precision, the fingerprint of the data as loaded (every split's pixels and
    labels), and the sha256 of each teacher checkpoint it loads."""
    return digest_json(
        {
            "behaviour": TRAINING_BEHAVIOUR,
            "device": device_kind,
            "precision": resolved_precision(precision, device_kind),
            "data": data,
            "checkpoints": dict(checkpoints),
        }
    )


def legacy_inputs_key(*, device_kind: str, precision: str) -> str:
    """The key of a run stored before libkd kept one, from what its row holds: given only to
    runs whose configuration reads no file a user can change (no `dataset.path`, no teacher
    checkpoint), trained by the behaviour that was version 1. A run trained now matches it
    when it reads no such file either."""
    body = digest_json(
        {
            "behaviour": 1,
            "device": device_kind,
            "precision": resolved_precision(precision, device_kind),
        }
    )
    return LEGACY_PREFIX + body[: 64 - len(LEGACY_PREFIX)]


def reads_user_files(config: Mapping[str, Any]) -> bool:
    """Whether a stored configuration (as JSON) reads a dataset folder or a teacher
    checkpoint (of a teacher it distils from)."""
    teachers = config.get("teachers") or {}
    used = (config.get("distill") or {}).get("teachers") or ()
    if any((teachers.get(name) or {}).get("checkpoint") for name in used):
        return True
    return bool((config.get("dataset") or {}).get("path"))
