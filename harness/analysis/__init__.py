"""polars aggregation of runs over seeds, with confidence intervals and paired deltas; the
report frame, the committed record (`publish`), and where studies stand (`statuses`).

Nothing here imports torch or the runner: reading results is cheap.
"""

from harness.analysis._aggregate import (
    aggregate,
    best_of_epochs,
    paired_deltas,
    report_metric,
    t_interval,
)
from harness.analysis._compare import compare_contrasts
from harness.analysis._contrasts import (
    CONTRAST_COLUMNS,
    ContrastSpec,
    contrast_frame,
    study_contrasts,
)
from harness.analysis._frames import (
    aggregate_queries,
    best_values,
    complete_runs,
    epoch_summary,
    factor_columns,
    final_values,
    load_epochs,
    load_runs,
    summarize_epochs,
)
from harness.analysis._index import claims_table, read_claims, update_index
from harness.analysis._inference import (
    PairedTest,
    holm,
    interval,
    minimum_detectable_effect,
    paired_test,
    sign_flip_p,
    tost,
    verdict,
)
from harness.analysis._latex import latex_tables
from harness.analysis._pareto import pareto_configurations, pareto_trials
from harness.analysis._publish import publish
from harness.analysis._report import REPORT_COLUMNS, format_cell, markdown_table, report_frame
from harness.analysis._seeds import (
    Aim,
    Precision,
    SimulationResult,
    assess,
    finished_runs,
    seed_precision,
    seeds_to_add,
    simulate_precision,
    trend_legs,
)
from harness.analysis._status import StudyStatus, Workload, statuses, study_status, time_left
from harness.analysis._trends import TREND_COLUMNS, TrendSpec, study_trends, trend_frames

__all__ = [
    "latex_tables",
    "claims_table",
    "read_claims",
    "update_index",
    "TREND_COLUMNS",
    "TrendSpec",
    "study_trends",
    "trend_frames",
    "CONTRAST_COLUMNS",
    "ContrastSpec",
    "compare_contrasts",
    "contrast_frame",
    "report_metric",
    "study_contrasts",
    "Aim",
    "PairedTest",
    "Precision",
    "SimulationResult",
    "assess",
    "finished_runs",
    "holm",
    "interval",
    "minimum_detectable_effect",
    "paired_test",
    "seed_precision",
    "trend_legs",
    "seeds_to_add",
    "sign_flip_p",
    "simulate_precision",
    "tost",
    "verdict",
    "REPORT_COLUMNS",
    "StudyStatus",
    "Workload",
    "aggregate",
    "aggregate_queries",
    "best_of_epochs",
    "best_values",
    "complete_runs",
    "epoch_summary",
    "factor_columns",
    "final_values",
    "format_cell",
    "load_epochs",
    "load_runs",
    "markdown_table",
    "paired_deltas",
    "pareto_configurations",
    "pareto_trials",
    "publish",
    "report_frame",
    "statuses",
    "time_left",
    "study_status",
    "summarize_epochs",
    "t_interval",
]
