"""The terminal every command prints to (rich). Drawing lives in `_progress` (a run's
progress) and `_tables` (every table); the library returns data, only these draw it."""

from __future__ import annotations

import datetime as dt
import sys

from rich.console import Console

# Piped output (logs, CI) is not wrapped at 80 columns: tables stay readable.
console = Console(width=None if sys.stdout.isatty() else 160)


def duration(seconds: float | None) -> str:
    """Seconds as h:mm:ss, '-' when unknown (an ETA, a study's elapsed time)."""
    if seconds is None:
        return "-"
    return str(dt.timedelta(seconds=round(seconds)))
