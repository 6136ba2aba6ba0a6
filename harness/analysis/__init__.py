"""polars aggregation of runs over seeds, with confidence intervals and paired deltas."""

from harness.analysis._aggregate import (
    aggregate,
    default_baseline,
    paired_deltas,
    t_interval,
)
from harness.analysis._load import factor_columns, load_epochs, load_runs

__all__ = [
    "aggregate",
    "default_baseline",
    "factor_columns",
    "load_epochs",
    "load_runs",
    "paired_deltas",
    "t_interval",
]
