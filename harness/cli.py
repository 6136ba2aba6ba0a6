"""The `libkd` command: thin typer commands over the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from harness._cli_common import (
    CacheDirOpt,
    GraceOpt,
    HeartbeatOpt,
    MaxRetryOpt,
    StorageOpt,
    StudyArg,
    user_errors,
)
from harness._cli_tools import bench, cache_app, data_app
from harness.errors import LibKDError
from harness.runner._defaults import GRACE_SECONDS, HEARTBEAT_SECONDS

app = typer.Typer(
    help="libkd: knowledge-distillation ablation studies of ViT students (LIB-KD).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(cache_app, name="cache")
app.add_typer(data_app, name="data")
app.command()(bench)


def _study_name(arg: str) -> str:
    from harness.study import load_study

    if arg.endswith((".yaml", ".yml")) or Path(arg).is_file():
        return load_study(arg).name
    return arg


@app.command()
@user_errors
def validate(study: Annotated[Path, typer.Argument(help="Study file.")]) -> None:
    """Check a study file; print what it expands to."""
    from harness.study import load_study

    loaded = load_study(study)
    n_configs, n_seeds = len(loaded.configs), len(loaded.file.seeds)
    search = loaded.file.search
    if search is not None:
        typer.echo(
            f"ok: {loaded.name} (search): {search.sampler} over {len(search.space)} "
            f"parameter(s), {search.n_trials} trials x {n_seeds} seed(s), pruner {search.pruner}"
        )
        return
    typer.echo(
        f"ok: {loaded.name} (grid): {n_configs} configuration(s) x {n_seeds} seed(s) "
        f"= {n_configs * n_seeds} trials"
    )


@app.command()
@user_errors
def plan(study: Annotated[Path, typer.Argument(help="Study file.")]) -> None:
    """List the trials a study would run and the teachers it would train."""
    from rich.table import Table

    from harness._console import console
    from harness.study import load_study

    loaded = load_study(study)
    teachers = Table(title="teachers to train (or reuse from the cache)")
    for column in ("name", "arch", "width", "depth", "seed", "epochs"):
        teachers.add_column(column)
    for name, t in loaded.teachers_to_train().items():
        source = f"checkpoint {t.checkpoint}" if t.checkpoint else str(t.train.epochs)
        teachers.add_row(name, t.arch, str(t.width), str(t.depth), str(t.seed), source)
    console.print(teachers)
    trials = Table(title=f"{loaded.name}: trials")
    for column in ("#", "configuration", "hash", "seeds", "cache"):
        trials.add_column(column)
    for i, spec in enumerate(loaded.configs):
        cache = spec.config.cache
        cache_text = f"on, {cache.views} views" if cache.enabled else "off"
        seeds = ", ".join(map(str, loaded.file.seeds))
        trials.add_row(str(i), spec.label, spec.config_hash[:12], seeds, cache_text)
    console.print(trials)


@app.command()
@user_errors
def run(
    study: Annotated[Path, typer.Argument(help="Study file.")],
    storage: StorageOpt = None,
    cache_dir: CacheDirOpt = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu or cuda (default: study's).")
    ] = None,
    n_trials: Annotated[int | None, typer.Option(help="Run at most this many trials.")] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop starting trials after seconds.")
    ] = None,
    retry_failed: Annotated[bool, typer.Option(help="Re-queue failed trials first.")] = False,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 1,
    dashboard: Annotated[bool, typer.Option(help="Write the dashboard at the end.")] = True,
    heartbeat: HeartbeatOpt = HEARTBEAT_SECONDS,
    grace: GraceOpt = GRACE_SECONDS,
    max_retry: MaxRetryOpt = 1,
) -> None:
    """Run (or resume) a study, then print its results table."""
    from harness.study import load_study

    loaded = load_study(study)  # a bad file stops here, before the database is touched
    from harness._console import console
    from harness.runner import RunnerSettings
    from harness.store import redact, resolve_cache_dir, resolve_storage

    settings = RunnerSettings(heartbeat=heartbeat, grace=grace, max_retry=max_retry)
    url = resolve_storage(storage)
    cache = resolve_cache_dir(cache_dir)
    console.print(f"study [bold]{loaded.name}[/] -> {redact(url)}, cache {cache}")
    try:
        summary = _run(
            loaded,
            url=url,
            cache=cache,
            device=device,
            n_trials=n_trials,
            timeout=timeout,
            retry=retry_failed,
            workers=workers,
            settings=settings,
        )
    except KeyboardInterrupt:
        console.print(
            "interrupted: the running trial was re-queued; run the same command again to resume"
        )
        raise typer.Exit(130) from None
    console.print(
        f"{summary.ran} trial(s) run now; {summary.complete} complete, {summary.failed} failed "
        f"in the study ({summary.enqueued} newly queued, {summary.requeued} re-queued)"
    )
    _print_results(loaded.name, url)
    if dashboard and summary.complete:
        from harness.dashboard import write_dashboard

        path = write_dashboard(loaded.name, storage_url=url, study_file=loaded.source)
        console.print(f"dashboard: {path}")


def _run(loaded, *, url, cache, device, n_trials, timeout, retry, workers, settings):
    """One process (with live progress) or `workers` local worker processes."""
    from harness._console import RichProgress
    from harness.runner import work

    device = device or loaded.file.device
    if workers > 1:
        from harness.runner._workers import run_local_workers

        return run_local_workers(
            loaded,
            storage_url=url,
            cache_dir=cache,
            device=device,
            workers=workers,
            max_trials=n_trials,
            timeout=timeout,
            retry=retry,
            settings=settings,
        )
    with RichProgress() as progress:
        return work(
            loaded,
            storage_url=url,
            cache_dir=cache,
            device=device,
            progress=progress,
            max_trials=n_trials,
            timeout=timeout,
            retry=retry,
            settings=settings,
        )


def _print_results(name: str, url: str) -> None:
    from harness._console import console, results_table
    from harness.analysis._report import report_frame
    from harness.errors import LibKDError
    from harness.store import Store

    try:
        frame = report_frame(Store(url), name)
    except LibKDError as exc:
        console.print(str(exc))
        return
    console.print(results_table(frame, title=f"{name}: val top-1"))


@app.command()
@user_errors
def worker(
    study: StudyArg,
    storage: StorageOpt = None,
    cache_dir: CacheDirOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    max_trials: Annotated[int | None, typer.Option(help="Stop after this many trials.")] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop starting trials after this many seconds.")
    ] = None,
    heartbeat: HeartbeatOpt = HEARTBEAT_SECONDS,
    grace: GraceOpt = GRACE_SECONDS,
    max_retry: MaxRetryOpt = 1,
) -> None:
    """Take waiting trials of a study from the database until none is waiting or running."""
    from harness.runner import RunnerSettings
    from harness.runner._workers import run_worker
    from harness.store import resolve_cache_dir, resolve_storage

    summary = run_worker(
        study,
        storage_url=resolve_storage(storage),
        cache_dir=resolve_cache_dir(cache_dir),
        device=device,
        max_trials=max_trials,
        timeout=timeout,
        settings=RunnerSettings(heartbeat=heartbeat, grace=grace, max_retry=max_retry),
    )
    typer.echo(f"worker done: {summary.ran} trial(s) run; {summary.complete} complete in study")


@app.command()
@user_errors
def status(
    study: Annotated[
        str | None, typer.Argument(help="A study file or name; all if omitted.")
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """Trial counts, best value, elapsed and remaining time of each study."""
    from harness._console import console
    from harness.runner._status import status_table
    from harness.store import resolve_storage

    console.print(status_table(resolve_storage(storage), _study_name(study) if study else None))


@app.command()
@user_errors
def report(
    study: StudyArg,
    storage: StorageOpt = None,
    format: Annotated[str, typer.Option(help="table, csv, parquet, markdown or json.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write here instead of the terminal.")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Config hash prefix of the baseline.")
    ] = None,
) -> None:
    """The aggregate table over seeds with 95% CIs and paired deltas against the baseline."""
    from harness.analysis._report import render_report
    from harness.store import resolve_storage

    text = render_report(
        _study_name(study),
        storage_url=resolve_storage(storage),
        fmt=format,
        out=out,
        baseline=baseline,
    )
    if text is not None:
        typer.echo(text)


@app.command()
@user_errors
def publish(
    study: Annotated[Path, typer.Argument(help="Study file.")],
    storage: StorageOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder (default results/<study name>).")] = None,
    command: Annotated[
        str | None, typer.Option(help="The command that ran it (default: libkd run STUDY).")
    ] = None,
) -> None:
    """Write results/<study>/report.md and environment.json: the study's committed record."""
    from harness.analysis._publish import publish as write_record
    from harness.store import resolve_storage
    from harness.study import load_study

    loaded = load_study(study)
    header = []
    for line in study.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("# "))
    report = write_record(
        loaded.name,
        storage_url=resolve_storage(storage),
        out_dir=out or Path("results") / loaded.name,
        command=command or f"libkd run {study}",
        description=" ".join(header),
    )
    typer.echo(f"wrote {report} and {report.with_name('environment.json')}")


@app.command()
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
    from harness.store import Store, resolve_storage

    name = _study_name(study)
    store = Store(resolve_storage(storage))
    out.mkdir(parents=True, exist_ok=True)
    load_runs(store, name).write_parquet(out / f"{name}-runs.parquet")
    load_epochs(store, name).write_parquet(out / f"{name}-epochs.parquet")
    typer.echo(f"wrote {out / f'{name}-runs.parquet'} and {out / f'{name}-epochs.parquet'}")


@app.command()
@user_errors
def dashboard(
    study: StudyArg,
    storage: StorageOpt = None,
    out: Annotated[Path | None, typer.Option(help="HTML file to write.")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
) -> None:
    """Write one self-contained HTML dashboard for a study."""
    from harness.dashboard import write_dashboard
    from harness.store import resolve_storage

    source = Path(study) if Path(study).is_file() else None
    path = write_dashboard(
        _study_name(study), storage_url=resolve_storage(storage), out=out, study_file=source
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


if __name__ == "__main__":
    main()
