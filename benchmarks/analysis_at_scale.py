"""How fast results are read at scale (`nox -s bench_analysis`):

    python benchmarks/analysis_at_scale.py [--seeds 50] [--repeats 3] [--out F.json]

It writes a synthetic grid
study (by default 20 configurations x 50 seeds = 1,000 complete runs x 50 epochs, with every
metric name a real run writes and the Optuna trials the runner creates) into a fresh
database, then times `report`, `dashboard`, `status`, `export` and `publish` on it, and
`validate` and `plan` of the quickstart study, in this process and as commands, with the
share of each command spent importing.

Nothing here imports torch: the synthetic runs are written through the store.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from harness.config import TrialConfig, config_hash
from harness.metrics import (
    AGREE_COMBINED_PREFIX,
    ATTENTION_DISTANCE_PREFIX,
    COST_CACHE_SECONDS,
    COST_COMPILE_SECONDS,
    COST_EVAL_SECONDS,
    COST_TEACHER_SECONDS,
    COST_TOTAL_SECONDS,
    COST_TRAIN_SECONDS,
    SAMPLES_PER_SECOND,
    STUDENT_COMPRESSION,
    STUDENT_FLOPS,
    STUDENT_PARAMS,
    TEACHERS_FLOPS,
    TEACHERS_PARAMS,
    TRAIN_LOSS,
    VAL_LOSS,
    VAL_TOP1,
    VAL_TOP1_CLS,
)
from harness.status import CacheStatus, RunStatus
from harness.store import (
    CONFIG_ATTR,
    FACTORS_ATTR,
    HASH_ATTR,
    KIND_ATTR,
    SEED_ATTR,
    STUDY_FILE_ATTR,
    WORKER_ATTR,
    EpochRow,
    RunRow,
    Store,
    optuna_storage,
    utcnow,
)

TEACHER_SETS: tuple[list[str], ...] = ([], ["conv"], ["inv"], ["conv", "inv"], ["conv", "conv2"])
TEMPERATURES = (1.0, 2.0, 4.0, 8.0)
COMMANDS = ("report", "dashboard", "status", "export", "publish", "validate", "plan")
QUICKSTART = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"


def _config(teachers: list[str], temperature: float) -> TrialConfig:
    """A Fashion-MNIST-sized LIB-KD configuration, as a grid point would resolve it."""
    teacher = {"arch": "resnet", "width": 16, "train": {"epochs": 10}}
    return TrialConfig.model_validate(
        {
            "dataset": {"name": "fashion-mnist", "train_fraction": 0.1},
            "teachers": {
                name: {**teacher, "arch": "rednet" if name == "inv" else "resnet"}
                for name in teachers
            },
            "student": {
                "patch_size": 4,
                "tokens": "per_teacher" if teachers else "none",
            },
            "train": {"epochs": 50},
            "distill": {
                "teachers": teachers,
                "temperature": temperature if teachers else 1.0,
                "weights": {"cls": 1.0, **{name: 1.0 for name in teachers}},
            },
            "cache": {"enabled": bool(teachers), "views": 8},
        }
    )


def _epoch_metrics(teachers: list[str], epoch: int, quality: float) -> dict[str, float]:
    """What one evaluated epoch of a real run writes, with a plausible learning curve."""
    progress = 1.0 - math.exp(-epoch / 10)
    top1 = 0.1 + (quality - 0.1) * progress
    metrics = {
        TRAIN_LOSS: 2.3 * (1 - progress) + 0.3,
        "train/cls": 2.3 * (1 - progress) + 0.25,
        VAL_TOP1: top1,
        VAL_TOP1_CLS: top1 - 0.01,
        VAL_LOSS: 2.3 * (1 - progress) + 0.35,
        "lr": 3e-3 * (1 + math.cos(math.pi * epoch / 50)) / 2,
        "epoch_seconds": 9.5,
        SAMPLES_PER_SECOND: 630.0,
    }
    for name in teachers:
        metrics[f"train/kd/{name}"] = 1.5 * (1 - progress) + 0.1
        metrics[f"val/top1_{name}"] = top1 - 0.005
    return metrics


def _run_metrics(teachers: list[str], last: dict[str, float]) -> dict[str, Any]:
    """A finished run's metrics dict: the last epoch plus costs, sizes and diagnostics."""
    metrics: dict[str, Any] = dict(last)
    metrics.update(
        {
            COST_TRAIN_SECONDS: 475.0,
            COST_EVAL_SECONDS: 20.0,
            COST_TEACHER_SECONDS: 0.0,
            COST_CACHE_SECONDS: 1.2,
            COST_TOTAL_SECONDS: 500.0,
            COST_COMPILE_SECONDS: 0.0,
            STUDENT_PARAMS: 140_000,
            STUDENT_FLOPS: 7.0e6,
        }
    )
    heads = ["combined", "cls", *teachers]
    for head, against in itertools.product(heads, [*teachers, "labels"]):
        metrics[f"diag/agree/{head}/{against}"] = 0.75
    for layer in range(4):
        metrics[f"{ATTENTION_DISTANCE_PREFIX}{layer}"] = 14.4
    if teachers:
        metrics.update({TEACHERS_PARAMS: 330_000, TEACHERS_FLOPS: 3e7, STUDENT_COMPRESSION: 2.3})
    assert f"{AGREE_COMBINED_PREFIX}labels" in metrics
    return metrics


def synthesize(
    store: Store,
    *,
    name: str = "synth1000",
    seeds: int = 50,
    epochs: int = 50,
    random_seed: int = 0,
) -> dict[str, int]:
    """Write a complete synthetic grid study (5 teacher sets x 4 temperatures x `seeds`)
    into `store` and Optuna's tables beside it; returns the row counts."""
    import optuna

    rng = random.Random(random_seed)
    points = []
    for teachers, temperature in itertools.product(TEACHER_SETS, TEMPERATURES):
        config = _config(list(teachers), temperature)
        factors = {"distill.teachers": list(teachers), "distill.temperature": temperature}
        label = f"teachers={'+'.join(teachers) or 'none'}, temperature={temperature:g}"
        points.append((config, config_hash(config), factors, label, 0.70 + 0.02 * len(teachers)))
    storage = optuna_storage(store.url)
    opened = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    opened.set_user_attr(KIND_ATTR, "grid")
    opened.set_user_attr(STUDY_FILE_ATTR, {"name": name, "objectives": [{"metric": VAL_TOP1}]})
    study_id = storage.get_study_id_from_name(name)
    started = utcnow()
    environment = {"libkd": "synthetic", "torch": "-", "device": "cpu", "host": "bench"}
    epoch_rows = 0
    number = 0
    for seed in range(seeds):
        for config, digest, factors, label, quality in points:
            teachers = list(config.distill.teachers)
            noise = rng.gauss(0, 0.01)
            curve = [_epoch_metrics(teachers, e, quality + noise) for e in range(epochs)]
            dumped = config.model_dump(mode="json")
            row = {
                "study": name,
                "trial_number": number,
                "config_hash": digest,
                "seed": seed,
                "label": label,
                "factors": factors,
                "config": dumped,
                "status": RunStatus.COMPLETE,
                "error": None,
                "device": "cpu",
                "worker": "bench:1",
                "environment": environment,
                "started_at": started,
                "finished_at": started,
                "epochs_done": epochs,
                "teacher_seconds": 0.0,
                "cache_seconds": 1.2,
                "train_seconds": 475.0 + rng.random(),
                "eval_seconds": 20.0,
                "cache_status": CacheStatus.HIT if teachers else CacheStatus.OFF,
                "student_params": 140_000,
                "top1": curve[-1][VAL_TOP1],
                "metrics": _run_metrics(teachers, curve[-1]),
            }
            with store.session() as s:
                run_id = s.execute(insert(RunRow).returning(RunRow.id), [row]).scalar_one()
                epochs_of_run = [
                    {"run_id": run_id, "epoch": e, "name": metric, "value": value}
                    for e, values in enumerate(curve)
                    for metric, value in values.items()
                ]
                s.execute(insert(EpochRow), epochs_of_run)
            epoch_rows += len(epochs_of_run)
            trial = optuna.trial.create_trial(
                state=optuna.trial.TrialState.COMPLETE,
                value=curve[-1][VAL_TOP1],
                user_attrs={
                    CONFIG_ATTR: dumped,
                    HASH_ATTR: digest,
                    SEED_ATTR: seed,
                    FACTORS_ATTR: factors,
                    WORKER_ATTR: "bench:1",
                },
                system_attrs={"fixed_params": {"config": digest, "seed": seed}},
            )
            storage.create_new_trial(study_id, template_trial=trial)
            number += 1
    return {"runs": number, "epoch_rows": epoch_rows, "configurations": len(points)}


def _median_seconds(action: Callable[[], object], repeats: int) -> float:
    """The median of `repeats` timed calls after one untimed warm-up call."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _in_process(store: Store, name: str, out: Path) -> dict[str, Callable[[], object]]:
    """Each command's library work in this process (drawing the terminal table aside)."""
    from harness.analysis import (
        load_epochs,
        load_runs,
        pareto_trials,
        publish,
        report_frame,
        statuses,
    )
    from harness.dashboard import write_dashboard

    def report() -> None:
        report_frame(store, name)
        pareto_trials(store, name)

    def export() -> None:
        load_runs(store, name).write_parquet(out / "runs.parquet")
        load_epochs(store, name).write_parquet(out / "epochs.parquet")

    def validate() -> None:
        from harness.study import check_runnable, load_study

        check_runnable(load_study(QUICKSTART))

    def plan() -> None:
        from harness.cli._tables import plan_tables
        from harness.data import dataset_sizes
        from harness.study import load_study

        study = load_study(QUICKSTART)
        plan_tables(study)
        for point in study.configs:
            dataset_sizes(point.config.dataset)

    return {
        "report": report,
        "dashboard": lambda: write_dashboard(store, name, out=out / "dashboard.html"),
        "status": lambda: statuses(store, name),
        "export": export,
        "publish": lambda: publish(store, name, out_dir=out / "record", command="bench"),
        "validate": validate,
        "plan": plan,
    }


_IMPORTS = {
    # What each command imports before it reads anything (its import share).
    "report": "import harness.cli, harness.analysis._report, harness.analysis._contrasts, "
    "harness.cli._tables",
    "dashboard": "import harness.cli, harness.dashboard",
    "status": "import harness.cli, harness.analysis._status, harness.cli._tables",
    "export": "import harness.cli, harness.analysis._frames",
    "publish": "import harness.cli, harness.analysis._publish",
    "validate": "import harness.cli, harness.study",
    "plan": "import harness.cli, harness.study, harness.cli._tables",
}


def _command(name: str, url: str, out: Path) -> dict[str, list[str]]:
    base = [sys.executable, "-m", "harness.cli"]
    return {
        "report": [*base, "report", name, "--storage", url],
        "dashboard": [*base, "dashboard", name, "--storage", url, "--out", str(out / "d.html")],
        "status": [*base, "status", name, "--storage", url],
        "export": [*base, "export", name, "--storage", url, "--out", str(out)],
        "publish": [
            *[*base, "publish", name, "--storage", url, "--out", str(out / "published")],
            *["--command", "bench"],
        ],
        "validate": [*base, "validate", str(QUICKSTART)],
        "plan": [*base, "plan", str(QUICKSTART)],
    }


def _run_quietly(command: list[str]) -> None:
    """The command as a user runs it: Python writes bytecode (a shell with
    PYTHONDONTWRITEBYTECODE would compile every changed module on every call)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, check=True, capture_output=True, env=env)


def query_plans(store: Store, name: str) -> dict[str, list[str]]:
    """The database's plan for each aggregate the reading commands run (EXPLAIN QUERY PLAN on
    SQLite, EXPLAIN on PostgreSQL): they should read libkd_epochs through its index."""
    from harness.analysis import aggregate_queries

    explain = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    plans = {}
    with store.engine.connect() as connection:
        for label, query in aggregate_queries(name).items():
            compiled = query.compile(store.engine, compile_kwargs={"literal_binds": True})
            rows = connection.exec_driver_sql(explain + str(compiled)).all()
            plans[label] = [" ".join(str(cell) for cell in row) for row in rows]
    return plans


def run_analysis_bench(
    url: str | None = None, *, seeds: int = 50, repeats: int = 3, name: str = "synth1000"
) -> dict[str, Any]:
    """Generate the synthetic study into `url` (default: a fresh SQLite file) and time the
    reading commands; medians of `repeats`."""
    with tempfile.TemporaryDirectory(prefix="libkd-bench-analysis-") as tmp:
        folder = Path(tmp)
        url = url or f"sqlite:///{folder / 'synth.db'}"
        store = Store(url)
        start = time.perf_counter()
        counts = synthesize(store, name=name, seeds=seeds)
        generated = time.perf_counter() - start
        actions = _in_process(store, name, folder)
        commands = _command(name, url, folder)
        results: dict[str, Any] = {}
        for command in COMMANDS:
            in_process = _median_seconds(actions[command], repeats)
            as_command = _median_seconds(partial(_run_quietly, commands[command]), repeats)
            import_only = [sys.executable, "-c", _IMPORTS[command]]
            imports = _median_seconds(partial(_run_quietly, import_only), repeats)
            results[command] = {
                "in_process_seconds": round(in_process, 3),
                "command_seconds": round(as_command, 3),
                "import_seconds": round(imports, 3),
                "import_share": round(imports / as_command, 3),
            }
        html = (folder / "dashboard.html").read_text()
        from plotly.offline import get_plotlyjs

        backend = "postgresql" if url.startswith("postgresql") else "sqlite"
        return {
            "backend": backend,
            "study": {**counts, "seeds": seeds, "generate_seconds": round(generated, 1)},
            "repeats": repeats,
            "commands": results,
            "dashboard_html_bytes": len(html.encode()),
            "dashboard_data_bytes": len(html.encode()) - len(get_plotlyjs().encode()),
            "query_plans": query_plans(store, name),
        }


def main() -> None:
    """SQLite, then a temporary PostgreSQL server (initdb and pg_ctl on PATH), into one file."""
    import argparse
    import json
    import platform

    from harness.testing.postgres import fresh_database, postgres_server

    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=root / "results" / "bench-analysis.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"sqlite": run_analysis_bench(seeds=args.seeds, repeats=args.repeats)}
    with postgres_server() as server:
        results["postgresql"] = run_analysis_bench(
            fresh_database(server), seeds=args.seeds, repeats=args.repeats
        )
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count() or 1}
    results["command"] = (
        f"python benchmarks/analysis_at_scale.py --seeds {args.seeds} --repeats {args.repeats}"
    )
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for backend in ("sqlite", "postgresql"):
        for command, timing in results[backend]["commands"].items():
            print(backend, command, timing)


if __name__ == "__main__":
    main()
