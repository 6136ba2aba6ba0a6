"""`libkd status`: every study's trial counts, best value, elapsed and remaining time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from rich.table import Table

from harness.runner._optuna import optuna_storage


@dataclass(frozen=True)
class StudyStatus:
    name: str
    kind: str
    counts: dict[str, int]
    best: float | None
    elapsed_seconds: float
    remaining_seconds: float | None


def study_status(study: optuna.Study) -> StudyStatus:
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("libkd_empty")]
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = None
    if complete:
        values = [t.values[0] for t in complete]
        best = max(values) if study.directions[0].name == "MAXIMIZE" else min(values)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    elapsed = 0.0
    if starts:
        last = dt.datetime.now() if counts["running"] else max(ends or starts)
        elapsed = (last - min(starts)).total_seconds()
    durations = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in complete
        if t.datetime_start and t.datetime_complete
    ]
    remaining = None
    if durations:
        remaining = sum(durations) / len(durations) * (counts["waiting"] + counts["running"])
    kind = study.user_attrs.get("libkd_kind", "optuna")
    return StudyStatus(study.study_name, kind, counts, best, elapsed, remaining)


def statuses(storage_url: str, name: str | None = None) -> list[StudyStatus]:
    storage = optuna_storage(storage_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if name is not None:
        names = [n for n in names if n == name]
    return [study_status(optuna.load_study(study_name=n, storage=storage)) for n in names]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(dt.timedelta(seconds=round(seconds)))


def status_table(storage_url: str, name: str | None = None) -> Table:
    table = Table(title="studies")
    for column in (
        "study",
        "kind",
        "waiting",
        "running",
        "complete",
        "pruned",
        "failed",
        "best",
        "elapsed",
        "remaining",
    ):
        table.add_column(column, justify="left" if column in ("study", "kind") else "right")
    for s in statuses(storage_url, name):
        c = s.counts
        table.add_row(
            s.name,
            s.kind,
            str(c["waiting"]),
            str(c["running"]),
            str(c["complete"]),
            str(c["pruned"]),
            str(c["fail"]),
            "-" if s.best is None else f"{s.best:.4f}",
            _duration(s.elapsed_seconds),
            _duration(s.remaining_seconds),
        )
    return table
