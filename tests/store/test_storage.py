"""One storage suite, run over every backend: SQLite and a real PostgreSQL server."""

from __future__ import annotations

import datetime
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import sqlalchemy

from harness.errors import StorageError
from harness.status import CacheStatus, RunStatus
from harness.store import (
    SCHEMA_VERSION,
    ContrastRow,
    FinishedRun,
    RunIdentity,
    SchemaRow,
    Store,
    stored_version,
)
from harness.store._models import EPOCH_INDEX
from harness.testing.postgres import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return fresh_database(request.getfixturevalue("postgres_url"), prefix="s")


def _start(store: Store, *, study: str = "s", seed: int = 0, config_hash: str = "h" * 64) -> int:
    return store.start_run(
        RunIdentity(
            study=study,
            trial_number=seed,
            config_hash=config_hash,
            seed=seed,
            label="teachers=conv",
            factors={"distill.teachers": ["conv"]},
        ),
        config={"distill": {"teachers": ["conv"]}},
        device="cpu",
        worker="host:1",
        environment={"torch": "x"},
        inputs="i" * 64,
    )


def test_a_run_goes_from_running_to_complete_with_its_epochs(url):
    store = Store(url)
    run_id = _start(store)
    assert store.runs("s")[0].status is RunStatus.RUNNING
    store.record_sources(
        run_id, teacher_seconds=1.5, cache_seconds=0.5, cache_status=CacheStatus.HIT
    )
    store.add_epoch(run_id, 0, {"val/top1": 0.5, "train/loss": 2.0})
    result = FinishedRun(
        train_seconds=3.0, eval_seconds=0.25, student_params=10, top1=0.5, metrics={"a": 1}
    )
    store.finish_run(run_id, status=RunStatus.COMPLETE, result=result)
    [run] = store.runs("s")
    assert (run.status, run.cache_status, run.epochs_done) == (
        RunStatus.COMPLETE,
        CacheStatus.HIT,
        1,
    )
    assert (run.teacher_seconds, run.train_seconds, run.top1, run.metrics) == (
        1.5,
        3.0,
        0.5,
        {"a": 1},
    )
    assert store.complete_run_metrics("s", "h" * 64, 0) == {"a": 1}
    assert store.complete_run_metrics("s", "h" * 64, 1) is None
    with store.engine.connect() as connection:  # statuses are stored as their plain text
        stored = connection.execute(sqlalchemy.text("select status, cache_status from libkd_runs"))
        assert stored.one() == ("complete", "hit")


def test_study_artifacts_are_listed_once_per_role(url):
    """JSON columns cannot be compared on PostgreSQL: DISTINCT must not touch them."""
    store = Store(url)
    for seed in (0, 1):
        run_id = _start(store, seed=seed)
        store.record_artifact(
            key="k1",
            kind="teacher",
            name="conv:resnet",
            path="/p",
            size=1,
            build_seconds=2.0,
            meta={"val_top1": 0.9},
        )
        store.link_artifact(run_id, "k1", role="teacher:conv", hit=seed > 0)
    [(role, artifact)] = store.study_artifacts("s")
    assert role == "teacher:conv" and artifact.meta == {"val_top1": 0.9}
    assert store.artifact_use_counts() == {"k1": 2}


def test_new_database_is_stamped_and_reopens(url):
    Store(url)
    engine = sqlalchemy.create_engine(url)
    assert stored_version(engine) == SCHEMA_VERSION
    Store(url)  # a second open neither fails nor stamps twice
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.select(SchemaRow.version)).all() == [(SCHEMA_VERSION,)]


def test_a_newer_schema_is_a_one_line_error_naming_both_versions(url):
    Store(url)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(SchemaRow.__table__.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(
        StorageError, match=rf"version {SCHEMA_VERSION + 1}, newer than .* {SCHEMA_VERSION}"
    ):
        Store(url)


def test_an_unstamped_database_from_before_versions_is_stamped(url):
    store = Store(url)
    _start(store)
    with store.engine.begin() as connection:
        connection.execute(sqlalchemy.text("drop table libkd_schema"))
    assert stored_version(store.engine) == 1  # libkd tables without a stamp: version 1
    assert [r.seed for r in Store(url).runs("s")] == [0]
    assert stored_version(store.engine) == SCHEMA_VERSION


def test_reading_a_database_without_libkd_tables_writes_nothing(url):
    with pytest.raises(StorageError, match="holds no libkd tables"):
        Store(url, read_only=True)
    assert sqlalchemy.inspect(sqlalchemy.create_engine(url)).get_table_names() == []


def test_concurrent_first_use_creates_the_tables_once(url):
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(url)
        except BaseException as exc:  # noqa: BLE001  (collected for the assertion)
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stored_version(sqlalchemy.create_engine(url)) == SCHEMA_VERSION


_OPEN_AT = """
import sys, time
from harness.store import Store, optuna_storage
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
optuna_storage(url)
Store(url)
"""


@pytest.mark.e2e
def test_processes_opening_a_new_database_at_once_all_succeed(url):
    """Optuna's tables, its alembic version row and libkd's, created by whoever wins."""
    start = time.time() + 2.0
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], outputs
    assert stored_version(sqlalchemy.create_engine(url)) == SCHEMA_VERSION


def test_a_version_1_database_is_migrated(url):
    """Version 1 (libkd 0.1.0) lacked the covering index of libkd_epochs."""
    store = Store(url)
    _start(store)
    with store.engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"drop index {EPOCH_INDEX}"))
        connection.execute(sqlalchemy.update(SchemaRow).values(version=1))
    Store(url)  # a command that writes migrates
    indexes = sqlalchemy.inspect(sqlalchemy.create_engine(url)).get_indexes("libkd_epochs")
    assert EPOCH_INDEX in {index["name"] for index in indexes}
    assert stored_version(store.engine) == SCHEMA_VERSION == 7


def test_a_version_3_database_gains_adopted_from_and_keeps_its_runs(url):
    store = Store(url)
    _start(store)
    with store.engine.begin() as connection:
        connection.execute(sqlalchemy.text("alter table libkd_runs drop column adopted_from"))
        connection.execute(sqlalchemy.update(SchemaRow).values(version=3))
    [run] = Store(url).runs("s")
    assert (run.seed, run.adopted_from) == (0, None)
    assert stored_version(store.engine) == SCHEMA_VERSION


def _contrast(name: str, position: int, **plan: Any) -> ContrastRow:
    """A contrast of study "s" between two made-up configurations; `plan`: its seed plan."""
    return ContrastRow(
        study="s",
        name=name,
        position=position,
        treatment_hash="t",
        control_hash="c",
        treatment_label="T",
        control_label="C",
        **plan,
    )


def test_a_version_4_database_records_its_seed_plans_as_aimed_at_validation(url):
    store = Store(url)
    rows = [
        _contrast("aimed", 0, halfwidth=0.01, min_seeds=3, max_seeds=5),
        _contrast("not_aimed", 1, halfwidth=None, min_seeds=3, max_seeds=5),
    ]
    store.save_contrasts("s", rows)
    with store.engine.begin() as connection:
        connection.execute(sqlalchemy.text("alter table libkd_contrasts drop column target_metric"))
        connection.execute(sqlalchemy.update(SchemaRow).values(version=4))
    found = {c.name: c.target_metric for c in Store(url).contrasts("s")}
    assert found == {"aimed": "val/top1", "not_aimed": None}
    assert stored_version(store.engine) == SCHEMA_VERSION


def test_a_queue_claim_goes_to_one_caller_only(url):
    """What keeps two processes from queueing the same (configuration, seed): the claim's
    key, checked by the database in one statement per batch."""
    first, second = Store(url), Store(url)
    assert first.claim_pairs("s", [("abc", 3)], "a:1") == {("abc", 3)}
    assert second.claim_pairs("s", [("abc", 3), ("abc", 4)], "b:2") == {("abc", 4)}
    assert first.claim_pairs("other", [("abc", 3)], "a:1") == {("abc", 3)}  # another study
    first.mark_queued("s", [("abc", 3)])
    second.release_claims("s", [("abc", 3), ("abc", 4)], "b:2")  # only its unqueued one
    assert [(c.config_hash, c.seed) for c in first.pending_claims("s")] == []
    assert first.claim_pairs("s", [("abc", 3), ("abc", 4)], "a:1") == {("abc", 4)}


def test_contrasts_are_replaced_as_a_whole_and_read_in_order(url):
    store = Store(url)
    store.save_contrasts("s", [_contrast("b", 0), _contrast("a", 1)])
    assert [c.name for c in store.contrasts("s")] == ["b", "a"]
    store.save_contrasts("s", [_contrast("c", 0)])
    assert [c.name for c in store.contrasts("s")] == ["c"]
    assert store.contrasts("other") == []


def test_mean_run_seconds_are_per_configuration_and_over_all(url):
    store = Store(url)
    assert store.mean_run_seconds("s") == {}
    for seed, (key, train) in enumerate([("a", 10.0), ("a", 20.0), ("b", 60.0)]):
        run_id = _start(store, seed=seed, config_hash=key * 64)
        store.record_sources(
            run_id, teacher_seconds=1.0, cache_seconds=1.0, cache_status=CacheStatus.HIT
        )
        result = FinishedRun(
            train_seconds=train, eval_seconds=1.0, student_params=1, top1=0.5, metrics={}
        )
        store.finish_run(run_id, status=RunStatus.COMPLETE, result=result)
    _start(store, seed=3, config_hash="c" * 64)  # still running: not a cost yet
    assert store.mean_run_seconds("s") == pytest.approx(
        {None: 33.0, "a" * 64: 18.0, "b" * 64: 63.0}
    )


def test_a_run_is_adopted_from_another_study_with_its_epochs_and_artifacts(url):
    store = Store(url)
    trained = _start(store, study="a")
    store.add_epoch(trained, 0, {"val/top1": 0.25})
    store.add_epoch(trained, 1, {"val/top1": 0.5})
    store.record_artifact(
        key="k" * 64, kind="teacher", name="conv", path="p", size=1, build_seconds=2.0, meta={}
    )
    store.link_artifact(trained, "k" * 64, role="teacher:conv", hit=False)
    store.record_sources(
        trained, teacher_seconds=2.0, cache_seconds=0.0, cache_status=CacheStatus.BUILT
    )
    assert store.copy_run(_copy_of("b"), inputs=SAME) is None  # not complete yet
    result = FinishedRun(
        train_seconds=3.0, eval_seconds=0.25, student_params=10, top1=0.5, metrics={"a": 1}
    )
    store.finish_run(trained, status=RunStatus.COMPLETE, result=result)

    assert store.copy_run(_copy_of("a"), inputs=SAME) is None  # never a study's own run
    assert store.copy_run(_copy_of("b", seed=1), inputs=SAME) is None  # another seed
    # Read from other files, on another device or by other training code: another run.
    assert store.copy_run(_copy_of("b"), inputs=["j" * 64]) is None
    copy = store.copy_run(_copy_of("b"), inputs=SAME)
    assert copy is not None
    [run] = store.runs("b")
    assert (run.id, run.adopted_from, run.trial_number, run.label) == (copy.id, trained, 7, "x")
    assert (run.top1, run.metrics, run.train_seconds, run.epochs_done) == (0.5, {"a": 1}, 3.0, 2)
    assert store.curve(run.id, "val/top1") == [(0, 0.25), (1, 0.5)]
    assert [role for role, _ in store.study_artifacts("b")] == ["teacher:conv"]
    # A third study copying the copy records the run that was trained, not the copy; the
    # ETA's mean cost counts the copy at what training it took (2 + 3 + 0.25 s).
    third = store.copy_run(_copy_of("c"), inputs=SAME)
    assert third is not None and third.adopted_from == trained
    assert store.mean_run_seconds("b") == pytest.approx({None: 5.25, "h" * 64: 5.25})
    assert store.runs("a")[0].adopted_from is None


SAME = ["i" * 64]  # the inputs key of the runs `_start` writes


def _copy_of(study: str, *, seed: int = 0) -> RunIdentity:
    return RunIdentity(
        study=study, trial_number=7, config_hash="h" * 64, seed=seed, label="x", factors={}
    )


def test_a_reading_store_refuses_an_old_postgres_schema_with_the_way_out(url):
    """PostgreSQL has no cheap copy to migrate in memory: a reading command says what to run."""
    store = Store(url)
    with store.engine.begin() as connection:
        connection.execute(sqlalchemy.update(SchemaRow).values(version=5))
    if url.startswith("sqlite"):
        assert stored_version(Store(url, read_only=True).engine) == SCHEMA_VERSION  # the copy
        assert stored_version(store.engine) == 5  # the file, unchanged
        return
    with pytest.raises(StorageError, match="libkd db upgrade"):
        Store(url, read_only=True)
    assert stored_version(store.engine) == 5


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_trial_overview_counts_what_optunas_api_counts(url, direction):
    """`libkd status` counts trials in SQL: the same counts and best value as Optuna's own
    trials give, a failed trial that was re-queued apart as retried, the time while any
    trial ran (not the gaps between sittings), and the empty asks of workers that found
    nothing left out."""
    import optuna
    from optuna.trial import TrialState

    from harness.store import (
        EMPTY_ATTR,
        RETRIED_FROM,
        make_engine,
        optuna_storage,
        trial_overview,
    )

    storage = optuna_storage(url)
    study = optuna.create_study(study_name="s", storage=storage, direction=direction)
    for value in (0.5, 0.7, 0.6):
        study.tell(study.ask(), value)
    failed = study.ask()
    study.tell(failed, state=TrialState.FAIL)
    # Re-queued, interrupted, re-queued again: Optuna's copies name the first failure in
    # `failed_trial` and every one in `retry_history`; both failures are retried.
    retry = study.ask()
    storage.set_trial_system_attr(retry._trial_id, RETRIED_FROM, failed.number)
    storage.set_trial_system_attr(retry._trial_id, "retry_history", [failed.number])
    study.tell(retry, state=TrialState.FAIL)
    again = study.ask()
    storage.set_trial_system_attr(again._trial_id, RETRIED_FROM, failed.number)
    storage.set_trial_system_attr(again._trial_id, "retry_history", [failed.number, retry.number])
    study.tell(again, 0.4)
    study.tell(study.ask(), state=TrialState.FAIL)  # a failure nobody re-queued
    empty = study.ask()
    empty.set_user_attr(EMPTY_ATTR, True)
    study.tell(empty, state=TrialState.PRUNED)
    study.ask()  # running
    study.enqueue_trial({})  # waiting

    found = trial_overview(make_engine(url), "s")
    assert found.counts == {
        "running": 1,
        "waiting": 1,
        "complete": 4,
        "pruned": 0,
        "fail": 1,
        "retried": 2,
    }
    assert found.best == (0.7 if direction == "maximize" else 0.4)
    # The trials' times, set by hand (minutes): overlapping spans in three sittings (0-20,
    # 40-60, 100-130, with gaps between), the running trial from 125 on (open: until now),
    # and the empty ask at 200-900, which is not the study's and must not count.
    base = datetime.datetime(2026, 1, 1)
    minute = datetime.timedelta(minutes=1)
    spans = [(0, 10), (5, 20), (100, 130), (40, 50), (45, 60), (110, 120), (112, 118)]
    own = [t for t in study.get_trials() if EMPTY_ATTR not in t.user_attrs]
    ran = [t for t in own if t.state != TrialState.WAITING]
    assert len(ran) == len(spans) + 1 and ran[-1].state == TrialState.RUNNING
    engine = make_engine(url)
    with engine.begin() as connection:
        table = sqlalchemy.table(
            "trials",
            sqlalchemy.column("trial_id"),
            sqlalchemy.column("datetime_start"),
            sqlalchemy.column("datetime_complete"),
        )
        for trial, (a, b) in zip(ran, spans):
            connection.execute(
                table.update()
                .where(table.c.trial_id == trial._trial_id)
                .values(datetime_start=base + a * minute, datetime_complete=base + b * minute)
            )
        connection.execute(
            table.update()
            .where(table.c.trial_id == empty._trial_id)
            .values(datetime_start=base + 200 * minute, datetime_complete=base + 900 * minute)
        )
        running = base + 125 * minute
        connection.execute(
            table.update()
            .where(table.c.trial_id == ran[-1]._trial_id)
            .values(datetime_start=running)
        )
    before = datetime.datetime.now()
    active = trial_overview(engine, "s").active_seconds
    after = datetime.datetime.now()
    # 20 + 20 + 30 minutes, then the running trial's time past 130.
    fixed = (20 + 20 + 30) * 60
    assert fixed + (before - base).total_seconds() - 130 * 60 <= active
    assert active <= fixed + (after - base).total_seconds() - 130 * 60
