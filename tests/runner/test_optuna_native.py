"""Optuna's own tools see every grid trial: factors and seed as params (with distributions
that stay valid when the grid grows), the validation curve as intermediate values, named
objectives; read here through optuna-dashboard's HTTP API."""

from __future__ import annotations

import io
import json
import sys

import pytest

from harness.runner import run_study
from harness.store import Store
from harness.study import study_from_dict
from tests.helpers import tiny_dict


def _get(app, path: str) -> dict:
    status: list[str] = []

    def start(code, headers, exc_info=None):
        status.append(code)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
    }
    body = b"".join(app(environ, start))
    assert status == ["200 OK"], (path, status, body[:300])
    return json.loads(body)


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
    space = {p["name"] for p in detail["union_search_space"]}
    assert space == {"distill.teachers", "distill.temperature", "seed"}
    codes = json.loads(next(a["value"] for a in study["user_attrs"] if a["key"] == "libkd_codes"))
    assert codes == {"distill.teachers": ["none", "conv", "conv+inv"]}  # append-only
    for trial in detail["trials"]:
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        params = {p["name"]: p["param_external_value"] for p in trial["params"]}
        assert params["seed"] == attrs["libkd_seed"]
        teachers = codes["distill.teachers"][int(params["distill.teachers"])]
        assert f"teachers={teachers}" in attrs["libkd_label"]
        assert len(trial["intermediate_values"]) == 2  # one per epoch of the tiny recipe
        assert trial["intermediate_values"][-1]["value"] == trial["values"][0]


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
        (["distill.teachers", "seed"], "teachers=conv"),
        (
            ["distill.weights", "seed", "student.inference"],
            "weights={conv:0}, inference=cls",
        ),
    ]
