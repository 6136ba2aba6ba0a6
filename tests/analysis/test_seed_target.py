"""What a seed plan aims at: validation top-1 or the test top-1 the contrasts report. The
plan reads that metric's first-stage spread for how many seeds to run, and the report's
Stein interval takes exactly the seeds that plan chose."""

from __future__ import annotations

import pytest

from harness.analysis import (
    Aim,
    contrast_frame,
    finished_runs,
    load_runs,
    seed_precision,
    seeds_to_add,
    study_contrasts,
)
from harness.metrics import TEST_TOP1, VAL_TOP1
from harness.status import RunStatus
from harness.store import ContrastRow, RunIdentity, Store
from tests.helpers import record_run

TREATMENT, CONTROL = "t" * 64, "c" * 64
# Paired deltas per seed: identical on validation (spread 0), spread out on test.
VAL_DELTAS = [0.02, 0.02, 0.02, 0.02, 0.02]
TEST_DELTAS = [0.0, 0.04, 0.08, 0.01, 0.03]


def _store(url: str, target_metric: str, *, failed: tuple[str, int] | None = None) -> Store:
    """Five seeds of T and C; the (config, seed) run named by `failed` failed."""
    store = Store(url)
    store.save_contrasts(
        "s",
        [
            ContrastRow(
                study="s",
                name="t_vs_c",
                position=0,
                treatment_hash=TREATMENT,
                control_hash=CONTROL,
                treatment_label="T",
                control_label="C",
                halfwidth=0.01,
                target_metric=target_metric,
                min_seeds=3,
                max_seeds=10,
            )
        ],
    )
    for seed, (val, test) in enumerate(zip(VAL_DELTAS, TEST_DELTAS)):
        for config, share in ((TREATMENT, 1.0), (CONTROL, 0.0)):
            identity = RunIdentity(
                study="s",
                trial_number=2 * seed + (config == CONTROL),
                config_hash=config,
                seed=seed,
                label=config[0].upper(),
                factors={},
            )
            record_run(
                store,
                identity,
                metrics={VAL_TOP1: 0.7 + share * val, TEST_TOP1: 0.7 + share * test},
                status=RunStatus.FAILED if (config, seed) == failed else RunStatus.COMPLETE,
            )
    return store


def test_a_plan_aimed_at_test_reads_the_test_spread_and_asks_for_more_seeds(storage_url):
    store = _store(storage_url, TEST_TOP1)
    [state] = seed_precision(store, "s")
    # t[0.975, 2] * std(0, .04, .08) / 0.01 = 17.2, squared > 10: capped at max.
    assert (state.metric, state.planned, state.state) == (TEST_TOP1, 10, "running")
    finished, values = finished_runs(store, "s", TEST_TOP1)
    assert values[TREATMENT][2] == pytest.approx(0.78)
    aim = Aim.contrast("t_vs_c", TREATMENT, CONTROL, 0.01, TEST_TOP1, 3, 10)
    wanted = seeds_to_add([aim], queued=finished, finished=finished, values=values)
    assert wanted == {(config, s) for config in (TREATMENT, CONTROL) for s in range(5, 10)}


def test_a_plan_aimed_at_validation_is_met_by_its_first_stage(storage_url):
    store = _store(storage_url, VAL_TOP1)
    [state] = seed_precision(store, "s")
    assert (state.metric, state.planned, state.halfwidth, state.state) == (VAL_TOP1, 3, 0, "met")


@pytest.mark.parametrize(
    ("metric", "pairs", "said"),
    [(VAL_TOP1, 3, "no difference shown"), (TEST_TOP1, 5, "interim (5 of 10 planned pairs)")],
)
def test_the_reported_interval_takes_the_seeds_its_plan_chose(storage_url, metric, pairs, said):
    """The validation plan stopped at 3 seeds, so seeds 3 and 4 (run for another reason)
    stay out of its Stein interval; the test plan asked for 10, so all 5 are in, and until
    the other 5 are run the report draws no verdict."""
    store = _store(storage_url, metric)
    runs = load_runs(store, "s")
    [row] = contrast_frame(runs, study_contrasts(store, "s", runs)).to_dicts()
    assert (row["metric"], row["n"], row["method"]) == (TEST_TOP1, pairs, "two-stage (Stein)")
    assert row["delta_mean"] == pytest.approx(sum(TEST_DELTAS[:pairs]) / pairs)
    assert row["verdict"].startswith(said)


def test_a_first_stage_with_a_failed_run_stays_interim_however_many_later_seeds_pair(
    storage_url,
):
    """Seeds 0-2 are the first stage; C's seed 1 failed, so the stage is not in and the plan
    is unknown. Seeds 3 and 4 pair, which makes 4 pairs, more than the stage's 3: counting
    them would draw a verdict on a plan that never ran. Only the first stage's 2 count."""
    store = _store(storage_url, TEST_TOP1, failed=(CONTROL, 1))
    runs = load_runs(store, "s")
    [row] = contrast_frame(runs, study_contrasts(store, "s", runs)).to_dicts()
    assert (row["n"], row["verdict"]) == (2, "interim (2 of 3 planned pairs)")
    assert row["delta_mean"] == pytest.approx((TEST_DELTAS[0] + TEST_DELTAS[2]) / 2)
