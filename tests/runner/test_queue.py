"""The queue under concurrency and interrupts: a (configuration, seed) is queued once whatever
runs at once, a claim its claimant never queued is repaired by any worker, and an interrupt
re-queues its trial however often it is pressed. Training is replaced by a stored run
(`fake_trainer`), so these run in milliseconds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from harness.runner import RunnerSession, _queue, _retry, run_study
from harness.status import RunStatus
from harness.store import HASH_ATTR, SEED_ATTR, WORKER_ATTR, Store
from harness.study import study_from_dict
from tests.helpers import fake_trainer, tiny_dict


def _queued(session: RunnerSession) -> Counter:
    return Counter(
        (t.user_attrs[HASH_ATTR], t.user_attrs[SEED_ATTR])
        for t in session.opened.get_trials(deepcopy=False)
    )


def _complete_pairs(url: str, study: str = "tiny") -> Counter:
    runs = Store(url).runs(study)
    return Counter((r.label, r.seed) for r in runs if r.status == RunStatus.COMPLETE)


def test_two_processes_queueing_one_study_at_once_queue_each_pair_once(storage_url, monkeypatch):
    """The race two `libkd run` of one study lose without a claim: the second reads the queue
    before the first has written it, then queues every pair again."""
    study = study_from_dict(tiny_dict())
    first = RunnerSession(study, store=Store(storage_url))
    first.prepare()
    # The second process's read of the queue came before the first's writes.
    monkeypatch.setattr(_queue, "queued_pairs", lambda opened: set())
    second = RunnerSession(study, store=Store(storage_url))
    second.prepare()
    queued = _queued(second)
    assert len(queued) == 6 and set(queued.values()) == {1}, queued
    assert (first.enqueued, second.enqueued) == (6, 0)


def _dead_pid() -> int:
    """A pid no process of this host has (a child that already exited)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_a_claim_left_unqueued_is_queued_by_the_next_worker_that_looks(storage_url):
    from harness.runner._queue import repair_claims

    study = study_from_dict(tiny_dict())
    store = Store(storage_url)
    session = RunnerSession(study, store=store)
    spec, spec2, spec3 = study.trials()[:3]
    host = socket.gethostname()
    # A claimant killed on this host, one alive elsewhere, one silent past the grace.
    store.claim_pairs("tiny", [(spec.config_hash, spec.seed)], f"{host}:{_dead_pid()}")
    store.claim_pairs("tiny", [(spec2.config_hash, spec2.seed)], "elsewhere:1")
    assert repair_claims(session.opened, study, store, grace=60) == 1
    assert _queued(session) == Counter({(spec.config_hash, spec.seed): 1})
    # Past the grace, the silent remote claim is taken over too.
    assert repair_claims(session.opened, study, store, grace=0) == 1
    # A claim whose trial did reach the queue is marked, not queued again.
    store.claim_pairs("tiny", [(spec3.config_hash, spec3.seed)], "elsewhere:2")
    session.opened.enqueue_trial(
        {"config": spec3.config_hash, "seed": spec3.seed},
        user_attrs={HASH_ATTR: spec3.config_hash, SEED_ATTR: spec3.seed},
    )
    assert repair_claims(session.opened, study, store, grace=0) == 0
    assert store.pending_claims("tiny") == []
    assert set(_queued(session).values()) == {1}


@pytest.mark.e2e
def test_a_worker_stopped_between_claiming_a_seed_and_queueing_it_loses_no_pair(
    storage_url, cache_dir, monkeypatch
):
    """SIGTERM inside the seed plan's second stage, after the claim and before the queue:
    a worker that only takes queued trials (`libkd worker`) still finishes the plan."""
    trained = fake_trainer(monkeypatch)
    contrast = {
        "name": "conv_inv_vs_conv",
        "treatment": {"distill.teachers": ["conv", "inv"]},
        "control": {"distill.teachers": ["conv"]},
    }
    data = tiny_dict(
        seeds={"min": 3, "max": 4, "target": {"halfwidth": 1e-9}}, contrasts=[contrast]
    )
    study = study_from_dict(data)
    real = optuna.Study.enqueue_trial
    calls = {"n": 0}

    def enqueue(self, params, *args, **kwargs):
        if params.get("seed") == 3:  # the second stage: stopped inside the window
            calls["n"] += 1
            if calls["n"] == 1:
                raise KeyboardInterrupt
        return real(self, params, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "enqueue_trial", enqueue)
    with pytest.raises(KeyboardInterrupt):
        run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    worker = RunnerSession(study, store=Store(storage_url))
    worker.prepare(enqueue=False)
    worker.work(cache_dir=cache_dir)
    assert sorted(Counter(trained).values()) == [1] * 11  # 3 x 3 seeds + 2 x the 4th seed
    assert len(_complete_pairs(storage_url)) == 11
    assert Store(storage_url).pending_claims("tiny") == []


class _SecondCtrlC:
    """Optuna's retry callback, with a second Ctrl-C arriving as it starts."""

    def __init__(self, max_retry=None):
        self.inner = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study, trial):
        os.kill(os.getpid(), signal.SIGINT)
        self.inner(study, trial)


@pytest.mark.e2e
def test_ctrl_c_twice_re_queues_the_trial_and_the_resume_runs_every_pair(
    storage_url, cache_dir, monkeypatch
):
    study = study_from_dict(tiny_dict())
    first = study.trials()[0]
    trained = fake_trainer(monkeypatch, interrupt_at={(first.label, first.seed)})
    monkeypatch.setattr(_retry, "RetryHeartbeatStaleTrialCallback", _SecondCtrlC)
    with pytest.raises(KeyboardInterrupt):
        run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    session = RunnerSession(study, store=Store(storage_url))
    assert len(session.trials(TrialState.WAITING)) == 6  # the interrupted pair is back
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.complete, summary.waiting) == (6, 0)
    assert sorted(Counter(trained).values()) == [1] * 6


def test_a_resumed_study_runs_the_interrupted_trial_before_new_ones(
    storage_url, cache_dir, monkeypatch
):
    """Ctrl-C in the second trial: the resume trains that trial first (its copy is the
    newest trial in the queue), then the rest in queue order."""
    study = study_from_dict(tiny_dict())
    pairs = [(spec.label, spec.seed) for spec in study.trials()]
    trained = fake_trainer(monkeypatch, interrupt_at={pairs[1]})
    with pytest.raises(KeyboardInterrupt):
        run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert trained == pairs[:1]
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.complete, summary.waiting) == (6, 0)
    assert trained == [pairs[0], pairs[1], *pairs[2:]]


def test_trials_of_a_worker_found_dead_at_resume_run_before_new_ones(
    storage_url, cache_dir, monkeypatch
):
    """A worker on this host died holding the first two trials; the next run re-queues
    them while it prepares (after its queue lookup was set up) and trains them first."""
    study = study_from_dict(tiny_dict())
    pairs = [(spec.label, spec.seed) for spec in study.trials()]
    session = RunnerSession(study, store=Store(storage_url))
    session.prepare()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for _ in range(2):
        session.opened.ask().set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{gone.pid}")
    trained = fake_trainer(monkeypatch)
    summary = run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    assert (summary.complete, summary.requeued) == (6, 2)
    assert trained == pairs


def test_a_trial_re_queued_on_interrupt_and_then_found_dead_is_re_queued_once(storage_url):
    study = study_from_dict(tiny_dict())
    session = RunnerSession(study, store=Store(storage_url))
    session.prepare()
    trial = session.opened.ask()
    frozen = session.opened.get_trials(deepcopy=False)[trial.number]
    assert _retry.requeue(session.opened, frozen) is True
    assert _retry.requeue(session.opened, frozen) is False
    assert len(session.trials(TrialState.WAITING)) == 6


def test_an_interrupted_and_re_queued_trial_is_no_failure_and_no_extra_trial(storage_url):
    from harness.analysis import statuses

    study = study_from_dict(tiny_dict())
    session = RunnerSession(study, store=Store(storage_url))
    session.prepare()
    trial = session.opened.ask()  # taken, then Ctrl-C: Optuna fails it, libkd re-queues it
    session.opened.tell(trial, state=TrialState.FAIL)
    _retry.requeue(session.opened, session.opened.get_trials(deepcopy=False)[trial.number])
    progress = session.progress()
    assert (progress.finished, progress.total) == (0, 6)  # not "1 failed", not 7 of 6
    [state] = statuses(Store(storage_url), "tiny")
    assert (state.counts["fail"], state.counts["retried"], state.counts["waiting"]) == (0, 1, 6)


def test_a_study_name_binds_one_recipe(tmp_path, storage_url):
    """An edited file under the same name mixed two recipes (each label twice in the report,
    the first recipe's contrasts replaced): it is refused, and nothing is written."""
    from harness.errors import StudyError
    from harness.study import load_study
    from tests.helpers import write_study

    store = Store(storage_url)
    RunnerSession(study_from_dict(tiny_dict()), store=store).prepare()
    edited = tiny_dict(train={**tiny_dict()["train"], "epochs": 3})
    with pytest.raises(StudyError, match=r"another recipe \(train\.epochs: 2 -> 3\).*--set name="):
        RunnerSession(study_from_dict(edited), store=store)
    # `--set name=` of an existing study, with a changed recipe, is the same mistake.
    path = write_study(tmp_path, tiny_dict())
    renamed = load_study(path, overrides=["train.lr=0.01", "name=tiny"])
    with pytest.raises(StudyError, match="another recipe"):
        RunnerSession(renamed, store=store)
    assert store.study_record("tiny").file["train"]["epochs"] == 2
    session = RunnerSession(study_from_dict(tiny_dict()), store=store)
    assert len(session.trials()) == 6  # nothing queued by the refused ones
    # What may change under one name: the description, a grown grid, more seeds.
    grown = tiny_dict(description="now with inv alone", seeds=[0, 1, 2])
    grown["grid"]["distill.teachers"].append(["inv"])
    RunnerSession(study_from_dict(grown), store=store).prepare()


def test_one_override_spelled_three_ways_names_one_study(tmp_path):
    from harness.study import load_study
    from tests.helpers import write_study

    path = write_study(tmp_path, tiny_dict())
    names = {
        load_study(path, overrides=[o]).name
        for o in ("train.epochs=4", "train.epochs= 4", "train.epochs=4.0")
    }
    assert len(names) == 1 and names.pop().startswith("tiny-")


def test_an_override_value_is_capped_like_a_study_file(tmp_path):
    """309 bytes of anchors in one `--set` value were stored as a 35 MB database."""
    from harness.errors import StudyError
    from harness.study import load_study
    from tests.helpers import write_study

    levels = ["a: &a [x,x,x,x,x,x,x,x,x,x]"]
    for name, below in zip("bcde", "abcd"):
        levels.append(f"{name}: &{name} [{','.join([f'*{below}'] * 10)}]")
    bomb = "{" + ", ".join(levels) + "}"  # 10^5 values from about 200 bytes
    path = write_study(tmp_path, tiny_dict())
    with pytest.raises(
        StudyError, match=r"--set 'description=.*expands to more than 100,000 values"
    ):
        load_study(path, overrides=[f"description={bomb}"])


def test_a_session_that_queued_nothing_takes_the_oldest_waiting_trials(
    storage_url, cache_dir, monkeypatch
):
    """The queue lookup by SQL: a worker that never read the study's trials (a fresh
    `libkd worker`) takes them in queue order, and Optuna records their params."""
    trained = fake_trainer(monkeypatch)
    study = study_from_dict(tiny_dict())
    RunnerSession(study, store=Store(storage_url)).prepare()
    worker = RunnerSession(study, store=Store(storage_url))
    summary = worker.work(cache_dir=cache_dir)
    assert (summary.complete, summary.failed, summary.waiting) == (6, 0, 0)
    assert trained == [(spec.label, spec.seed) for spec in study.trials()]
    assert all(t.params for t in worker.trials())  # Optuna's own record of each trial


def test_an_interrupt_before_training_starts_still_re_queues_the_trial(
    storage_url, tmp_path, monkeypatch
):
    """SIGTERM (scancel, a time limit) may arrive while a worker loads the data or looks for
    a run to copy, before the run itself starts: the trial it took is re-queued all the same
    (it was left failed, and the study one trial short)."""
    from harness.runner import _strategies
    from harness.store import RETRIED_FROM

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_strategies, "_copy_into", interrupted)
    session = RunnerSession(study_from_dict(tiny_dict()), store=Store(storage_url))
    session.prepare()
    with pytest.raises(KeyboardInterrupt):
        session.work(cache_dir=tmp_path / "cache", device="cpu")
    trials = session.trials()
    assert len(session.trials(TrialState.WAITING)) == 6
    assert [t.system_attrs.get(RETRIED_FROM) for t in trials if RETRIED_FROM in t.system_attrs] == [
        0
    ]


def test_a_sigterm_whose_exception_was_lost_still_stops_and_re_queues(storage_url, tmp_path):
    """Python drops an exception raised where it cannot propagate (a garbage-collection
    callback): a SIGTERM landing there was lost, the worker trained on and was SIGKILLed
    after the scheduler's grace, its trial left running. The signal is remembered and the
    interrupt raised again between steps."""
    import gc
    import os
    import signal as signals

    from harness.runner import _shield
    from harness.store import RETRIED_FROM

    previous = signals.getsignal(signals.SIGTERM)
    _shield.interrupt_on_sigterm()
    try:

        class Dropper:
            def __del__(self) -> None:
                os.kill(os.getpid(), signals.SIGTERM)  # Terminated raised in __del__: lost
                time.sleep(0.1)

        Dropper()
        gc.collect()
        assert _shield._unanswered  # the signal came, its exception went nowhere
        session = RunnerSession(study_from_dict(tiny_dict()), store=Store(storage_url))
        session.prepare()
        with pytest.raises(_shield.Terminated):
            session.work(cache_dir=tmp_path / "cache", device="cpu")
        assert not _shield._unanswered
        retried = [t for t in session.trials() if RETRIED_FROM in t.system_attrs]
        assert len(retried) == 1 and len(session.trials(TrialState.WAITING)) == 6
    finally:
        _shield.answered()
        signals.signal(signals.SIGTERM, previous)
