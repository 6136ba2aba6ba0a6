"""The `libkd` command: thin typer commands over the library."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.errors import LibKDError
from harness.runner._defaults import GRACE_SECONDS, HEARTBEAT_SECONDS

app = typer.Typer(
    help="libkd: knowledge-distillation ablation studies of ViT students (LIB-KD).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
cache_app = typer.Typer(help="Inspect, verify and prune the logit cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
data_app = typer.Typer(help="Datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Database URL (default $LIBKD_STORAGE or results/libkd.db)."),
]
HeartbeatOpt = Annotated[int, typer.Option(help="Seconds between a running trial's heartbeats.")]
GraceOpt = Annotated[int, typer.Option(help="Seconds without heartbeat before a trial is stale.")]
MaxRetryOpt = Annotated[int, typer.Option(help="Retries of a trial whose worker died.")]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Teachers and logit caches (default $LIBKD_CACHE_DIR)."),
]
StudyArg = Annotated[str, typer.Argument(help="A study file, or a study's name in the database.")]


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """User mistakes become one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LibKDError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


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


@cache_app.command("ls")
@user_errors
def cache_ls(cache_dir: CacheDirOpt = None, storage: StorageOpt = None) -> None:
    """Every cache entry: key, teacher, dataset, views, dtype, size, created, runs using it."""
    from harness._console import console
    from harness.cache._admin import cache_table
    from harness.store import resolve_cache_dir, resolve_storage

    console.print(cache_table(resolve_cache_dir(cache_dir), resolve_storage(storage)))


@cache_app.command("verify")
@user_errors
def cache_verify(
    key: Annotated[str | None, typer.Argument(help="Key prefix; all entries if omitted.")] = None,
    cache_dir: CacheDirOpt = None,
    samples: Annotated[int, typer.Option(help="Entries recomputed per cache.")] = 256,
) -> None:
    """Recompute a sample of entries online; exit 1 on any mismatch."""
    from harness.cache._admin import verify_caches
    from harness.store import resolve_cache_dir

    reports = verify_caches(resolve_cache_dir(cache_dir), key_prefix=key, samples=samples)
    for r in reports:
        verdict = "ok" if r.ok else "MISMATCH"
        typer.echo(
            f"{r.key[:16]}  {verdict}  samples={r.samples}  max_abs_error={r.max_abs_error:.3g}  "
            f"mean_kl={r.mean_kl:.3g}  tolerance={r.tolerance:.3g}"
        )
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


@cache_app.command("prune")
@user_errors
def cache_prune(
    cache_dir: CacheDirOpt = None,
    storage: StorageOpt = None,
    older_than: Annotated[
        str | None, typer.Option(help="Also entries created before this date (YYYY-MM-DD).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
) -> None:
    """Delete cache entries no run uses (or older than a date)."""
    from harness.cache._admin import prune_candidates, prune_entries
    from harness.store import resolve_cache_dir, resolve_storage

    root, url = resolve_cache_dir(cache_dir), resolve_storage(storage)
    victims = prune_candidates(root, url, older_than=older_than)
    if not victims:
        typer.echo("nothing to prune")
        return
    for entry in victims:
        typer.echo(f"{entry.key[:16]}  {entry.meta.get('teacher')}  {entry.bytes} bytes")
    if not yes and not typer.confirm(f"delete these {len(victims)} entries?"):
        raise typer.Exit(1)
    typer.echo(f"deleted {prune_entries(victims, url)} entries")


@app.command()
@user_errors
def bench(
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    study: Annotated[Path, typer.Option(help="Models and data come from this study.")] = Path(
        "studies/quickstart.yaml"
    ),
    batch_size: Annotated[list[int] | None, typer.Option(help="Batch size(s).")] = None,
    windows: Annotated[int, typer.Option(help="Timed windows per mode.")] = 7,
    steps: Annotated[int, typer.Option(help="Steps per timed window.")] = 20,
) -> None:
    """Student throughput without KD, with cached and with online KD; cache build cost."""
    from harness.bench import render_bench, run_bench

    result = run_bench(
        study_file=study,
        device=device,
        batch_sizes=batch_size or ([256, 512, 1024] if device == "cuda" else [64]),
        windows=windows,
        steps=steps,
        out=out,
    )
    render_bench(result)


@data_app.command("download")
@user_errors
def data_download(name: Annotated[str, typer.Argument(help="fashion-mnist")]) -> None:
    """Fetch a dataset with checksums into the user cache (needs internet)."""
    from harness.data._download import download

    typer.echo(f"downloaded to {download(name)}")


def main() -> None:
    try:
        app()
    except LibKDError as exc:  # raised outside a command (for example while parsing)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
