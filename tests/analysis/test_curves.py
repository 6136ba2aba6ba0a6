import polars as pl
import pytest

from harness.analysis._curves import curve_table


def _summary(label: str, means: list[float], *, n: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "config_hash": [label] * len(means),
            "label": [label] * len(means),
            "name": ["val/top1"] * len(means),
            "epoch": [2 * i + 1 for i in range(len(means))],  # evaluated every 2nd epoch
            "n": [n] * len(means),
            "mean": means,
            "std": [0.01] * len(means),
        }
    )


def test_a_rising_curve_has_no_plateau_and_a_flat_one_has():
    rising = [0.1 * i for i in range(1, 9)]  # epochs 2, 4, ..., 16
    flat = [0.5, 0.7, 0.8, 0.81, 0.812, 0.813, 0.813, 0.814]
    table = curve_table(pl.concat([_summary("rising", rising), _summary("flat", flat)]))
    rows = {row["label"]: row for row in table.iter_rows(named=True)}
    # 75% of 16 epochs is epoch 12, the 6th evaluation: the gain is the last 2 evaluations.
    assert rows["rising"]["last_quarter_gain"] == pytest.approx(0.8 - 0.6)
    assert rows["rising"]["plateau"] == "no"
    assert rows["flat"]["last_quarter_gain"] == pytest.approx(0.814 - 0.813)
    assert rows["flat"]["plateau"] == "yes"
    assert rows["flat"]["best_epoch"] == 16


def test_the_table_shows_first_and_last_epoch_and_at_most_six():
    table = curve_table(_summary("c", [0.1 * i for i in range(1, 21)]))
    epochs = [c for c in table.columns if c.startswith("epoch_")]
    assert len(epochs) == 6
    assert epochs[0] == "epoch_2" and epochs[-1] == "epoch_40"
    assert table["epoch_40"][0] == pytest.approx(2.0)
    assert table["n"][0] == 3
