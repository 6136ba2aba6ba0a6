"""Figure data (plain functions) and plotly rendering of one self-contained HTML per study."""

from harness.dashboard._figures import (
    cache_usage,
    factor_comparison,
    head_accuracy,
    learning_curves,
    pareto,
)
from harness.dashboard._render import importance_target, render_dashboard, write_dashboard

__all__ = [
    "cache_usage",
    "factor_comparison",
    "head_accuracy",
    "importance_target",
    "learning_curves",
    "pareto",
    "render_dashboard",
    "write_dashboard",
]
