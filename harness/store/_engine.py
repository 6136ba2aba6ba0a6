"""Database URLs and engines: SQLite (WAL, busy timeout) by default, PostgreSQL for many workers."""

from __future__ import annotations

import atexit
import os
import sqlite3
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from harness.errors import StorageError

DEFAULT_STORAGE = "sqlite:///results/libkd.db"
DEFAULT_CACHE_DIR = "results/cache"
SQLITE_BUSY_MS = 60_000


def resolve_storage(explicit: str | None = None, *, create: bool = True) -> str:
    """--storage beats $LIBKD_STORAGE beats the default SQLite file under results/.

    Without `create`, a SQLite file that does not exist is an error (commands that only
    read never create a database); with it, `Store` makes the file and its folder.
    """
    url = explicit or os.environ.get("LIBKD_STORAGE") or DEFAULT_STORAGE
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(
            "--storage: not a database URL (not echoed: it may hold a password); use "
            "sqlite:///path.db or postgresql+psycopg://user@host:port/db"
        ) from None
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        raise StorageError(
            f"--storage: driver {parsed.drivername!r}; name psycopg 3 explicitly: "
            "postgresql+psycopg://..."
        )
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StorageError(
            f"--storage: backend {parsed.get_backend_name()!r} is not supported; "
            "use sqlite:/// or postgresql+psycopg://"
        )
    path = sqlite_path(url)
    if not create and path is not None and not path.is_file():
        raise StorageError(
            f"--storage: no database at {path}; run a study into it first, or name the "
            "right one with --storage or $LIBKD_STORAGE"
        )
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database (None for other backends and in-memory ones)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def resolve_cache_dir(explicit: str | Path | None = None, study: str | None = None) -> Path:
    """--cache-dir beats $LIBKD_CACHE_DIR beats the study file's `cache.dir` beats the
    default folder under results/."""
    return Path(explicit or os.environ.get("LIBKD_CACHE_DIR") or study or DEFAULT_CACHE_DIR)


def redact(url: str) -> str:
    """The URL with its password hidden: safe for output, logs and dashboards."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def engine_kwargs(url: str) -> dict[str, Any]:
    """Keyword arguments for create_engine, shared with Optuna's RDBStorage."""
    if is_sqlite(url):
        return {"connect_args": {"timeout": SQLITE_BUSY_MS / 1000}}
    return {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2}


def serialize_sqlite_writes(engine: Engine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for every transaction of a SQLite engine.

    Python's sqlite3 only opens a transaction at the first write, so a read-then-write such as
    Optuna's "take this trial if it is still waiting" reads outside any transaction and two
    workers can both take the same trial. BEGIN IMMEDIATE takes the write lock first: the
    read and the write are one atomic step and the second worker sees the trial taken.
    """

    @event.listens_for(engine, "connect")
    def _connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # transactions are begun below, not by sqlite3
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the hooks would skip them
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    if path is not None:
        if not _WAL_ENGINES:
            atexit.register(_leave_rollback_journal)
        _WAL_ENGINES.append((weakref.ref(engine), path))


_WAL_ENGINES: list[tuple[weakref.ref[Engine], Path]] = []


def _leave_rollback_journal() -> None:
    """At exit, the last process out of a SQLite database turns WAL off again: a file left in
    WAL mode cannot be read from read-only storage, even by the sqlite3 shell. Switching
    needs the only connection, so while another process still has it open this does
    nothing and that process does it when it exits."""
    for ref, _ in _WAL_ENGINES:
        engine = ref()
        if engine is not None:
            engine.dispose()
    for path in dict.fromkeys(path for _, path in _WAL_ENGINES):
        try:
            connection = sqlite3.connect(path, timeout=0.2)
            try:
                connection.execute("PRAGMA journal_mode=DELETE")
            finally:
                connection.close()
        except sqlite3.Error:
            pass  # another process has it open, or it is gone


def make_engine(url: str) -> Engine:
    engine = create_engine(url, **engine_kwargs(url))
    if is_sqlite(url):
        serialize_sqlite_writes(engine)
    return engine


def first_line(exc: BaseException) -> str:
    """A database error's own message, without SQLAlchemy's statement and background link."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
