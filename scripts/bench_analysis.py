"""Run `libkd bench-analysis` on SQLite and on a temporary PostgreSQL server (initdb and
pg_ctl on PATH, as the tests start it) and write both into results/bench-analysis.json.

    python scripts/bench_analysis.py [--seeds 50] [--repeats 3]      (or: nox -s bench_analysis)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.bench_analysis import run_analysis_bench  # noqa: E402
from tests.postgres import fresh_database, postgres_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench-analysis.json")
    args = parser.parse_args()
    results = {"sqlite": run_analysis_bench(seeds=args.seeds, repeats=args.repeats)}
    with postgres_server() as server:
        results["postgresql"] = run_analysis_bench(
            fresh_database(server), seeds=args.seeds, repeats=args.repeats
        )
    results["machine"] = {"python": platform.python_version(), "cpus": _cpus()}
    results["command"] = (
        f"python scripts/bench_analysis.py --seeds {args.seeds} --repeats {args.repeats}"
    )
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for backend in ("sqlite", "postgresql"):
        for command, timing in results[backend]["commands"].items():
            print(backend, command, timing)


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
