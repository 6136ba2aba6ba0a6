"""Figure data (plain functions) and plotly rendering of one self-contained HTML per study."""

from harness.dashboard._figures import (
    cache_usage,
    factor_comparison,
    learning_curves,
    pareto,
)
from harness.dashboard._page import render_dashboard, write_dashboard
from harness.dashboard._plots import importance_target

__all__ = [
    "cache_usage",
    "factor_comparison",
    "importance_target",
    "learning_curves",
    "pareto",
    "render_dashboard",
    "write_dashboard",
]
