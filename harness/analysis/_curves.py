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
    it): n, the mean curve at up to `points` evaluated epochs (columns `epoch_<e>`,
    1-based), the best epoch of the mean curve, and the gain over the last quarter of
    training: the mean at the last evaluated epoch minus the mean at the last evaluated
    epoch at or before 75% of training. `flat_at_end` is whether that gain is below
    FLAT_GAIN."""
    rows = []
    one_metric = summary.filter(pl.col("name") == metric)
    for (_, label), curve in one_metric.sort("epoch").group_by(
        "config_hash", "label", maintain_order=True
    ):
        epochs = curve["epoch"].to_list()
        means = curve["mean"].to_list()
        last = epochs[-1]
        quarter = max(i for i, e in enumerate(epochs) if e + 1 <= 0.75 * (last + 1) or i == 0)
        gain = means[-1] - means[quarter]
        row: dict[str, object] = {"label": label, "n": min(curve["n"].to_list())}
        for i in _spread(len(epochs), points):
            row[f"epoch_{epochs[i] + 1}"] = means[i]
        best = max(range(len(means)), key=means.__getitem__)
        row |= {
            "best_epoch": epochs[best] + 1,
            "last_quarter_gain": gain,
            "flat_at_end": "yes" if gain < FLAT_GAIN else "no",
        }
        rows.append(row)
    return pl.DataFrame(rows) if rows else pl.DataFrame()


def _spread(count: int, points: int) -> list[int]:
    """Up to `points` indices spread evenly over range(count), first and last included."""
    if count <= points:
        return list(range(count))
    return sorted({round(i * (count - 1) / (points - 1)) for i in range(points)})
