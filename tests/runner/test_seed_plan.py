"""Seeds spent where a contrast is undecided: the runner queues a contrast's second stage
when its first is in, for its two configurations only, once, with one or two workers."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from harness.runner import RunnerSession, run_local_workers, run_study
from harness.store import Store
from harness.study import load_study, study_from_dict
from tests.helpers import tiny_dict, write_study

CONTRAST = {
    "name": "conv_inv_vs_conv",
    "treatment": {"distill.teachers": ["conv", "inv"]},
    "control": {"distill.teachers": ["conv"]},
}


def _planned(halfwidth: float) -> dict:
    return tiny_dict(
        seeds={"min": 3, "max": 4, "target": {"halfwidth": halfwidth}},
        contrasts=[CONTRAST],
    )


def _seeds_by_label(url: str) -> dict[str, list[int]]:
    runs = [r for r in Store(url).runs("tiny") if r.status == "complete"]
    pairs = Counter((r.label, r.seed) for r in runs)
    assert set(pairs.values()) == {1}, pairs  # no (configuration, seed) ran twice
    seeds: dict[str, list[int]] = {}
    for label, seed in sorted(pairs):
        seeds.setdefault(label, []).append(seed)
    return seeds


@pytest.mark.e2e
def test_an_undecided_contrast_gets_its_second_stage_and_no_other_configuration_does(
    storage_url, cache_dir
):
    # A target no 3-seed interval meets: the contrast needs more than its first stage, and
    # the plan caps it at max = 4 seeds.
    study = study_from_dict(_planned(halfwidth=1e-9))
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.enqueued, summary.ran, summary.failed) == (9, 11, 0)
    assert _seeds_by_label(storage_url) == {
        "teachers=conv": [0, 1, 2, 3],
        "teachers=conv+inv": [0, 1, 2, 3],
        "teachers=none": [0, 1, 2],  # in no targeted contrast: the first stage only
    }
    # Resuming finds nothing left to do.
    again = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (again.enqueued, again.ran) == (0, 0)
    [row] = Store(storage_url).contrasts("tiny")
    assert (row.name, row.halfwidth, row.target_metric, row.min_seeds, row.max_seeds) == (
        "conv_inv_vs_conv",
        1e-9,
        "val/top1",  # the default
        3,
        4,
    )
    assert (row.treatment_label, row.control_label) == ("teachers=conv+inv", "teachers=conv")


@pytest.mark.e2e
def test_a_decided_contrast_stops_at_its_first_stage(storage_url, cache_dir):
    study = study_from_dict(_planned(halfwidth=0.99))
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.enqueued, summary.ran) == (9, 9)
    assert set(map(tuple, _seeds_by_label(storage_url).values())) == {(0, 1, 2)}


@pytest.mark.e2e
def test_two_local_workers_queue_the_second_stage_once(tmp_path, storage_url, cache_dir):
    study = load_study(write_study(tmp_path, _planned(halfwidth=1e-9)))
    session = RunnerSession(study, store=Store(storage_url))
    session.prepare()
    summary = run_local_workers(session, cache_dir=cache_dir, device="cpu", workers=2)
    assert (summary.complete, summary.failed, summary.waiting) == (11, 0, 0)
    seeds = _seeds_by_label(storage_url)
    assert seeds["teachers=conv+inv"] == seeds["teachers=conv"] == [0, 1, 2, 3]


@pytest.mark.e2e
def test_status_shows_each_aimed_contrast_and_its_half_width(storage_url, cache_dir):
    from typer.testing import CliRunner

    from harness.cli import app

    run_study(
        study_from_dict(_planned(halfwidth=1e-9)), store=Store(storage_url), cache_dir=cache_dir
    )
    result = CliRunner().invoke(app, ["status", "tiny", "--storage", storage_url])
    assert result.exit_code == 0, result.output
    assert "tiny: seed plan" in result.output
    line = next(row for row in result.output.splitlines() if "conv_inv_vs_conv" in row)
    # 4 pairs of the 4 the plan asked for (capped at max), a half-width above 1e-9: at max.
    assert re.search(r"conv_inv_vs_conv\s*│\s*4\s*│\s*4\s*│\s*4\s*│\s*\d\.\d{4}\s*│", line), line
    assert "at max" in line


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.slow
def test_two_postgres_workers_spend_the_plan_once(tmp_path, postgres_url, cache_dir):
    """`libkd worker` processes on one PostgreSQL database: whichever sees the first stage
    finish queues the second, once (the claim), and no (configuration, seed) runs twice."""
    import os
    import subprocess

    from harness.runner import RunnerSettings, worker_command
    from harness.testing.postgres import fresh_database

    url = fresh_database(postgres_url)
    study = load_study(write_study(tmp_path, _planned(halfwidth=1e-9)))
    RunnerSession(study, store=Store(url)).prepare()
    env = dict(os.environ, OMP_NUM_THREADS="1", LIBKD_STORAGE=url)
    command = worker_command("tiny", cache_dir=cache_dir, device="cpu", settings=RunnerSettings())
    workers = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    seeds = _seeds_by_label(url)
    assert seeds["teachers=conv+inv"] == seeds["teachers=conv"] == [0, 1, 2, 3]
    assert seeds["teachers=none"] == [0, 1, 2]


def test_status_says_a_first_stage_plan_may_queue_more_than_the_time_left_counts():
    from rich.console import Console

    from harness.analysis import Precision
    from harness.cli._tables import precision_table

    def shown(state: str) -> str:
        aim = Precision("gain", 1, None, None, 0.005, "test/top1_cls", 10, state)
        console = Console(width=200, record=True)
        console.print(precision_table([aim], title="plan"))
        return " ".join(console.export_text().split())  # the caption wraps

    assert "may yet queue more seeds" in shown("first stage")
    assert "may yet queue" not in shown("running")  # the second stage is queued: counted
