"""One (configuration, seed) from teachers to stored metrics."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from harness._atomic import digest_json, try_key_lock
from harness._precision import resolve_precision
from harness.cache import (
    STUDENTS_DIR,
    CacheSpec,
    TeacherArtifact,
    build_or_load,
    hold_entry,
    obtain_teacher,
)
from harness.config import TrialConfig
from harness.data import Dataset
from harness.distill import (
    CachedTeachers,
    EpochReport,
    OnlineTeachers,
    TeacherSource,
    agreement,
    attention_distance,
    evaluate,
    top1,
    train_student,
    uniform_attention_distance,
)
from harness.errors import TrialError
from harness.metrics import (
    ATTENTION_DISTANCE_PREFIX,
    ATTENTION_UNIFORM,
    COST_CACHE_SECONDS,
    COST_COMPILE_SECONDS,
    COST_CPU_SECONDS,
    COST_EVAL_SECONDS,
    COST_RESUMED_EPOCHS,
    COST_TEACHER_SECONDS,
    COST_TOTAL_SECONDS,
    COST_TRAIN_SECONDS,
    SPLIT_PREFIX,
    STUDENT_COMPRESSION,
    STUDENT_FLOPS,
    STUDENT_PARAMS,
    TEACHERS_FLOPS,
    TEACHERS_PARAMS,
    VAL_TOP1,
)
from harness.models import FLOPS_METHOD, DistilledViT, forward_flops, parameter_count
from harness.runner._context import RunContext, environment, provenance
from harness.runner._shield import raise_if_terminated
from harness.status import CacheStatus, RunStatus
from harness.store import FinishedRun, RunIdentity
from harness.study import TrialSpec


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    metrics: dict[str, Any]


def _phase(ctx: RunContext, spec: TrialSpec, name: str) -> Callable[[int, int], None]:
    """A step's progress callback, reporting step k of n (counted from 1); a SIGTERM whose
    exception was lost is raised here, between steps."""

    def step(done: int, total: int) -> None:
        raise_if_terminated()
        ctx.progress.phase(spec, name, done + 1, total)

    return step


def _teachers(
    spec: TrialSpec, config: TrialConfig, ctx: RunContext, data: Dataset, run_id: int
) -> dict[str, TeacherArtifact]:
    """Every teacher the trial distils from, trained or found, recorded and linked to the run."""
    artifacts: dict[str, TeacherArtifact] = {}
    for name in config.distill.teachers:
        artifact = obtain_teacher(
            name,
            config.teachers[name],
            data=data,
            augment=config.augment,
            cache_dir=ctx.cache_dir,
            device=ctx.device,
            on_epoch=_phase(ctx, spec, f"teacher {name} epoch"),
        )
        # A teacher found in the cache was measured when it was recorded: its test top-1
        # (a pass over the whole test split) is read back, not evaluated again every trial.
        known = None if artifact.built else ctx.store.artifact_meta(artifact.key)
        if known is None or known.get("digest") != artifact.digest or "test_top1" not in known:
            known = {
                "val_top1": artifact.val_top1,
                "test_top1": top1(artifact.model, data, split="test"),
                "digest": artifact.digest,
                "params": parameter_count(artifact.model),
                "flops": forward_flops(artifact.model, data.normalize(data.val_x[:2])),
                "flops_method": FLOPS_METHOD,
            }
        ctx.store.record_artifact(
            key=artifact.key,
            kind="teacher",
            name=f"{name}:{config.teachers[name].arch}",
            path=str(artifact.path),
            size=artifact.bytes,
            build_seconds=artifact.build_seconds,
            meta=known,
        )
        ctx.store.link_artifact(
            run_id, artifact.key, role=f"teacher:{name}", hit=not artifact.built
        )
        artifacts[name] = artifact
    return artifacts


def _source(
    spec: TrialSpec,
    config: TrialConfig,
    ctx: RunContext,
    data: Dataset,
    run_id: int,
    teachers: dict[str, TeacherArtifact],
) -> tuple[TeacherSource | None, float, CacheStatus]:
    """Online teachers, or cached logits (built or hit) moved to the training device."""
    if not teachers:
        return None, 0.0, CacheStatus.OFF
    precision = resolve_precision(config.train.precision, ctx.device)
    if not config.cache.enabled:
        models = {n: a.model for n, a in teachers.items()}
        return OnlineTeachers(models, precision=precision), 0.0, CacheStatus.OFF
    tables, seconds, built = {}, 0.0, False
    for name, artifact in teachers.items():
        cache_spec = CacheSpec.of(
            teacher_digest=artifact.digest,
            data=data,
            augment=config.augment,
            cache=config.cache,
            precision=precision,
        )
        # Held until the logits are loaded: `cache prune` skips an entry a run holds.
        with hold_entry(ctx.cache_dir, cache_spec):
            result = build_or_load(
                cache_spec,
                teacher=artifact.model,
                teacher_name=name,
                data=data,
                root=ctx.cache_dir,
                on_view=_phase(ctx, spec, f"cache {name} view"),
            )
            ctx.store.record_artifact(
                key=result.cache.key,
                kind="cache",
                name=f"{name}:{data.name}",
                path=str(result.cache.path),
                size=result.cache.bytes,
                # What building it cost, whoever built it (a hit costs this run nothing,
                # but the entry's one-off cost is its build's, recorded in its meta).
                build_seconds=float(result.cache.meta.get("build_seconds", result.seconds)),
                meta={k: v for k, v in result.cache.meta.items() if k not in ("files", "shapes")},
            )
            ctx.store.link_artifact(
                run_id, result.cache.key, role=f"cache:{name}", hit=not result.built
            )
            start = time.perf_counter()
            tables[name] = result.cache.dense().to(ctx.device)
        seconds += result.seconds + (time.perf_counter() - start)
        built = built or result.built
    return CachedTeachers(tables), seconds, CacheStatus.BUILT if built else CacheStatus.HIT


def _diagnostics(
    model: DistilledViT,
    data: Dataset,
    teachers: dict[str, TeacherArtifact],
    config: TrialConfig,
    ctx: RunContext,
) -> dict[str, float]:
    """Agreement with teachers and labels, attention distance per layer, teacher costs."""
    precision = resolve_precision(config.train.precision, ctx.device)
    models = {name: a.model for name, a in teachers.items()}
    values = agreement(model, data, models, precision=precision)
    sample = data.normalize(data.val_x[:64])
    for layer, distance in enumerate(attention_distance(model, sample)):
        values[f"{ATTENTION_DISTANCE_PREFIX}{layer}"] = distance
    values[ATTENTION_UNIFORM] = uniform_attention_distance(model)
    if teachers:
        teacher_params = sum(parameter_count(m) for m in models.values())
        values[TEACHERS_PARAMS] = teacher_params
        values[TEACHERS_FLOPS] = sum(forward_flops(m, sample[:2]) for m in models.values())
        values[STUDENT_COMPRESSION] = teacher_params / parameter_count(model)
    return values


def _student_resume(
    spec: TrialSpec,
    config: TrialConfig,
    ctx: RunContext,
    teachers: dict[str, TeacherArtifact],
    inputs: str,
    held: ExitStack,
) -> Path | None:
    """Where this run's student keeps its resume state, named after everything its training
    depends on (the seeded configuration, the run's `inputs` key: device kind, precision,
    data and checkpoint files; the teachers' weights), so a re-queued copy of an interrupted trial
    goes on where it stopped and nothing else reads it. Held by this run's process until
    `held` closes; None (train without one) if another process holds it or the folder
    cannot be written (a saving, never a reason to fail the trial)."""
    key = digest_json(
        {
            "config": config.model_dump(mode="json"),
            "seed": spec.seed,
            "inputs": inputs,
            "teachers": {name: artifact.digest for name, artifact in teachers.items()},
        }
    )
    folder = ctx.cache_dir / STUDENTS_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        alone = held.enter_context(try_key_lock(folder, key))
    except OSError as exc:
        warnings.warn(f"the student trains without a resume state: {exc}", stacklevel=2)
        return None
    return folder / f".{key}.resume.pt" if alone else None


def run_identity(spec: TrialSpec, *, study: str, trial_number: int | None) -> RunIdentity:
    """How the run of `spec` as trial `trial_number` of `study` is named in the database."""
    return RunIdentity(
        study=study,
        trial_number=trial_number,
        config_hash=spec.config_hash,
        seed=spec.seed,
        label=spec.label,
        factors=spec.factors,
    )


def run_trial(
    spec: TrialSpec,
    ctx: RunContext,
    *,
    trial_number: int | None = None,
    trial: optuna.Trial | None = None,
    prune_metric: str | None = None,
) -> RunOutcome:
    """Train teachers (or reuse them), get their logits, train the student, store every row."""
    config = spec.config.for_seed(spec.seed)  # what the seed scopes, offset by the seed
    data = ctx.dataset(config.dataset)
    inputs = ctx.inputs_keys(config)[0]  # what the run read: stored, and names its student
    run_id = ctx.store.start_run(
        run_identity(spec, study=ctx.study, trial_number=trial_number),
        config=config.model_dump(mode="json"),
        device=str(ctx.device),
        worker=ctx.worker,
        environment=environment(ctx.device),
        inputs=inputs,
    )
    resume: Path | None = None
    held = ExitStack()  # the student's resume state, until the run is stored
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        teachers = _teachers(spec, config, ctx, data, run_id)
        teacher_seconds = sum(a.seconds for a in teachers.values())
        source, cache_seconds, cache_status = _source(spec, config, ctx, data, run_id, teachers)
        ctx.store.record_sources(
            run_id,
            teacher_seconds=teacher_seconds,
            cache_seconds=cache_seconds,
            cache_status=cache_status,
        )

        epochs = config.train.epochs_for(math.ceil(len(data.train_y) / config.train.batch_size))

        def on_epoch(report: EpochReport) -> None:
            raise_if_terminated()  # a SIGTERM whose exception was lost: stop between epochs
            ctx.store.add_epoch(run_id, report.epoch, report.metrics)
            ctx.progress.epoch_done(spec, report, epochs=epochs)
            if trial is not None and prune_metric in report.metrics:
                trial.report(report.metrics[prune_metric], report.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {report.epoch}")

        resume = _student_resume(spec, config, ctx, teachers, inputs, held)
        result = train_student(
            config=config,
            seed=spec.seed,
            data=data,
            teachers=source,
            device=ctx.device,
            on_epoch=on_epoch,
            resume=resume,
            origin=provenance(),
        )
        if result.resumed_from:  # epochs trained by earlier sittings: name where
            ctx.store.add_environment(run_id, resumed_from=result.resumed_from)
        params = parameter_count(result.model)
        metrics = dict(result.final)
        # The test split is read here, once, after training: no selection can see it.
        precision = resolve_precision(config.train.precision, ctx.device)
        metrics.update(evaluate(result.model, data, split="test", precision=precision))
        metrics.update({f"{SPLIT_PREFIX}{name}": size for name, size in data.sizes.items()})
        metrics.update(
            {
                COST_TRAIN_SECONDS: result.train_seconds,
                COST_EVAL_SECONDS: result.eval_seconds,
                COST_TEACHER_SECONDS: teacher_seconds,
                COST_CACHE_SECONDS: cache_seconds,
                COST_TOTAL_SECONDS: time.perf_counter() - start,
                COST_CPU_SECONDS: time.process_time() - cpu_start,
                STUDENT_PARAMS: params,
                STUDENT_FLOPS: forward_flops(result.model, data.normalize(data.val_x[:2])),
                COST_COMPILE_SECONDS: result.compile_seconds,
            }
        )
        if result.resumed_epochs:
            metrics[COST_RESUMED_EPOCHS] = result.resumed_epochs
        metrics.update(_diagnostics(result.model, data, teachers, config, ctx))
        ctx.store.finish_run(
            run_id,
            status=RunStatus.COMPLETE,
            result=FinishedRun(
                train_seconds=result.train_seconds,
                eval_seconds=result.eval_seconds,
                student_params=params,
                top1=metrics[VAL_TOP1],
                metrics=metrics,
            ),
        )
        _discard(resume)
        return RunOutcome(run_id=run_id, metrics=metrics)
    except optuna.TrialPruned as exc:
        _discard(resume)
        ctx.store.finish_run(run_id, status=RunStatus.PRUNED, error=str(exc))
        raise
    except BaseException as exc:  # KeyboardInterrupt too: the row must not stay "running"
        if isinstance(exc, TrialError):  # a diverged loss diverges again: nothing to resume
            _discard(resume)
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        ctx.store.finish_run(run_id, status=RunStatus.FAILED, error=reason)
        raise
    finally:
        held.close()


def _discard(resume: Path | None) -> None:
    """The student's resume state once nothing can go on from it (stored, pruned or
    diverged), and its lock file: one per run would pile up. The lock is still held; a
    process that opened the old file meanwhile could only be training this very run."""
    if resume is not None:
        resume.unlink(missing_ok=True)
        resume.with_name(resume.name.removesuffix(".resume.pt") + ".lock").unlink(missing_ok=True)
