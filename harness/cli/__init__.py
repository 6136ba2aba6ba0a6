"""The `libkd` command: typer commands over the library, and all terminal rendering.

Importing this package loads typer only; each command imports what it needs when it runs,
so `libkd --help` starts without torch, timm or optuna.
"""

from harness.cli._app import app, main

__all__ = ["app", "main"]
