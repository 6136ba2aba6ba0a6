"""The runner's own bookkeeping per trial, against the size of the queue.

    python benchmarks/queue_overhead.py --queued 10 1000 10000 --trials 30 --out bench.json

For each size, queues a grid study of that many (configuration, seed) pairs into a fresh
SQLite file, then works off TRIALS of them with training replaced by a stub that only writes
the run's rows: the seconds per trial that are left are the runner's (Optuna's queue, the
progress line's ETA, the run records). Also times two `prepare()` of the same study racing
from two processes (pairs queued twice: want 0).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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


def study_of(pairs: int) -> Any:
    """A grid of `pairs` (configuration, seed) pairs: up to 20 temperatures x seeds."""
    from harness.study import study_from_dict

    temperatures = min(pairs, 20)
    seeds = pairs // temperatures
    grid = {"distill.temperature": [float(t) for t in range(1, temperatures + 1)]}
    return study_from_dict({**STUDY, "seeds": list(range(seeds)), "grid": grid})


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


def _prepare(url: str, pairs: int, start_at: float) -> None:
    from harness.runner import RunnerSession
    from harness.store import Store

    study = study_of(pairs)
    store = Store(url)
    while time.time() < start_at:
        time.sleep(0.001)
    RunnerSession(study, store=store).prepare()


def race(pairs: int) -> dict[str, int]:
    """Two processes queue the same study at the same moment: how many pairs are queued,
    and how many of them twice."""
    from harness.runner import RunnerSession
    from harness.store import HASH_ATTR, SEED_ATTR, Store

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'race.db'}"
        Store(url)
        start_at = time.time() + 3.0
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_prepare, args=(url, pairs, start_at)) for _ in "ab"]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        session = RunnerSession(study_of(pairs), store=Store(url))
        counts = Counter(
            (t.user_attrs[HASH_ATTR], t.user_attrs[SEED_ATTR])
            for t in session.opened.get_trials(deepcopy=False)
        )
    return {"pairs": len(counts), "queued_twice": sum(1 for n in counts.values() if n > 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queued", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--races", type=int, default=5, help="two-process races of 500 pairs")
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
        found = race(500)
        results["races"].append(found)
        print(f"two processes queueing 500 pairs at once: {found}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
