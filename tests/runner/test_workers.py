"""Many workers on one database: PostgreSQL with 4 processes, a worker SIGKILLed mid-trial,
and SQLite with 2 local workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from harness.analysis import load_epochs, load_runs
from harness.runner import (
    RunnerSession,
    RunnerSettings,
    SilentProgress,
    WorkerWatch,
    run_local_workers,
    worker_command,
)
from harness.status import RunStatus
from harness.store import (
    FinishedRun,
    RunIdentity,
    Store,
    load_optuna_study,
    make_engine,
    optuna_storage,
    redact,
)
from harness.study import load_study, study_from_dict
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


class _Lines(SilentProgress):
    """What a run tells its user: its own finished trials and the other workers' lines."""

    def __init__(self) -> None:
        self.own: list[str] = []
        self.others: list[str] = []

    def trial_finished(self, spec, *, status, metrics) -> None:
        self.own.append(f"{spec.label} seed {spec.seed} {status}")

    def other_worker(self, line: str) -> None:
        self.others.append(line)


def _start(store: Store, label: str, seed: int, worker: str) -> int:
    identity = RunIdentity("tiny", None, "c" * 64, seed, label, {})
    return store.start_run(identity, config={}, device="cpu", worker=worker, environment={})


def _finish(store: Store, run_id: int, top1: float) -> None:
    result = FinishedRun(
        train_seconds=12.5, eval_seconds=0.5, student_params=1, top1=top1, metrics={}
    )
    store.finish_run(run_id, status=RunStatus.COMPLETE, result=result)


def test_the_run_tells_what_its_other_workers_start_and_finish(storage_url):
    store = Store(storage_url)
    _finish(store, _start(store, "before", 0, "h:7"), 0.5)  # started before the run: not told
    lines = _Lines()
    watch = WorkerWatch(store, "tiny", lines, own="h:1")
    mine, theirs = _start(store, "mine", 0, "h:1"), _start(store, "a", 1, "h:7")
    watch.poll()
    assert lines.others == ["worker 7: a seed 1 started"]
    watch.poll()  # nothing new: nothing said twice
    _finish(store, theirs, 0.81234)
    _finish(store, mine, 0.7)
    failed = _start(store, "b", 2, "h:8")
    store.finish_run(failed, status=RunStatus.FAILED, error="boom")
    watch.poll()
    assert lines.others[1:] == [
        "worker 7: a seed 1 complete val top1 0.8123 (13.0 s)",
        "worker 8: b seed 2 started",  # began and ended between two readings
        "worker 8: b seed 2 failed",
    ]


def test_the_last_reading_is_taken_when_the_workers_are_done(storage_url):
    """A trial finishing after the thread's last reading is still told, once."""
    store = Store(storage_url)
    lines = _Lines()
    with WorkerWatch(store, "tiny", lines, own="h:1", interval=3600.0):
        _finish(store, _start(store, "a", 1, "h:7"), 0.8)
    assert lines.others == [
        "worker 7: a seed 1 started",
        "worker 7: a seed 1 complete val top1 0.8000 (13.0 s)",
    ]


@pytest.mark.e2e
@pytest.mark.slow
def test_two_local_workers_on_sqlite(tmp_path, storage_url, cache_dir, monkeypatch):
    study = load_study(write_study(tmp_path, tiny_dict(seeds=[0, 1, 2, 3], grid=GRID_24)))
    session = RunnerSession(study, store=Store(storage_url))
    session.prepare()
    monkeypatch.setattr("harness.runner._workers.WATCH_SECONDS", 0.5)
    lines = _Lines()
    summary = run_local_workers(
        session, cache_dir=cache_dir, device="cpu", workers=2, progress=lines
    )
    # The counts are the session's: what it queued and what its workers ran.
    assert (summary.enqueued, summary.requeued, summary.ran) == (24, 0, 24)
    assert (summary.complete, summary.failed) == (24, 0)
    _assert_complete_once(storage_url, "tiny", 24)
    errors = [r.error for r in Store(storage_url).runs("tiny") if r.error]
    assert errors == []
    # The user sees every trial once: this process's own, and the other worker's from the
    # database (however many the other worker took: it starts a few seconds late).
    finished = [line for line in lines.others if " complete val top1 " in line]
    started = [line for line in lines.others if line.endswith(" started")]
    assert len(lines.own) + len(finished) == 24
    assert len(started) == len(finished)


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
    # Cores that other work keeps busy are not shared out; one worker is always left.
    assert auto_workers("cpu", waiting=12, cores=2, busy=1) == 1
    assert auto_workers("cpu", waiting=20, cores=16, busy=4) == 12
    assert auto_workers("cpu", waiting=12, cores=2, busy=3) == 1
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 4)
    assert auto_workers("cuda", waiting=12, cores=16) == 4
    assert auto_workers("cuda", waiting=12, cores=16, busy=16) == 4  # GPUs are not cores


def test_each_cpu_worker_gets_the_free_cores_shared_out():
    from harness.runner import cpu_threads

    assert cpu_threads(1, cores=2) == 2
    assert cpu_threads(2, cores=2) == 1
    assert cpu_threads(1, cores=2, busy=1) == 1  # beside another job: 1 thread, not 2
    assert cpu_threads(2, cores=8, busy=2) == 3
    assert cpu_threads(4, cores=2) == 1


class _Counters:
    """/proc/stat read twice: its first line's jiffies (user nice system idle iowait ...)."""

    def __init__(self, *lines: str) -> None:
        self.lines = iter(lines)

    def read_text(self) -> str:
        return next(self.lines) + "\ncpu0 0 0 0 0 0 0 0 0 0 0\n"


@pytest.mark.parametrize(
    ("after", "busy"),
    [
        ("cpu  180 0 100 810 10 0 0 0 0 0", 1),  # 80% of 2 cores: 1.6 cores
        ("cpu  170 0 100 830 0 0 0 0 0 0", 1),  # 70%: 1.4 cores, so 1 (0.7 counts)
        ("cpu  130 0 100 870 0 0 0 0 0 0", 0),  # 30%: 0.6 of a core is no busy core
        ("cpu  195 0 100 800 5 0 0 0 0 0", 2),  # 95%: both
    ],
)
def test_busy_cores_counts_the_cores_not_idle_between_two_readings(monkeypatch, after, busy):
    from harness.runner import busy_cores

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    before = "cpu  100 0 100 800 0 0 0 0 0 0"
    assert busy_cores(0.0, stat=_Counters(before, after)) == busy
    assert busy_cores(0.0, stat=_Counters(before, before)) == 0  # no time passed
    assert busy_cores(0.0, stat=Path("/no/such/stat")) == 0


def test_busy_cores_sees_a_process_spinning_beside_it():
    import sys

    from harness.runner import busy_cores

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert busy_cores(0.5) >= 1
    finally:
        spinner.kill()
        spinner.wait()


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
    # One single-threaded worker per free core, at most the 6 trials; the cores other work
    # kept busy when it started are named and not used.
    shape = r"^workers: (\d+) x (\d+) threads? \(auto(?:; (\d+) of \d+ cores busy[a-z ]*)?\)$"
    line = re.search(shape, output, re.M)
    cores = os.cpu_count() or 1
    if line is None:  # the line is left out for a single worker on an idle machine
        assert min(cores, 6) == 1
    else:
        busy = int(line[3] or 0)
        assert int(line[1]) == min(max(1, cores - busy), 6)
        assert int(line[2]) == max(1, max(1, cores - busy) // int(line[1]))
    _assert_complete_once(storage_url, "tiny", 6)


def _one_busy_core_of_two(monkeypatch) -> None:
    from harness.runner import _workers

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(_workers, "busy_cores", lambda *args, **kwargs: 1)
    monkeypatch.setattr("harness.runner.busy_cores", _workers.busy_cores, raising=False)


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("1", "workers: 1 x 1 thread (1 of 2 cores busy with other work)"),
        ("auto", "workers: 1 x 1 thread (auto; 1 of 2 cores busy with other work)"),
    ],
)
def test_a_run_beside_another_job_takes_only_the_free_cores(
    tmp_path, storage_url, monkeypatch, option, said
):
    """Two cores, one busy with other work: `--workers 1` and `auto` alike train on one
    thread, and say why (two threads beside another job ran 3.7x slower than one)."""
    import torch
    from typer.testing import CliRunner

    from harness.cli import app
    from tests.helpers import fake_trainer

    fake_trainer(monkeypatch)
    _one_busy_core_of_two(monkeypatch)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        path = write_study(tmp_path, tiny_dict(seeds=[0]))
        result = CliRunner().invoke(
            app,
            ["run", str(path), "--storage", storage_url, "--no-dashboard", "--workers", option],
        )
        assert result.exit_code == 0, result.output
        assert said in result.output.splitlines()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_a_worker_started_by_hand_beside_another_job_takes_only_the_free_cores(
    tmp_path, storage_url, monkeypatch
):
    """`libkd worker` on CPU with no OMP_NUM_THREADS (started by hand, not by `libkd run`
    or Slurm) trains on the free cores' threads too; with OMP_NUM_THREADS set it keeps them."""
    import torch
    from typer.testing import CliRunner

    from harness.cli import app
    from tests.helpers import fake_trainer

    fake_trainer(monkeypatch)
    _one_busy_core_of_two(monkeypatch)
    study = study_from_dict(tiny_dict(seeds=[0]))
    RunnerSession(study, store=Store(storage_url)).prepare()
    threads = torch.get_num_threads()
    try:
        for omp, expected in ((None, 1), ("2", 2)):
            torch.set_num_threads(2)
            if omp is None:
                monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
            else:
                monkeypatch.setenv("OMP_NUM_THREADS", omp)
            result = CliRunner().invoke(
                app, ["worker", "tiny", "--storage", storage_url, "--max-trials", "1"]
            )
            assert result.exit_code == 0, result.output
            said = "workers: 1 x 1 thread (1 of 2 cores busy with other work)"
            assert (said in result.output.splitlines()) == (omp is None)
            assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(threads)
