"""SQLAlchemy models, engines and the one session helper."""

from harness.store._engine import (
    DEFAULT_CACHE_DIR,
    DEFAULT_STORAGE,
    engine_kwargs,
    is_sqlite,
    make_engine,
    redact,
    resolve_cache_dir,
    resolve_storage,
    serialize_sqlite_writes,
)
from harness.store._models import ArtifactRow, Base, EpochRow, RunArtifactRow, RunRow
from harness.store._store import Store, utcnow

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_STORAGE",
    "ArtifactRow",
    "Base",
    "EpochRow",
    "RunArtifactRow",
    "RunRow",
    "Store",
    "engine_kwargs",
    "is_sqlite",
    "make_engine",
    "redact",
    "resolve_cache_dir",
    "resolve_storage",
    "serialize_sqlite_writes",
    "utcnow",
]
