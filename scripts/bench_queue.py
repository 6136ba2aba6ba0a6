"""The runner's own Optuna bookkeeping at scale, as measured for issue 18.

    python scripts/bench_queue.py --seeds 50 --trials 30

Queues a grid of 20 tiny configurations x SEEDS seeds into a fresh SQLite file (timing the
queueing and a re-run that finds nothing new), then works off TRIALS of them with the
training replaced by a stub that only writes the run rows: what is left is the runner's
bookkeeping per trial.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import harness.runner._strategies as strategies  # noqa: E402
from harness.runner import RunnerSession, RunOutcome, run_identity  # noqa: E402
from harness.status import RunStatus  # noqa: E402
from harness.store import Store  # noqa: E402
from harness.study import study_from_dict  # noqa: E402
from tests.helpers import tiny_dict  # noqa: E402

GRID = {
    "distill.teachers": [["conv"], ["conv", "inv"]],
    "distill.temperature": [float(t) for t in range(1, 11)],
}


def _stub_trial(spec, ctx, **_kwargs):  # noqa: ANN001, ANN202
    run_id = ctx.store.start_run(
        run_identity(spec, study=ctx.study, trial_number=0),
        config={},
        device="cpu",
        worker=ctx.worker,
        environment={},
    )
    ctx.store.finish_run(run_id, status=RunStatus.COMPLETE)
    return RunOutcome(run_id, {"val/top1": 0.5})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    study = study_from_dict(tiny_dict(seeds=list(range(args.seeds)), grid=GRID))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'queue.db'}"
        start = time.perf_counter()
        RunnerSession(study, store=Store(url)).prepare()
        queued = time.perf_counter() - start
        start = time.perf_counter()
        session = RunnerSession(study, store=Store(url))
        session.prepare()
        requeued = time.perf_counter() - start
        strategies.run_trial = _stub_trial
        start = time.perf_counter()
        session.work(cache_dir=Path(tmp) / "cache", device="cpu", max_trials=args.trials)
        per_trial = (time.perf_counter() - start) / args.trials
    n = len(study.trials())
    print(f"{n} trials: queued in {queued:.1f} s; re-run with nothing new {requeued:.1f} s;")
    print(f"bookkeeping per trial with {n} in the study: {per_trial * 1000:.0f} ms")


if __name__ == "__main__":
    main()
