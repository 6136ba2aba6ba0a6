"""A real PostgreSQL server for tests and benchmarks: initdb + pg_ctl on a loopback port in
a temporary directory, stopped afterwards. As root, the server runs as the `postgres` user."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


class PostgresUnavailable(RuntimeError):
    """This machine cannot start a server (initdb or pg_ctl missing from PATH)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str]) -> None:
    subprocess.run(
        _as_server_user(command), check=True, capture_output=True, text=True, timeout=120
    )


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a postgresql+psycopg URL of a fresh database `libkd`; PostgresUnavailable where
    the server binaries are not on PATH."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are not on PATH")
    root = tempfile.mkdtemp(prefix="libkd-pg-", dir="/tmp")
    data, port = os.path.join(root, "data"), _free_port()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    try:
        _run(["initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=100"
        _run(["pg_ctl", "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start"])
        _run(["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "libkd"])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/libkd"
    finally:
        subprocess.run(
            _as_server_user(["pg_ctl", "-D", data, "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str, prefix: str = "t") -> str:
    """The URL of a new, empty database on the server."""
    import sqlalchemy

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
