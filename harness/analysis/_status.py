"""Where each study stands: trial counts, best value, elapsed and remaining time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import StorageError
from harness.store import (
    COPIED_ATTR,
    EMPTY_ATTR,
    KIND_ATTR,
    RETRIED_FROM,
    Store,
    load_optuna_study,
    reading_storage,
    study_names,
)

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class StudyStatus:
    name: str
    kind: str
    counts: dict[str, int]  # Optuna trial state (lower case) -> trials
    best: float | None
    elapsed_seconds: float
    remaining_seconds: float | None


def study_status(study: optuna.Study) -> StudyStatus:
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(EMPTY_ATTR)]
    counts = {state.name.lower(): 0 for state in TrialState}
    # A failed (or interrupted) trial that was re-queued is not a failure of the study: its
    # waiting copy is the trial now. It counts as "retried", apart from the failures.
    retried = {t.system_attrs[RETRIED_FROM] for t in trials if RETRIED_FROM in t.system_attrs}
    counts["retried"] = 0
    for trial in trials:
        if trial.state == TrialState.FAIL and trial.number in retried:
            counts["retried"] += 1
        else:
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
    # A trial that copied another study's run took no training: it says nothing of the cost.
    durations = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in complete
        if t.datetime_start and t.datetime_complete and COPIED_ATTR not in t.user_attrs
    ]
    remaining = None
    if durations:
        remaining = sum(durations) / len(durations) * (counts["waiting"] + counts["running"])
    kind = study.user_attrs.get(KIND_ATTR, "optuna")
    return StudyStatus(study.study_name, kind, counts, best, elapsed, remaining)


def statuses(store: Store, name: str | None = None) -> list[StudyStatus]:
    """Every study in the database, or the one named (an error listing them if unknown)."""
    storage = reading_storage(store)
    names = study_names(storage)
    if name is not None:
        if name not in names:
            raise StorageError(
                f"study {name!r} is not in this database; studies there: "
                f"{', '.join(names) or 'none'}"
            )
        names = [name]
    return [study_status(load_optuna_study(n, storage)) for n in names]
