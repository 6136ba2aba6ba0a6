"""Optuna's own tools see every grid trial: its factors as params (teacher sets by label, with
distributions that stay valid when the grid grows; the seed not a param, so importance never
ranks it), the validation curve as intermediate values, named objectives; read here through
optuna-dashboard's HTTP API and Optuna's own plots."""

from __future__ import annotations

import json

import pytest

from harness.runner import run_study
from harness.store import Store
from harness.study import study_from_dict
from harness.testing.tiny import wsgi_get
from tests.helpers import tiny_dict


def _get(app, path: str) -> dict:
    status, body = wsgi_get(app, path)
    assert status == "200 OK", (path, status)
    return body


@pytest.mark.e2e
def test_grid_trials_are_native_optuna_trials_and_the_grid_may_grow(storage_url, cache_dir):
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    small = tiny_dict(
        seeds=[0], grid={"distill.teachers": [[], ["conv"]], "distill.temperature": [2.0]}
    )
    run_study(study_from_dict(small), store=Store(storage_url), cache_dir=cache_dir)
    # A grown grid: a new teacher set (a categorical factor) and a new temperature (a
    # number beyond the old range) queue and run without Optuna refusing their params.
    grown = tiny_dict(
        seeds=[0, 1],
        grid={
            "distill.teachers": [[], ["conv"], ["conv", "inv"]],
            "distill.temperature": [2.0, 4.0],
        },
    )
    summary = run_study(study_from_dict(grown), store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.failed, summary.complete) == (0, 10)

    app = optuna_dashboard.wsgi(storage_url)
    [study] = _get(app, "/api/studies")["study_summaries"]
    # Short study attributes: the study file lives in libkd's tables, not here.
    assert max(len(json.dumps(attr)) for attr in study["user_attrs"]) < 200
    detail = _get(app, f"/api/studies/{study['study_id']}")
    assert detail["objective_names"] == ["val/top1"]
    space = {p["name"]: p["distribution"] for p in detail["union_search_space"]}
    assert sorted(space) == ["distill.teachers", "distill.temperature"]  # no seed
    # The teacher sets are categories named by label, the first trials' choices widened.
    assert space["distill.teachers"]["type"] == "CategoricalDistribution"
    widened = ["none", "conv", "conv+inv"]
    assert sorted(c["value"] for c in space["distill.teachers"]["choices"]) == sorted(widened)
    for trial in detail["trials"]:
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        params = {p["name"]: p for p in trial["params"]}
        assert "seed" not in params
        teachers = params["distill.teachers"]
        assert teachers["param_external_pytyp"] == str(str)
        assert f"teachers={teachers['param_external_value']}" in attrs["libkd_label"]
        assert [c["value"] for c in teachers["distribution"]["choices"]] == widened
        assert len(trial["intermediate_values"]) == 2  # one per epoch of the tiny recipe
        assert trial["intermediate_values"][-1]["value"] == trial["values"][0]
    importances = _get(app, f"/api/studies/{study['study_id']}/param_importances")
    ranked = {p["name"] for p in importances["param_importances"][0]}
    assert ranked == {"distill.teachers", "distill.temperature"}

    # Optuna's contour places the teacher sets on a categorical axis, by label.
    import optuna

    loaded = optuna.load_study(study_name="tiny", storage=storage_url)
    contour = optuna.visualization.plot_contour(
        loaded, params=["distill.teachers", "distill.temperature"]
    )
    axis = next(t for t in contour.data if getattr(t, "x", None) is not None)
    assert set(axis.x) <= set(widened) and "conv+inv" in set(axis.x)


@pytest.mark.e2e
def test_a_grid_queued_by_an_older_libkd_keeps_its_integer_codes(storage_url, cache_dir):
    """A grid whose trials were recorded with integer codes and a seed param (no
    `libkd_labelled` attribute) resumes and grows in those terms: Optuna refuses a param
    whose kind changes within a study."""
    import optuna

    from harness.runner import _optuna_study

    small = tiny_dict(seeds=[0], grid={"distill.teachers": [[], ["conv"]]})
    with pytest.MonkeyPatch.context() as patch:  # queued as libkd did before labels
        patch.setattr(_optuna_study, "mark_labelled", lambda opened: None)
        run_study(study_from_dict(small), store=Store(storage_url), cache_dir=cache_dir)
    grown = tiny_dict(seeds=[0, 1], grid={"distill.teachers": [[], ["conv"], ["inv"]]})
    summary = run_study(study_from_dict(grown), store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.failed, summary.complete) == (0, 6)
    trials = optuna.load_study(study_name="tiny", storage=storage_url).trials
    assert all(isinstance(t.params["distill.teachers"], int) for t in trials)
    assert sorted(t.params["seed"] for t in trials) == [0, 0, 0, 1, 1, 1]


@pytest.mark.e2e
def test_an_included_configuration_records_its_own_factors_as_params(storage_url, cache_dir):
    import optuna

    control = {"distill.weights": {"conv": 0}, "student.inference": "cls"}
    data = tiny_dict(seeds=[0], grid={"distill.teachers": [["conv"]]}, include=[control])
    summary = run_study(study_from_dict(data), store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.failed, summary.complete) == (0, 2)
    trials = optuna.load_study(study_name="tiny", storage=storage_url).trials
    params = sorted((sorted(t.params), t.user_attrs["libkd_label"]) for t in trials)
    assert params == [
        (["distill.teachers"], "teachers=conv"),
        (["distill.weights", "student.inference"], "weights={conv:0}, inference=cls"),
    ]


def test_a_worker_records_labels_of_a_grid_grown_while_it_runs(storage_url):
    """A worker's Optuna study caches the choice list it first recorded; after another
    process grows the grid (widening the recorded choices), the worker's next trial still
    records its label, and a list read just before the widening is read again."""
    import optuna

    from harness.runner._optuna_study import open_study, record_params, update_codes
    from harness.store import CODES_ATTR, optuna_storage

    store = Store(storage_url)
    storage = optuna_storage(storage_url)
    small = study_from_dict(tiny_dict(seeds=[0], grid={"distill.teachers": [[], ["conv"]]}))
    grown = study_from_dict(
        tiny_dict(seeds=[0], grid={"distill.teachers": [[], ["conv"], ["inv"]]})
    )
    worker = open_study(small, storage, store=store)
    study_id = storage.get_study_id_from_name("tiny")
    stale = update_codes(worker, small, store)

    def record(spec, codes) -> None:
        trial = worker.ask()
        fixed = {"seed": spec.seed, "distill.teachers": "?"}
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        record_params(
            trial, spec, small, codes, fixed, labels=True, storage=storage, trial_id=trial_id
        )
        worker.tell(trial, 0.5)

    first, *_ = small.trials()
    record(first, lambda: stale)  # this process now caches the two-label choice list
    update_codes(optuna.load_study(study_name="tiny", storage=storage), grown, store)
    reads = iter([stale, worker.user_attrs[CODES_ATTR]])
    new = next(s for s in grown.trials() if s.factors["distill.teachers"] == ["inv"])
    record(new, lambda: next(reads))  # read stale, refused, read again

    trials = optuna.load_study(study_name="tiny", storage=storage_url).trials
    assert [t.params for t in trials] == [
        {"distill.teachers": "none"},
        {"distill.teachers": "inv"},
    ]
    assert {t.distributions["distill.teachers"].choices for t in trials} == {
        ("none", "conv", "inv")
    }
