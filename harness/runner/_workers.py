"""Workers: `libkd worker` takes waiting trials from a shared database; `libkd run --workers N`
starts N of them locally (one per visible GPU on CUDA machines)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from harness.errors import LibKDError
from harness.runner._optuna import enqueue_grid, open_study, optuna_storage, requeue_dead_local
from harness.runner._run import (
    RunnerSettings,
    RunSummary,
    complete_count,
    load_optuna_study,
    summarize,
    work,
)
from harness.store import Store
from harness.study import Study, load_study, study_from_dict


def study_from_database(name: str, storage_url: str) -> Study:
    """The study file a `libkd run` stored with the Optuna study."""
    opened = load_optuna_study(name, storage_url)
    data = opened.user_attrs.get("libkd_study_file")
    if data is None:
        raise LibKDError(f"study {name!r} was not created by libkd; start it with `libkd run`")
    return study_from_dict(data, source=Path(opened.user_attrs.get("libkd_source", name)))


def run_worker(
    study: str,
    *,
    storage_url: str,
    cache_dir: Path,
    device: str = "auto",
    max_trials: int | None = None,
    timeout: float | None = None,
    settings: RunnerSettings | None = None,
) -> RunSummary:
    """Work off a study given by file (queued if needed) or by name (already queued)."""
    if study.endswith((".yaml", ".yml")) or Path(study).is_file():
        loaded = load_study(study)
    else:
        loaded = study_from_database(study, storage_url)
    return work(
        loaded,
        storage_url=storage_url,
        cache_dir=cache_dir,
        device=device,
        max_trials=max_trials,
        timeout=timeout,
        enqueue=False,
        settings=settings,
    )


def prepare(study: Study, storage_url: str, *, retry: bool = False) -> None:
    """Queue a grid study's trials once, before any worker starts."""
    from harness.runner._optuna import retry_failed

    storage = optuna_storage(storage_url)
    opened = open_study(study, storage)
    requeue_dead_local(opened, storage, Store(storage_url))
    if retry:
        retry_failed(opened)
    if study.file.search is None:
        enqueue_grid(opened, study)


def worker_command(
    study: str, *, storage_url: str, cache_dir: Path, device: str, settings: RunnerSettings
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness.cli",
        "worker",
        study,
        "--storage",
        storage_url,
        "--cache-dir",
        str(cache_dir),
        "--device",
        device,
        "--heartbeat",
        str(settings.heartbeat),
        "--grace",
        str(settings.grace),
        "--max-retry",
        str(settings.max_retry),
    ]


def run_local_workers(
    study: Study,
    *,
    storage_url: str,
    cache_dir: Path,
    device: str,
    workers: int,
    max_trials: int | None = None,
    timeout: float | None = None,
    retry: bool = False,
    settings: RunnerSettings | None = None,
) -> RunSummary:
    """Start `workers` processes on this machine and wait for them all.

    `max_trials` bounds the trials of all workers together; `timeout` (seconds from now)
    stops every worker from starting another trial.
    """
    settings = settings or RunnerSettings()
    prepare(study, storage_url, retry=retry)
    before = complete_count(load_optuna_study(study.name, storage_url))
    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    gpus = torch.cuda.device_count() if cuda else 0
    threads = max(1, (os.cpu_count() or 1) // workers)
    deadline = None if timeout is None else time.monotonic() + timeout
    processes = []
    for i in range(workers):
        share = None if max_trials is None else max_trials // workers + (i < max_trials % workers)
        if share == 0:
            continue
        env = dict(os.environ)
        if cuda:
            env["CUDA_VISIBLE_DEVICES"] = str(i % gpus)
        else:
            env["OMP_NUM_THREADS"] = str(threads)
        command = worker_command(
            study.name,
            storage_url=storage_url,
            cache_dir=cache_dir,
            device="cuda" if cuda else device,
            settings=settings,
        )
        if share is not None:
            command += ["--max-trials", str(share)]
        if deadline is not None:
            command += ["--timeout", str(max(0.0, deadline - time.monotonic()))]
        processes.append(subprocess.Popen(command, env=env))
    codes = [p.wait() for p in processes]
    if any(codes):
        raise LibKDError(f"worker exit codes {codes}; see their output above")
    opened = load_optuna_study(study.name, storage_url)
    return summarize(opened, ran=complete_count(opened) - before, enqueued=0, requeued=0)
