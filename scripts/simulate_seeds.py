"""The seed plan's simulation: coverage of the reported 95% intervals and seeds used, for
the runner's two-stage rule and (for contrast) the naive sequential one, against a fixed
design of the same precision. Writes results/seed-plan-simulation.json.

    python scripts/simulate_seeds.py [--studies 4000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from harness.analysis import simulate_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=Path("results/seed-plan-simulation.json"))
    args = parser.parse_args()
    runs = []
    for rule, min_seeds in (
        ("two-stage", 5),
        ("two-stage", 3),
        ("sequential", 3),
        ("sequential", 5),
    ):
        start = time.perf_counter()
        result = simulate_precision(studies=args.studies, min_seeds=min_seeds, rule=rule)
        row = {"min_seeds": min_seeds, **dataclasses.asdict(result)}
        row["seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps(row))
        runs.append(row)
    setting = {"max_seeds": 20, "target": 0.01, "effects": [0.0, 0.01, 0.03]}
    setting["noise"] = [0.004, 0.008, 0.016]
    args.out.write_text(json.dumps({"setting": setting, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
