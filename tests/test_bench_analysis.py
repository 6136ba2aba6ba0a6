"""The analysis benchmark on a small synthetic study: every command timed, and the synthetic
study is what a real one looks like to the reading commands."""

from __future__ import annotations

import pytest

from benchmarks.analysis_at_scale import run_analysis_bench, synthesize
from harness.analysis import best_values, load_runs, report_frame
from harness.store import Store, load_optuna_study, optuna_storage


def test_synthetic_study_reads_like_a_real_one(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    counts = synthesize(store, name="s", seeds=3, epochs=5)
    assert counts == {"runs": 60, "epoch_rows": counts["epoch_rows"], "configurations": 20}
    report = report_frame(store, "s")
    assert report.height == 20 and set(report["n"].to_list()) == {3}
    assert best_values(store, "s").height == 60 and load_runs(store, "s").height == 60
    trials = load_optuna_study("s", optuna_storage(store.url)).get_trials()
    assert len(trials) == 60 and all(t.value is not None for t in trials)


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_analysis_times_every_command(tmp_path):
    bench = run_analysis_bench(seeds=2, repeats=1)
    assert bench["study"]["runs"] == 40 and bench["backend"] == "sqlite"
    for command in ("report", "dashboard", "status", "export"):
        timing = bench["commands"][command]
        assert timing["import_seconds"] > 0 and timing["in_process_seconds"] > 0
        assert 0 < timing["import_share"] < 1.5
    assert bench["dashboard_data_bytes"] < 1_000_000
    plans = " ".join(line for lines in bench["query_plans"].values() for line in lines)
    assert "ix_libkd_epochs_run_name_epoch_value" in plans
