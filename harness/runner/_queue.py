"""The grid queue: each (configuration, seed) queued once by the process whose claim wins,
claims left unqueued repaired by any worker, and the next waiting trial taken by SQL."""

from __future__ import annotations

import socket

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from harness.runner._context import pid_alive, worker_id
from harness.runner._optuna_study import (
    grid_params,
    labelled,
    queued_pairs,
    spec_attrs,
    update_codes,
)
from harness.runner._shield import shielded
from harness.store import (
    QueueClaimRow,
    Store,
    requeued_trial_ids,
    utcnow,
    waiting_trial_ids,
)
from harness.study import Study, TrialSpec

CLAIM_CHUNK = 200
"""Pairs claimed per transaction: each chunk is queued within seconds of its claim, far
inside the grace after which another worker may take over a claim left unqueued."""


def enqueue_grid(
    opened: optuna.Study,
    study: Study,
    store: Store,
    specs: list[TrialSpec] | None = None,
    *,
    claimant: str | None = None,
) -> int:
    """Enqueue every (configuration, seed) of `specs` (default: the study's first seeds)
    not yet in the study; returns how many this call added.

    A pair is queued only by the caller whose claim on it wins (`Store.claim_pairs`), so two
    `libkd run` of one study at once queue it once. The trials already there are read once:
    Optuna's `skip_if_exists` reads them all again for every trial it enqueues.
    """
    present = queued_pairs(opened)
    todo = [s for s in (study.trials() if specs is None else specs) if _pair(s) not in present]
    if not todo:
        return 0
    codes = update_codes(opened, study, store)
    me = claimant or worker_id()
    added = 0
    for start in range(0, len(todo), CLAIM_CHUNK):
        chunk = todo[start : start + CLAIM_CHUNK]
        mine = store.claim_pairs(study.name, [_pair(s) for s in chunk], me)
        added += _enqueue_claimed(
            opened, store, study, [s for s in chunk if _pair(s) in mine], codes, me
        )
    return added


def _pair(spec: TrialSpec) -> tuple[str, int]:
    return spec.config_hash, spec.seed


def _enqueue_claimed(
    opened: optuna.Study,
    store: Store,
    study: Study,
    specs: list[TrialSpec],
    codes: dict[str, list[str]],
    me: str,
) -> int:
    """Queue the pairs `me` holds the claims on, and mark them queued. Stopped part-way (an
    interrupt, a lost connection), it marks what it queued and gives back the claims it
    never started on; the claim of the one trial in flight stays for `repair_claims`, which
    looks in Optuna's queue before it queues anything."""
    done: list[tuple[str, int]] = []
    in_flight: tuple[str, int] | None = None
    labels = labelled(opened)
    try:
        for spec in specs:
            in_flight = _pair(spec)
            params = {**grid_params(spec, codes, labels=labels), "config": spec.config_hash}
            opened.enqueue_trial(params, user_attrs=spec_attrs(spec))
            done.append(in_flight)
            in_flight = None
    except BaseException:
        with shielded():
            store.mark_queued(study.name, done)
            untouched = {_pair(s) for s in specs} - set(done) - {in_flight}
            store.release_claims(study.name, untouched, me)
        raise
    store.mark_queued(study.name, done)
    return len(done)


def _claim_abandoned(claim: QueueClaimRow, me: str, grace: float) -> bool:
    """Whether nobody is queueing this unqueued claim: its holder is this process (between
    calls), a process of this host that no longer exists, or silent past the grace."""
    if claim.claimant == me:
        return True
    host, _, pid = claim.claimant.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
        return True
    return (utcnow() - claim.claimed_at).total_seconds() > grace


def repair_claims(
    opened: optuna.Study, study: Study, store: Store, *, grace: float, claimant: str | None = None
) -> int:
    """Queue the pairs whose claimant stopped between claiming and queueing them (killed,
    SIGTERM'd, a lost connection): each abandoned claim is taken over by one worker, which
    marks it queued if its trial is in Optuna's queue after all and queues it otherwise.
    Returns how many trials it queued."""
    me = claimant or worker_id()
    pending = [c for c in store.pending_claims(study.name) if _claim_abandoned(c, me, grace)]
    taken = [c for c in pending if store.take_over_claim(c, me)]
    if not taken:
        return 0
    present = queued_pairs(opened)
    points = {point.config_hash: point for point in study.configs}
    store.mark_queued(
        study.name, [(c.config_hash, c.seed) for c in taken if (c.config_hash, c.seed) in present]
    )
    lost = [c for c in taken if (c.config_hash, c.seed) not in present]
    unknown = [(c.config_hash, c.seed) for c in lost if c.config_hash not in points]
    store.release_claims(study.name, unknown, me)  # no longer in the study file
    specs = [points[c.config_hash].with_seed(c.seed) for c in lost if c.config_hash in points]
    return _enqueue_claimed(opened, store, study, specs, update_codes(opened, study, store), me)


def take_next_waiting(opened: optuna.Study, storage: RDBStorage) -> None:
    """Make `opened` take its next waiting trial by a lookup that costs the same at 10 or
    10,000 waiting trials, re-queued copies first. Optuna's `ask` builds every waiting
    trial, with its params and attributes, to take the first (about 0.2 s per trial at
    10,000 queued), and its re-queued copy of an interrupted trial waits behind all of
    them. This takes the copies waiting at its first ask (`requeued_trial_ids`),
    then asks the database for the oldest few; of each, the first whose state change
    succeeds, as Optuna does (another worker may take any of them first), and tells
    Optuna's trial cache about it as its own lookup would have. Where Optuna's cache is
    not the one this was written against, Optuna's lookup stays."""
    try:
        from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
    except ImportError:
        return
    cached = opened._storage
    if not isinstance(cached, _CachedStorage) or not hasattr(cached, "_add_trials_to_cache"):
        return
    engine, name = storage.engine, opened.study_name
    study_id = storage.get_study_id_from_name(name)

    def remember(trial_id: int) -> None:
        trial = storage.get_trial(trial_id)
        with cached._lock:
            info = cached._studies.setdefault(study_id, _StudyInfo())
            cached._add_trials_to_cache(study_id, [trial])
            info.unfinished_trial_ids.add(trial_id)

    def take(trial_id: int) -> bool:
        try:
            taken = storage.set_trial_state_values(trial_id, state=TrialState.RUNNING)
        except optuna.exceptions.UpdateFinishedTrialError:
            return False
        if taken:
            remember(trial_id)
        return taken

    requeued: list[int] | None = None  # read at the first ask, after `prepare` re-queued

    def pop_waiting_trial_id() -> int | None:
        nonlocal requeued
        if requeued is None:
            requeued = requeued_trial_ids(engine, name)
        while requeued:
            if take(trial_id := requeued.pop(0)):
                return trial_id
        while candidates := waiting_trial_ids(engine, name, limit=8):
            for trial_id in candidates:
                if take(trial_id):
                    return trial_id
        return None

    # Optuna's queue lookup is a private method of Study; replaced on this instance only.
    opened._pop_waiting_trial_id = pop_waiting_trial_id  # type: ignore[method-assign]
