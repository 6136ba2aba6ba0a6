"""`libkd launch`: a study's workers as a Slurm job array, against a real one-node Slurm
(scripts/slurm_local.sh) and a real PostgreSQL. A task cancelled mid-trial (SIGTERM) and a
worker killed outright (SIGKILL) lose nothing and run nothing twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from harness.analysis import load_runs
from harness.cli import app
from harness.runner import RunnerSettings
from harness.runner._slurm import SlurmOptions, sbatch_script
from harness.store import RETRIED_FROM, WORKER_ATTR, Store, load_optuna_study, optuna_storage
from harness.testing.postgres import fresh_database
from tests.helpers import tiny_dict, write_study

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-pw"


def test_the_sbatch_script_sets_what_a_cluster_user_sets_and_holds_no_url(tmp_path):
    options = SlurmOptions(
        tasks=4,
        partition="gpu",
        time="04:00:00",
        cpus_per_task=8,
        gpus_per_task=1,
        mem="16G",
        account="lab",
        requeue=True,
        extra=("--qos=low",),
        setup=("module load cuda", "source ~/venv/bin/activate"),
    )
    script = sbatch_script(
        "study",
        options,
        cache_dir=tmp_path / "cache",
        log_dir=tmp_path / "logs",
        device="cuda",
        settings=RunnerSettings(heartbeat=5, grace=20, max_retry=2),
    )
    lines = script.splitlines()
    for line in (
        "#SBATCH --array=0-3",
        f"#SBATCH --output={tmp_path / 'logs'}/%A_%a.out",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=04:00:00",
        "#SBATCH --mem=16G",
        "#SBATCH --account=lab",
        "#SBATCH --requeue",
        "#SBATCH --qos=low",
        "module load cuda",
        f"export LIBKD_CACHE_DIR={tmp_path / 'cache'}",
    ):
        assert line in lines, line
    assert lines.index("module load cuda") < len(lines) - 1
    assert lines[-1].startswith("exec ") and " worker study " in lines[-1]
    assert "--grace 20" in lines[-1] and "--device cuda" in lines[-1]
    assert "postgresql" not in script and "LIBKD_STORAGE=" not in script


def test_launch_refuses_sqlite_in_one_line_and_writes_nothing(tmp_path):
    path = write_study(tmp_path, tiny_dict())
    db = tmp_path / "libkd.db"
    result = CliRunner().invoke(
        app, ["launch", str(path), "--tasks", "2", "--storage", f"sqlite:///{db}"]
    )
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: --storage: Slurm tasks run on several machines")
    assert not db.exists()


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory):
    """A one-node Slurm for the module; skipped where it cannot start, failed where CI
    requires it (LIBKD_REQUIRE_SLURM)."""
    required = os.environ.get("LIBKD_REQUIRE_SLURM")
    reason = None
    if os.geteuid() != 0:
        reason = "a one-node Slurm needs root (slurmd)"
    elif shutil.which("slurmctld") is None or shutil.which("munged") is None:
        reason = "slurm-wlm and munge are not installed"
    folder = tmp_path_factory.mktemp("slurm")
    if reason is None:
        done = subprocess.run(
            [str(ROOT / "scripts" / "slurm_local.sh"), "start", str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            reason = f"slurm_local.sh failed: {(done.stderr or done.stdout).strip()[-300:]}"
    if reason is not None:
        if required:
            pytest.fail(f"{reason}, but LIBKD_REQUIRE_SLURM is set")
        pytest.skip(reason)
    conf = str(folder / "slurm.conf")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    yield conf
    subprocess.run(["scancel", "--user", "root"], capture_output=True)
    subprocess.run([str(ROOT / "scripts" / "slurm_local.sh"), "stop", str(folder)])
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous


def _task_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"SLURM_ARRAY_TASK_ID="):
            return item.split(b"=", 1)[1].decode()
    return None


def _running_by_task(url: str, name: str) -> dict[str, int]:
    """Slurm task -> the pid of its worker, for each task whose worker runs a trial now."""
    from optuna.trial import TrialState

    opened = load_optuna_study(name, optuna_storage(url))
    found = {}
    for trial in opened.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = int(trial.user_attrs.get(WORKER_ATTR, ":0").rpartition(":")[2] or 0)
        task = _task_of(pid) if pid else None
        if task is not None:
            found[task] = pid
    return found


@pytest.mark.e2e
@pytest.mark.slurm
def test_a_study_through_a_slurm_array_survives_scancel_and_sigkill(
    slurm_conf, postgres_url, cache_dir, tmp_path, monkeypatch
):
    url = (
        make_url(fresh_database(postgres_url))
        .set(password=PASSWORD)
        .render_as_string(hide_password=False)
    )
    data = tiny_dict(
        name="slurmed",
        seeds=[0, 1, 2, 3],
        grid={"distill.teachers": [[], ["conv"], ["conv", "inv"]]},
        train={"epochs": 60, "batch_size": 32, "lr": 1.0e-3, "warmup_epochs": 1},
    )
    path = write_study(tmp_path, data)
    monkeypatch.chdir(tmp_path)  # results/slurmed/slurm/ lands here
    started = time.monotonic()
    result = CliRunner().invoke(
        app,
        [
            "launch",
            str(path),
            "--tasks",
            "3",
            "--storage",
            url,
            "--cache-dir",
            str(cache_dir),
            "--heartbeat",
            "2",
            "--grace",
            "8",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    job = result.output.split("submitted job ")[1].split(":")[0]
    script = next((tmp_path / "results" / "slurmed" / "slurm").glob("*.sbatch"))
    assert PASSWORD not in script.read_text()
    # Two tasks run at once on this 2-CPU node (the third waits for a free CPU). When both
    # are mid-trial, cancel one (SIGTERM) and SIGKILL the other's worker.
    deadline = time.monotonic() + 300
    running: dict[str, int] = {}
    while time.monotonic() < deadline and len(running) < 2:
        time.sleep(0.5)
        running = _running_by_task(url, "slurmed")
    assert len(running) >= 2, "two array tasks never ran trials at once"
    squeue = subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%i %T %o"], capture_output=True, text=True
    ).stdout
    assert PASSWORD not in squeue
    cancelled, killed = sorted(running)[:2]
    subprocess.run(["scancel", f"{job}_{cancelled}"], check=True)
    os.kill(running[killed], signal.SIGKILL)
    # The rest of the array finishes the study: the cancelled trial was re-queued by its
    # worker, the killed one by a live worker's heartbeat check.
    while time.monotonic() < deadline:
        left = subprocess.run(
            ["squeue", "-h", "-j", job], capture_output=True, text=True
        ).stdout.strip()
        if not left:
            break
        time.sleep(1)
    wall = time.monotonic() - started
    runs = load_runs(Store(url), "slurmed")
    done = runs.filter(runs["status"] == "complete")
    opened = load_optuna_study("slurmed", optuna_storage(url))
    states = [
        (t.number, t.state.name, dict(t.system_attrs), t.user_attrs.get(WORKER_ATTR))
        for t in opened.get_trials(deepcopy=False)
    ]
    pairs = list(zip(done["config_hash"].to_list(), done["seed"].to_list()))
    assert len(pairs) == len(set(pairs)) == 12, (len(pairs), states)
    retried = [t for t in opened.get_trials(deepcopy=False) if RETRIED_FROM in t.system_attrs]
    assert len(retried) == 2  # the SIGTERM one and the SIGKILL one, each re-run once
    logs = list((tmp_path / "results" / "slurmed" / "slurm" / "logs").glob(f"{job}_*.out"))
    assert len(logs) == 3 and not any(PASSWORD in log.read_text() for log in logs)
    status = CliRunner().invoke(app, ["status", "slurmed", "--storage", url])
    assert status.exit_code == 0 and job in status.output and "ended" in status.output
    print(f"slurm e2e: 12 trials, 2 re-run, {len(logs)} task logs, {wall:.0f} s")


@pytest.mark.e2e
@pytest.mark.slurm
def test_launch_cancel_ends_the_array_and_its_trial_is_re_queued(
    slurm_conf, postgres_url, cache_dir, tmp_path, monkeypatch
):
    url = fresh_database(postgres_url)
    data = tiny_dict(
        name="cancelled",
        seeds=[0],
        grid={"distill.teachers": [["conv"]]},
        train={"epochs": 400, "batch_size": 32, "lr": 1.0e-3, "warmup_epochs": 1},
    )
    path = write_study(tmp_path, data)
    monkeypatch.chdir(tmp_path)
    common = ["--storage", url]
    launched = CliRunner().invoke(
        app, ["launch", str(path), "--tasks", "1", "--cache-dir", str(cache_dir), *common]
    )
    assert launched.exit_code == 0, launched.output
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _running_by_task(url, "cancelled"):
        time.sleep(0.5)
    assert _running_by_task(url, "cancelled"), "the task never started its trial"
    result = CliRunner().invoke(app, ["launch", "cancelled", "--cancel", *common])
    assert result.exit_code == 0 and "cancelled job(s)" in result.output, result.output
    while (
        time.monotonic() < deadline
        and subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip()
    ):
        time.sleep(0.5)
    opened = load_optuna_study("cancelled", optuna_storage(url))
    from optuna.trial import TrialState

    waiting = opened.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].system_attrs.get(RETRIED_FROM) == 0
    again = CliRunner().invoke(app, ["launch", "cancelled", "--cancel", *common])
    assert "no Slurm job of it is queued or running" in again.output
