"""Workers as a Slurm job array: `libkd launch STUDY --tasks N` queues the study once, writes
an sbatch script whose every array task runs `libkd worker` against the study's shared
database, submits it, and records the job with the study, so `libkd status` shows its tasks
and `libkd launch --cancel` ends them.

sbatch directly rather than submitit: the script is a file a cluster user can read, adapt
and resubmit by hand, and a worker is a command line, not a pickled Python call (submitit
would add a dependency and hide both). The database URL, which may hold a password, is
never written into the script or onto a command line: the job inherits it from the
submitting environment (`LIBKD_STORAGE`), as Slurm exports the submitter's environment.
A task's worker takes SIGTERM (time limit, `scancel`, preemption) as an interrupt: it
re-queues its running trial before it exits; a task killed outright is recovered by the
heartbeat like any dead worker.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import LibKDError

if TYPE_CHECKING:
    from harness.runner._context import RunnerSettings
    from harness.store import Store

JOBS_ATTR = "libkd_slurm_jobs"  # Optuna study attribute: the study's Slurm jobs


@dataclass(frozen=True)
class SlurmOptions:
    """What a cluster user sets for each array task."""

    tasks: int
    partition: str | None = None
    time: str | None = None  # Slurm's time format, e.g. 04:00:00
    cpus_per_task: int = 1
    gpus_per_task: int = 0
    mem: str | None = None  # e.g. 8G
    account: str | None = None
    requeue: bool = False  # let Slurm requeue a preempted task
    extra: tuple[str, ...] = ()  # further #SBATCH options, e.g. "--qos=low"
    setup: tuple[str, ...] = ()  # shell lines before the worker: module load, venv, ...


@dataclass(frozen=True)
class SlurmTask:
    """One array task as `squeue` lists it."""

    job: str
    task: str
    state: str
    node: str


@dataclass
class LaunchedJob:
    """A submitted array: its job id, script and logs (recorded with the study)."""

    job: str
    tasks: int
    script: str
    logs: str
    submitted: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())


def sbatch_script(
    study: str,
    options: SlurmOptions,
    *,
    cache_dir: Path,
    log_dir: Path,
    device: str,
    settings: RunnerSettings,
) -> str:
    """The job array's script: every task one `libkd worker` of `study`."""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=libkd-{study}",
        f"#SBATCH --array=0-{options.tasks - 1}",
        f"#SBATCH --output={log_dir}/%A_%a.out",
        f"#SBATCH --cpus-per-task={options.cpus_per_task}",
        "#SBATCH --requeue" if options.requeue else "#SBATCH --no-requeue",
    ]
    if options.gpus_per_task:
        lines.append(f"#SBATCH --gpus-per-task={options.gpus_per_task}")
    for flag, value in (
        ("partition", options.partition),
        ("time", options.time),
        ("mem", options.mem),
        ("account", options.account),
    ):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={value}")
    lines += [f"#SBATCH {extra}" for extra in options.extra]
    from harness.runner._workers import worker_command  # torch: only to write a script

    worker = worker_command(
        study, cache_dir=cache_dir, device=device, settings=settings, quiet=False
    )
    lines += [
        "",
        "# The database URL comes from the submitting environment (LIBKD_STORAGE), never",
        "# from this file. Time limit, scancel or preemption send SIGTERM: the worker",
        "# re-queues its running trial before it exits.",
        "set -eo pipefail",
        *options.setup,
        f"export LIBKD_CACHE_DIR={shlex.quote(str(cache_dir))}",
        "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}",
        'echo "libkd task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname)"',
        "exec " + shlex.join(worker),
    ]
    return "\n".join(lines) + "\n"


def _slurm(command: list[str], *, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    except FileNotFoundError:
        raise LibKDError(
            f"{command[0]}: not found; run on a Slurm login node (or install slurm-wlm)"
        ) from None
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise LibKDError(f"{command[0]} failed: {reason[-1] if reason else done.returncode}")
    return done.stdout


def submit(script: Path, *, storage_url: str) -> str:
    """Submit the script; returns the array's job id. The URL reaches the job through the
    environment sbatch exports, not through its command line."""
    env = dict(os.environ, LIBKD_STORAGE=storage_url)
    return _slurm(["sbatch", "--parsable", str(script)], env=env).strip().split(";")[0]


def job_tasks(jobs: list[str]) -> list[SlurmTask]:
    """The array tasks of `jobs` that Slurm still lists (pending, running, completing)."""
    if not jobs:
        return []
    out = _slurm(["squeue", "-h", "-r", "-j", ",".join(jobs), "-o", "%i|%T|%N"])
    tasks = []
    for line in out.splitlines():
        ident, state, node = (line.split("|") + ["", ""])[:3]
        job, _, task = ident.partition("_")
        tasks.append(SlurmTask(job, task or "-", state, node or "-"))
    return tasks


def cancel(jobs: list[str]) -> None:
    """scancel every task of `jobs`: each running worker gets SIGTERM and re-queues its
    trial (Slurm sends SIGKILL after KillWait if it has not exited)."""
    if jobs:
        _slurm(["scancel", *jobs])


def recorded_jobs(store: Store, name: str) -> list[dict[str, Any]]:
    """The Slurm jobs `libkd launch` submitted for the study (oldest first)."""
    from harness.store import study_attr

    return list(study_attr(store.engine, name, JOBS_ATTR) or [])
