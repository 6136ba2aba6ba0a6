from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from harness.bench import paired_ratio
from harness.cli import app
from tests.helpers import tiny_dict, write_study


@pytest.mark.e2e
def test_bench_writes_every_mode_and_ratio(tmp_path):
    study = write_study(tmp_path, tiny_dict())
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--study",
            str(study),
            "--out",
            str(out),
            "--windows",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    run = report["batch_sizes"]["16"]
    assert set(run["samples_per_second"]) == {
        "plain",
        "plain_2_tokens",
        "cached_1",
        "cached_2",
        "online_1",
        "online_2",
    }
    assert all(len(w) == 2 and min(w) > 0 for w in run["windows"].values())
    ratios = report["ratios"]
    for name in (
        "cached_over_plain",
        "online_over_plain",
        "cached_over_online",
        "cached_over_plain_same_tokens",
        "tokens_over_plain",
    ):
        low, high = ratios[name]["ci95"]
        assert 0 < ratios[name]["min"] <= low <= ratios[name]["median"] <= high
        assert high <= ratios[name]["max"]
    windows = run["windows"]
    per_round = [a / b for a, b in zip(windows["cached_2"], windows["online_2"], strict=True)]
    assert ratios["cached_over_online"]["median"] == pytest.approx(statistics.median(per_round))
    assert ratios["ideal_cached_over_online"] > 1.0  # teachers take time when run online
    for part in report["cache"].values():
        assert part["bytes_per_sample"] > 0 and part["build_entries_per_second"] > 0
    assert report["peak_memory_mib"] > 0


def test_paired_ratio_compares_windows_of_the_same_round():
    rates = {"a": [2.0, 4.0, 6.0], "b": [1.0, 1.0, 3.0]}
    assert paired_ratio(rates, "a", "b") == {
        "median": 2.0,
        "ci95": [2.0, 4.0],  # three rounds: the interval is the whole range
        "min": 2.0,
        "max": 4.0,
    }


def test_paired_ratio_interval_is_the_order_statistics_of_the_median():
    # 100 rounds: ranks 40 and 61 of the sorted ratios (binomial 95% interval of the median).
    rates = {"a": [float(i) for i in range(1, 101)], "b": [1.0] * 100}
    ratio = paired_ratio(rates, "a", "b")
    assert ratio["median"] == 50.5
    assert ratio["ci95"] == [40.0, 61.0]


@pytest.mark.e2e
def test_the_teacher_inference_benchmark_times_each_batch_and_finds_the_logits_unchanged(
    tmp_path,
):
    """`benchmarks/teacher_inference.py` on the tiny study: a line per teacher and batch,
    each saying its logits equal the 512-image batches' (on the CPU they do)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    study = write_study(tmp_path, tiny_dict())
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "teacher_inference.py"), str(study)]
        + ["--images", "40", "--batches", "512", "16", "--repeats", "1"],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    lines = [line for line in done.stdout.splitlines() if " batch " in line]
    assert [line.split(" batch ")[0] for line in lines] == ["conv (resnet)"] * 2 + [
        "inv (rednet)"
    ] * 2
    assert all(line.endswith("logits identical to batch 512") for line in lines), lines
    assert done.stdout.startswith("40 images of digits, 1 thread; libkd's CPU batch: 32")
