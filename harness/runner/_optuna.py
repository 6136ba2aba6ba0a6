"""Optuna storage, studies, and the grid queue (one waiting trial per configuration and seed)."""

from __future__ import annotations

import socket
from typing import Any, Literal

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from harness.analysis import Aim, finished_runs, seeds_to_add
from harness.config import StudyFile, TrialConfig
from harness.errors import StudyError, TrialError
from harness.runner._context import pid_alive, worker_id
from harness.runner._shield import shielded
from harness.status import RunStatus
from harness.store import (
    CODES_ATTR,
    CONFIG_ATTR,
    FACTORS_ATTR,
    HASH_ATTR,
    KIND_ATTR,
    LABEL_ATTR,
    SEED_ATTR,
    WORKER_ATTR,
    ContrastRow,
    QueueClaimRow,
    Store,
    utcnow,
    waiting_trial_ids,
)
from harness.study import Study, TrialSpec, quote


def directions(study: Study) -> list[Literal["maximize", "minimize"]]:
    return [objective.direction for objective in study.file.objectives]


def open_study(
    study: Study,
    storage: RDBStorage,
    *,
    store: Store,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Optuna's study for `study` (created or resumed), its objectives named; the study
    file itself is recorded in libkd's table, where workers read it. A study name binds one
    recipe: another recipe under a name the database holds is refused before anything is
    written."""
    check_recipe(store, study)
    opened = optuna.create_study(
        study_name=study.name,
        storage=storage,
        directions=directions(study),
        load_if_exists=True,
        sampler=sampler or optuna.samplers.RandomSampler(seed=0),
        pruner=pruner or optuna.pruners.NopPruner(),
    )
    opened.set_user_attr(KIND_ATTR, study.kind.value)
    opened.set_metric_names([objective.metric for objective in study.file.objectives])
    store.save_study(
        study.name,
        kind=study.kind.value,
        file=study.file.model_dump(mode="json"),
        source=str(study.source),
        overrides=list(study.overrides),
    )
    return opened


# What may change under one study name: the description, and which configurations and seeds
# it runs (a grid grows, a seed list extends); everything else is the recipe they share.
_NOT_RECIPE = {"description", "grid", "include"}


def recipe(file: StudyFile) -> dict[str, Any]:
    dumped = file.model_dump(mode="json", exclude=_NOT_RECIPE)
    if isinstance(file.seeds, tuple):
        dumped.pop("seeds")  # a seed list may grow; a seed plan is part of the recipe
    return dumped


def first_difference(before: Any, after: Any, path: str = "") -> str | None:
    """The first dotted path where two JSON values differ, as `path: old -> new`."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            found = first_difference(
                before.get(key), after.get(key), f"{path}.{key}" if path else key
            )
            if found:
                return found
        return None
    if before != after:
        return f"{path or '(top level)'}: {quote(before)} -> {quote(after)}"
    return None


def check_recipe(store: Store, study: Study) -> None:
    """Refuse a recipe other than the one `study.name` was queued with in this database
    (an edited file, or `--set name=` of an existing study): its runs would be mixed with
    the first recipe's under the same labels, and its contrasts would replace the first's."""
    record = store.study_record(study.name)
    if record is None:
        return
    try:
        queued = StudyFile.model_validate(record.file)
    except ValidationError:
        return  # recorded by a libkd whose schema this one no longer reads: nothing to match
    changed = first_difference(recipe(queued), recipe(study.file))
    if changed:
        raise StudyError(
            f"study {study.name!r} in this database was queued from another recipe "
            f"({changed}); run the changed file under a new name (--set name={study.name}-2) "
            "or into another database (--storage)"
        )


def spec_attrs(spec: TrialSpec) -> dict[str, Any]:
    """What a queued grid trial carries besides its params: hash, seed, label, factors (the
    configuration itself is the study file's, in libkd's tables)."""
    return {
        HASH_ATTR: spec.config_hash,
        SEED_ATTR: spec.seed,
        LABEL_ATTR: spec.label,
        FACTORS_ATTR: spec.factors,
    }


def spec_for(trial: FrozenTrial | optuna.Trial, study: Study) -> TrialSpec:
    """The (configuration, seed) a queued grid trial runs: the study's configuration of its
    hash; a trial queued before configurations left the trial attributes carries its own."""
    attrs = trial.user_attrs
    points = {point.config_hash: point for point in study.configs}
    point = points.get(attrs[HASH_ATTR])
    if point is not None:
        return point.with_seed(attrs[SEED_ATTR])
    if CONFIG_ATTR in attrs:
        return TrialSpec(
            config=TrialConfig.model_validate(attrs[CONFIG_ATTR]),
            config_hash=attrs[HASH_ATTR],
            factors=attrs.get(FACTORS_ATTR, {}),
            paths=study.factor_paths,
            seed=attrs[SEED_ATTR],
        )
    raise TrialError(
        f"configuration {attrs[HASH_ATTR][:12]} is no longer in the study file; restore it "
        "or run the changed file under another name (--set name=...)"
    )


SEED_PARAM = "seed"


def _numbers(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def choice_label(value: Any) -> str:
    """How a categorical grid value is named in Optuna's tools: conv+inv, none, hard."""
    if isinstance(value, list | tuple):
        return "+".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{item}" for key, item in value.items()) + "}"
    return str(value)


def grid_distributions(
    study: Study, codes: dict[str, list[str]]
) -> dict[str, optuna.distributions.BaseDistribution]:
    """The Optuna distribution of each grid factor and of the seed, chosen to stay valid
    when the grid grows later (Optuna refuses a changed categorical choice list, not a
    changed numeric range): numbers get a range over the grid's values, booleans their two
    values, anything else (teacher sets, names) an integer code into `codes[path]`, an
    append-only list of labels kept on the study."""
    found: dict[str, optuna.distributions.BaseDistribution] = {}
    for path, values in study.factor_values.items():
        if _numbers(values) and all(isinstance(v, int) for v in values):
            found[path] = optuna.distributions.IntDistribution(min(values), max(values))
        elif _numbers(values):
            found[path] = optuna.distributions.FloatDistribution(min(values), max(values))
        elif all(isinstance(v, bool) for v in values):
            found[path] = optuna.distributions.CategoricalDistribution((False, True))
        else:
            found[path] = optuna.distributions.IntDistribution(0, max(0, len(codes[path]) - 1))
    found[SEED_PARAM] = optuna.distributions.IntDistribution(0, max(study.max_seeds - 1, 0))
    return found


def grid_params(spec: TrialSpec, codes: dict[str, list[str]]) -> dict[str, Any]:
    """The trial's params in its distributions' terms (categorical values as their code)."""
    params: dict[str, Any] = {SEED_PARAM: spec.seed}
    for path, value in spec.factors.items():
        if path in codes:
            params[path] = codes[path].index(choice_label(value))
        else:
            params[path] = value
    return params


def update_codes(opened: optuna.Study, study: Study) -> dict[str, list[str]]:
    """The study's categorical codes with every value of the current grid added (existing
    codes never change, so trials queued earlier keep their meaning)."""
    codes: dict[str, list[str]] = {
        k: list(v) for k, v in opened.user_attrs.get(CODES_ATTR, {}).items()
    }
    changed = False
    for path, values in study.factor_values.items():
        if _numbers(values) or all(isinstance(v, bool) for v in values):
            continue
        known = codes.setdefault(path, [])
        for label in map(choice_label, values):
            if label not in known:
                known.append(label)
                changed = True
    if changed:
        opened.set_user_attr(CODES_ATTR, codes)
    return codes


def record_params(
    trial: optuna.Trial,
    spec: TrialSpec,
    study: Study,
    codes: dict[str, list[str]],
    fixed: dict[str, Any],
) -> None:
    """Ask for each queued param, so Optuna records the trial's factors and seed as params
    (its tools then plot and rank them); the values are the queued ones (`fixed`). A trial
    queued by an older libkd (no factor params) records only what it was queued with."""
    distributions = grid_distributions(study, codes)
    for name, value in grid_params(spec, codes).items():
        if name not in fixed:
            continue
        distribution = distributions.get(name)
        if isinstance(distribution, optuna.distributions.FloatDistribution):
            trial.suggest_float(name, distribution.low, distribution.high)
        elif isinstance(distribution, optuna.distributions.IntDistribution):
            trial.suggest_int(name, distribution.low, max(distribution.high, int(value)))
        elif isinstance(distribution, optuna.distributions.CategoricalDistribution):
            trial.suggest_categorical(name, distribution.choices)


# The system attribute where Optuna keeps the params a trial was enqueued with.
FIXED_PARAMS = "fixed_params"


def fixed_params(storage: RDBStorage, study_id: int, number: int) -> dict[str, Any]:
    """The params a waiting trial was queued with (Optuna keeps them as a system attribute,
    which its Trial object no longer exposes)."""
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    return dict(storage.get_trial_system_attrs(trial_id).get(FIXED_PARAMS, {}))


def queued_pairs(opened: optuna.Study) -> set[tuple[str, int]]:
    """Every (configuration hash, seed) queued in the study, in any state."""
    present = set()
    for trial in opened.get_trials(deepcopy=False):
        fixed = trial.system_attrs.get(FIXED_PARAMS, {})
        present.add((fixed.get("config"), fixed.get("seed")))
    return present


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
    codes = update_codes(opened, study)
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
    try:
        for spec in specs:
            in_flight = _pair(spec)
            params = {**grid_params(spec, codes), "config": spec.config_hash}
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
    return _enqueue_claimed(opened, store, study, specs, update_codes(opened, study), me)


def take_oldest_waiting(opened: optuna.Study, storage: RDBStorage) -> None:
    """Make `opened` take its next waiting trial by a lookup that costs the same at 10 or
    10,000 waiting trials. Optuna's `ask` builds every waiting trial, with its params and
    attributes, to take the first (about 0.2 s per trial at 10,000 queued); this asks the
    database for the oldest few and takes the first whose state change succeeds, as Optuna
    does (another worker may take any of them first), then tells Optuna's trial cache about
    it as its own lookup would have. Where Optuna's cache is not the one this was written
    against, Optuna's lookup stays."""
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

    def pop_waiting_trial_id() -> int | None:
        while True:
            candidates = waiting_trial_ids(engine, name, limit=8)
            if not candidates:
                return None
            for trial_id in candidates:
                try:
                    if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                        remember(trial_id)
                        return trial_id
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue

    # Optuna's queue lookup is a private method of Study; replaced on this instance only.
    opened._pop_waiting_trial_id = pop_waiting_trial_id  # type: ignore[method-assign]


def save_contrasts(store: Store, study: Study) -> None:
    """Record the study's contrasts (and the seed plan's target on those it aims at), so
    reports and `status` read them from the database alone."""
    plan = study.seed_plan
    rows = [
        ContrastRow(
            study=study.name,
            name=contrast.name,
            position=position,
            treatment_hash=contrast.treatment.config_hash,
            control_hash=contrast.control.config_hash,
            treatment_label=contrast.treatment.label,
            control_label=contrast.control.label,
            margin=contrast.margin,
            halfwidth=plan.target.halfwidth if plan and contrast.targeted else None,
            target_metric=plan.target.metric if plan and contrast.targeted else None,
            min_seeds=plan.min if plan and contrast.targeted else None,
            max_seeds=plan.max if plan and contrast.targeted else None,
        )
        for position, contrast in enumerate(study.contrasts)
    ]
    store.save_contrasts(study.name, rows)


def seed_aims(study: Study) -> list[Aim]:
    """The seed plan's targeted contrasts as the precision rule reads them."""
    plan = study.seed_plan
    if plan is None:
        return []
    return [
        Aim(
            c.name,
            c.treatment.config_hash,
            c.control.config_hash,
            plan.target.halfwidth,
            plan.target.metric,
            plan.min,
            plan.max,
        )
        for c in study.contrasts
        if c.targeted
    ]


def seeds_wanted(opened: optuna.Study, study: Study, store: Store) -> list[TrialSpec]:
    """The (configuration, seed) runs the seed plan asks for now and that are not queued:
    for each targeted contrast whose first stage is in, the seeds its two-stage plan needs."""
    plan, aims = study.seed_plan, seed_aims(study)
    if plan is None or not aims:
        return []
    queued: dict[str, set[int]] = {}
    for config, seed in queued_pairs(opened):
        queued.setdefault(config, set()).add(seed)
    finished, values = finished_runs(store, study.name, plan.target.metric)
    points = {point.config_hash: point for point in study.configs}
    wanted = seeds_to_add(aims, queued=queued, finished=finished, values=values)
    return [points[config].with_seed(seed) for config, seed in sorted(wanted, key=_seed_first)]


def _seed_first(pair: tuple[str, int]) -> tuple[int, str]:
    return pair[1], pair[0]


def extend_seeds(opened: optuna.Study, study: Study, store: Store) -> int:
    """Queue what the seed plan asks for now, each (configuration, seed) only by the one
    worker whose claim on it succeeds: workers anywhere may look at the same moment."""
    wanted = seeds_wanted(opened, study, store)
    return enqueue_grid(opened, study, store, wanted) if wanted else 0


def requeue(opened: optuna.Study, trial: FrozenTrial) -> bool:
    """A waiting copy of `trial`, linked to it (Optuna's retry bookkeeping), unless one was
    made already: a trial re-queued on Ctrl-C and then found dead is re-queued once."""
    trials = opened.get_trials(deepcopy=False)
    if any(trial.number in t.system_attrs.get("retry_history", ()) for t in trials):
        return False
    RetryHeartbeatStaleTrialCallback(max_retry=None)(opened, trials[trial.number])
    return True


def requeue_interrupted(opened: optuna.Study, trial: optuna.Trial) -> None:
    """Ctrl-C or SIGTERM: put a waiting copy of the running trial back, so a re-run resumes
    it; a second signal waits until the copy is queued."""
    with shielded():
        requeue(opened, opened.get_trials(deepcopy=False)[trial.number])


def requeue_dead_local(opened: optuna.Study, storage: RDBStorage, store: Store) -> int:
    """Fail and re-queue running trials whose worker process on this host no longer exists.

    Heartbeats find dead workers anywhere after the grace period; on the same host the check
    is immediate, so `libkd run` right after a crash resumes without waiting.
    """
    host = socket.gethostname()
    study_id = storage.get_study_id_from_name(opened.study_name)
    count = 0
    for trial in opened.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(WORKER_ATTR, "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_system_attr(trial_id, "fail_reason", f"worker {owner} died")
        if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            count += requeue(opened, trial)
    reconcile_runs(opened, store)
    return count


def reconcile_runs(opened: optuna.Study, store: Store) -> None:
    """Run rows left 'running' by a worker that died: mark them failed. Only the trials of
    such rows are read (a study of 10,000 waiting trials has a handful running)."""
    running = [r for r in store.runs(opened.study_name, status=RunStatus.RUNNING)]
    if not running:
        return
    storage = opened._storage
    study_id = storage.get_study_id_from_name(opened.study_name)
    for run in running:
        if run.trial_number is None:
            continue
        try:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, run.trial_number)
        except KeyError:
            continue  # no such trial (a row written outside Optuna's queue)
        if storage.get_trial(trial_id).state != TrialState.RUNNING:
            store.finish_run(run.id, status=RunStatus.FAILED, error=f"worker {run.worker} died")


def retry_failed(opened: optuna.Study) -> int:
    """Re-queue every failed trial that has no retry yet (`libkd run --retry-failed`)."""
    trials = opened.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    count = 0
    for trial in trials:
        runnable = HASH_ATTR in trial.user_attrs or trial.params
        if trial.state == TrialState.FAIL and trial.number not in retried and runnable:
            count += requeue(opened, trial)
    return count
