import polars as pl
import pytest

from harness.analysis._curves import curve_table


def _summary(label: str, means: list[float], *, n: int = 3, name: str = "val/top1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "config_hash": [label] * len(means),
            "label": [label] * len(means),
            "name": [name] * len(means),
            "epoch": [2 * i + 1 for i in range(len(means))],  # evaluated every 2nd epoch
            "n": [n] * len(means),
            "mean": means,
            "std": [0.01] * len(means),
        }
    )


def test_a_rising_curve_is_not_flat_at_its_end_and_a_flat_one_is():
    rising = [0.1 * i for i in range(1, 9)]  # epochs 2, 4, ..., 16
    flat = [0.5, 0.7, 0.8, 0.81, 0.812, 0.813, 0.813, 0.814]
    table = curve_table(pl.concat([_summary("rising", rising), _summary("flat", flat)]))
    rows = {row["label"]: row for row in table.iter_rows(named=True)}
    # 75% of 16 epochs is epoch 12, the 6th evaluation: the gain is the last 2 evaluations.
    assert rows["rising"]["last_quarter_gain"] == pytest.approx(0.8 - 0.6)
    assert rows["rising"]["flat_at_end"] == "no"
    assert rows["flat"]["last_quarter_gain"] == pytest.approx(0.814 - 0.813)
    assert rows["flat"]["flat_at_end"] == "yes"
    assert rows["flat"]["best_epoch"] == 16


def test_the_table_shows_first_and_last_epoch_and_at_most_six():
    table = curve_table(_summary("c", [0.1 * i for i in range(1, 21)]))
    epochs = [c for c in table.columns if c.startswith("epoch_")]
    assert len(epochs) == 6
    assert epochs[0] == "epoch_2" and epochs[-1] == "epoch_40"
    assert table["epoch_40"][0] == pytest.approx(2.0)
    assert table["n"][0] == 3


def test_only_the_named_metric_makes_the_curve_not_the_heads_beside_it():
    # epoch_summary(prefix="val/top1") also returns val/top1_cls and each teacher's head:
    # an untrained head (a student distilled with weight 0) must not pull the curve down.
    student = [0.3, 0.6, 0.7, 0.78, 0.79, 0.8]
    untrained_head = [0.1, 0.08, 0.07, 0.1, 0.09, 0.1]
    summary = pl.concat(
        [_summary("c", untrained_head, name="val/top1_conv"), _summary("c", student)]
    )
    [row] = curve_table(summary).iter_rows(named=True)
    assert [row[f"epoch_{e}"] for e in (2, 4, 6, 8, 10, 12)] == student
    assert row["last_quarter_gain"] == pytest.approx(0.8 - 0.78)  # from epoch 8 (75% of 12)
    assert row["best_epoch"] == 12


def test_schedules_of_different_lengths_are_shown_at_the_same_shares_of_training():
    short = _summary("short", [0.1 * i for i in range(1, 11)])  # epochs 2..20
    long = _summary("long", [0.05 * i for i in range(1, 21)])  # epochs 2..40
    rows = {
        row["label"]: row for row in curve_table(pl.concat([short, long])).iter_rows(named=True)
    }
    assert not any(c.startswith("epoch_") for c in rows["short"])
    assert (rows["short"]["epochs"], rows["long"]["epochs"]) == (20, 40)
    # 60% of 20 epochs is epoch 12 (the 6th evaluation); of 40, epoch 24 (the 12th).
    assert rows["short"]["at_60%"] == pytest.approx(0.6)
    assert rows["long"]["at_60%"] == pytest.approx(0.6)
    assert rows["short"]["at_100%"] == pytest.approx(1.0)
    assert rows["long"]["at_0%"] == pytest.approx(0.05)  # the first evaluation
