"""The tiny study (a digits subset that trains in about a second), and a GET against a WSGI
app such as optuna-dashboard's: shared by the tests and scripts/optuna_bridges.py."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

TINY: dict[str, Any] = {
    "name": "tiny",
    "description": "tiny test study",
    "dataset": {"name": "digits", "val_fraction": 0.2, "train_per_class": 8},
    "augment": {"pad_crop": 1, "hflip": True, "aug_seed": 0},
    "teachers": {
        "conv": {"arch": "resnet", "width": 8, "train": {"epochs": 1, "batch_size": 32}},
        "inv": {"arch": "rednet", "width": 16, "train": {"epochs": 1, "batch_size": 32}},
    },
    "student": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2},
    "train": {"epochs": 2, "batch_size": 32, "lr": 1.0e-3, "warmup_epochs": 1},
    "distill": {"teachers": ["conv", "inv"], "temperature": 2.0},
    "cache": {"enabled": True, "views": 2},
    "seeds": [0, 1],
    "grid": {"distill.teachers": [[], ["conv"], ["conv", "inv"]]},
}


def wsgi_get(app: Any, path: str) -> tuple[str, Any]:
    """(status line, decoded JSON body) of GET `path` on the WSGI `app`."""
    status: list[str] = []

    def start(code: str, headers: Any, exc_info: Any = None) -> None:
        status.append(code)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
    }
    body = b"".join(app(environ, start))
    return status[0], json.loads(body)
