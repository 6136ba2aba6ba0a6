"""What Optuna's own tools and the MLflow bridge show of a grid study:

    python scripts/optuna_bridges.py [--keep DIR]

Runs a small digits grid (teacher sets x temperatures, 2 seeds, about a minute on 2 CPU
cores) with optuna-integration's MLflowCallback into a temporary folder, then prints what
optuna-dashboard's API serves (search space, parameter importance), the axis Optuna's
contour plot puts the teacher sets on, and MLflow's run list. Needs the test extras
(optuna-dashboard, optuna-integration, mlflow-skinny).
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.testing.tiny import TINY, wsgi_get

GRID_STUDY: dict[str, Any] = {
    **copy.deepcopy(TINY),
    "name": "bridges",
    "description": "a small digits grid for Optuna's views and MLflow",
    "grid": {
        "distill.teachers": [[], ["conv"], ["conv", "inv"]],
        "distill.temperature": [2.0, 4.0],
    },
}


def _get(app: Any, path: str) -> Any:
    return wsgi_get(app, path)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="Run here and keep the files.")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="libkd-bridges-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 prefers a database

    import mlflow
    import optuna
    import optuna_dashboard
    from optuna_integration.mlflow import MLflowCallback

    from harness.runner import run_study
    from harness.store import Store
    from harness.study import study_from_dict

    url = f"sqlite:///{folder / 'libkd.db'}"
    tracking = (folder / "mlruns").as_uri()
    callback = MLflowCallback(tracking_uri=tracking, metric_name="val/top1")
    summary = run_study(
        study_from_dict(GRID_STUDY),
        store=Store(url),
        cache_dir=folder / "cache",
        callbacks=[callback],
    )
    print(f"study bridges in {url}: {summary.complete} trials complete")

    app = optuna_dashboard.wsgi(url)
    [study] = _get(app, "/api/studies")["study_summaries"]
    detail = _get(app, f"/api/studies/{study['study_id']}")
    for param in detail["union_search_space"]:
        distribution = param["distribution"]
        choices = [c["value"] for c in distribution.get("choices", [])]
        print(f"optuna-dashboard param {param['name']}: {distribution['type']} {choices or ''}")
    importance = _get(app, f"/api/studies/{study['study_id']}/param_importances")
    ranked = [(p["name"], round(p["importance"], 3)) for p in importance["param_importances"][0]]
    print(f"optuna-dashboard importance: {ranked}")
    loaded = optuna.load_study(study_name="bridges", storage=url)
    contour = optuna.visualization.plot_contour(
        loaded, params=["distill.teachers", "distill.temperature"]
    )
    labels = sorted({x for t in contour.data for x in (getattr(t, "x", None) or []) if x})
    print(f"Optuna contour: teacher sets on a {contour.layout.xaxis.type} axis: {labels}")

    client = mlflow.tracking.MlflowClient(tracking_uri=tracking)
    [experiment] = [e for e in client.search_experiments() if e.name == "bridges"]
    print("MLflow runs (experiment bridges): run, teachers, T, val/top1")
    runs = client.search_runs([experiment.experiment_id])
    for run in sorted(runs, key=lambda r: (r.data.params["distill.teachers"], r.info.run_name)):
        params = run.data.params
        print(
            f"  {run.info.run_name:>3}  {params['distill.teachers']:<9} "
            f"{params.get('distill.temperature', '-'):<4} {run.data.metrics['val/top1']:.4f}"
        )


if __name__ == "__main__":
    main()
