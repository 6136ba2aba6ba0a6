from __future__ import annotations

import json

from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import tiny_dict, write_study


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
        "ideal_cached_over_online",
        "cached_over_plain_same_tokens",
    ):
        assert ratios[name] > 0
    assert (
        ratios["cached_over_online"]
        == run["samples_per_second"]["cached_2"] / run["samples_per_second"]["online_2"]
    )
    assert ratios["ideal_cached_over_online"] > 1.0  # teachers take time when run online
    for part in report["cache"].values():
        assert part["bytes_per_sample"] > 0 and part["build_entries_per_second"] > 0
    assert report["peak_memory_mib"] > 0
