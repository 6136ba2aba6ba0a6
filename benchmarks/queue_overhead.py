"""The runner's own bookkeeping per trial, against the size of the queue.

    python benchmarks/queue_overhead.py --queued 10 1000 10000 --trials 30 --out bench.json

For each size, queues a grid study of that many (configuration, seed) pairs into a fresh
SQLite file, then works off TRIALS of them with training replaced by a stub that only writes
the run's rows: the seconds per trial that are left are the runner's (Optuna's queue, the
progress line's ETA, the run records). Then starts two `libkd run` of one 500-pair study at
once, RACES times (pairs queued twice: want 0), and two `libkd run` that queue and train a
TRAIN_RACE-pair study (pairs trained twice: want 0).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

STUDY: dict[str, Any] = {
    "name": "queue",
    "dataset": {"name": "digits", "val_fraction": 0.2, "train_per_class": 8},
    "teachers": {"conv": {"arch": "resnet", "width": 8, "train": {"epochs": 1}}},
    "student": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2},
    "train": {"epochs": 1, "batch_size": 32},
    "distill": {"teachers": ["conv"], "temperature": 2.0},
}


def study_data(pairs: int, *, teachers: bool = True) -> dict[str, Any]:
    """A grid of `pairs` (configuration, seed) pairs: up to 20 configurations x seeds (20
    temperatures of the conv teacher; without teachers, 20 learning rates)."""
    configs = min(pairs, 20)
    data = {**STUDY, "seeds": list(range(pairs // configs))}
    if teachers:
        data["grid"] = {"distill.temperature": [float(t) for t in range(1, configs + 1)]}
    else:
        data["distill"] = {**STUDY["distill"], "teachers": []}
        data["grid"] = {"train.lr": [0.001 * (i + 1) for i in range(configs)]}
    return data


def study_of(pairs: int) -> Any:
    from harness.study import study_from_dict

    return study_from_dict(study_data(pairs))


def _stub_trial(spec: Any, ctx: Any, *, trial_number: int | None = None, **_: Any) -> Any:
    from harness.runner import RunOutcome, run_identity
    from harness.status import RunStatus
    from harness.store import FinishedRun

    identity = run_identity(spec, study=ctx.study, trial_number=trial_number)
    run_id = ctx.store.start_run(
        identity, config={}, device="cpu", worker=ctx.worker, environment={}
    )
    result = FinishedRun(0.0, 0.0, 1, 0.5, {"val/top1": 0.5})
    ctx.store.finish_run(run_id, status=RunStatus.COMPLETE, result=result)
    return RunOutcome(run_id, {"val/top1": 0.5})


def overhead(pairs: int, trials: int) -> dict[str, float]:
    import harness.runner._strategies as strategies
    from harness.runner import RunnerSession
    from harness.store import Store

    study = study_of(pairs)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'queue.db'}"
        start = time.perf_counter()
        session = RunnerSession(study, store=Store(url))
        session.prepare()
        queued = time.perf_counter() - start
        real, strategies.run_trial = strategies.run_trial, _stub_trial
        try:
            # One trial first, untimed: what a process pays once (loading the dataset its
            # runs' inputs key reads, Optuna's first look at the study).
            session.work(cache_dir=Path(tmp) / "cache", device="cpu", max_trials=1)
            start = time.perf_counter()
            session.work(cache_dir=Path(tmp) / "cache", device="cpu", max_trials=trials)
            per_trial = (time.perf_counter() - start) / trials
        finally:
            strategies.run_trial = real
    return {"queued": len(study.trials()), "queue_seconds": queued, "per_trial_seconds": per_trial}


def _cli_run(path: Path, url: str, *options: str) -> subprocess.Popen[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "harness.cli", "run", str(path), "--storage", url]
    command += ["--cache-dir", str(path.parent / "cache"), "--no-dashboard", *options]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def race(pairs: int, *, train: bool) -> dict[str, int]:
    """Two `libkd run` of one study started at once (the real command, in two processes):
    how many pairs are queued, how many twice, and, with `train`, how many runs were
    trained and how many pairs were trained more than once."""
    from harness.runner import RunnerSession
    from harness.status import RunStatus
    from harness.store import HASH_ATTR, SEED_ATTR, Store

    study = study_of(pairs)
    data = {**STUDY, "seeds": list(range(len(study.seeds)))}
    data["grid"] = {
        "distill.temperature": sorted({p.factors["distill.temperature"] for p in study.configs})
    }
    if train:  # no teachers to train: the race is about the queue
        data["distill"] = {**STUDY["distill"], "teachers": []}
        data["grid"] = {
            "train.lr": [0.001 * (i + 1) for i in range(len(data["grid"]["distill.temperature"]))]
        }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "race.yaml"
        path.write_text(json.dumps(data))
        url = f"sqlite:///{Path(tmp) / 'race.db'}"
        options = () if train else ("--n-trials", "0")
        processes = [_cli_run(path, url, *options) for _ in "ab"]
        outputs = [process.communicate(timeout=3600)[0] for process in processes]
        if any(process.returncode != 0 for process in processes):
            raise SystemExit("a libkd run failed:\n" + "\n".join(outputs))
        from harness.study import load_study

        session = RunnerSession(load_study(path), store=Store(url))
        queued = Counter(
            (t.user_attrs[HASH_ATTR], t.user_attrs[SEED_ATTR])
            for t in session.opened.get_trials(deepcopy=False)
        )
        runs = Counter(
            (r.config_hash, r.seed) for r in Store(url).runs() if r.status == RunStatus.COMPLETE
        )
    found = {"pairs": len(queued), "queued_twice": sum(1 for n in queued.values() if n > 1)}
    if train:
        found |= {
            "trained": sum(runs.values()),
            "trained_twice": sum(1 for n in runs.values() if n > 1),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queued", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--races", type=int, default=5, help="two `libkd run` queueing 500 pairs")
    parser.add_argument(
        "--train-race", type=int, default=40, help="pairs two `libkd run` queue and train (0: none)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"overhead": [], "races": []}
    for pairs in args.queued:
        found = overhead(pairs, min(args.trials, pairs - 1))
        results["overhead"].append(found)
        print(
            f"{found['queued']:>6} queued: queueing {found['queue_seconds']:.1f} s, "
            f"{found['per_trial_seconds'] * 1000:.0f} ms of bookkeeping per trial"
        )
    for _ in range(args.races):
        found = race(500, train=False)
        results["races"].append(found)
        print(f"two `libkd run` queueing 500 pairs at once: {found}")
    if args.train_race:
        found = race(args.train_race, train=True)
        results["train_race"] = found
        print(f"two `libkd run` queueing and training {args.train_race} pairs at once: {found}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
