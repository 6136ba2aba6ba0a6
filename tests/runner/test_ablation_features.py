"""A study that uses the ablation features end to end: a born-again teacher trained, cached
and distilled; a data-size factor under one step budget; a trend and a class-head contrast
declared in the file, recorded when queued and reported by `libkd report` and `publish`."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from harness.analysis import load_runs, publish
from harness.cli import app
from harness.runner import run_study
from harness.store import Store
from harness.study import study_from_dict
from tests.helpers import tiny_dict

STEPS = 5


def _study() -> dict:
    data = tiny_dict(
        name="ablate",
        seeds=[0, 1],
        train={"steps": STEPS, "batch_size": 8, "lr": 1.0e-3, "warmup_steps": 1},
        grid={"distill.teachers": [[], ["self"]], "dataset.train_per_class": [4, 8]},
        contrasts=[
            {
                "name": "born_again",
                "treatment": {"distill.teachers": ["self"], "dataset.train_per_class": 8},
                "control": {"distill.teachers": [], "dataset.train_per_class": 8},
                "metric": "test/top1_cls",
            }
        ],
        trends=[
            {
                "name": "gain_vs_data",
                "factor": "dataset.train_per_class",
                "treatment": {"distill.teachers": ["self"]},
                "control": {"distill.teachers": []},
                "metric": "test/top1_cls",
            }
        ],
    )
    data["teachers"]["self"] = {"arch": "student", "train": {"epochs": 1, "batch_size": 16}}
    return data


@pytest.mark.e2e
def test_born_again_teacher_step_budget_trend_and_contrast_metric(storage_url, cache_dir, tmp_path):
    study = study_from_dict(_study())
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.complete, summary.failed) == (8, 0)
    store = Store(storage_url)
    runs = store.runs("ablate")
    for run in runs:
        per_class = run.config["dataset"]["train_per_class"]
        per_epoch = math.ceil(per_class * 10 / 8)
        # Equal training: STEPS steps whatever the data, in as many epochs as that takes.
        assert run.epochs_done == math.ceil(STEPS / per_epoch)
    taught = [r for r in runs if r.config["distill"]["teachers"]]
    assert {r.cache_status for r in taught} <= {"built", "hit"}
    teachers = [a for _, a in store.study_artifacts("ablate") if a.kind == "teacher"]
    # One born-again teacher per training-set size (its data differs), each a test top-1.
    assert sorted(a.name for a in teachers) == ["self:student", "self:student"]
    assert all(0.0 <= a.meta["test_top1"] <= 1.0 for a in teachers)
    assert store.trends("ablate")[0].metric == "test/top1_cls"
    assert store.contrasts("ablate")[0].metric == "test/top1_cls"
    result = CliRunner().invoke(app, ["report", "ablate", "--storage", storage_url])
    assert result.exit_code == 0, result.output
    assert "gain_vs_data" in result.output and "test/top1_cls" in result.output
    report = publish(store, "ablate", out_dir=tmp_path / "ablate", command="test").read_text()
    assert "| gain_vs_data | test/top1_cls | 2 |" in report
    assert "| born_again | test/top1_cls | 2 |" in report
    assert len(load_runs(store, "ablate")) == 8
