"""Progress that tells where a run is: outside a terminal, one line per event with the
study's progress and ETA, and each phase of a trial (teacher epochs, cache views, student
epochs); `libkd status` gives the same time left as the runner's ETA."""

from __future__ import annotations

import re

import pytest

from harness.analysis import statuses
from harness.runner import RunnerSession, run_identity
from harness.runner._eta import recorded_workload
from harness.status import CacheStatus, RunStatus
from harness.store import Store
from harness.study import study_from_dict
from tests.helpers import record_run, start_cli_run, tiny_dict, write_study


@pytest.mark.e2e
def test_plain_progress_names_every_phase_and_the_eta(tmp_path, storage_url, fresh_cache_dir):
    data = tiny_dict(seeds=[0], grid={"distill.teachers": [[], ["conv", "inv"]]})
    path = write_study(tmp_path, data)
    run = start_cli_run(path, storage_url, fresh_cache_dir)
    output, _ = run.communicate(timeout=600)
    assert run.returncode == 0, output
    lines = output.splitlines()
    head = r"\[study (\d)/2 done, ETA ([-0-9:]+)\] trial (\d)/2 teachers=(\S+) seed 0: "
    events = [
        m.groups() + (line.split(": ", 1)[1],) for line in lines if (m := re.match(head, line))
    ]
    # The first trial starts with nothing finished and no ETA; the second knows both.
    assert events[0][:2] == ("0", "-")
    second = [e for e in events if e[2] == "2"]
    assert second[0][0] == "1" and re.fullmatch(r"\d+:\d\d:\d\d", second[0][1])
    said = [e[-1] for e in second]
    # The distilled trial trains both teachers (1 epoch each), builds both caches (2 views
    # each) and trains the student (2 epochs), in that order, then finishes.
    expected = [
        "started",
        "teacher conv epoch 1/1",
        "teacher inv epoch 1/1",
        "cache conv view 1/2",
        "cache conv view 2/2",
        "cache inv view 1/2",
        "cache inv view 2/2",
    ]
    assert said[: len(expected)] == expected, said
    assert re.match(r"student epoch 1/2 val top1 0\.\d{4}", said[len(expected)])
    assert re.match(r"complete val top1 0\.\d{4} \(\d+\.\d s\)", said[-1])


def _complete(store: Store, study: str, point, seed: int, seconds: float) -> int:
    return record_run(
        store,
        run_identity(point.with_seed(seed), study=study, trial_number=seed),
        config=point.config.model_dump(mode="json"),
        train_seconds=seconds,
        inputs="i" * 64,
    )


def _plain_twice_distilled_once(storage_url):
    """Three seeds of the plain ViT and of conv queued; two plain runs in at 10 s and one
    distilled at 40 s. Returns the session, its store and the distilled configuration."""
    study = study_from_dict(tiny_dict(seeds=[0, 1, 2], grid={"distill.teachers": [[], ["conv"]]}))
    store = Store(storage_url)
    session = RunnerSession(study, store=store)
    session.prepare()
    plain, distilled = study.configs
    for point, seed, seconds in ((plain, 0, 10.0), (plain, 1, 10.0), (distilled, 0, 40.0)):
        _complete(store, study.name, point, seed, seconds)
    return session, store, distilled


def test_the_eta_costs_each_waiting_trial_at_its_own_configurations_mean(storage_url):
    # What is left costs 3 x 10 + 3 x 40 s, not 6 x the mean (20 s).
    session, store, distilled = _plain_twice_distilled_once(storage_url)
    progress = session.progress()
    assert (progress.finished, progress.total) == (0, 6)  # no Optuna trial finished yet
    assert progress.eta_seconds == pytest.approx(3 * 10.0 + 3 * 40.0)
    # Another study of the database ran conv's seed 2: that trial will be copied, free.
    _complete(store, "other", distilled, 2, 500.0)
    assert session.progress().eta_seconds == pytest.approx(3 * 10.0 + 2 * 40.0)
    [status] = statuses(store, session.study.name, lambda name: recorded_workload(store, name))
    assert status.remaining_seconds == pytest.approx(3 * 10.0 + 2 * 40.0)


def test_a_configuration_with_no_run_yet_costs_what_its_teachers_cost_elsewhere(storage_url):
    # Teachers x epochs, two seeds: the plain ViT at 1 epoch ran twice (10 s), conv at 1
    # epoch once (70 s). The 2-epoch configurations have no run: each costs what the
    # configurations with its teachers cost (10 s plain, 70 s conv), not the study's mean
    # run (30 s), so what is left is 2 x 10 + 2 x 70 + 2 x 10 + 2 x 70 = 320 s (not 280).
    grid = {"distill.teachers": [[], ["conv"]], "train.epochs": [1, 2]}
    study = study_from_dict(tiny_dict(seeds=[0, 1], grid=grid))
    store = Store(storage_url)
    session = RunnerSession(study, store=store)
    session.prepare()
    [plain, distilled] = [
        p for p in study.configs if p.factors["train.epochs"] == 1
    ]  # ordered as the grid
    for point, seed, seconds in ((plain, 0, 10.0), (plain, 1, 10.0), (distilled, 0, 70.0)):
        _complete(store, study.name, point, seed, seconds)
    assert session.progress().eta_seconds == pytest.approx(320.0)
    [status] = statuses(store, study.name, lambda name: recorded_workload(store, name))
    assert status.remaining_seconds == pytest.approx(320.0)


def test_the_runners_eta_shares_what_is_left_over_its_local_workers(storage_url):
    # Two plain runs in at 10 s and one distilled at 40 s; 6 trials left (3 x 10 + 3 x 40
    # s). A run with 2 local workers prints its first trial's line before the second
    # worker has taken a trial: the time left is still shared by two, not charged to one.
    session, _, _ = _plain_twice_distilled_once(storage_url)
    assert session.progress().eta_seconds == pytest.approx(150.0)
    session.local_workers = 2
    assert session.progress().eta_seconds == pytest.approx(75.0)
    session.local_workers = 16  # never more workers than trials left: 6
    assert session.progress().eta_seconds == pytest.approx(25.0)


def test_a_configuration_whose_runs_were_copied_is_costed_at_what_they_took_to_train(
    storage_url,
):
    # The plain ViT's seed 0 trained here (10 s); conv's seed 0 was trained by another study
    # (40 s) and copied in. No Optuna trial has finished, so what is left is 3 plain trials
    # and conv's seeds 1 and 2 (seed 0 is a copy): 3 x 10 + 2 x 40 s, not 5 x 10 s (conv at
    # the mean of the runs trained here only).
    study = study_from_dict(tiny_dict(seeds=[0, 1, 2], grid={"distill.teachers": [[], ["conv"]]}))
    store = Store(storage_url)
    session = RunnerSession(study, store=store)
    session.prepare()
    plain, distilled = study.configs
    _complete(store, study.name, plain, 0, 10.0)
    _complete(store, "other", distilled, 0, 40.0)
    identity = run_identity(distilled.with_seed(0), study=study.name, trial_number=1)
    copied = store.copy_run(identity, inputs=["i" * 64])
    assert copied is not None
    assert session.progress().eta_seconds == pytest.approx(3 * 10.0 + 2 * 40.0)


def _conv_three_seeds(storage_url, scope):
    """conv alone, three seeds queued, the seed scope `scope`: the session, store and point."""
    study = study_from_dict(
        tiny_dict(seeds=[0, 1, 2], grid={"distill.teachers": [["conv"]]}, seed_scope=scope)
    )
    store = Store(storage_url)
    session = RunnerSession(study, store=store)
    session.prepare()
    [point] = study.configs
    return session, store, point


def _time_left_everywhere(session, store) -> list[float]:
    """The runner's ETA and `libkd status`'s time left (from the recorded study file)."""
    name = session.study.name
    [status] = statuses(store, name, lambda study: recorded_workload(store, study))
    return [session.progress().eta_seconds, status.remaining_seconds]


@pytest.mark.parametrize(
    ("scope", "per_trial"), [(["student"], 2.0), (["student", "teacher"], 12.0)]
)
def test_the_eta_charges_teachers_only_where_each_seed_builds_its_own(
    storage_url, scope, per_trial
):
    # conv's seed 0 built the teachers and caches (10 s) and trained (2 s); seed 1 found
    # them (2 s). With teachers shared across seeds the last seed costs 2 s; where each seed
    # trains its own teacher instances, 2 + 10 s. Never the mean of the two (7 s).
    session, store, point = _conv_three_seeds(storage_url, scope)
    study = session.study
    for seed, built in ((0, 10.0), (1, 0.0)):
        run_id = _complete(store, study.name, point, seed, 2.0)
        store.record_sources(
            run_id, teacher_seconds=built, cache_seconds=0.0, cache_status=CacheStatus.HIT
        )
    # `libkd status` says the same as the runner, from the study file recorded.
    assert _time_left_everywhere(session, store) == pytest.approx([3 * per_trial] * 2)


def test_a_seed_whose_interrupted_run_built_its_teachers_is_charged_the_build(storage_url):
    # conv's seed 0 ran twice: a run stopped after building its teachers and caches (10 s)
    # and its re-queued copy, which found them and trained (2 s). Each seed builds its own:
    # its 3 trials (none finished in Optuna) cost 2 + 10 s each, not 2 s (the copy alone
    # built nothing).
    session, store, point = _conv_three_seeds(storage_url, ["student", "teacher"])
    study = session.study
    identity = run_identity(point.with_seed(0), study=study.name, trial_number=0)
    config = point.config.model_dump(mode="json")
    stopped = record_run(store, identity, config=config, status=RunStatus.FAILED)
    store.record_sources(
        stopped, teacher_seconds=10.0, cache_seconds=0.0, cache_status=CacheStatus.BUILT
    )
    _complete(store, study.name, point, 0, 2.0)
    assert _time_left_everywhere(session, store) == pytest.approx([3 * 12.0] * 2)


def test_a_seed_is_charged_the_builds_its_runs_used_though_no_run_recorded_them(storage_url):
    # conv's seed 0: a run stopped while building its caches (its teacher, 10 s to train,
    # stored and linked; no costs recorded), then its copy, which found it all (2 s). Seed
    # 1 is running: its teacher (1 s, half its builds) is linked, nothing else, and it is
    # not averaged in. Seeds 0-2 cost 2 + 10 s each (the trials all still count as waiting).
    session, store, point = _conv_three_seeds(storage_url, ["student", "teacher"])
    study, config = session.study, point.config.model_dump(mode="json")
    for seed, seconds in ((0, 10.0), (1, 1.0)):
        identity = run_identity(point.with_seed(seed), study=study.name, trial_number=seed)
        status = RunStatus.FAILED if seed == 0 else RunStatus.RUNNING
        run_id = record_run(store, identity, config=config, status=status)
        key = f"teacher-{seed}"
        store.record_artifact(
            key=key,
            kind="teacher",
            name="conv:resnet",
            path="/t",
            size=1,
            build_seconds=seconds,
            meta={},
        )
        store.link_artifact(run_id, key, role="teacher:conv", hit=False)
    copy = _complete(store, study.name, point, 0, 2.0)
    store.link_artifact(copy, "teacher-0", role="teacher:conv", hit=True)
    assert _time_left_everywhere(session, store) == pytest.approx([3 * 12.0] * 2)


def test_an_epoch_eval_every_skipped_prints_no_validation_number(capsys):
    from harness.cli._progress import PlainProgress
    from harness.distill import EpochReport

    spec = study_from_dict(tiny_dict()).trials()[0]
    progress = PlainProgress()
    progress.trial_started(spec, number=1, total=1)
    progress.epoch_done(spec, EpochReport(0, {"train/loss": 2.0}), epochs=4)
    progress.epoch_done(spec, EpochReport(3, {"val/top1": 0.75}), epochs=4)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].endswith("student epoch 1/4")
    assert lines[-1].endswith("student epoch 4/4 val top1 0.7500")
