"""Study throughput on this machine: one worker with every core's threads against N workers
with cores / N threads each, on the same grid (the same trials, each into a fresh database),
in the order A B B A so drift in the machine's load falls on both arms alike.

    python benchmarks/workers_throughput.py [STUDY] [--set k=v ...] [--out FILE.json]

The teachers and logit caches are built once first (a warm-up run into its own database), so
both arms time training students only, which is what a study spends its hours on.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(study: str, sets: list[str], db: Path, cache: Path, workers: int, threads: int) -> dict:
    command = [sys.executable, "-m", "harness.cli", "run", study, "--storage", f"sqlite:///{db}"]
    command += ["--cache-dir", str(cache), "--no-dashboard", "--workers", str(workers)]
    for item in sets:
        command += ["--set", item]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    with sqlite3.connect(db) as conn:
        query = "select count(*) from libkd_runs where status = 'complete'"
        (runs,) = conn.execute(query).fetchone()
    return {
        "workers": workers,
        "threads": threads,
        "trials": runs,
        "wall_s": round(wall, 1),
        "trials_per_hour": round(runs * 3600 / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", default="studies/quickstart.yaml")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--workers", type=int, default=2, help="N of the many-workers arm")
    parser.add_argument("--out", type=Path, default=Path("results/bench-workers.json"))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = root / "cache"
        _run(args.study, args.sets, root / "warm.db", cache, 1, cores)
        arms = {"one": (1, cores), "many": (args.workers, max(1, cores // args.workers))}
        results = []
        for i, arm in enumerate(["one", "many", "many", "one"]):
            workers, threads = arms[arm]
            result = _run(args.study, args.sets, root / f"{i}.db", cache, workers, threads)
            print(json.dumps(result), flush=True)
            results.append(result)
    summary = {}
    for workers, threads in arms.values():
        walls = [r["wall_s"] for r in results if r["workers"] == workers]
        summary[f"{workers}x{threads}"] = round(sum(walls) / len(walls), 1)
    record = {
        "command": " ".join(["python", "benchmarks/workers_throughput.py", *sys.argv[1:]]),
        "cores": cores,
        "runs": results,
        "mean_wall_s": summary,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
