"""`libkd cache ...`, `libkd data ...` and `libkd bench`: thin commands over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli._common import CacheDirOpt, StorageOpt, open_store, user_errors

cache_app = typer.Typer(help="Inspect, verify and prune the logit cache.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets.", no_args_is_help=True)
db_app = typer.Typer(help="The results database.", no_args_is_help=True)


@db_app.command("upgrade", epilog="Example: libkd db upgrade --storage sqlite:///results/libkd.db")
@user_errors
def db_upgrade(storage: StorageOpt = None) -> None:
    """Migrate the database's libkd tables to this libkd's version. Reading commands read an
    older database without changing it; only this and the commands that run studies write."""
    from sqlalchemy import create_engine

    from harness.store import Store, redact, resolve_storage, stored_version

    url = resolve_storage(storage, create=False)
    Store(url, read_only=True)  # refuses a database without libkd tables, or a newer one
    plain = create_engine(url)  # without the SQLite hooks: reading the version writes nothing
    before = stored_version(plain)
    plain.dispose()
    after = stored_version(Store(url).engine)
    typer.echo(f"{redact(url)}: libkd tables version {before} -> {after}")


@cache_app.command("ls", epilog="Example: libkd cache ls --cache-dir results/cache")
@user_errors
def cache_ls(cache_dir: CacheDirOpt = None, storage: StorageOpt = None) -> None:
    """Every cache entry: key, teacher, dataset, views, dtype, size, created, runs using it;
    then the saved states of unfinished work (what an interrupted study goes on from)."""
    import datetime as dt

    from harness.cache import list_caches, unfinished
    from harness.cli._console import console
    from harness.cli._tables import cache_table
    from harness.store import resolve_cache_dir

    root = resolve_cache_dir(cache_dir)
    uses = open_store(storage, read_only=True).artifact_use_counts()
    console.print(cache_table(root, list_caches(root), uses))
    for state in unfinished(root):
        when = dt.datetime.fromtimestamp(state.written).isoformat(sep=" ", timespec="seconds")
        done = "  (entry published: cache prune removes it)" if state.finished else ""
        typer.echo(f"unfinished {state.key[:16]}  {state.describe()}, saved {when}{done}")


@cache_app.command("verify", epilog="Example: libkd cache verify 3e18 --samples 64")
@user_errors
def cache_verify(
    key: Annotated[str | None, typer.Argument(help="Key prefix; all entries if omitted.")] = None,
    cache_dir: CacheDirOpt = None,
    samples: Annotated[int, typer.Option(help="Entries recomputed per cache.")] = 256,
) -> None:
    """Recompute a sample of entries online; exit 1 on any mismatch."""
    from harness.cache import verify_caches
    from harness.store import resolve_cache_dir

    reports = verify_caches(resolve_cache_dir(cache_dir), key_prefix=key, samples=samples)
    for r in reports:
        if r.problem is not None:
            typer.echo(f"{r.key[:16]}  NOT CHECKED  {r.problem}")
            continue
        verdict = "ok" if r.ok else "MISMATCH"
        typer.echo(
            f"{r.key[:16]}  {verdict}  samples={r.samples}  max_abs_error={r.max_abs_error:.3g}  "
            f"mean_kl={r.mean_kl:.3g}  tolerance={r.tolerance:.3g}"
        )
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


@cache_app.command("prune", epilog="Example: libkd cache prune --older-than 2026-01-01")
@user_errors
def cache_prune(
    cache_dir: CacheDirOpt = None,
    storage: StorageOpt = None,
    older_than: Annotated[
        str | None, typer.Option(help="Also entries created before this date (YYYY-MM-DD).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
) -> None:
    """Delete cache entries no run uses (or older than a date), and the saved states of
    unfinished trainings and cache builds older than the date."""
    from harness.cache import (
        cutoff_time,
        prune_candidates,
        prune_entries,
        remove_abandoned_staging,
        remove_unfinished,
    )
    from harness.store import resolve_cache_dir

    # Unused means unused by the runs of an existing database: a mistyped --storage must
    # not make every entry look unused.
    before = cutoff_time(older_than)
    root, store = resolve_cache_dir(cache_dir), open_store(storage, create=False)
    abandoned = remove_abandoned_staging(root)
    if abandoned:
        typer.echo(f"removed {abandoned} staging folder(s) of builds that did not finish")
    # Saved states of unfinished trainings and builds stay (a resumed study goes on from
    # them) unless their entry is published or they are older than --older-than.
    states = remove_unfinished(root, before=before)
    if states:
        typer.echo(f"removed {states} saved state(s) of unfinished trainings or cache builds")
    victims = prune_candidates(root, store, older_than=older_than)
    if not victims:
        typer.echo("nothing to prune")
        return
    for entry in victims:
        typer.echo(f"{entry.key[:16]}  {entry.meta.get('teacher')}  {entry.bytes} bytes")
    if not yes and not typer.confirm(f"delete these {len(victims)} entries?"):
        raise typer.Exit(1)
    pruned = prune_entries(victims)
    kept = f"; {pruned.in_use} in use by a running trial, kept" if pruned.in_use else ""
    typer.echo(f"deleted {pruned.deleted} entries{kept}")


@data_app.command("download", epilog="Example: libkd data download fashion-mnist")
@user_errors
def data_download(name: Annotated[str, typer.Argument(help="fashion-mnist")]) -> None:
    """Fetch a dataset with checksums into the user cache (needs internet)."""
    from harness.data import download

    typer.echo(f"downloaded to {download(name)}")


@user_errors
def bench(
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    study: Annotated[Path, typer.Option(help="Models and data come from this study.")] = Path(
        "studies/quickstart.yaml"
    ),
    batch_size: Annotated[list[int] | None, typer.Option(help="Batch size(s).")] = None,
    windows: Annotated[
        int, typer.Option(help="Timed rounds: one window per mode each, in alternating order.")
    ] = 300,
    steps: Annotated[int, typer.Option(help="Steps per timed window.")] = 1,
) -> None:
    """Student throughput without KD, with cached and with online KD; cache build cost."""
    from harness.bench import run_bench
    from harness.cli._tables import print_bench

    result = run_bench(
        study_file=study,
        device=device,
        batch_sizes=batch_size or ([256, 512, 1024] if device == "cuda" else [64]),
        windows=windows,
        steps=steps,
        out=out,
    )
    print_bench(result)
