"""polars aggregation of runs over seeds, with confidence intervals and paired deltas; the
report frame, the committed record (`publish`), and where studies stand (`statuses`).

Nothing here imports torch or the runner: reading results is cheap.
"""

from harness.analysis._aggregate import (
    aggregate,
    default_baseline,
    paired_deltas,
    t_interval,
)
from harness.analysis._load import complete_runs, factor_columns, load_epochs, load_runs
from harness.analysis._pareto import pareto_trials
from harness.analysis._publish import publish
from harness.analysis._report import REPORT_COLUMNS, format_cell, markdown_table, report_frame
from harness.analysis._status import StudyStatus, statuses, study_status

__all__ = [
    "REPORT_COLUMNS",
    "StudyStatus",
    "aggregate",
    "complete_runs",
    "default_baseline",
    "factor_columns",
    "format_cell",
    "load_epochs",
    "load_runs",
    "markdown_table",
    "paired_deltas",
    "pareto_trials",
    "publish",
    "report_frame",
    "statuses",
    "study_status",
    "t_interval",
]
