"""The `libkd` commands: parse options, call one library function, print its result."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
import sys
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.cli._common import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    CacheDirOpt,
    GraceOpt,
    HeartbeatOpt,
    MaxRetryOpt,
    SetOpt,
    StorageOpt,
    StudyArg,
    interrupted_exit,
    open_store,
    sigterm_as_interrupt,
    study_name,
    user_errors,
)
from harness.cli._tools import bench, cache_app, data_app, db_app
from harness.errors import LibKDError

if TYPE_CHECKING:
    import polars as pl

    from harness.runner import RunSummary
    from harness.store import Store

app = typer.Typer(
    help="libkd: knowledge-distillation ablation studies of ViT students (LIB-KD).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(cache_app, name="cache")
app.add_typer(data_app, name="data")
app.add_typer(db_app, name="db")
app.command(epilog="Example: libkd bench --out results/bench-cpu.json")(bench)

WORKER_EXAMPLE = "libkd worker quickstart --storage postgresql+psycopg://me@dbhost/libkd"


class ReportFormat(str, Enum):
    TABLE = "table"
    CSV = "csv"
    PARQUET = "parquet"
    MARKDOWN = "markdown"
    JSON = "json"
    LATEX = "latex"


class CompareFormat(str, Enum):
    TABLE = "table"
    MARKDOWN = "markdown"
    CSV = "csv"


class Device(str, Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


def _version(value: bool) -> None:
    if value:
        from harness import __version__

        typer.echo(f"libkd {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """libkd: knowledge-distillation ablation studies of ViT students (LIB-KD)."""


@app.command(epilog="Example: libkd validate studies/quickstart.yaml --set train.epochs=3")
@user_errors
def validate(
    study: Annotated[Path, typer.Argument(help="Study file.")], set_: SetOpt = None
) -> None:
    """Check a study file, and that this machine can run it (data, device); print what it
    expands to."""
    _must_exist(study)
    from harness.config import StudyKind
    from harness.study import check_runnable, load_study, mixed_head_warnings

    loaded = load_study(study, overrides=set_ or ())
    check_runnable(loaded)
    if loaded.file.device not in ("auto", "cpu"):  # asks torch which devices this machine has
        from harness.runner import resolve_device

        resolve_device(loaded.file.device)
    for line in mixed_head_warnings(loaded.contrasts, loaded.trends):
        typer.echo(line, err=True)
    n_configs, n_seeds = len(loaded.configs), len(loaded.seeds)
    search = loaded.file.search
    if loaded.kind == StudyKind.SEARCH and search is not None:
        typer.echo(
            f"ok: {loaded.name} (search): {search.sampler} over {len(search.space)} "
            f"parameter(s), {search.n_trials} trials x {n_seeds} seed(s), pruner {search.pruner}"
        )
        return
    typer.echo(
        f"ok: {loaded.name} (grid): {n_configs} configuration(s) x {n_seeds} seed(s) "
        f"= {n_configs * n_seeds} trials"
    )


@app.command(epilog="Example: libkd plan studies/quickstart.yaml --set seeds=[0,1]")
@user_errors
def plan(
    study: Annotated[Path, typer.Argument(help="Study file.")],
    set_: SetOpt = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="A database the study will run in: show the seeds its other studies ran, "
            "which are copied, not trained.",
        ),
    ] = None,
) -> None:
    """List the trials a study would run, the teachers it would train, its contrasts and
    seed plan, and the images in each split (train, validation for selection, test)."""
    _must_exist(study)
    from harness.cli._console import console
    from harness.cli._tables import plan_tables, split_table
    from harness.data import dataset_sizes
    from harness.errors import DataError
    from harness.study import load_study, mixed_head_warnings

    loaded = load_study(study, overrides=set_ or ())
    for line in mixed_head_warnings(loaded.contrasts, loaded.trends):
        typer.echo(line, err=True)
    copies: set[tuple[str, int]] | None = None
    if storage is not None:
        found = open_store(storage, read_only=True).copyable(loaded.name)
        copies = found if loaded.file.reuse_runs else set()
    for table in plan_tables(loaded, copies=copies):
        console.print(table)
    sizes: dict[str, dict[str, int] | str] = {}
    for config in dict.fromkeys(point.config.dataset for point in loaded.configs):
        key = " ".join(
            [config.name, config.model_dump_json(exclude_defaults=True, exclude={"name"})]
        )
        try:
            sizes[key] = dataset_sizes(config)
        except DataError as exc:
            sizes[key] = f"not loadable here: {exc}"
    console.print(split_table(sizes))


@app.command(epilog="Example: libkd run studies/quickstart.yaml --workers 2 --set train.epochs=10")
@user_errors
def run(
    study: Annotated[Path, typer.Argument(help="Study file.")],
    storage: StorageOpt = None,
    cache_dir: CacheDirOpt = None,
    device: Annotated[
        Device | None, typer.Option(help="Where to train (default: the study's).")
    ] = None,
    n_trials: Annotated[
        int | None, typer.Option(min=0, help="Run at most this many trials.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="Stop starting trials after seconds.")
    ] = None,
    retry_failed: Annotated[bool, typer.Option(help="Re-queue failed trials first.")] = False,
    workers: Annotated[
        str,
        typer.Option(
            envvar="LIBKD_WORKERS",
            help="Workers on this machine: a number, or auto (one per GPU; on CPU one per "
            "free core with one thread each, at most the trials waiting). Cores busy with "
            "other work are left to it.",
        ),
    ] = "auto",
    dashboard: Annotated[bool, typer.Option(help="Write the dashboard at the end.")] = True,
    heartbeat: HeartbeatOpt = HEARTBEAT_SECONDS,
    grace: GraceOpt = GRACE_SECONDS,
    max_retry: MaxRetryOpt = 1,
    set_: SetOpt = None,
) -> None:
    """Run (or resume) a study, then print its results table."""
    # A bad file, override or option stops here, before the database is touched.
    _must_exist(study)
    count = _worker_count(workers)
    from harness.study import check_runnable, load_study

    loaded = load_study(study, overrides=set_ or ())
    from harness.cli._console import console
    from harness.cli._progress import run_progress
    from harness.runner import (
        RunnerSession,
        RunnerSettings,
        auto_workers,
        busy_cores,
        cpu_threads,
        resolve_device,
        run_local_workers,
    )
    from harness.store import redact, resolve_cache_dir

    device_name = device.value if device is not None else loaded.file.device
    # What this machine cannot run stops here, before anything is queued.
    on_cpu = resolve_device(device_name).type == "cpu"
    check_runnable(loaded)
    store = open_store(storage)
    cache = resolve_cache_dir(cache_dir, loaded.file.cache.dir)
    console.print(f"study [bold]{loaded.name}[/] -> {redact(store.url)}, cache {cache}")
    if loaded.overrides:
        console.print(f"overrides: {' '.join(loaded.overrides)}", markup=False)
    settings = RunnerSettings(heartbeat=heartbeat, grace=grace, max_retry=max_retry)
    session = RunnerSession(loaded, store=store, settings=settings)
    session.prepare(retry=retry_failed)
    # On CPU, cores that other work keeps busy are not shared out: more threads than free
    # cores run slower, not faster.
    busy = busy_cores() if on_cpu else 0
    auto = count is None
    if count is None:
        from optuna.trial import TrialState

        waiting = session.count(TrialState.WAITING)
        count = auto_workers(device_name, waiting=min(waiting, n_trials or waiting), busy=busy)
    threads = cpu_threads(count, busy=busy) if on_cpu else None
    if count > 1 or busy:
        console.print(_workers_line(count, threads, auto=auto, busy=busy), markup=False)
    if threads is not None and count == 1:
        _use_threads(threads)
    sigterm_as_interrupt()
    try:
        with run_progress() as progress:
            if count > 1:
                summary = run_local_workers(
                    session,
                    cache_dir=cache,
                    device=device_name,
                    workers=count,
                    progress=progress,
                    max_trials=n_trials,
                    timeout=timeout,
                    threads=threads,
                )
            else:
                summary = session.work(
                    cache_dir=cache,
                    device=device_name,
                    progress=progress,
                    max_trials=n_trials,
                    timeout=timeout,
                )
    except KeyboardInterrupt as exc:
        raise interrupted_exit(exc) from None
    _print_summary(summary)
    died = [code for code in session.worker_exit_codes if code not in (0, 1)]  # 1: failures
    for code in died:
        console.print(f"a worker exited with code {code}; the others retried its trial")
    _print_results(store, loaded.name)
    if dashboard and summary.complete:
        from harness.dashboard import write_dashboard

        path = write_dashboard(store, loaded.name, study_file=loaded.source)
        console.print(f"dashboard: {path}")
    _exit_if_undone(summary, retry_hint=_retry_command(study, storage, set_ or ()))
    if died and summary.waiting:
        typer.echo(
            f"error: {summary.waiting} trial(s) still waiting after a worker died; run the "
            "same command again to finish them",
            err=True,
        )
        raise typer.Exit(1)


def _print_slurm_jobs(store: Store, name: str) -> None:
    """A launched study's Slurm jobs: each task Slurm still lists, with its state and node."""
    from harness.runner._slurm import job_tasks, recorded_jobs

    jobs = recorded_jobs(store, name)
    if not jobs:
        return
    from harness.cli._console import console
    from harness.cli._tables import slurm_table

    try:
        tasks = job_tasks([job["job"] for job in jobs])
    except LibKDError as exc:
        console.print(f"{name}: Slurm jobs {', '.join(j['job'] for j in jobs)} ({exc})")
        return
    console.print(slurm_table(jobs, tasks, title=f"{name}: Slurm jobs"))


def _must_exist(study: Path) -> None:
    """A missing study file is one line at once, before the model libraries load."""
    if not study.is_file():
        raise LibKDError(f"{study}: no such study file")


def _use_threads(threads: int) -> int:
    """Train on at most `threads` CPU threads (never more than torch's own default);
    returns the threads used."""
    import torch

    torch.set_num_threads(min(torch.get_num_threads(), threads))
    return torch.get_num_threads()


def _workers_line(count: int, threads: int | None, *, auto: bool, busy: int) -> str:
    """How `libkd run` shares out the machine, e.g. 'workers: 2 x 1 thread (auto)' or
    'workers: 1 x 1 thread (1 of 2 cores busy with other work)'."""
    import os

    shape = f"{count}" if threads is None else f"{count} x {threads} thread{'s' * (threads > 1)}"
    why = ["auto"] if auto else []
    if busy:
        why.append(f"{busy} of {os.cpu_count() or 1} cores busy with other work")
    return f"workers: {shape}" + (f" ({'; '.join(why)})" if why else "")


def _worker_count(text: str) -> int | None:
    """`--workers`: a number of at least 1, or None for auto."""
    if text.strip().lower() == "auto":
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise LibKDError(
            f"--workers: {text!r} is neither a number of workers (1 or more) nor auto; "
            "give e.g. 2 or auto"
        )
    return count


def _print_summary(summary: RunSummary) -> None:
    from harness.cli._console import console

    console.print(
        f"{summary.ran} trial(s) run now; {summary.complete} complete, {summary.failed} failed"
        + (f", {summary.retried} retried" if summary.retried else "")
        + f" in the study ({summary.enqueued} newly queued, {summary.requeued} re-queued"
        + (f", {summary.copied} run(s) copied from other studies" if summary.copied else "")
        + ")"
    )


def _retry_command(study: Path, storage: str | None, overrides: Sequence[str]) -> str:
    """The command that retries this run's failures: the same file, database and overrides
    (a password in the URL shown as ***: give it again, or through LIBKD_STORAGE)."""
    from harness.store import redact

    parts = ["libkd", "run", str(study)]
    if storage is not None:
        parts += ["--storage", redact(storage)]
    for override in overrides:
        parts += ["--set", override]
    return shlex.join([*parts, "--retry-failed"])


def _exit_if_undone(summary: RunSummary, *, retry_hint: str) -> None:
    """Exit 1 naming the trials this call left failed, and how to retry them."""
    if not summary.failed_now:
        return
    typer.echo(f"error: {len(summary.failed_now)} trial(s) failed in this call:", err=True)
    for failure in summary.failed_now:
        typer.echo(f"  {failure.label}, seed {failure.seed}: {failure.error}", err=True)
    typer.echo(f"fix the cause, then run `{retry_hint}`", err=True)
    raise typer.Exit(1)


def _print_results(
    store: Store, name: str, *, runs: pl.DataFrame | None = None, frame: pl.DataFrame | None = None
) -> None:
    """The configurations' table and the contrasts, as `libkd report` prints them (from the
    runs and report frame a caller has read already, if it has)."""
    from harness.analysis import (
        contrast_frame,
        load_runs,
        report_frame,
        report_metric,
        study_contrasts,
        study_trends,
        trend_frames,
    )
    from harness.cli._console import console
    from harness.cli._tables import contrasts_table, results_table, trends_table

    runs = load_runs(store, name) if runs is None else runs
    try:
        frame = report_frame(store, name, runs=runs) if frame is None else frame
    except LibKDError as exc:
        console.print(str(exc))
        return
    words = report_metric(runs).words
    console.print(results_table(frame, title=f"{name}: top-1 (deltas: {words})"))
    contrasts = contrast_frame(runs, study_contrasts(store, name, runs))
    if not contrasts.is_empty():
        console.print(contrasts_table(contrasts, title=f"{name}: contrasts"))
    trends, _ = trend_frames(runs, study_trends(store, name))
    if not trends.is_empty():
        console.print(trends_table(trends, title=f"{name}: trends"))


@app.command(epilog=f"Example: {WORKER_EXAMPLE}")
@user_errors
def worker(
    study: StudyArg,
    storage: StorageOpt = None,
    cache_dir: CacheDirOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    max_trials: Annotated[
        int | None, typer.Option(min=0, help="Stop after this many trials.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="Stop starting trials after this many seconds.")
    ] = None,
    heartbeat: HeartbeatOpt = HEARTBEAT_SECONDS,
    grace: GraceOpt = GRACE_SECONDS,
    max_retry: MaxRetryOpt = 1,
    quiet: Annotated[
        bool, typer.Option(help="No progress lines (local workers of `libkd run`).")
    ] = False,
) -> None:
    """Take waiting trials of a queued study until none is waiting or running, printing one
    line per event (trial, teacher and cache steps, student epochs, with the study's ETA)."""
    import os

    from harness.cli._progress import PlainProgress
    from harness.runner import (
        RunnerSettings,
        SilentProgress,
        busy_cores,
        cpu_threads,
        resolve_device,
        worker_session,
    )
    from harness.store import resolve_cache_dir

    session = worker_session(
        study_name(study),
        store=open_store(storage, create=False),
        settings=RunnerSettings(heartbeat=heartbeat, grace=grace, max_retry=max_retry),
    )
    # A worker started by hand on CPU (not by `libkd run` or Slurm, which set its threads)
    # leaves the cores that other work keeps busy, as `libkd run` does.
    if resolve_device(device).type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        busy = busy_cores()
        used = _use_threads(cpu_threads(1, busy=busy))
        if busy and not quiet:
            typer.echo(_workers_line(1, used, auto=False, busy=busy))
    sigterm_as_interrupt()
    try:
        summary = session.work(
            cache_dir=resolve_cache_dir(cache_dir, session.study.file.cache.dir),
            device=device,
            progress=SilentProgress() if quiet else PlainProgress(),
            max_trials=max_trials,
            timeout=timeout,
        )
    except KeyboardInterrupt as exc:
        raise interrupted_exit(exc) from None
    typer.echo(f"worker done: {summary.ran} trial(s) run; {summary.complete} complete in study")
    _exit_if_undone(summary, retry_hint="libkd run STUDY_FILE --retry-failed")


@app.command(epilog="Example: libkd status quickstart")
@user_errors
def status(
    study: Annotated[
        str | None, typer.Argument(help="A study file or name; all if omitted.")
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """Trial counts, best value, elapsed (while any trial ran) and remaining time of each
    study; for a study with a seed plan, each aimed contrast's seeds and current half-width
    against its target."""
    from harness.analysis import seed_precision, statuses
    from harness.cli._console import console
    from harness.cli._tables import precision_table, status_table
    from harness.runner._eta import recorded_workload

    store = open_store(storage, read_only=True)
    found = statuses(
        store, study_name(study) if study else None, lambda name: recorded_workload(store, name)
    )
    console.print(status_table(found))
    for one in found:
        precision = seed_precision(store, one.name)
        if precision:
            console.print(precision_table(precision, title=f"{one.name}: seed plan"))
        _print_slurm_jobs(store, one.name)


@app.command(
    epilog="Example: libkd launch studies/quickstart.yaml --tasks 8 --partition gpu "
    "--time 04:00:00 --gpus-per-task 1 --setup 'source ~/libkd/.venv/bin/activate' "
    "(storage: LIBKD_STORAGE=postgresql+psycopg://user@dbhost/libkd)"
)
@user_errors
def launch(
    study: Annotated[str, typer.Argument(help="Study file (or, with --cancel, the study's name).")],
    storage: StorageOpt = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Teachers and caches, on a filesystem every node sees."),
    ] = None,
    tasks: Annotated[int, typer.Option(min=1, help="Array tasks: one worker each.")] = 1,
    partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    time: Annotated[str | None, typer.Option(help="Time limit per task (HH:MM:SS).")] = None,
    cpus_per_task: Annotated[int, typer.Option(min=1, help="CPUs per task.")] = 1,
    gpus_per_task: Annotated[int, typer.Option(min=0, help="GPUs per task.")] = 0,
    mem: Annotated[str | None, typer.Option(help="Memory per task, e.g. 16G.")] = None,
    account: Annotated[str | None, typer.Option(help="Slurm account.")] = None,
    requeue: Annotated[bool, typer.Option(help="Let Slurm requeue a preempted task.")] = False,
    sbatch: Annotated[
        list[str] | None,
        typer.Option("--sbatch", help="Another #SBATCH option, e.g. --sbatch=--qos=low."),
    ] = None,
    setup: Annotated[
        list[str] | None,
        typer.Option(help="A shell line before the worker (module load, venv activation)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda for the workers.")] = "auto",
    heartbeat: HeartbeatOpt = HEARTBEAT_SECONDS,
    grace: GraceOpt = GRACE_SECONDS,
    max_retry: MaxRetryOpt = 1,
    set_: SetOpt = None,
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Cancel the study's Slurm jobs instead.")
    ] = False,
) -> None:
    """Queue a study once and submit its workers as one Slurm job array (sbatch); each task
    runs `libkd worker` against the study's PostgreSQL database. `libkd status` shows the
    tasks; `libkd launch STUDY --cancel` ends them (each worker re-queues its trial)."""
    from harness.store import is_sqlite, redact, resolve_cache_dir, resolve_storage

    if cancel:
        _cancel_jobs(study, resolve_storage(storage, create=False))
        return
    _must_exist(Path(study))
    url = resolve_storage(storage)
    if is_sqlite(url):
        raise LibKDError(
            "--storage: Slurm tasks run on several machines, which cannot share a SQLite "
            "file; give a PostgreSQL URL (--storage or LIBKD_STORAGE=postgresql+psycopg://...)"
        )
    from harness.runner import RunnerSession, RunnerSettings
    from harness.runner._slurm import (
        JOBS_ATTR,
        LaunchedJob,
        SlurmOptions,
        sbatch_script,
        submit,
    )
    from harness.study import load_study

    loaded = load_study(study, overrides=set_ or ())
    store = open_store(url)
    settings = RunnerSettings(heartbeat=heartbeat, grace=grace, max_retry=max_retry)
    session = RunnerSession(loaded, store=store, settings=settings)
    session.prepare()
    cache = resolve_cache_dir(cache_dir, loaded.file.cache.dir).absolute()
    folder = (Path("results") / loaded.name / "slurm").absolute()
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    options = SlurmOptions(
        tasks=tasks,
        partition=partition,
        time=time,
        cpus_per_task=cpus_per_task,
        gpus_per_task=gpus_per_task,
        mem=mem,
        account=account,
        requeue=requeue,
        extra=tuple(sbatch or ()),
        setup=tuple(setup or ()),
    )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    script = folder / f"{stamp}.sbatch"
    script.write_text(
        sbatch_script(
            loaded.name, options, cache_dir=cache, log_dir=logs, device=device, settings=settings
        )
    )
    job = submit(script, storage_url=store.url)
    launched = LaunchedJob(job=job, tasks=tasks, script=str(script), logs=str(logs))
    recorded = list(session.opened.user_attrs.get(JOBS_ATTR, []))
    session.opened.set_user_attr(JOBS_ATTR, [*recorded, dataclasses.asdict(launched)])
    typer.echo(
        f"study {loaded.name} -> {redact(store.url)}: {session.enqueued} trial(s) newly queued"
    )
    typer.echo(f"submitted job {job}: {tasks} task(s), script {script}")
    typer.echo(f"logs: {logs}/{job}_<task>.out")
    typer.echo(f"watch: libkd status {loaded.name}; stop: libkd launch {loaded.name} --cancel")


def _cancel_jobs(study: str, url: str) -> None:
    from harness.runner._slurm import cancel, job_tasks, recorded_jobs
    from harness.study import load_study

    name = load_study(study).name if Path(study).is_file() else study
    jobs = recorded_jobs(open_store(url, read_only=True), name)
    live = sorted({task.job for task in job_tasks([job["job"] for job in jobs])})
    if not live:
        typer.echo(f"study {name}: no Slurm job of it is queued or running")
        return
    cancel(live)
    typer.echo(f"cancelled job(s) {', '.join(live)}: each running worker re-queues its trial")


@app.command(epilog="Example: libkd report quickstart --format markdown --out report.md")
@user_errors
def report(
    study: StudyArg,
    storage: StorageOpt = None,
    format: Annotated[ReportFormat, typer.Option(help="How to write it.")] = ReportFormat.TABLE,
    out: Annotated[Path | None, typer.Option(help="Write here instead of the terminal.")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Config hash prefix of the baseline.")
    ] = None,
) -> None:
    """The aggregate table over seeds with 95% CIs, paired deltas against the baseline, and
    the study's contrasts (Holm-adjusted, with the effect each could detect)."""
    from harness.analysis import (
        contrast_frame,
        latex_tables,
        load_runs,
        markdown_table,
        pareto_trials,
        report_columns,
        report_frame,
        report_metric,
        study_contrasts,
    )
    from harness.cli._console import console
    from harness.cli._tables import frame_table, results_table

    if format == ReportFormat.PARQUET and out is None:
        raise LibKDError("--format parquet: binary output needs --out FILE")
    name = study_name(study)
    store = open_store(storage, read_only=True)
    runs = load_runs(store, name)
    frame = report_frame(store, name, baseline=baseline, runs=runs)
    if format == ReportFormat.TABLE:
        if baseline is None:
            _print_results(store, name, runs=runs, frame=frame)
        else:
            words = report_metric(runs).words
            console.print(results_table(frame, title=f"{name}: top-1 (deltas: {words})"))
        front = pareto_trials(store, name)
        if not front.is_empty():
            console.print(frame_table(front, title="Pareto-optimal trials"))
        return
    if format == ReportFormat.PARQUET and out is not None:
        frame.write_parquet(out)
        return

    def latex() -> str:
        contrasts = contrast_frame(runs, study_contrasts(store, name, runs))
        return latex_tables(frame, contrasts, metric_words=report_metric(runs).words)

    writers: dict[str, Callable[[], str]] = {
        "csv": frame.write_csv,
        "json": frame.write_json,
        "markdown": lambda: markdown_table(frame, report_columns(frame)),
        "latex": latex,
    }
    text = writers[format.value]()
    if out is not None:
        out.write_text(text)
    else:
        typer.echo(text)


@app.command(
    epilog="Example: libkd compare claims_teachers claims_teachers_e200 "
    "--storage sqlite:///results/convergence/libkd.db"
)
@user_errors
def compare(
    first: Annotated[str, typer.Argument(help="A study file or name (columns a_*).")],
    second: Annotated[str, typer.Argument(help="Another study file or name (columns b_*).")],
    storage: StorageOpt = None,
    second_storage: Annotated[
        str | None,
        typer.Option(help="The second study's database, if not the first's (--storage)."),
    ] = None,
    format: Annotated[CompareFormat, typer.Option(help="How to write it.")] = CompareFormat.TABLE,
    out: Annotated[Path | None, typer.Option(help="Write here instead of the terminal.")] = None,
) -> None:
    """Two studies' contrasts side by side, matched by contrast name: each study's n,
    delta [95% CI], verdict and Holm p (each adjusted within its own study), and whether
    the verdicts agree."""
    from harness.analysis import compare_contrasts, markdown_table
    from harness.cli._console import console
    from harness.cli._tables import frame_table

    a_store = open_store(storage, read_only=True)
    b_store = open_store(second_storage, read_only=True) if second_storage else a_store
    a_name, b_name = study_name(first), study_name(second)
    frame = compare_contrasts((a_store, a_name), (b_store, b_name))
    if frame.is_empty():
        raise LibKDError(
            f"neither {a_name!r} nor {b_name!r} declares a contrast; add `contrasts:` to "
            "their study files"
        )
    if format == CompareFormat.TABLE and out is None:
        console.print(frame_table(frame, title=f"contrasts: a = {a_name}, b = {b_name}"))
        return
    text = frame.write_csv() if format == CompareFormat.CSV else markdown_table(frame)
    if out is not None:
        out.write_text(text)
    else:
        typer.echo(text.rstrip("\n"))


@app.command(epilog="Example: libkd publish studies/quickstart.yaml")
@user_errors
def publish(
    study: Annotated[
        str,
        typer.Argument(
            help="Study file, or the name of a study in the database (one run with --set)."
        ),
    ],
    storage: StorageOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder (default results/<study name>).")] = None,
    command: Annotated[
        str | None, typer.Option(help="The command that ran it (default: libkd run STUDY).")
    ] = None,
    latex: Annotated[
        bool, typer.Option(help="Also write tables.tex: booktabs tables for a paper.")
    ] = False,
) -> None:
    """Write results/<study>/report.md, contrasts.csv and environment.json (the study's
    committed record; with --latex also tables.tex), then the claims index
    (results/README.md and README.md) where results/claims.yaml names the claims."""
    from harness.analysis import publish as write_record
    from harness.analysis import update_index

    store = open_store(storage, read_only=True)
    name, description, ran = _published_study(study, store, command)
    folder = out or Path("results") / name
    report = write_record(
        store, name, out_dir=folder, command=command or ran, description=description, latex=latex
    )
    typer.echo(f"wrote {report} and {report.with_name('environment.json')}")
    for path in update_index(folder.parent, documents=(Path("README.md"), Path("docs/results.md"))):
        typer.echo(f"claims index: {path}")


def _published_study(study: str, store: Store, command: str | None) -> tuple[str, str, str]:
    """(name, description, the command that ran it) of a study file or of a study the
    database recorded (its file as queued, with the --set overrides it ran with)."""
    from harness.store import redact
    from harness.study import load_study

    path = Path(study)
    if path.is_file():
        loaded = load_study(path)
        header = []  # the file's top comment, else its description
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            header.append(line.removeprefix("#").strip())  # only the marker: '# #15' keeps '#15'
        return loaded.name, " ".join(header) or loaded.file.description, f"libkd run {study}"
    record = store.study_record(study)
    if record is None and command is not None and study in store.study_names():
        return study, "", command  # runs of a study whose file was never recorded here
    if record is None:
        raise LibKDError(
            f"{study}: neither a study file nor a study recorded in {redact(store.url)}; "
            "give the file, or the name `libkd status` lists (with --command for a study "
            "whose file this database never recorded)"
        )
    overrides = record.overrides.get("set", [])
    ran = shlex.join(
        ["libkd", "run", record.source, *(part for o in overrides for part in ("--set", o))]
    )
    return record.name, str(record.file.get("description", "")), ran


@app.command(epilog="Example: libkd export quickstart --out results/export")
@user_errors
def export(
    study: StudyArg,
    out: Annotated[Path, typer.Option(help="Folder for runs.parquet and epochs.parquet.")] = Path(
        "results/export"
    ),
    storage: StorageOpt = None,
) -> None:
    """Write a study's raw runs and per-epoch metrics as Parquet."""
    from harness.analysis import load_epochs, load_runs

    name = study_name(study)
    store = open_store(storage, read_only=True)
    runs = load_runs(store, name)
    if runs.is_empty():
        raise store.no_runs_error(name)
    out.mkdir(parents=True, exist_ok=True)
    runs.write_parquet(out / f"{name}-runs.parquet")
    load_epochs(store, name).write_parquet(out / f"{name}-epochs.parquet")
    typer.echo(f"wrote {out / f'{name}-runs.parquet'} and {out / f'{name}-epochs.parquet'}")


@app.command(epilog="Example: libkd dashboard quickstart --open")
@user_errors
def dashboard(
    study: StudyArg,
    storage: StorageOpt = None,
    out: Annotated[Path | None, typer.Option(help="HTML file to write.")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
) -> None:
    """Write one self-contained HTML dashboard for a study."""
    from harness.dashboard import write_dashboard

    source = Path(study) if Path(study).is_file() else None
    path = write_dashboard(
        open_store(storage, read_only=True), study_name(study), out=out, study_file=source
    )
    typer.echo(f"dashboard: {path}")
    if open_:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def main() -> None:
    try:
        app()
    except LibKDError as exc:  # raised outside a command (for example while parsing)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
