"""Test helpers: the tiny study (a digits subset that trains in about a second), writing
study files, driving `libkd run` in a subprocess, and finished runs written straight into a
store."""

from __future__ import annotations

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.metrics import VAL_TOP1
from harness.status import CacheStatus, RunStatus
from harness.store import FinishedRun, RunIdentity, Store
from harness.testing.tiny import TINY


def tiny_dict(**overrides: Any) -> dict[str, Any]:
    """A deep copy of the tiny study with top-level keys replaced."""
    data = copy.deepcopy(TINY)
    data.update(copy.deepcopy(overrides))
    return data


def record_run(
    store: Store,
    identity: RunIdentity,
    *,
    config: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    epochs: Sequence[dict[str, float]] = (),
    train_seconds: float = 1.0,
    status: RunStatus = RunStatus.COMPLETE,
    environment: dict[str, Any] | None = None,
    inputs: str | None = None,
) -> int:
    """A finished run written as the runner writes one (start, sources, epochs, finish),
    without training: top-1 is `metrics`' validation top-1, else 0.5. Returns its id."""
    metrics = metrics or {}
    run_id = store.start_run(
        identity,
        config=config or {},
        device="cpu",
        worker="host:1",
        environment=environment or {},
        **({} if inputs is None else {"inputs": inputs}),
    )
    store.record_sources(
        run_id, teacher_seconds=0.0, cache_seconds=0.0, cache_status=CacheStatus.HIT
    )
    for epoch, values in enumerate(epochs):
        store.add_epoch(run_id, epoch, values)
    result = FinishedRun(
        train_seconds=train_seconds,
        eval_seconds=0.0,
        student_params=1,
        top1=metrics.get(VAL_TOP1, 0.5),
        metrics=metrics,
    )
    store.finish_run(run_id, status=status, result=result)
    return run_id


def write_study(folder: Path, data: dict[str, Any], name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def start_cli_run(
    path: Path, storage_url: str, cache_dir: Path, *options: str, threads: int = 1
) -> subprocess.Popen:
    """`libkd run` of a study file in a subprocess, output captured as text."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(path),
            "--storage",
            storage_url,
            "--cache-dir",
            str(cache_dir),
            "--no-dashboard",
            *options,
        ],
        env=dict(os.environ, OMP_NUM_THREADS=str(threads)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A suite started in the background by a shell (`pytest &`) ignores SIGINT, and a
        # child inherits that: Ctrl-C tests would send a signal nobody hears.
        preexec_fn=_hear_sigint,
    )


def _hear_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fail_conv_trials(monkeypatch: Any) -> Any:
    """Make every trial distilled from `conv` alone fail with RuntimeError('boom'); returns
    the real training function, to put back."""
    from harness.runner import _trial

    real = _trial.train_student

    def explode(**kwargs: Any) -> Any:
        if kwargs["config"].distill.teachers == ("conv",):
            raise RuntimeError("boom")
        return real(**kwargs)

    monkeypatch.setattr(_trial, "train_student", explode)
    return real


def wait_mid_trial(storage_url: str, *, complete: int, timeout: float = 240) -> None:
    """Block until `complete` runs are done and another is past its first epoch."""
    db = storage_url.removeprefix("sqlite:///")
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.1)  # tiny trials last about a second: look often, or miss the last one
        try:
            rows = sqlite3.connect(db).execute("select status, epochs_done from libkd_runs")
            rows = rows.fetchall()
        except sqlite3.OperationalError:
            continue  # the database or its tables are not there yet
        done = sum(status == "complete" for status, _ in rows)
        if done >= complete and any(s == "running" and e >= 1 for s, e in rows):
            return
    raise AssertionError(f"no trial got past its first epoch after {complete} complete runs")


def fake_trainer(monkeypatch: Any, *, interrupt_at: set[tuple[str, int]] | None = None) -> list:
    """Replace training by a run stored in milliseconds, so the runner's queueing, claims and
    interrupts are tested without a model: the run's top-1 is drawn from its seed and label.
    A pair in `interrupt_at` raises KeyboardInterrupt (Ctrl-C) the first time it runs.
    Returns the list of pairs trained, in order."""
    import random

    from harness.metrics import TEST_TOP1
    from harness.runner import _strategies
    from harness.runner._trial import RunOutcome, run_identity

    trained: list[tuple[str, int]] = []
    pending = set(interrupt_at or ())

    def run_trial(spec, ctx, *, trial_number=None, trial=None, prune_metric=None):
        pair = (spec.label, spec.seed)
        if pair in pending:
            pending.discard(pair)
            raise KeyboardInterrupt
        value = random.Random(f"{spec.label}/{spec.seed}").uniform(0.4, 0.6)
        metrics = {VAL_TOP1: value, TEST_TOP1: value}
        identity = run_identity(spec, study=ctx.study, trial_number=trial_number)
        run_id = record_run(ctx.store, identity, metrics=metrics)
        trained.append(pair)
        return RunOutcome(run_id=run_id, metrics=metrics)

    monkeypatch.setattr(_strategies, "run_trial", run_trial)
    return trained


def write_image_folder(
    root: Path, *, train: int, val: int, shape: tuple[int, int] = (24, 30)
) -> None:
    """An imagefolder tree of random RGB PNGs: `train` and `val` images per class under
    root/{train,val}/{cat,dog}/."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for label in ("cat", "dog"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
