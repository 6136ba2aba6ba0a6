"""Optuna's side of the same database: its storage and studies, opened by libkd's rules.

Optuna is imported when first used, so that importing the store costs nothing for commands
that read only libkd's tables.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import warnings
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, bindparam, inspect, text

from harness.errors import StorageError
from harness.store._engine import (
    engine_kwargs,
    first_line,
    is_sqlite,
    redact,
    serialize_sqlite_writes,
)

if TYPE_CHECKING:
    import optuna
    from optuna.storages import RDBStorage

    from harness.store._store import Store

HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30

# Attributes libkd keeps on Optuna's studies and trials.
KIND_ATTR = "libkd_kind"  # study: grid or search
STUDY_FILE_ATTR = "libkd_study_file"  # study (before libkd_studies): the study file
SOURCE_ATTR = "libkd_source"  # study: the study file's path
OVERRIDES_ATTR = "libkd_overrides"  # study: the `--set path=value` overrides applied to it
CONFIG_ATTR = "libkd_config"  # trial (before libkd_studies): the configuration it runs
LABEL_ATTR = "libkd_label"  # trial: its configuration's label
CODES_ATTR = "libkd_codes"  # study: per categorical grid factor, the labels its codes name
LABELS_ATTR = "libkd_labelled"  # study: categorical factors recorded as labels, seed not a param
HASH_ATTR = "libkd_hash"  # trial: that configuration's hash
SEED_ATTR = "libkd_seed"  # trial: its seed
FACTORS_ATTR = "libkd_factors"  # trial: the grid factors that name it
WORKER_ATTR = "libkd_worker"  # trial: host:pid of the worker running it
EMPTY_ATTR = "libkd_empty"  # trial: asked for when no waiting one was left
COPIED_ATTR = "libkd_copied_from"  # trial: the run it copied from another study, untrained


def _quiet_optuna() -> None:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats and the retry callback are marked experimental; they are what we rely on.
    warnings.filterwarnings("ignore", category=ExperimentalWarning)


def reading_storage(store: Store) -> RDBStorage:
    """Optuna's storage on the data `store` reads (for commands that only read: a read-only
    file, or the migrated in-memory copy of an older database)."""
    opened = store.opened
    return optuna_storage(opened.optuna_url, options=opened.optuna_options, writes=opened.writes)


def optuna_storage(
    url: str,
    *,
    options: dict[str, Any] | None = None,
    writes: bool = True,
    heartbeat: int = HEARTBEAT_SECONDS,
    grace: int = GRACE_SECONDS,
    max_retry: int = 1,
) -> RDBStorage:
    """Relational storage with heartbeats: a trial whose worker died is failed and re-queued."""
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

    _quiet_optuna()
    # Several processes opening a new database at once race to create Optuna's tables and its
    # alembic version row; the losers find the winner's on a second look.
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            storage = RDBStorage(
                url,
                engine_kwargs=engine_kwargs(url) if options is None else options,
                heartbeat_interval=heartbeat,
                grace_period=grace,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=max_retry
                ),
            )
            break
        except (IntegrityError, OperationalError, ProgrammingError) as exc:
            if attempt == _CREATE_ATTEMPTS - 1 or not _lost_a_race(exc):
                raise StorageError(f"{redact(url)}: {first_line(exc)}") from None
            time.sleep(0.05 * (attempt + 1))
        except SQLAlchemyError as exc:
            raise StorageError(f"{redact(url)}: {first_line(exc)}") from None
    if is_sqlite(url) and writes:
        serialize_sqlite_writes(storage.engine)
    return storage


_CREATE_ATTEMPTS = 5


def _lost_a_race(exc: Exception) -> bool:
    """Whether creating the schema failed because another process was creating it too."""
    text = str(getattr(exc, "orig", exc)).lower()
    return any(sign in text for sign in ("already exists", "unique", "duplicate", "locked"))


def objective_count(engine: Engine, study: str) -> int:
    """How many objectives Optuna's study `study` has (0 if there is none), read from
    Optuna's tables without importing Optuna: the report needs only this to know whether
    there is a Pareto front to show."""
    query = text(
        "SELECT count(*) FROM study_directions d JOIN studies s ON s.study_id = d.study_id "
        "WHERE s.study_name = :name"
    )
    if not inspect(engine).has_table("study_directions"):
        return 0
    with engine.connect() as connection:
        return int(connection.execute(query, {"name": study}).scalar() or 0)


def study_names(storage: RDBStorage) -> list[str]:
    """The studies in Optuna's tables, read directly: Optuna's study summaries read every
    trial of every study (a second for 1,000 trials) to name them."""
    return optuna_study_names(storage.engine)


def optuna_study_names(engine: Engine) -> list[str]:
    if not inspect(engine).has_table("studies"):
        return []
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT study_name FROM studies ORDER BY study_id"))
        return [str(name) for (name,) in rows]


@dataclass(frozen=True)
class TrialOverview:
    """A study's trials counted by the database: per Optuna state (lower case) with the
    failed ones that were re-queued apart as "retried" (their copies stand for them), the
    best first objective of the complete ones, and the seconds during which any of its
    trials was running (`active_seconds`: a study run in several sittings is not charged the
    hours between them). Trials asked for when no waiting one was left (`EMPTY_ATTR`) are
    not the study's and are left out."""

    counts: dict[str, int]
    best: float | None
    active_seconds: float


def active_seconds(
    intervals: list[tuple[dt.datetime, dt.datetime | None]], now: dt.datetime
) -> float:
    """The length of the union of [start, end] intervals (an open one ends `now`): the
    time during which at least one of them was running."""
    total, reach = 0.0, None
    for start, end in sorted((start, end or now) for start, end in intervals):
        if reach is None or start > reach:
            total += (end - start).total_seconds()
            reach = end
        elif end > reach:
            total += (end - reach).total_seconds()
            reach = end
    return total


_OWN_TRIALS = (
    "FROM trials t JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :name "
    "AND NOT EXISTS (SELECT 1 FROM trial_user_attributes e "
    "WHERE e.trial_id = t.trial_id AND e.key = :empty)"
)

_OWN_VALUES = _OWN_TRIALS.replace(
    "FROM trials t",
    "FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0",
)


def _moment(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))  # SQLite returns text


def trial_overview(engine: Engine, study: str) -> TrialOverview:
    """The `TrialOverview` of `study`, in a fixed six queries whatever its size (Optuna's
    API builds every trial with its params, attributes and intermediate values first).
    States are counted by the database and only started trials' spans are read: the
    runner asks after every trial, and a queue of 10,000 waiting trials read row by row
    cost 45 ms a call."""
    names = {"name": study, "empty": EMPTY_ATTR}
    states = text(f"SELECT t.state, count(*) {_OWN_TRIALS} GROUP BY t.state")
    spans = text(
        f"SELECT t.datetime_start, t.datetime_complete {_OWN_TRIALS} "
        "AND t.datetime_start IS NOT NULL"
    )
    direction = text(
        "SELECT d.direction FROM study_directions d JOIN studies s ON s.study_id = d.study_id "
        "WHERE s.study_name = :name AND d.objective = 0"
    )
    counts = {state: 0 for state in ("running", "waiting", "complete", "pruned", "fail")}
    intervals: list[tuple[dt.datetime, dt.datetime | None]] = []
    with engine.connect() as connection:
        for state, n in connection.execute(states, names):
            counts[str(state).lower()] = int(n)
        for start, end in connection.execute(spans, names):
            if (begun := _moment(start)) is not None:
                intervals.append((begun, _moment(end)))
        counts["retried"] = _retried(connection, study)
        counts["fail"] -= counts["retried"]
        maximize = str(connection.execute(direction, names).scalar() or "MAXIMIZE") == "MAXIMIZE"
        best_value = text(
            f"SELECT {'max' if maximize else 'min'}(v.value) {_OWN_VALUES} AND t.state = 'COMPLETE'"
        )
        best = connection.execute(best_value, names).scalar()
    return TrialOverview(
        counts=counts,
        best=None if best is None else float(best),
        # Optuna stamps trials with the local clock, without a zone.
        active_seconds=active_seconds(intervals, dt.datetime.now()),
    )


def count_in_state(engine: Engine, study: str, state: str) -> int:
    """How many trials of the study are in `state` (an Optuna TrialState's name), counted
    by the database: Optuna's own API builds every such trial with all its attributes to
    count them (about 0.4 s for 1,000 queued trials), and the runner asks after every trial."""
    query = text(
        "SELECT count(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "WHERE s.study_name = :name AND t.state = :state"
    )
    with engine.connect() as connection:
        return int(connection.execute(query, {"name": study, "state": state}).scalar() or 0)


RETRIED_FROM = "failed_trial"
"""Optuna's system attribute on a re-queued copy: the number of the first trial it retries."""
RETRY_HISTORY = "retry_history"
"""Optuna's system attribute on a re-queued copy: every trial it retries, first to last."""


_FAILED = text(f"SELECT t.number {_OWN_TRIALS} AND t.state = 'FAIL'")
_RETRY_HISTORIES = text(
    "SELECT a.value_json FROM trial_system_attributes a JOIN trials t "
    "ON t.trial_id = a.trial_id JOIN studies s ON s.study_id = t.study_id "
    "WHERE s.study_name = :name AND a.key = :key"
)


def _retried(connection: Connection, study: str) -> int:
    """The failed trials a re-queued copy stands for: every trial a copy's retry history
    names (a retry of a retry names both)."""
    retried: set[int] = set()
    for (history,) in connection.execute(_RETRY_HISTORIES, {"name": study, "key": RETRY_HISTORY}):
        retried.update(int(n) for n in json.loads(history))
    failed = connection.execute(_FAILED, {"name": study, "empty": EMPTY_ATTR})
    return len({int(n) for (n,) in failed} & retried)


def count_copied(engine: Engine, study: str) -> int:
    """How many complete trials of the study copied another study's run instead of training."""
    query = text(
        "SELECT count(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = :copied "
        "WHERE s.study_name = :name AND t.state = 'COMPLETE'"
    )
    with engine.connect() as connection:
        found = connection.execute(query, {"name": study, "copied": COPIED_ATTR}).scalar()
        return int(found or 0)


def waiting_trial_ids(engine: Engine, study: str, *, limit: int) -> list[int]:
    """The first `limit` waiting trials of the study, oldest first: what Optuna's queue
    takes next, read without building every waiting trial (Optuna's own lookup does that
    at every ask, seconds per trial at 10,000 queued)."""
    query = text(
        "SELECT t.trial_id FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "WHERE s.study_name = :name AND t.state = 'WAITING' ORDER BY t.trial_id LIMIT :limit"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"name": study, "limit": limit})
        return [int(trial_id) for (trial_id,) in rows]


def requeued_trial_ids(engine: Engine, study: str) -> list[int]:
    """The study's waiting re-queued copies (of an interrupted trial, or a dead worker's),
    oldest first. Optuna appends a copy behind every waiting trial; the runner takes these
    first, so a resumed study finishes what it was doing before it starts anything new.
    One scan of the trials' attributes (about 10 ms at 10,000 queued): read once per
    session, not per trial."""
    query = text(
        "SELECT t.trial_id FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "JOIN trial_system_attributes r ON r.trial_id = t.trial_id AND r.key = :retried "
        "WHERE s.study_name = :name AND t.state = 'WAITING' ORDER BY t.trial_id"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"name": study, "retried": RETRIED_FROM})
        return [int(trial_id) for (trial_id,) in rows]


_PENDING = (
    "FROM trials t JOIN studies s ON s.study_id = t.study_id "
    "JOIN trial_user_attributes h ON h.trial_id = t.trial_id AND h.key = :hash "
    "{seed_join}WHERE s.study_name = :name AND t.state IN ('WAITING', 'RUNNING')"
)


def pending_by_config(
    engine: Engine, study: str, *, except_pairs: AbstractSet[tuple[str, int]] = frozenset()
) -> dict[str, int]:
    """How many waiting or running trials each configuration hash of the study has, counted
    by the database (one row per configuration, whatever the queue's size), less those of
    the (configuration, seed) pairs in `except_pairs`."""
    params = {"name": study, "hash": HASH_ATTR, "seed": SEED_ATTR}
    by_config = _PENDING.format(seed_join="")
    found: dict[str, int] = {}
    with engine.connect() as connection:
        query = text(f"SELECT h.value_json, count(*) {by_config} GROUP BY h.value_json")
        for config, count in connection.execute(query, params):
            found[json.loads(config)] = int(count)
        excepted = sorted({config for config, _ in except_pairs if config in found})
        if not excepted:
            return found
        seed_join = "JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = :seed "
        query = text(
            f"SELECT h.value_json, a.value_json {_PENDING.format(seed_join=seed_join)} "
            "AND h.value_json IN :configs"
        ).bindparams(bindparam("configs", expanding=True))
        configs = [json.dumps(config) for config in excepted]
        for config, seed in connection.execute(query, {**params, "configs": configs}):
            if (json.loads(config), int(json.loads(seed))) in except_pairs:
                found[json.loads(config)] -= 1
    return found


def config_factors(engine: Engine, study: str) -> dict[str, dict[str, Any]]:
    """The grid factors (`FACTORS_ATTR`) of each configuration hash the study has trials
    of, read from the database: one row per configuration and factors, whatever the
    queue's size (a hash names one configuration, so one set of factors)."""
    query = text(
        "SELECT DISTINCT h.value_json, f.value_json FROM trials t "
        "JOIN studies s ON s.study_id = t.study_id "
        "JOIN trial_user_attributes h ON h.trial_id = t.trial_id AND h.key = :hash "
        "JOIN trial_user_attributes f ON f.trial_id = t.trial_id AND f.key = :factors "
        "WHERE s.study_name = :name"
    )
    params = {"name": study, "hash": HASH_ATTR, "factors": FACTORS_ATTR}
    with engine.connect() as connection:
        return {
            json.loads(config): json.loads(factors)
            for config, factors in connection.execute(query, params)
        }


def study_attr(engine: Engine, study: str, key: str) -> Any:
    """A user attribute of Optuna's study, read from its table without Optuna (None if the
    study or the attribute is not there)."""
    if not inspect(engine).has_table("study_user_attributes"):
        return None
    query = text(
        "SELECT a.value_json FROM study_user_attributes a JOIN studies s "
        "ON s.study_id = a.study_id WHERE s.study_name = :name AND a.key = :key"
    )
    with engine.connect() as connection:
        found = connection.execute(query, {"name": study, "key": key}).scalar()
    return None if found is None else json.loads(found)


def widen_choices(engine: Engine, study: str, param: str, choices: list[str]) -> int:
    """Give every recorded value of the categorical `param` in `study` the choice list
    `choices`, which extends the one it was recorded with (labels are only ever appended, so
    each stored index keeps naming the same label). Optuna refuses a param whose choices
    differ from the ones recorded before; a grown grid widens them here first. Returns the
    rows rewritten."""
    distribution = json.dumps(
        {"name": "CategoricalDistribution", "attributes": {"choices": list(choices)}}
    )
    query = text(
        "UPDATE trial_params SET distribution_json = :distribution "
        "WHERE param_name = :param AND trial_id IN (SELECT t.trial_id FROM trials t "
        "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :name)"
    )
    with engine.begin() as connection:
        found = connection.execute(
            query, {"distribution": distribution, "param": param, "name": study}
        )
    return int(found.rowcount or 0)


def study_kind(engine: Engine, study: str) -> str | None:
    """The libkd kind (grid or search) recorded on Optuna's study, read without Optuna."""
    found = study_attr(engine, study, KIND_ATTR)
    return None if found is None else str(found)


def study_objectives(engine: Engine, study: str) -> list[tuple[str, str]]:
    """The study's declared objectives as (metric, direction), from the recorded study file
    (libkd's table; Optuna's study attribute for databases written before it; [] without)."""
    file: dict[str, Any] = {}
    if inspect(engine).has_table("libkd_studies"):
        query = text("SELECT file FROM libkd_studies WHERE name = :name")
        with engine.connect() as connection:
            found = connection.execute(query, {"name": study}).scalar()
        file = (json.loads(found) if isinstance(found, str) else found) or {}
    file = file or study_attr(engine, study, STUDY_FILE_ATTR) or {}
    return [(o["metric"], o.get("direction", "maximize")) for o in file.get("objectives", [])]


def load_optuna_study(name: str, storage: RDBStorage) -> optuna.Study:
    """The Optuna study `name`; a StorageError listing the studies there if it is not one."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = ", ".join(study_names(storage)) or "none"
        raise StorageError(
            f"study {name!r} is not in the database; studies there: {known}"
        ) from None
