"""Many workers on one database: PostgreSQL with 4 processes, a worker SIGKILLed mid-trial,
and SQLite with 2 local workers."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from optuna.trial import TrialState

from harness.analysis import load_epochs, load_runs
from harness.runner import RunnerSession, RunnerSettings, run_local_workers, worker_command
from harness.store import Store, load_optuna_study, make_engine, optuna_storage, redact
from harness.study import load_study
from harness.testing.postgres import fresh_database
from tests.helpers import start_cli_run, tiny_dict, wait_mid_trial, write_study

GRID_24 = {  # 6 configurations x 4 seeds = 24 trials
    "distill.teachers": [["conv"], ["conv", "inv"]],
    "distill.temperature": [1.0, 2.0, 4.0],
}


@pytest.fixture
def pg_url(postgres_url):
    """A fresh database on the session's PostgreSQL server."""
    return fresh_database(postgres_url)


def _assert_complete_once(url: str, study: str, expected: int) -> None:
    runs = load_runs(Store(url), study)
    done = runs.filter(runs["status"] == "complete")
    pairs = list(zip(done["config_hash"], done["seed"]))
    assert len(pairs) == expected and len(set(pairs)) == expected
    assert done["top1"].null_count() == 0
    epochs = load_epochs(Store(url), study)
    per_run = epochs.filter(epochs["run_id"].is_in(done["id"].to_list())).group_by("run_id").len()
    assert per_run["len"].min() > 0
    trials = load_optuna_study(study, optuna_storage(url)).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == expected


def _queue(study, url: str) -> None:
    """Queue a study's trials, as `libkd run` does before its workers start."""
    RunnerSession(study, store=Store(url)).prepare()


def _start_worker(name: str, url: str, cache_dir, *, settings: RunnerSettings):
    command = worker_command(name, cache_dir=cache_dir, device="cpu", settings=settings)
    env = dict(os.environ, OMP_NUM_THREADS="1", LIBKD_STORAGE=url)
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.slow
def test_four_workers_on_postgres_run_24_trials_exactly_once(tmp_path, pg_url, cache_dir):
    study = load_study(write_study(tmp_path, tiny_dict(seeds=[0, 1, 2, 3], grid=GRID_24)))
    assert len(study.trials()) == 24
    _queue(study, pg_url)
    settings = RunnerSettings(heartbeat=2, grace=6)
    workers = [_start_worker("tiny", pg_url, cache_dir, settings=settings) for _ in range(4)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0], outputs
    _assert_complete_once(pg_url, "tiny", 24)
    used = {r.worker for r in Store(pg_url).runs("tiny")}
    assert len(used) >= 2  # the work was shared
    assert "postgres@" not in "".join(outputs) or "***" in "".join(outputs)


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.slow
def test_killed_worker_trial_is_retried_by_another(tmp_path, pg_url, cache_dir):
    data = tiny_dict(
        seeds=[0, 1],
        grid={"distill.teachers": [["conv"]]},
        train={"epochs": 40, "batch_size": 16, "lr": 1.0e-3},
    )
    study = load_study(write_study(tmp_path, data))
    _queue(study, pg_url)
    settings = RunnerSettings(heartbeat=1, grace=4)
    victim = _start_worker("tiny", pg_url, cache_dir, settings=settings)
    store = Store(pg_url)
    deadline = time.time() + 180
    while time.time() < deadline:
        time.sleep(0.5)
        running = [r for r in store.runs("tiny") if r.status == "running" and r.epochs_done >= 1]
        if running:
            break
    else:
        pytest.fail("the first worker never started a trial")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_at = time.time()
    survivor = _start_worker("tiny", pg_url, cache_dir, settings=settings)
    output = survivor.communicate(timeout=300)[0]
    assert survivor.returncode == 0, output
    _assert_complete_once(pg_url, "tiny", 2)
    trials = load_optuna_study("tiny", optuna_storage(pg_url)).get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    stale_after = (
        failed[0].datetime_complete.timestamp() if failed[0].datetime_complete else time.time()
    ) - killed_at
    assert stale_after < 60
    dead = [r for r in store.runs("tiny") if r.status == "failed"]
    assert len(dead) == 1 and "died" in dead[0].error


@pytest.mark.e2e
@pytest.mark.slow
def test_two_local_workers_on_sqlite(tmp_path, storage_url, cache_dir):
    study = load_study(write_study(tmp_path, tiny_dict(seeds=[0, 1, 2, 3], grid=GRID_24)))
    session = RunnerSession(study, store=Store(storage_url))
    session.prepare()
    summary = run_local_workers(session, cache_dir=cache_dir, device="cpu", workers=2)
    # The counts are the session's: what it queued and what its workers ran.
    assert (summary.enqueued, summary.requeued, summary.ran) == (24, 0, 24)
    assert (summary.complete, summary.failed) == (24, 0)
    _assert_complete_once(storage_url, "tiny", 24)
    errors = [r.error for r in Store(storage_url).runs("tiny") if r.error]
    assert errors == []


def test_passwords_never_shown(tmp_path):
    url = "postgresql+psycopg://alice:s3cret@db.example:5432/libkd"
    assert "s3cret" not in redact(url) and "alice" in redact(url)
    # Workers get the URL through the environment: argv is readable by every local user.
    command = worker_command("tiny", cache_dir=tmp_path, device="cpu", settings=RunnerSettings())
    assert not any("s3cret" in part or "postgresql" in part for part in command)


def test_sqlite_transactions_take_the_write_lock_when_they_begin(tmp_path, monkeypatch):
    """Optuna takes a waiting trial by reading its state and then writing RUNNING; on SQLite
    both must happen under one lock or two workers take the same trial."""
    from sqlalchemy.exc import OperationalError

    from harness.store import _engine

    monkeypatch.setattr(_engine, "SQLITE_BUSY_MS", 200)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first, second = make_engine(url), make_engine(url)
    with first.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with first.begin() as reader:
        assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
        with pytest.raises(OperationalError, match="locked"), second.begin() as writer:
            writer.exec_driver_sql("INSERT INTO t VALUES (1)")
    with second.begin() as writer:  # the reader is done: the writer goes through
        writer.exec_driver_sql("INSERT INTO t VALUES (1)")
    storage = optuna_storage(url)
    assert storage.engine.dialect.name == "sqlite"
    with storage.engine.connect() as connection:  # Optuna's own engine has the same hooks
        assert connection.connection.driver_connection.isolation_level is None


@pytest.mark.e2e
def test_local_workers_share_the_trial_budget_and_the_deadline(tmp_path, storage_url, cache_dir):
    study = load_study(write_study(tmp_path, tiny_dict(grid={"distill.teachers": [[]]})))
    session = RunnerSession(study, store=Store(storage_url))
    session.prepare()
    common = dict(cache_dir=cache_dir, device="cpu", workers=2)
    assert run_local_workers(session, **common, timeout=0.0).complete == 0  # none may start
    assert run_local_workers(session, **common, max_trials=1).complete == 1  # one in all


@pytest.mark.e2e
@pytest.mark.slow
def test_a_killed_local_worker_does_not_fail_a_study_the_other_completes(
    tmp_path, storage_url, cache_dir
):
    # Twelve trials: on a loaded machine `libkd run` could finish six alone before the
    # other worker had imported torch, and the test waited for a trial that never came.
    data = tiny_dict(seeds=[0, 1, 2, 3], train={"epochs": 20, "batch_size": 16, "lr": 1.0e-3})
    path = write_study(tmp_path, data)
    options = ("--workers", "2", "--heartbeat", "1", "--grace", "3")
    parent = start_cli_run(path, storage_url, cache_dir, *options, threads=2)
    # `libkd run` is the first worker; kill the other one in the middle of a trial.
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            wait_mid_trial(storage_url, complete=0, timeout=30)
        except AssertionError:
            if parent.poll() is None:
                continue
            output = parent.communicate()[0]
            raise AssertionError(
                f"libkd run ended before its worker took a trial:\n{output}"
            ) from None
        pids = {int(r.worker.rsplit(":", 1)[1]) for r in Store(storage_url).runs("tiny")}
        if pids - {parent.pid}:
            break
    [victim] = pids - {parent.pid}
    os.kill(victim, signal.SIGKILL)
    output = parent.communicate(timeout=600)[0]
    assert parent.returncode == 0, output
    assert "a worker exited with code -9" in output
    assert "teachers=conv+inv" in output  # the results table
    _assert_complete_once(storage_url, "tiny", 12)


def test_auto_workers_is_one_single_threaded_worker_per_core_at_most_the_trials_waiting(
    monkeypatch,
):
    from harness.runner import auto_workers

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert auto_workers("cpu", waiting=12, cores=2) == 2
    assert auto_workers("auto", waiting=1, cores=2) == 1
    assert auto_workers("cpu", waiting=3, cores=16) == 3
    assert auto_workers("cpu", waiting=0, cores=16) == 1
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 4)
    assert auto_workers("cuda", waiting=12, cores=16) == 4


def test_a_bad_workers_count_is_one_line_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app

    db = tmp_path / "libkd.db"
    path = write_study(tmp_path, tiny_dict())
    for value in ("x", "0"):
        result = CliRunner().invoke(
            app, ["run", str(path), "--workers", value, "--storage", f"sqlite:///{db}"]
        )
        assert result.exit_code == 2
        assert result.output.strip().splitlines() == [
            f"error: --workers: '{value}' is neither a number of workers (1 or more) nor auto; "
            "give e.g. 2 or auto"
        ]
    assert not db.exists()


@pytest.mark.e2e
def test_workers_auto_runs_one_worker_per_core_and_every_trial_once(tmp_path, storage_url):
    path = write_study(tmp_path, tiny_dict(seeds=[0, 1]))
    process = start_cli_run(path, storage_url, tmp_path / "cache", "--workers", "auto")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    expected = min(os.cpu_count() or 1, 6)
    assert (f"workers: {expected} (auto)" in output) == (expected > 1)
    _assert_complete_once(storage_url, "tiny", 6)
