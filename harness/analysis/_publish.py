"""`libkd publish`: the committed record of a study, `results/<study>/report.md` and
`environment.json`, written from the database alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from harness._atomic import write_json
from harness.analysis._load import complete_runs, load_runs
from harness.analysis._report import REPORT_COLUMNS, markdown_table, report_frame
from harness.errors import LibKDError
from harness.metrics import AGREE_COMBINED_PREFIX, ATTENTION_DISTANCE_PREFIX
from harness.status import RunStatus
from harness.store import RunRow, Store


def _teacher_rows(store: Store, study: str) -> list[dict[str, Any]]:
    rows = {}
    for role, artifact in store.study_artifacts(study):
        if artifact.kind != "teacher":
            continue
        rows[artifact.key] = {
            "teacher": role.removeprefix("teacher:"),
            "arch": artifact.name.split(":", 1)[-1],
            "val_top1": artifact.meta.get("val_top1"),
            "params": artifact.meta.get("params"),
            "forward_flops": artifact.meta.get("flops"),
            "train_seconds": artifact.build_seconds,
            "key": artifact.key[:12],
        }
    return sorted(rows.values(), key=lambda row: row["teacher"])


def _diagnostics(runs: pl.DataFrame) -> pl.DataFrame:
    """Per configuration: mean over seeds of the agreement of the combined head with labels
    and each teacher, and the mean attention distance of the first and last layer."""
    complete = complete_runs(runs)
    layers = sorted(
        (c for c in complete.columns if c.startswith(ATTENTION_DISTANCE_PREFIX)),
        key=lambda c: int(c.rsplit("/", 1)[-1]),
    )
    agreement = sorted(c for c in complete.columns if c.startswith(AGREE_COMBINED_PREFIX))
    columns = {c.removeprefix(AGREE_COMBINED_PREFIX): c for c in agreement}
    if layers:
        columns["attn_dist_first"] = layers[0]
        columns["attn_dist_last"] = layers[-1]
    if not columns:
        return pl.DataFrame()
    return (
        complete.group_by("label")
        .agg([pl.col(source).mean().alias(name) for name, source in columns.items()])
        .sort("label")
    )


def _environment(runs: list[RunRow], command: str) -> dict[str, Any]:
    environment = dict(runs[0].environment)
    environment.update(
        command=command,
        runs=len(runs),
        started=min(r.started_at for r in runs).isoformat(),
        finished=max(r.finished_at or r.started_at for r in runs).isoformat(),
    )
    return environment


def publish(
    store: Store, study: str, *, out_dir: Path, command: str, description: str = ""
) -> Path:
    """Write `out_dir/report.md` and `out_dir/environment.json`; returns the report's path."""
    runs = [r for r in store.runs(study) if r.status == RunStatus.COMPLETE]
    if not runs:
        raise LibKDError(f"study {study!r} has no complete runs in this database; run it first")
    frame = report_frame(store, study)
    environment = _environment(runs, command)
    parts = [
        f"# {study}",
        "",
        description,
        "",
        f"`{command}`: {len(runs)} complete runs on {environment.get('device_name')} "
        f"({environment.get('device')}), torch {environment.get('torch')}, commit "
        f"{str(environment.get('commit'))[:12]}, {environment['started'][:16]} to "
        f"{environment['finished'][:16]} UTC.",
        "",
        "## Student top-1 on the validation split (the official test set where there is one)",
        "",
        "Mean over seeds with a 95% t-interval; delta: paired by seed against the plain ViT.",
        "",
        markdown_table(frame, REPORT_COLUMNS),
    ]
    teachers = _teacher_rows(store, study)
    if teachers:
        parts += ["", "## Teachers (top-1 on the same validation split)", ""]
        parts.append(markdown_table(pl.DataFrame(teachers)))
    diagnostics = _diagnostics(load_runs(store, study))
    if not diagnostics.is_empty():
        parts += [
            "",
            "## Diagnostics (mean over seeds)",
            "",
            "Agreement: top-1 match rate of the student's combined prediction with the labels "
            "and with each teacher. Attention distance: mean distance in pixels a head "
            "attends over, first and last layer.",
            "",
            markdown_table(diagnostics),
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / "report.md"
    report.write_text("\n".join(parts) + "\n")
    write_json(out_dir / "environment.json", environment)
    return report
