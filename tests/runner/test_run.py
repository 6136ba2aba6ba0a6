from __future__ import annotations

import csv
import json
import os
import shutil
import signal

import optuna
import pytest
from optuna.trial import TrialState

from harness.analysis import load_runs, publish
from harness.runner import run_study
from harness.status import RunStatus
from harness.store import COPIED_ATTR, SEED_ATTR, Store
from harness.study import load_study, study_from_dict
from tests.helpers import fail_conv_trials, start_cli_run, tiny_dict, wait_mid_trial, write_study


def _complete_pairs(url: str, study: str) -> list[tuple[str, int]]:
    runs = load_runs(Store(url), study)
    done = runs.filter(runs["status"] == "complete")
    return sorted(zip(done["config_hash"].to_list(), done["seed"].to_list()))


@pytest.mark.e2e
def test_grid_runs_every_trial_once_and_a_rerun_does_nothing(
    tmp_path, storage_url, fresh_cache_dir
):
    cache_dir = fresh_cache_dir  # what building the teachers does is asserted below
    study = study_from_dict(tiny_dict(seeds=[0]))
    first = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (first.enqueued, first.ran, first.complete, first.failed) == (3, 3, 3, 0)
    second = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (second.enqueued, second.ran, second.complete) == (0, 0, 3)
    pairs = _complete_pairs(storage_url, "tiny")
    assert len(pairs) == len(set(pairs)) == 3
    # Teachers trained once: the second distilled configuration reuses conv.
    runs = Store(storage_url).runs("tiny")
    assert [r.teacher_seconds > 0 for r in runs] == [False, True, True]  # conv, then inv built
    assert runs[2].cache_status in ("built", "hit")
    # Adding a seed later queues only the new (configuration, seed) pairs.
    more = run_study(
        study_from_dict(tiny_dict(seeds=[0, 1])), store=Store(storage_url), cache_dir=cache_dir
    )
    assert (more.enqueued, more.ran) == (3, 3)


@pytest.mark.e2e
def test_failing_trial_is_recorded_and_the_study_goes_on(storage_url, cache_dir, monkeypatch):
    from harness.runner import _trial

    real = fail_conv_trials(monkeypatch)
    study = study_from_dict(tiny_dict(seeds=[0]))
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.complete, summary.failed) == (2, 1)
    failed = [r for r in Store(storage_url).runs("tiny") if r.status == "failed"]
    assert len(failed) == 1 and failed[0].error == "RuntimeError: boom"
    # --retry-failed re-queues it; with the fault gone it completes.
    monkeypatch.setattr(_trial, "train_student", real)
    retried = run_study(study, store=Store(storage_url), cache_dir=cache_dir, retry=True)
    assert (retried.requeued, retried.ran, retried.complete) == (1, 1, 3)
    assert (retried.failed, retried.retried) == (0, 1)  # its copy stands for it


@pytest.mark.e2e
def test_killed_run_resumes_without_repeating_finished_work(tmp_path, storage_url, cache_dir):
    data = tiny_dict(seeds=[0, 1], train={"epochs": 25, "batch_size": 32, "lr": 1.0e-3})
    path = write_study(tmp_path, data)
    proc = start_cli_run(path, storage_url, cache_dir)
    try:
        wait_mid_trial(storage_url, complete=2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done_before = _complete_pairs(storage_url, "tiny")
    summary = run_study(load_study(path), store=Store(storage_url), cache_dir=cache_dir)
    assert summary.requeued == 1
    assert (summary.failed, summary.retried) == (0, 1)  # interrupted, not failed
    pairs = _complete_pairs(storage_url, "tiny")
    assert len(pairs) == len(set(pairs)) == 6
    assert set(done_before) <= set(pairs)
    killed = [r for r in Store(storage_url).runs("tiny") if r.status == "failed"]
    assert len(killed) == 1 and "died" in killed[0].error
    trials = optuna.load_study(study_name="tiny", storage=storage_url).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6


def _epochs_stored(url: str, run_id: int) -> list[int]:
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        query = "select epoch from libkd_epochs where run_id = ? and name = 'train/loss'"
        return sorted(epoch for (epoch,) in db.execute(query, (run_id,)))


@pytest.mark.e2e
def test_a_trial_stopped_mid_training_goes_on_from_its_students_last_epoch(
    tmp_path, cache_dir, monkeypatch
):
    """Ctrl-C as the student's third of five epochs ends: the re-queued copy puts the two
    epochs of the resume state back (stored again under its own run), trains three, and
    stores what an uninterrupted trial stores; the resume state is gone once it is stored."""
    from harness.cache import STUDENTS_DIR
    from harness.distill import _train
    from harness.metrics import COST_CPU_SECONDS, COST_RESUMED_EPOCHS, TEST_TOP1

    monkeypatch.setattr("harness.distill._resume.RESUME_EVERY_SECONDS", 0.0)
    data = tiny_dict(seeds=[0], grid={"distill.teachers": [["conv"]]})
    data["train"] |= {"epochs": 5}
    study = study_from_dict(data)
    whole_url, cut_url = (f"sqlite:///{tmp_path / name}.db" for name in ("whole", "cut"))
    assert run_study(study, store=Store(whole_url), cache_dir=cache_dir).complete == 1
    real = _train.EpochReport.__init__
    calls = {"n": 0}

    def interrupt_third(self, *args, **kwargs):  # the third report of the first training
        real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_train.EpochReport, "__init__", interrupt_third)
        with pytest.raises(KeyboardInterrupt):
            run_study(study, store=Store(cut_url), cache_dir=cache_dir)
    states = list((cache_dir / STUDENTS_DIR).glob(".*.resume.pt"))
    assert len(states) == 1  # written after the second epoch
    # The run's CPU time is the process's, read as it starts and as it ends.
    clock = iter([10.0, 52.0])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("harness.runner._trial.time.process_time", lambda: next(clock))
        resumed = run_study(study, store=Store(cut_url), cache_dir=cache_dir)
    assert (resumed.complete, resumed.failed, resumed.retried) == (1, 0, 1)
    [done] = Store(cut_url).runs("tiny", status=RunStatus.COMPLETE)
    [reference] = Store(whole_url).runs("tiny", status=RunStatus.COMPLETE)
    assert done.metrics[COST_RESUMED_EPOCHS] == 2
    assert done.metrics[COST_CPU_SECONDS] == 42.0  # this sitting's, beside the wall time
    # Where the two epochs were trained: this checkout, as the run's own environment says.
    [sitting] = done.environment["resumed_from"]
    assert sitting["epochs"] == 2 and sitting["commit"] == done.environment["commit"]
    assert COST_RESUMED_EPOCHS not in reference.metrics
    assert done.metrics[TEST_TOP1] == reference.metrics[TEST_TOP1]
    assert done.metrics["train/loss"] == reference.metrics["train/loss"]
    assert _epochs_stored(cut_url, done.id) == [0, 1, 2, 3, 4]
    assert list((cache_dir / STUDENTS_DIR).iterdir()) == []  # nor its lock file


@pytest.mark.e2e
def test_a_cache_folder_where_no_student_state_can_be_written_still_trains(storage_url, cache_dir):
    from harness.cache import STUDENTS_DIR

    shutil.rmtree(cache_dir / STUDENTS_DIR, ignore_errors=True)
    (cache_dir / STUDENTS_DIR).write_text("")  # a file where the folder would be
    study = study_from_dict(tiny_dict(seeds=[0], grid={"distill.teachers": [[]]}))
    with pytest.warns(UserWarning, match="trains without a resume state"):
        summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.complete, summary.failed) == (1, 0)


@pytest.mark.e2e
def test_seed_scope_varies_teachers_views_and_subset_with_the_seed(storage_url, cache_dir):
    from harness.config import TrialConfig

    base = TrialConfig.model_validate(
        {
            "teachers": {"conv": {"arch": "resnet", "seed": 5}},
            "distill": {"teachers": ["conv"]},
            "seed_scope": ["teacher", "augment", "subset"],
        }
    )
    moved = base.for_seed(2)
    assert (moved.teachers["conv"].seed, moved.augment.aug_seed) == (7, 2)
    assert moved.dataset.subset_seed == 2
    assert TrialConfig().for_seed(2) == TrialConfig()  # by default the seed is the student's
    # Run: each seed trains (and keys) its own teacher instance and its own cache; the
    # run rows record the configuration each seed really trained.
    data = tiny_dict(
        seeds=[0, 1], grid={"distill.teachers": [["conv"]]}, seed_scope=["teacher", "augment"]
    )
    run_study(study_from_dict(data), store=Store(storage_url), cache_dir=cache_dir)
    store = Store(storage_url)
    runs = store.runs("tiny")
    assert [r.config["teachers"]["conv"]["seed"] for r in runs] == [0, 1]
    assert [r.config["augment"]["aug_seed"] for r in runs] == [0, 1]
    assert len({r.config_hash for r in runs}) == 1  # one configuration, two seeds
    kinds = [a.kind for a in store.artifacts()]
    assert kinds.count("teacher") == 2 and kinds.count("cache") == 2


@pytest.mark.e2e
def test_a_stem_token_study_trains_end_to_end(storage_url, cache_dir):
    data = tiny_dict(seeds=[0], grid={"distill.teachers": [["conv", "inv"]]})
    data["student"] = {**data["student"], "tokens": "stem"}
    summary = run_study(study_from_dict(data), store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.complete, summary.failed) == (1, 0)
    [run] = Store(storage_url).runs("tiny")
    assert run.config["student"]["tokens"] == "stem"
    assert {"val/top1_conv", "val/top1_inv", "test/top1"} <= set(run.metrics)


@pytest.mark.e2e
def test_a_study_copies_runs_another_study_of_the_database_trained(
    tmp_path, storage_url, cache_dir
):
    """Same configuration and seed, same experiment: the second study trains only what is
    new to the database, and its Optuna trials still carry value and curve."""
    first = tiny_dict(name="first", seeds=[0], grid={"distill.teachers": [[], ["conv"]]})
    run_study(study_from_dict(first), store=Store(storage_url), cache_dir=cache_dir)
    second = tiny_dict(name="second", seeds=[0, 1], grid={"distill.teachers": [[], ["conv"]]})
    summary = run_study(study_from_dict(second), store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.ran, summary.copied, summary.complete) == (2, 2, 4)

    store = Store(storage_url)
    trained = {(r.config_hash, r.seed): r for r in store.runs("first")}
    runs = store.runs("second")
    copies = [r for r in runs if r.adopted_from is not None]
    assert sorted(r.seed for r in copies) == [0, 0]
    for copy in copies:
        source = trained[(copy.config_hash, copy.seed)]
        assert (copy.adopted_from, copy.top1) == (source.id, source.top1)
    assert all(r.adopted_from is None and r.seed == 1 for r in runs if r not in copies)

    # The published record dates the study by the runs it trained, and counts the copies.
    out = publish(store, "second", out_dir=tmp_path / "second", command="libkd run second")
    environment = json.loads((out.parent / "environment.json").read_text())
    own_runs = [r for r in runs if r not in copies]
    assert (environment["runs"], environment["copied"]) == (4, 2)
    assert environment["started"] == min(r.started_at for r in own_runs).isoformat()
    assert "4 complete runs (2 copied from other studies of this database)" in out.read_text()
    with (out.parent / "runs.csv").open() as f:
        sources = [row["adopted_from"] for row in csv.DictReader(f)]
    assert sorted(sources) == ["", ""] + sorted(str(c.adopted_from) for c in copies)

    optuna_study = optuna.load_study(study_name="second", storage=storage_url)
    for trial in optuna_study.get_trials(states=[TrialState.COMPLETE]):
        assert len(trial.intermediate_values) == 2  # the copied run's curve, one per epoch
        assert trial.intermediate_values[1] == trial.values[0]
    marked = [t.user_attrs.get(COPIED_ATTR) for t in optuna_study.trials]
    assert sorted(filter(None, marked)) == sorted(c.adopted_from for c in copies)

    # reuse_runs: false trains every run of the study itself.
    own = tiny_dict(name="own", seeds=[0], grid={"distill.teachers": [[]]}, reuse_runs=False)
    summary = run_study(study_from_dict(own), store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.ran, summary.copied) == (1, 0)
    assert Store(storage_url).runs("own")[0].adopted_from is None


@pytest.mark.e2e
def test_a_cached_teacher_is_evaluated_on_test_once_not_every_trial(
    storage_url, cache_dir, monkeypatch
):
    from harness.runner import _trial

    calls = []
    real = _trial.top1

    def counted(model, data, *, split="val", **kwargs):
        calls.append(split)
        return real(model, data, split=split, **kwargs)

    monkeypatch.setattr(_trial, "top1", counted)
    grid = {"distill.teachers": [["conv"], ["conv", "inv"]]}
    study = study_from_dict(tiny_dict(seeds=[0], grid=grid))
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert summary.complete == 2
    assert calls == ["test", "test"]  # conv once (the second trial reads it back), inv once
    store = Store(storage_url)
    metas = [a.meta for _, a in store.study_artifacts("tiny") if a.kind == "teacher"]
    assert len(metas) == 2 and all(0.0 <= m["test_top1"] <= 1.0 for m in metas)


@pytest.mark.e2e
def test_one_off_costs_are_the_builds_even_when_another_database_built_them(storage_url, cache_dir):
    from harness.analysis import report_frame

    # cache_dir starts as the session's template: its teachers and caches were built by a
    # study of another database, so this study finds them all.
    study = study_from_dict(tiny_dict(seeds=[0], grid={"distill.teachers": [["conv"]]}))
    run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    [run] = Store(storage_url).runs("tiny")
    assert run.teacher_seconds == 0.0 and run.cache_status == "hit"  # nothing built here
    [row] = report_frame(Store(storage_url), "tiny").iter_rows(named=True)
    assert row["one_off_teacher_seconds"] > 0 and row["one_off_cache_seconds"] > 0


@pytest.mark.e2e
def test_run_study_calls_optuna_callbacks_after_each_trial(storage_url, cache_dir):
    seen = []
    study = study_from_dict(tiny_dict(seeds=[0, 1], grid={"distill.teachers": [[], ["conv"]]}))
    summary = run_study(
        study,
        store=Store(storage_url),
        cache_dir=cache_dir,
        callbacks=[lambda opened, trial: seen.append((trial.state, trial.user_attrs[SEED_ATTR]))],
    )
    assert summary.complete == 4
    assert sorted(seen) == sorted([(TrialState.COMPLETE, s) for s in (0, 0, 1, 1)])


@pytest.mark.e2e
def test_optuna_integrations_mlflow_callback_logs_every_trial(
    tmp_path, monkeypatch, storage_url, cache_dir
):
    """The bridge to experiment trackers: optuna-integration's MLflow callback, passed to
    `run_study`, logs each trial into a real MLflow file store, with the grid's factors (by
    label) as params and the objective under its metric name."""
    mlflow = pytest.importorskip("mlflow")
    integration = pytest.importorskip("optuna_integration.mlflow")

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 prefers a database
    tracking = (tmp_path / "mlruns").as_uri()
    study = study_from_dict(tiny_dict(seeds=[0, 1], grid={"distill.teachers": [[], ["conv"]]}))
    callback = integration.MLflowCallback(tracking_uri=tracking, metric_name="val/top1")
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir, callbacks=[callback])
    assert summary.complete == 4

    client = mlflow.tracking.MlflowClient(tracking_uri=tracking)
    [experiment] = [e for e in client.search_experiments() if e.name == "tiny"]
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4
    logged = sorted((r.data.params["distill.teachers"], r.data.metrics["val/top1"]) for r in runs)
    stored = sorted(
        (("conv" if run.label == "teachers=conv" else "none"), run.top1)
        for run in Store(storage_url).runs("tiny")
    )
    assert [teachers for teachers, _ in logged] == ["conv", "conv", "none", "none"]
    assert [teachers for teachers, _ in stored] == ["conv", "conv", "none", "none"]
    assert [value for _, value in logged] == pytest.approx([value for _, value in stored])
