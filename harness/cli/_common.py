"""Pieces every `libkd` command shares: option types, the user-error wrapper, and how a
study argument (a file or a name in the database) becomes a name."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from harness.errors import LibKDError
from harness.store import GRACE_SECONDS, HEARTBEAT_SECONDS, first_line

if TYPE_CHECKING:
    from harness.store import Store

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Database URL (default $LIBKD_STORAGE or results/libkd.db)."),
]
HeartbeatOpt = Annotated[
    int, typer.Option(min=1, help="Seconds between a running trial's heartbeats.")
]
GraceOpt = Annotated[
    int, typer.Option(min=1, help="Seconds without heartbeat before a trial is stale.")
]
MaxRetryOpt = Annotated[int, typer.Option(min=0, help="Retries of a trial whose worker died.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Override a study-file value (YAML), e.g. train.epochs=3 or "
        "grid.distill.temperature=[1,4]; repeatable. Overrides that make new "
        "configurations run as study <name>-<hash> unless they set name.",
    ),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Teachers and logit caches (default $LIBKD_CACHE_DIR)."),
]
StudyArg = Annotated[str, typer.Argument(help="A study file, or a study's name in the database.")]


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """User mistakes and storage faults become one line on stderr and exit code 2, never a
    traceback. A database that fails mid-command (a full disk, a lost connection) says so."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LibKDError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except Exception as exc:
            if not _storage_fault(exc):
                raise
            cause = exc.__cause__ or exc.__context__ or exc
            typer.echo(f"error: the results database failed: {first_line(cause)}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _storage_fault(exc: Exception) -> bool:
    """A database error, raised by SQLAlchemy or wrapped by Optuna's storage."""
    if isinstance(exc, SQLAlchemyError):
        return True
    optuna = sys.modules.get("optuna")  # if Optuna never loaded, it raised nothing
    return optuna is not None and isinstance(exc, optuna.exceptions.StorageInternalError)


def sigterm_as_interrupt() -> None:
    """SIGTERM stops a run or a worker as Ctrl-C does (the running trial is re-queued)."""
    from harness.runner._shield import interrupt_on_sigterm

    interrupt_on_sigterm()


def interrupted_exit(exc: KeyboardInterrupt) -> typer.Exit:
    """The message and exit status (128 + the signal) of an interrupted run or worker."""
    typer.echo(
        "interrupted: the running trial was re-queued; run the same command again to resume",
        err=True,
    )
    from harness.runner._shield import Terminated

    return typer.Exit(128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT))


def study_name(arg: str) -> str:
    """The study a command argument names: a study file's `name`, or the argument itself."""
    if arg.endswith((".yaml", ".yml")) or Path(arg).is_file():
        from harness.study import load_study

        return load_study(arg).name
    return arg


def open_store(storage: str | None, *, create: bool = True, read_only: bool = False) -> Store:
    """The store of `--storage` (or $LIBKD_STORAGE, or the default). Commands that work on a
    study already queued open it with `create=False` (a database that does not exist is an
    error, never made), commands that only read with `read_only=True` (nothing written)."""
    from harness.store import Store, resolve_storage

    create = create and not read_only
    return Store(resolve_storage(storage, create=create), create=create, read_only=read_only)


__all__ = [
    "GRACE_SECONDS",
    "HEARTBEAT_SECONDS",
    "CacheDirOpt",
    "GraceOpt",
    "HeartbeatOpt",
    "MaxRetryOpt",
    "StorageOpt",
    "StudyArg",
    "interrupted_exit",
    "open_store",
    "sigterm_as_interrupt",
    "study_name",
    "user_errors",
]
