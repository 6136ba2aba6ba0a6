"""Opening a database for a command that only reads: nothing is written to it, whatever its
schema version, and a file on read-only storage opens as well as any."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from harness.errors import StorageError
from harness.store._engine import SQLITE_BUSY_MS, engine_kwargs, make_engine, redact, sqlite_path
from harness.store._migrations import check_version, ensure_schema, stored_version
from harness.store._models import SCHEMA_VERSION


@dataclass(frozen=True)
class Opened:
    """An engine on a database and how Optuna's storage reaches the same data (its URL and
    engine options); `writes`: whether the engine may write."""

    engine: Engine
    optuna_url: str
    optuna_options: dict[str, Any] = field(default_factory=dict)
    writes: bool = True


def open_for_reading(url: str) -> Opened:
    """The database at `url`, for reading only.

    A SQLite file is opened read-only (`mode=ro`; `immutable` where its folder or the file
    cannot be written, so a WAL database on read-only storage opens too). A file whose libkd
    tables are older than this libkd's is copied into memory and the copy migrated: the file
    stays as it was, readable by the libkd that wrote it. PostgreSQL cannot be copied cheaply:
    an older schema there is an error naming `libkd db upgrade`.
    """
    path = sqlite_path(url)
    if path is None:
        engine = make_engine(url)
        version = check_version(engine, create=False)
        assert version is not None  # check_version refuses a database without libkd tables
        if version < SCHEMA_VERSION:
            raise StorageError(
                f"{redact(url)}: libkd's tables are version {version}, older than this "
                f"libkd's {SCHEMA_VERSION}; reading commands never change a database: run "
                "`libkd db upgrade` with the same --storage first"
            )
        return Opened(engine, url, engine_kwargs(url), writes=False)
    if not path.is_file():
        raise StorageError(
            f"no database at {path}: it holds no libkd tables; run a study into it first"
        )
    uri = _readonly_uri(path)
    options: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_MS / 1000}}
    engine = create_engine(f"sqlite:///{uri}&uri=true", **options)
    version = check_version(engine, create=False)
    if version == SCHEMA_VERSION:
        return Opened(engine, f"sqlite:///{uri}&uri=true", options, writes=False)
    engine.dispose()
    memory = sqlite3.connect(":memory:", check_same_thread=False)
    source = sqlite3.connect(uri, uri=True)
    try:
        source.backup(memory)
    finally:
        source.close()
    options = {"creator": lambda: memory, "poolclass": StaticPool}
    engine = create_engine("sqlite://", **options)
    ensure_schema(engine, create=False)
    assert stored_version(engine) == SCHEMA_VERSION
    return Opened(engine, "sqlite://", options, writes=False)


def _readonly_uri(path: Path) -> str:
    """SQLite's URI for reading `path` without writing anything."""
    writable = os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK)
    resolved = path.resolve().as_posix()
    return f"file:{resolved}?mode=ro" + ("" if writable else "&immutable=1")
