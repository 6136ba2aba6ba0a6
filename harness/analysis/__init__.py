"""polars aggregation of runs over seeds, with confidence intervals and paired deltas; the
report frame, the committed record (`publish`), and where studies stand (`statuses`).

Nothing here imports torch or the runner, and each name's module is imported when first
used (a command that counts trials imports neither polars nor numpy): reading is cheap.
"""

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports

if TYPE_CHECKING:
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
        teacher_setting_columns,
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
    from harness.analysis._report import (
        REPORT_COLUMNS,
        markdown_table,
        report_columns,
        report_frame,
    )
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
    from harness.analysis._text import format_cell, interval_text
    from harness.analysis._trends import TREND_COLUMNS, TrendSpec, study_trends, trend_frames

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "aggregate": "_aggregate",
        "best_of_epochs": "_aggregate",
        "paired_deltas": "_aggregate",
        "report_metric": "_aggregate",
        "t_interval": "_aggregate",
        "compare_contrasts": "_compare",
        "CONTRAST_COLUMNS": "_contrasts",
        "ContrastSpec": "_contrasts",
        "contrast_frame": "_contrasts",
        "study_contrasts": "_contrasts",
        "aggregate_queries": "_frames",
        "best_values": "_frames",
        "complete_runs": "_frames",
        "epoch_summary": "_frames",
        "factor_columns": "_frames",
        "final_values": "_frames",
        "load_epochs": "_frames",
        "load_runs": "_frames",
        "summarize_epochs": "_frames",
        "teacher_setting_columns": "_frames",
        "claims_table": "_index",
        "read_claims": "_index",
        "update_index": "_index",
        "PairedTest": "_inference",
        "holm": "_inference",
        "interval": "_inference",
        "minimum_detectable_effect": "_inference",
        "paired_test": "_inference",
        "sign_flip_p": "_inference",
        "tost": "_inference",
        "verdict": "_inference",
        "latex_tables": "_latex",
        "pareto_configurations": "_pareto",
        "pareto_trials": "_pareto",
        "publish": "_publish",
        "REPORT_COLUMNS": "_report",
        "format_cell": "_text",
        "interval_text": "_text",
        "markdown_table": "_report",
        "report_columns": "_report",
        "report_frame": "_report",
        "Aim": "_seeds",
        "Precision": "_seeds",
        "SimulationResult": "_seeds",
        "assess": "_seeds",
        "finished_runs": "_seeds",
        "seed_precision": "_seeds",
        "seeds_to_add": "_seeds",
        "simulate_precision": "_seeds",
        "trend_legs": "_seeds",
        "StudyStatus": "_status",
        "Workload": "_status",
        "statuses": "_status",
        "study_status": "_status",
        "time_left": "_status",
        "TREND_COLUMNS": "_trends",
        "TrendSpec": "_trends",
        "study_trends": "_trends",
        "trend_frames": "_trends",
    },
)

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
    "report_columns",
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
    "interval_text",
    "load_epochs",
    "load_runs",
    "teacher_setting_columns",
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
