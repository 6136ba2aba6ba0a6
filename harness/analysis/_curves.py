"""Learning curves as a table: whether each configuration's validation top-1 was still
rising when training ended (a claim about an undertrained student says nothing).

A flat end is necessary, not sufficient: a schedule that decays the learning rate flattens
every curve at its end, converged or not. Whether a longer schedule pays is a contrast
between schedules (a study with `train.epochs` as a factor), not a property of one curve."""

from __future__ import annotations

import polars as pl

from harness.metrics import VAL_TOP1

# A curve that rises less than one point of top-1 over the last quarter of training is flat
# at its end: less than the +-1 point the claims studies aim their contrasts at.
FLAT_GAIN = 0.01
CURVE_POINTS = 6  # evaluated epochs the table shows per configuration, first and last included


def curve_table(
    summary: pl.DataFrame, *, metric: str = VAL_TOP1, points: int = CURVE_POINTS
) -> pl.DataFrame:
    """One row per configuration of an `epoch_summary` frame, for `metric` (the frame also
    holds every head's curve, `val/top1_cls` and the like, which must not interleave with
    it): n, the mean curve at up to `points` evaluated epochs, the best epoch of the mean
    curve, and the gain over the last quarter of training: the mean at the last evaluated
    epoch minus the mean at the last evaluated epoch at or before 75% of training.
    `flat_at_end` is whether that gain is below FLAT_GAIN.

    The curve's columns are `epoch_<e>` (1-based) when every configuration trains the same
    number of epochs. When schedules differ (a study of `train.epochs`), the same epoch
    is early in one schedule and the end of another, so the columns are `at_<p>%`: each
    configuration's mean at the last evaluated epoch at or before p% of its own schedule,
    which `epochs` gives."""
    one_metric = summary.filter(pl.col("name") == metric).sort("epoch")
    curves = [
        (label, curve["epoch"].to_list(), curve["mean"].to_list(), min(curve["n"].to_list()))
        for (_, label), curve in one_metric.group_by("config_hash", "label", maintain_order=True)
    ]
    one_schedule = len({epochs[-1] for _, epochs, _, _ in curves}) == 1
    rows = []
    for label, epochs, means, n in curves:
        row: dict[str, object] = {"label": label, "n": n}
        if one_schedule:
            for i in _spread(len(epochs), points):
                row[f"epoch_{epochs[i] + 1}"] = means[i]
        else:
            row["epochs"] = epochs[-1] + 1
            for share in range(0, 101, 100 // (points - 1)):
                row[f"at_{share}%"] = means[_at_or_before(epochs, share / 100)]
        best = max(range(len(means)), key=means.__getitem__)
        gain = means[-1] - means[_at_or_before(epochs, 0.75)]
        row |= {
            "best_epoch": epochs[best] + 1,
            "last_quarter_gain": gain,
            "flat_at_end": "yes" if gain < FLAT_GAIN else "no",
        }
        rows.append(row)
    return pl.DataFrame(rows) if rows else pl.DataFrame()


def _at_or_before(epochs: list[int], share: float) -> int:
    """The index of the last evaluated epoch at or before `share` of training (0-based
    epochs; the first evaluation when none is that early)."""
    last = epochs[-1]
    return max(i for i, e in enumerate(epochs) if e + 1 <= share * (last + 1) or i == 0)


def _spread(count: int, points: int) -> list[int]:
    """Up to `points` indices spread evenly over range(count), first and last included."""
    if count <= points:
        return list(range(count))
    return sorted({round(i * (count - 1) / (points - 1)) for i in range(points)})
