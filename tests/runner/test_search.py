from __future__ import annotations

import signal

import optuna
import pytest
from optuna.trial import TrialState

from harness.errors import StudyError
from harness.runner import run_study
from harness.store import Store, load_optuna_study, optuna_storage
from harness.study import PRUNERS, load_study, study_from_dict
from tests.helpers import start_cli_run, tiny_dict, wait_mid_trial, write_study

SPACE = {
    "distill.temperature.conv": {"type": "float", "low": 1.0, "high": 8.0, "log": True},
    "distill.weights.conv": {"type": "float", "low": 0.5, "high": 2.0},
    "distill.loss": {"type": "categorical", "choices": ["soft", "hard"]},
    "distill.teachers": {"type": "categorical", "choices": [["conv"], ["conv", "inv"]]},
}


def _search_dict(**search):
    spec = {"sampler": "tpe", "n_trials": 3, "pruner": "none", "space": SPACE, **search}
    return tiny_dict(
        grid={},
        search=spec,
        seeds=[0, 1],
        distill={
            "teachers": ["conv"],
            "temperature": {"conv": 2.0, "inv": 2.0},
            "weights": {"cls": 1.0, "conv": 1.0, "inv": 1.0},
        },
    )


def test_search_space_is_parsed_from_yaml(tmp_path):
    study = load_study(write_study(tmp_path, _search_dict()))
    space = study.file.search.space
    assert space["distill.temperature.conv"].log is True
    assert space["distill.teachers"].choices == (["conv"], ["conv", "inv"])


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {"distill.temperature.conv": {"type": "float", "low": 4.0, "high": 1.0}},
            "search.space.distill.temperature.conv: low <= high",
        ),
        ({"train.lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "low > 0 with log"),
        (
            {"train.lrr": {"type": "float", "low": 0.1, "high": 1.0}},
            "search.space.train.lrr: no such parameter",
        ),
        ({"train.lr": {"type": "normal", "low": 0.1, "high": 1.0}}, "search.space.train.lr"),
        ({"train.lr": {"type": "categorical", "choices": []}}, "search.space.train.lr"),
    ],
)
def test_bad_distributions_name_their_path(space, message):
    with pytest.raises(StudyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        study_from_dict(_search_dict(space=space))


@pytest.mark.e2e
def test_search_trial_averages_seeds_and_stores_a_run_per_seed(storage_url, cache_dir):
    study = study_from_dict(_search_dict(n_trials=2))
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert summary.complete == 2
    opened = load_optuna_study("tiny", optuna_storage(storage_url))
    runs = Store(storage_url).runs("tiny")
    assert len(runs) == 4 and {r.seed for r in runs} == {0, 1}
    for trial in opened.get_trials():
        rows = [r for r in runs if r.trial_number == trial.number]
        assert len(rows) == 2
        assert trial.value == pytest.approx(sum(r.top1 for r in rows) / 2)
        assert isinstance(trial.params["distill.loss"], str)
    # Finished: a second run does nothing; --n-trials extends it.
    assert run_study(study, store=Store(storage_url), cache_dir=cache_dir).ran == 0
    extended = run_study(study, store=Store(storage_url), cache_dir=cache_dir, max_trials=1)
    assert extended.ran == 1 and extended.complete == 3


@pytest.mark.e2e
def test_pruned_trial_keeps_its_state_and_partial_rows(storage_url, cache_dir, monkeypatch):
    # A pruner that prunes every trial once it has reported its first epoch.
    monkeypatch.setitem(
        PRUNERS._entries,
        "median",
        lambda search, epochs: optuna.pruners.ThresholdPruner(lower=1.01),
    )
    # The student's state is written after every epoch: the one pruned after epoch 0 too.
    monkeypatch.setattr("harness.distill._resume.RESUME_EVERY_SECONDS", 0.0)
    study = study_from_dict(_search_dict(n_trials=1, pruner="median"))
    run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    [trial] = load_optuna_study("tiny", optuna_storage(storage_url)).get_trials()
    assert trial.state == TrialState.PRUNED and trial.last_step == 0
    [run] = Store(storage_url).runs("tiny")
    assert run.status == "pruned" and run.epochs_done == 1 and "epoch 0" in run.error
    assert list((cache_dir / "students").iterdir()) == []  # nothing to go on from: removed


@pytest.mark.e2e
def test_nan_loss_fails_the_trial_with_reason_and_the_next_runs(storage_url, cache_dir):
    study = study_from_dict(
        tiny_dict(seeds=[0], grid={"distill.teachers": [[]], "train.lr": [1.0e30, 1.0e-3]})
    )
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.complete, summary.failed) == (1, 1)
    failed = [r for r in Store(storage_url).runs("tiny") if r.status == "failed"]
    assert len(failed) == 1 and "training loss became nan" in failed[0].error
    assert failed[0].config["train"]["lr"] == 1.0e30


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sent", "reason"), [(signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, "Terminated")]
)
@pytest.mark.e2e
def test_interrupt_then_rerun_completes_without_duplicates(
    tmp_path, storage_url, cache_dir, sent, reason
):
    """Ctrl-C, and SIGTERM (what schedulers send before they kill), re-queue the trial."""
    # 60 epochs: on a loaded machine a 1-second trial could end, and the study with it,
    # between the look that saw it running and the signal.
    data = tiny_dict(seeds=[0, 1], train={"epochs": 60, "batch_size": 16, "lr": 1.0e-3})
    path = write_study(tmp_path, data)
    proc = start_cli_run(path, storage_url, cache_dir)
    wait_mid_trial(storage_url, complete=1)
    proc.send_signal(sent)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + sent, output
    assert "run the same command again to resume" in output
    interrupted = [r for r in Store(storage_url).runs("tiny") if r.status == "failed"]
    assert len(interrupted) == 1 and reason in interrupted[0].error
    trials = load_optuna_study("tiny", optuna_storage(storage_url)).get_trials()
    # 6 trials: 1 complete, the interrupted one failed with a waiting copy, 4 never started.
    assert sum(t.state == TrialState.WAITING for t in trials) == 5
    summary = run_study(load_study(path), store=Store(storage_url), cache_dir=cache_dir)
    assert summary.complete == 6
    done = [
        (r.config_hash, r.seed) for r in Store(storage_url).runs("tiny") if r.status == "complete"
    ]
    assert len(done) == len(set(done)) == 6


@pytest.mark.e2e
def test_two_objectives_list_pareto_trials_and_draw_optuna_figures(storage_url, cache_dir):
    from typer.testing import CliRunner

    from harness.analysis import pareto_trials
    from harness.cli import app
    from harness.dashboard import importance_target, render_dashboard

    data = _search_dict(sampler="nsga2", n_trials=3)
    data["objectives"] = [
        {"metric": "val/top1", "direction": "maximize"},
        {"metric": "cost/train_seconds", "direction": "minimize"},
    ]
    study = study_from_dict(data)
    run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    front = pareto_trials(Store(storage_url), "tiny")
    opened = load_optuna_study("tiny", optuna_storage(storage_url))
    assert sorted(front["trial"].to_list()) == sorted(t.number for t in opened.best_trials)
    assert {"val/top1", "cost/train_seconds", "distill.loss"} <= set(front.columns)
    result = CliRunner().invoke(app, ["report", "tiny", "--storage", storage_url])
    assert result.exit_code == 0 and "Pareto-optimal trials" in result.output
    page = render_dashboard(Store(storage_url), "tiny")
    for figure in ("optuna-history", "optuna-parallel", "optuna-pareto", "attention-distance"):
        assert f"id='{figure}'" in page
    # Sampled numbers get slice plots (a numeric axis, a point per trial), never a category
    # per value; labels name each factor the same way in every trial.
    assert "id='slice-distill.weights.conv'" in page and "id='factor-" not in page
    assert "id='heads'" not in page and "id='cache'" not in page  # no bar per trial
    labels = {r.label for r in Store(storage_url).runs("tiny")}
    assert all("weights.conv=" in label for label in labels), labels
    # The importance chart explains the maximised objective, not its opposite: Optuna's
    # evaluator explains low values of an explicit target, so top-1 is negated.
    maximize, minimize = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE
    target = importance_target([maximize, minimize])
    assert target is not None and target(opened.best_trials[0]) == -opened.best_trials[0].values[0]
    assert importance_target([maximize]) is None  # one objective: its direction is used


def test_temperature_is_drawn_only_where_it_can_matter():
    from harness.config import SearchConfig
    from harness.study import suggest

    search = SearchConfig.model_validate(
        {
            "space": {
                "distill.temperature": {"type": "float", "low": 1.0, "high": 8.0},
                "distill.loss": {"type": "categorical", "choices": ["soft", "hard"]},
            }
        }
    )
    base = {"distill": {"teachers": ["conv"]}}
    soft = optuna.trial.FixedTrial({"distill.loss": "soft", "distill.temperature": 4.0})
    assert suggest(soft, search, base) == {"distill.loss": "soft", "distill.temperature": 4.0}
    hard = optuna.trial.FixedTrial({"distill.loss": "hard"})  # asking for T would raise here
    assert suggest(hard, search, base) == {"distill.loss": "hard"}
    plain = optuna.trial.FixedTrial({"distill.loss": "soft"})
    assert suggest(plain, search, {"distill": {"teachers": []}}) == {"distill.loss": "soft"}
