"""Workers: `libkd worker` takes waiting trials from a shared database; `libkd run --workers N`
starts N of them locally (one per visible GPU on CUDA machines). Both go through a
RunnerSession, so their counts are the session's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import torch
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from harness.errors import LibKDError, StorageError
from harness.runner._context import Progress, RunnerSettings, SilentProgress, worker_id
from harness.runner._session import RunnerSession, RunSummary
from harness.status import RunStatus
from harness.store import (
    SOURCE_ATTR,
    STUDY_FILE_ATTR,
    RunActivity,
    Store,
    count_copied,
    load_optuna_study,
    optuna_storage,
    study_names,
    utcnow,
)
from harness.study import Study, study_from_dict


def study_from_database(name: str, store: Store) -> Study:
    """The study file a `libkd run` stored with the Optuna study."""
    storage = optuna_storage(store.url)
    known = study_names(storage)
    if name not in known:
        raise StorageError(
            f"study {name!r} is not queued in this database; queue it with "
            f"`libkd run STUDY_FILE` first (studies there: {', '.join(known) or 'none'})"
        )
    record = store.study_record(name)
    if record is not None:
        study = study_from_dict(record.file, source=Path(record.source))
        return replace(study, overrides=tuple(record.overrides.get("set", [])))
    # Queued before libkd kept study files in its own table: Optuna's study attributes.
    opened = load_optuna_study(name, storage)
    data = opened.user_attrs.get(STUDY_FILE_ATTR)
    if data is None:
        raise LibKDError(f"study {name!r} was not created by libkd; start it with `libkd run`")
    return study_from_dict(data, source=Path(opened.user_attrs.get(SOURCE_ATTR, name)))


def worker_session(name: str, *, store: Store, settings: RunnerSettings) -> RunnerSession:
    """A worker's session on the study `name`, already queued in the database; a worker
    never queues a study of its own."""
    session = RunnerSession(study_from_database(name, store), store=store, settings=settings)
    session.prepare(enqueue=False)
    return session


def worker_command(
    study: str, *, cache_dir: Path, device: str, settings: RunnerSettings, quiet: bool = True
) -> list[str]:
    """A worker's command line. The storage URL (it may hold a password) goes through the
    environment, never argv, which every local user can read in `ps`."""
    return [
        sys.executable,
        "-m",
        "harness.cli",
        "worker",
        study,
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
        # A local worker is quiet: its parent shows the study's progress, from the database.
        *(["--quiet"] if quiet else []),
    ]


def auto_workers(device: str, *, waiting: int, cores: int | None = None, busy: int = 0) -> int:
    """`--workers auto`: one worker per GPU on a CUDA machine; on CPU one single-threaded
    worker per core that other work leaves free (`busy` cores, at least one left), never
    more than the trials waiting. Small students use a core's threads poorly: on 2 cores,
    2 workers x 1 thread ran a study's trials faster than 1 x 2
    (`benchmarks/workers_throughput.py`), and OpenMP threads of several processes left
    to themselves oversubscribe the cores."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return max(1, min(torch.cuda.device_count(), waiting))
    return max(1, min(free_cores(cores, busy), waiting))


BUSY_SHARE = 0.7
"""A core counts as busy with other work from this share of its time on."""


def busy_cores(seconds: float = 0.2, *, stat: Path = Path("/proc/stat")) -> int:
    """How many cores other work keeps busy now: the machine's CPU time not idle over
    `seconds` (this process sleeps meanwhile), in cores, counted from `BUSY_SHARE` of a
    core up. Another training job beside a run makes more threads slower, not faster
    (docs/measurements.md: about 3x on 2 busy cores). 0 where the kernel's counters
    cannot be read (not Linux)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:9]]
        return sum(fields), fields[3] + fields[4]  # all time; idle and waiting on I/O

    try:
        total, idle = sample()
        time.sleep(seconds)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return 0
    if total_after <= total:
        return 0
    used = 1.0 - (idle_after - idle) / (total_after - total)
    return int(used * (os.cpu_count() or 1) + 1.0 - BUSY_SHARE)


def free_cores(cores: int | None = None, busy: int = 0) -> int:
    """This machine's cores less the `busy` ones, at least one."""
    return max(1, (cores or os.cpu_count() or 1) - busy)


def cpu_threads(workers: int, *, cores: int | None = None, busy: int = 0) -> int:
    """Threads for each of `workers` CPU workers: the free cores shared out, at least one."""
    return max(1, free_cores(cores, busy) // workers)


WATCH_SECONDS = 10.0
"""How often `libkd run --workers N` reads what its other workers started and finished."""


def activity_line(run: RunActivity) -> str:
    """One run of another worker as `libkd run --workers N` prints it."""
    pid = run.worker.rsplit(":", 1)[-1]
    line = f"worker {pid}: {run.label} seed {run.seed} "
    if run.status is RunStatus.RUNNING:
        return line + "started"
    if run.status is RunStatus.COMPLETE and run.top1 is not None:
        return line + f"complete val top1 {run.top1:.4f} ({run.seconds:.1f} s)"
    return line + str(run.status)


class WorkerWatch:
    """The other local workers' trials, told to `progress` as they start and finish: the
    workers print nothing (two processes drawing on one terminal garble it), so without
    this `libkd run --workers N` showed only its own trials, and nothing at all while it
    waited for the last worker to finish. A thread reads the database every `interval`
    seconds; the last reading is taken when the block ends, so no finish goes unsaid, and a
    trial that started and finished between two readings is told as both."""

    def __init__(
        self,
        store: Store,
        study: str,
        progress: Progress,
        *,
        interval: float | None = None,
        own: str | None = None,
    ) -> None:
        self.store, self.study, self.progress = store, study, progress
        self.interval = WATCH_SECONDS if interval is None else interval
        self.own = own or worker_id()
        self.since = utcnow()
        self._said: dict[int, RunStatus] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="libkd-worker-watch", daemon=True)

    def poll(self) -> None:
        """Tell what changed since the last reading (a busy database: next time)."""
        try:
            runs = self.store.activity(self.study, since=self.since, other_than=self.own)
        except SQLAlchemyError:
            return
        for run in runs:
            said = self._said.get(run.id)
            if said is run.status:
                continue
            if said is None and run.status is not RunStatus.RUNNING:  # began and ended unseen
                self.progress.other_worker(activity_line(replace(run, status=RunStatus.RUNNING)))
            self._said[run.id] = run.status
            self.progress.other_worker(activity_line(run))

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def __enter__(self) -> WorkerWatch:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()


def run_local_workers(
    session: RunnerSession,
    *,
    cache_dir: Path,
    device: str,
    workers: int,
    progress: Progress | None = None,
    max_trials: int | None = None,
    timeout: float | None = None,
    threads: int | None = None,
) -> RunSummary:
    """Run a prepared session with `workers` workers on this machine: this process is the
    first (it has loaded everything already, so it starts training at once), and
    `workers - 1` `libkd worker` processes join it.

    `max_trials` bounds the trials of all workers together; `timeout` (seconds from now)
    stops every worker from starting another trial; `threads` is each CPU worker's (by
    default the cores shared out). The session counts what they completed.
    """
    before = session.count(TrialState.COMPLETE)
    copied_before = count_copied(session.storage.engine, session.study.name)
    session.local_workers = workers
    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    gpus = torch.cuda.device_count() if cuda else 0
    threads = threads or cpu_threads(workers)
    shares = [
        None if max_trials is None else max_trials // workers + (i < max_trials % workers)
        for i in range(workers)
    ]
    watch = WorkerWatch(session.store, session.study.name, progress or SilentProgress())
    processes = []
    for i, share in enumerate(shares[1:], start=1):
        if share == 0:
            continue
        env = dict(os.environ, LIBKD_STORAGE=session.store.url)
        if cuda:
            env["CUDA_VISIBLE_DEVICES"] = str(i % gpus)
        else:
            env["OMP_NUM_THREADS"] = str(threads)
        command = worker_command(
            session.study.name,
            cache_dir=cache_dir,
            device="cuda" if cuda else device,
            settings=session.settings,
        )
        if share is not None:
            command += ["--max-trials", str(share)]
        if timeout is not None:
            command += ["--timeout", str(timeout)]
        processes.append(subprocess.Popen(command, env=env))
    try:
        with watch:
            if shares[0] != 0:
                if not cuda:
                    torch.set_num_threads(threads)
                session.work(
                    cache_dir=cache_dir,
                    device="cuda:0" if cuda else device,
                    progress=progress,
                    max_trials=shares[0],
                    timeout=timeout,
                )
            codes = [p.wait() for p in processes]
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: each worker re-queues its running trial
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait()
        raise
    # A worker that died (killed, out of memory) is no failure by itself: its trial is
    # retried by the others, and the summary says what is left undone.
    session.worker_exit_codes = codes
    # Every worker's trials count, the copies apart: a copy is no trial run now.
    session.copied = count_copied(session.storage.engine, session.study.name) - copied_before
    session.ran = session.count(TrialState.COMPLETE) - before - session.copied
    return session.summary()
