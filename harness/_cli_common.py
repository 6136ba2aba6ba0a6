"""Pieces every `libkd` command shares: option types and the user-error wrapper."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.errors import LibKDError

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Database URL (default $LIBKD_STORAGE or results/libkd.db)."),
]
HeartbeatOpt = Annotated[int, typer.Option(help="Seconds between a running trial's heartbeats.")]
GraceOpt = Annotated[int, typer.Option(help="Seconds without heartbeat before a trial is stale.")]
MaxRetryOpt = Annotated[int, typer.Option(help="Retries of a trial whose worker died.")]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Teachers and logit caches (default $LIBKD_CACHE_DIR)."),
]
StudyArg = Annotated[str, typer.Argument(help="A study file, or a study's name in the database.")]


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """User mistakes become one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LibKDError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper
