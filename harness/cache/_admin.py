"""`libkd cache verify | prune` over the cache directory and the run records."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file

from harness._atomic import digest_file, key_lock, remove_stale_staging, try_sole_use
from harness.cache._logits import (
    DAMAGED,
    LOGITS_DIR,
    CacheSpec,
    LogitCache,
    VerifyReport,
    list_caches,
    verify,
)
from harness.cache._teacher_store import TEACHERS_DIR, WEIGHTS, stored_teachers
from harness.config import AugmentConfig, DatasetConfig, TeacherConfig
from harness.data import load_dataset
from harness.distill import image_spec
from harness.errors import CacheError, LibKDError
from harness.models import build_teacher
from harness.store import Store


def _teacher_for(root: Path, digest: str) -> tuple[TeacherConfig, Path]:
    for stored in stored_teachers(root):
        if stored.digest == digest:
            return stored.config, stored.path
    raise CacheError(f"teacher {digest[:16]} of this cache is not in {root / TEACHERS_DIR}")


def _verify_entry(root: Path, entry: LogitCache, samples: int) -> VerifyReport:
    """Verify one entry against its teacher; a damaged entry or teacher is named as such."""
    m = entry.meta
    if DAMAGED in m:
        return VerifyReport.unchecked(entry.key, m[DAMAGED])
    try:
        config, folder = _teacher_for(root, m["teacher_digest"])
    except CacheError as exc:
        return VerifyReport.unchecked(entry.key, str(exc))
    weights = folder / WEIGHTS
    if not weights.is_file() or digest_file(weights) != m["teacher_digest"]:
        # Its weights changed on disk: the cache cannot be judged by them.
        return VerifyReport.unchecked(
            entry.key, f"its teacher's weights {weights} are damaged (sha256 mismatch)"
        )
    data = load_dataset(DatasetConfig.model_validate(m["dataset_config"]))
    teacher = build_teacher(config, image_spec(data))
    teacher.load_state_dict(load_file(weights))
    spec = CacheSpec(
        m["teacher_digest"],
        data.fingerprint,
        AugmentConfig.model_validate(m["augment"]),
        m["views"],
        m["dtype"],
        m["top_k"],
        m.get("precision", "fp32"),
    )
    return verify(entry, teacher=teacher.eval(), data=data, spec=spec, samples=samples)


def verify_caches(
    root: Path, *, key_prefix: str | None = None, samples: int = 256
) -> list[VerifyReport]:
    entries = [e for e in list_caches(root) if key_prefix is None or e.key.startswith(key_prefix)]
    if key_prefix is not None and not entries:
        raise LibKDError(f"no cache entry in {root} has a key starting with {key_prefix!r}")
    return [_verify_entry(root, entry, samples) for entry in entries]


def cutoff_time(older_than: str | None) -> float | None:
    """`--older-than` as a POSIX time (None without one)."""
    if older_than is None:
        return None
    try:
        return dt.datetime.fromisoformat(older_than).timestamp()
    except ValueError:
        raise LibKDError(f"--older-than: {older_than!r} is not a date; use YYYY-MM-DD") from None


def prune_candidates(
    root: Path, store: Store, *, older_than: str | None = None
) -> list[LogitCache]:
    """Entries no run in this database uses, and (with a date) entries created before it."""
    cutoff = cutoff_time(older_than)
    if not store.has_runs():
        # Every entry would look unused: most likely --storage names the wrong database.
        raise LibKDError(
            "this database holds no libkd study, so every cache entry would look unused; "
            "name the database whose runs use this cache with --storage or $LIBKD_STORAGE"
        )
    uses = store.artifact_use_counts()
    return [
        e
        for e in list_caches(root)
        if uses.get(e.key, 0) == 0 or (cutoff is not None and e.meta.get("created", 0.0) < cutoff)
    ]


def remove_abandoned_staging(root: Path) -> int:
    """Staging folders of builds that died (a kill, a full disk) and that no builder holds:
    removed from the logit caches and the teachers; returns how many."""
    return sum(remove_stale_staging(root / folder) for folder in (LOGITS_DIR, "teachers"))


@dataclass(frozen=True)
class Pruned:
    deleted: int
    in_use: int  # held by a running trial: kept


def prune_entries(entries: list[LogitCache]) -> Pruned:
    """Delete the entries' folders, skipping any a running trial holds (`use_lock`: from
    finding or building an entry to having loaded it, the window before the database
    records that the run uses it). The database is not touched: the runs that used an
    entry keep their links and one-off costs, and a later run that needs it rebuilds it."""
    deleted = in_use = 0
    for entry in entries:
        with try_sole_use(entry.path.parent, entry.key) as free:
            if not free:
                in_use += 1
                continue
            with key_lock(entry.path.parent, entry.key):
                shutil.rmtree(entry.path, ignore_errors=True)
            deleted += 1
    return Pruned(deleted, in_use)


__all__ = [
    "LOGITS_DIR",
    "prune_candidates",
    "prune_entries",
    "remove_abandoned_staging",
    "verify_caches",
]
