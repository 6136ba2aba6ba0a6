"""Selection reads validation only: search objectives, pruning and best epochs never see a
test metric, and a study cannot name one as its objective."""

from __future__ import annotations

import optuna
import pytest

from harness.analysis import best_values, load_epochs
from harness.errors import StudyError
from harness.runner import run_study
from harness.store import Store
from harness.study import study_from_dict
from tests.helpers import tiny_dict

POISON = 0.987654  # what every test metric reads in these runs


@pytest.fixture
def poisoned_test_split(monkeypatch):
    from harness.runner import _trial

    real = _trial.evaluate

    def evaluate(model, data, *, split="val", **kwargs):
        metrics = real(model, data, split=split, **kwargs)
        return {k: POISON for k in metrics} if split == "test" else metrics

    monkeypatch.setattr(_trial, "evaluate", evaluate)


@pytest.mark.e2e
def test_search_objective_pruning_and_best_epoch_read_validation_only(
    storage_url, cache_dir, poisoned_test_split
):
    search = {
        "sampler": "random",
        "n_trials": 2,
        "pruner": "median",
        "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    }
    data = tiny_dict(seeds=[0], grid={}, search=search, distill={"teachers": []})
    data["train"] = dict(data["train"], epochs=3)
    run_study(study_from_dict(data), store=Store(storage_url), cache_dir=cache_dir)
    store = Store(storage_url)
    runs = [r for r in store.runs("tiny") if r.status == "complete"]
    assert runs and all(r.metrics["test/top1"] == POISON for r in runs)  # the poison landed
    epochs = load_epochs(store, "tiny")
    assert not epochs.filter(epochs["name"].str.starts_with("test/")).height  # never per epoch
    trials = optuna.load_study(study_name="tiny", storage=storage_url).trials
    for trial in trials:
        assert POISON not in trial.intermediate_values.values()
        if trial.value is not None:
            assert trial.value != POISON
    by_run = {r.id: r for r in runs}
    for run_id, best in best_values(store, "tiny").iter_rows():
        if run_id in by_run:
            assert best != POISON
            assert best == max(
                v
                for (rid, _, name, v) in epochs.select(
                    "run_id", "epoch", "name", "value"
                ).iter_rows()
                if rid == run_id and name == "val/top1"
            )
    # The objective is the validation top-1 of the run (one seed: the mean is that run's).
    values = sorted(t.value for t in trials if t.value is not None)
    assert values == sorted(r.top1 for r in runs)


def test_a_test_metric_cannot_be_an_objective():
    with pytest.raises(StudyError, match=r"objectives\[0\]\.metric: 'test/top1' reads the test"):
        study_from_dict(tiny_dict(objectives=[{"metric": "test/top1"}]))
