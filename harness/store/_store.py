"""All database access goes through Store.session(), which commits or rolls back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, Select, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from harness.errors import StorageError
from harness.status import CacheStatus, RunStatus
from harness.store._engine import engine_kwargs, first_line, make_engine, redact, sqlite_path
from harness.store._migrations import ensure_schema
from harness.store._models import (
    ArtifactRow,
    ContrastRow,
    EpochRow,
    QueueClaimRow,
    RunArtifactRow,
    RunRow,
    StudyRow,
    TrendRow,
)
from harness.store._read import Opened, open_for_reading

FailedRun = aliased(RunRow)


def commit_label(environment: dict[str, Any] | None) -> str:
    """The commit a run was trained at as reports name it: 12 digits, `+dirty` when the
    work tree had uncommitted changes, `unknown` when none was recorded; a run that went on
    from epochs trained at other commits (an interrupted student resumed) names them too:
    'X resumed from Y'."""
    env = environment or {}
    own = _one_commit(env)
    earlier = [_one_commit(s) for s in env.get("resumed_from") or [] if isinstance(s, dict)]
    others = sorted(set(earlier) - {own})
    return own + (f" resumed from {' and '.join(others)}" if others else "")


def commit_counts_text(counts: dict[str, int]) -> str:
    """Each commit with the runs it trained, as reports write it: 'X (6 runs), Y (1 run)'."""
    return ", ".join(f"{commit} ({n} run{'s' * (n != 1)})" for commit, n in counts.items())


def _artifacts_used(study: str, *by: Any) -> Select[Any]:
    """The `by` columns of the study's runs with each teacher or cache they used (key,
    kind, build seconds), once per distinct row."""
    return (
        select(*by, ArtifactRow.key, ArtifactRow.kind, ArtifactRow.build_seconds)
        .join(RunArtifactRow, RunArtifactRow.run_id == RunRow.id)
        .join(ArtifactRow, ArtifactRow.key == RunArtifactRow.artifact_key)
        .where(RunRow.study == study)
        .distinct()
    )


def _one_commit(env: dict[str, Any]) -> str:
    return str(env.get("commit") or "unknown")[:12] + ("+dirty" if env.get("commit_dirty") else "")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class RunIdentity:
    """What names a run's row: the study and trial it belongs to, the (configuration, seed)
    it is, and the label and factors the study shows it by. A run trained here and a run
    copied from another study are named the same way."""

    study: str
    trial_number: int | None
    config_hash: str
    seed: int
    label: str
    factors: dict[str, Any]


@dataclass(frozen=True)
class FinishedRun:
    """What a complete run adds to its row."""

    train_seconds: float
    eval_seconds: float
    student_params: int
    top1: float
    metrics: dict[str, Any]


@dataclass(frozen=True)
class RunActivity:
    """Where one run stands, as `libkd run --workers N` shows its other workers' trials."""

    id: int
    label: str
    seed: int
    status: RunStatus
    worker: str
    top1: float | None
    seconds: float  # teachers, caches, training and validation


class Store:
    """The harness's tables in one database (next to Optuna's).

    `create=False` opens an existing libkd database only: one without libkd tables is an
    error. `read_only=True` (the commands that only read) writes nothing to it, not even a
    migration (`open_for_reading`). `opened` says how Optuna's storage reaches the same data.
    """

    def __init__(
        self,
        url: str,
        *,
        engine: Engine | None = None,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.url = url
        try:
            if read_only:
                self.opened = open_for_reading(url)
                self.engine = self.opened.engine
            else:
                path = sqlite_path(url)
                if create and path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                self.engine = engine or make_engine(url)
                ensure_schema(self.engine, create=create)
                self.opened = Opened(self.engine, url, engine_kwargs(url))
        except SQLAlchemyError as exc:
            raise StorageError(f"{redact(url)}: {first_line(exc)}") from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def start_run(
        self,
        identity: RunIdentity,
        *,
        config: dict[str, Any],
        device: str,
        worker: str,
        environment: dict[str, Any],
        inputs: str | None = None,
    ) -> int:
        row = RunRow(
            **asdict(identity),
            inputs=inputs,
            config=config,
            device=device,
            worker=worker,
            environment=environment,
            status=RunStatus.RUNNING,
            started_at=utcnow(),
            metrics={},
        )
        with self.session() as s:
            s.add(row)
            s.flush()
            return row.id

    def _run(self, s: Session, run_id: int) -> RunRow:
        row = s.get(RunRow, run_id)
        if row is None:
            raise StorageError(f"run {run_id} is not in {redact(self.url)}")
        return row

    def add_environment(self, run_id: int, **items: Any) -> None:
        """Add what is learnt about where a run came from during it (e.g. the sittings its
        resumed student went on from) to its environment."""
        with self.session() as s:
            row = self._run(s, run_id)
            row.environment = {**(row.environment or {}), **items}  # a new value: saved

    def record_sources(
        self,
        run_id: int,
        *,
        teacher_seconds: float,
        cache_seconds: float,
        cache_status: CacheStatus,
    ) -> None:
        """What getting the run's teachers and their logits cost, and whether it hit a cache."""
        with self.session() as s:
            row = self._run(s, run_id)
            row.teacher_seconds, row.cache_seconds = teacher_seconds, cache_seconds
            row.cache_status = cache_status

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        error: str | None = None,
        result: FinishedRun | None = None,
    ) -> None:
        with self.session() as s:
            row = self._run(s, run_id)
            row.status, row.error, row.finished_at = status, error, utcnow()
            if result is not None:
                row.train_seconds, row.eval_seconds = result.train_seconds, result.eval_seconds
                row.student_params, row.top1 = result.student_params, result.top1
                row.metrics = result.metrics

    def add_epoch(self, run_id: int, epoch: int, metrics: dict[str, float]) -> None:
        with self.session() as s:
            s.add_all(
                EpochRow(run_id=run_id, epoch=epoch, name=name, value=float(value))
                for name, value in metrics.items()
            )
            self._run(s, run_id).epochs_done = epoch + 1

    def record_artifact(
        self,
        *,
        key: str,
        kind: str,
        name: str,
        path: str,
        size: int,
        build_seconds: float,
        meta: dict[str, Any],
    ) -> None:
        """Insert once per key; later builds of the same key (after corruption) update it.

        Several workers may record the same key at once: the loser of the insert updates.
        """
        fields = dict(
            kind=kind, name=name, path=path, bytes=size, build_seconds=build_seconds, meta=meta
        )
        for _ in range(2):
            try:
                with self.session() as s:
                    row = s.get(ArtifactRow, key)
                    if row is None:
                        s.add(ArtifactRow(key=key, created_at=utcnow(), **fields))
                    elif build_seconds > 0:
                        row.bytes, row.build_seconds, row.meta = size, build_seconds, meta
                return
            except IntegrityError:
                continue  # another worker inserted it between our read and our write
        raise StorageError(f"could not record artifact {key} in {redact(self.url)}")

    def artifact_meta(self, key: str) -> dict[str, Any] | None:
        """What was recorded about the artifact `key` (None: nothing yet)."""
        with self.session() as s:
            row = s.get(ArtifactRow, key)
            return None if row is None else dict(row.meta)

    def link_artifact(self, run_id: int, key: str, *, role: str, hit: bool) -> None:
        with self.session() as s:
            s.add(RunArtifactRow(run_id=run_id, artifact_key=key, role=role, hit=hit))

    def runs(self, study: str | None = None, *, status: RunStatus | None = None) -> list[RunRow]:
        with self.session() as s:
            query = select(RunRow).order_by(RunRow.id)
            if study is not None:
                query = query.where(RunRow.study == study)
            if status is not None:
                query = query.where(RunRow.status == status)
            return list(s.scalars(query))

    def activity(self, study: str, *, since: datetime, other_than: str) -> list[RunActivity]:
        """The runs of `study` started at `since` (UTC) or later by workers other than
        `other_than`, in the order they started: a few columns, not the runs' JSON."""
        cost = RunRow.teacher_seconds + RunRow.cache_seconds
        cost = cost + RunRow.train_seconds + RunRow.eval_seconds
        query = (
            select(RunRow.id, RunRow.label, RunRow.seed, RunRow.status, RunRow.worker)
            .add_columns(RunRow.top1, cost)
            .where(RunRow.study == study, RunRow.started_at >= since)
            .where(RunRow.worker != other_than)
            .order_by(RunRow.id)
        )
        with self.session() as s:
            return [RunActivity(*row) for row in s.execute(query)]

    def study_names(self) -> list[str]:
        """The studies with runs in this database, by name."""
        with self.session() as s:
            return list(s.scalars(select(RunRow.study).distinct().order_by(RunRow.study)))

    def no_runs_error(self, study: str) -> StorageError:
        """The error for a study without runs here, naming the studies that have some."""
        known = ", ".join(self.study_names()) or "none"
        return StorageError(
            f"study {study!r} has no runs in this database; run it first (studies there: {known})"
        )

    def has_runs(self) -> bool:
        """Whether any study has a run in this database."""
        with self.session() as s:
            return s.execute(select(RunRow.id).limit(1)).first() is not None

    def first_environment(self, study: str) -> dict[str, Any]:
        """The environment recorded by the study's first run ({} without runs)."""
        with self.session() as s:
            query = select(RunRow.environment).where(RunRow.study == study).order_by(RunRow.id)
            return dict(s.execute(query.limit(1)).scalar() or {})

    def commit_counts(self, study: str) -> dict[str, int]:
        """How many of the study's runs each commit trained (`+dirty`: with uncommitted
        changes), copies counted at the commit that trained them."""
        counts: dict[str, int] = {}
        with self.session() as s:
            query = select(RunRow.environment).where(RunRow.study == study)
            for (env,) in s.execute(query):
                commit = commit_label(env)
                counts[commit] = counts.get(commit, 0) + 1
        return dict(sorted(counts.items()))

    def complete_run_metrics(
        self, study: str, config_hash: str, seed: int
    ) -> dict[str, Any] | None:
        """Metrics of a complete run of this (configuration, seed), or None."""
        with self.session() as s:
            row = s.scalars(
                select(RunRow).where(
                    RunRow.study == study,
                    RunRow.config_hash == config_hash,
                    RunRow.seed == seed,
                    RunRow.status == RunStatus.COMPLETE,
                )
            ).first()
            return None if row is None else dict(row.metrics)

    def copyable(self, study: str) -> set[tuple[str, int]]:
        """(config_hash, seed) of every complete run the other studies of this database
        hold: what `copy_run` copies into `study` instead of training it."""
        query = (
            select(RunRow.config_hash, RunRow.seed)
            .where(RunRow.study != study, RunRow.status == RunStatus.COMPLETE)
            .distinct()
        )
        with self.session() as s:
            return {(config, seed) for config, seed in s.execute(query)}

    def run_configs(self, study: str) -> dict[str, dict[str, Any]]:
        """The configuration of each config hash the study has runs of (one row read per
        hash): what its runs were trained with, without the study file."""
        first = (
            select(func.min(RunRow.id)).where(RunRow.study == study).group_by(RunRow.config_hash)
        )
        query = select(RunRow.config_hash, RunRow.config).where(RunRow.id.in_(first))
        with self.session() as s:
            return {config_hash: dict(config) for config_hash, config in s.execute(query)}

    def copy_run(self, identity: RunIdentity, *, inputs: Sequence[str]) -> RunRow | None:
        """Copy into `identity`'s study a complete run of its (configuration, seed) that
        another study of this database trained from the same inputs: its row, epochs and
        artifact links, in one transaction. The copy takes `identity` (this study's trial,
        label and factors), and `adopted_from` names the run that was trained (never a copy
        of it). None when no other study has one.

        Same hash, seed and inputs key is the same experiment: the hash covers every field
        training reads, the seed draws what the configuration's seed scope names, and the
        inputs key (`harness.inputs`: one of `inputs`) what it read from disk, where and how
        it ran, and the training code's behaviour. Training it again would only spend time."""
        if not inputs:
            return None
        with self.session() as s:
            source = s.scalars(
                select(RunRow)
                .where(
                    RunRow.study != identity.study,
                    RunRow.config_hash == identity.config_hash,
                    RunRow.seed == identity.seed,
                    RunRow.status == RunStatus.COMPLETE,
                    RunRow.inputs.in_(list(inputs)),
                )
                .order_by(RunRow.id)
            ).first()
            if source is None:
                return None
            copied = {
                column: getattr(source, column)
                for column in RunRow.__table__.columns.keys()  # noqa: SIM118 (a ColumnCollection)
                if column != "id"
            }
            copy = RunRow(
                **copied | asdict(identity) | {"adopted_from": source.adopted_from or source.id}
            )
            s.add(copy)
            s.flush()
            s.execute(
                insert(EpochRow).from_select(
                    ["run_id", "epoch", "name", "value"],
                    select(literal(copy.id), EpochRow.epoch, EpochRow.name, EpochRow.value).where(
                        EpochRow.run_id == source.id
                    ),
                )
            )
            s.execute(
                insert(RunArtifactRow).from_select(
                    ["run_id", "artifact_key", "role", "hit"],
                    select(
                        literal(copy.id),
                        RunArtifactRow.artifact_key,
                        RunArtifactRow.role,
                        RunArtifactRow.hit,
                    ).where(RunArtifactRow.run_id == source.id),
                )
            )
            return copy

    def curve(self, run_id: int, metric: str) -> list[tuple[int, float]]:
        """(epoch, value) of one metric of one run, by epoch."""
        query = (
            select(EpochRow.epoch, EpochRow.value)
            .where(EpochRow.run_id == run_id, EpochRow.name == metric)
            .order_by(EpochRow.epoch)
        )
        with self.session() as s:
            return [(epoch, value) for epoch, value in s.execute(query)]

    def save_study(
        self, name: str, *, kind: str, file: dict[str, Any], source: str, overrides: list[str]
    ) -> None:
        """Record (or replace) the study file a study is queued from."""
        with self.session() as s:
            s.merge(
                StudyRow(
                    name=name, kind=kind, file=file, source=source, overrides={"set": overrides}
                )
            )

    def study_record(self, name: str) -> StudyRow | None:
        """The recorded study file of `name` (None for studies queued before libkd kept it)."""
        with self.session() as s:
            return s.get(StudyRow, name)

    def save_contrasts(self, study: str, contrasts: list[ContrastRow]) -> None:
        """Replace the study's contrasts (the study file, as queued now, is the truth)."""
        with self.session() as s:
            s.execute(delete(ContrastRow).where(ContrastRow.study == study))
            s.add_all(contrasts)

    def contrasts(self, study: str) -> list[ContrastRow]:
        """The study's contrasts in declared order; [] for studies queued before contrasts."""
        with self.session() as s:
            query = select(ContrastRow).where(ContrastRow.study == study)
            return list(s.scalars(query.order_by(ContrastRow.position)))

    def save_trends(self, study: str, trends: list[TrendRow]) -> None:
        """Replace the study's trends (the study file, as queued now, is the truth)."""
        with self.session() as s:
            s.execute(delete(TrendRow).where(TrendRow.study == study))
            s.add_all(trends)

    def trends(self, study: str) -> list[TrendRow]:
        """The study's trends in declared order."""
        with self.session() as s:
            query = select(TrendRow).where(TrendRow.study == study)
            return list(s.scalars(query.order_by(TrendRow.position)))

    def claim_pairs(
        self, study: str, pairs: Sequence[tuple[str, int]], claimant: str
    ) -> set[tuple[str, int]]:
        """Claim the right to queue each (configuration hash, seed): returns the pairs this
        call won. Each pair goes to one caller across processes and machines (the primary
        key; a pair someone claimed before is skipped by the database, not by a read)."""
        if not pairs:
            return set()
        now = utcnow()
        rows = [
            dict(study=study, config_hash=h, seed=seed, claimant=claimant, claimed_at=now)
            for h, seed in dict.fromkeys(pairs)
        ]
        # The dialect's own INSERT (for ON CONFLICT), imported here: reading commands never
        # need it, and PostgreSQL's dialect costs a SQLite user about 0.1 s of imports.
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql as dialect
        else:
            from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]
        insert_new = dialect.insert(QueueClaimRow).values(queued=False).on_conflict_do_nothing()
        with self.session() as s:
            s.execute(insert_new, rows)
            won = s.execute(
                select(QueueClaimRow.config_hash, QueueClaimRow.seed).where(
                    QueueClaimRow.study == study,
                    QueueClaimRow.claimant == claimant,
                    QueueClaimRow.queued.is_(False),
                )
            ).all()
        wanted = set(pairs)
        return {(h, seed) for h, seed in won if (h, seed) in wanted}

    def mark_queued(self, study: str, pairs: Iterable[tuple[str, int]]) -> None:
        """The claims on `pairs` are fulfilled: their trials are in Optuna's queue."""
        with self.session() as s:
            for h, seed in pairs:
                s.execute(
                    update(QueueClaimRow)
                    .where(
                        QueueClaimRow.study == study,
                        QueueClaimRow.config_hash == h,
                        QueueClaimRow.seed == seed,
                    )
                    .values(queued=True)
                )

    def release_claims(self, study: str, pairs: Iterable[tuple[str, int]], claimant: str) -> None:
        """Give back `claimant`'s unqueued claims on `pairs` (it stops before queueing them)."""
        with self.session() as s:
            for h, seed in pairs:
                s.execute(
                    delete(QueueClaimRow).where(
                        QueueClaimRow.study == study,
                        QueueClaimRow.config_hash == h,
                        QueueClaimRow.seed == seed,
                        QueueClaimRow.claimant == claimant,
                        QueueClaimRow.queued.is_(False),
                    )
                )

    def pending_claims(self, study: str) -> list[QueueClaimRow]:
        """The study's claims whose trial is not known to be queued yet."""
        with self.session() as s:
            query = select(QueueClaimRow).where(
                QueueClaimRow.study == study, QueueClaimRow.queued.is_(False)
            )
            return list(s.scalars(query.order_by(QueueClaimRow.seed, QueueClaimRow.config_hash)))

    def take_over_claim(self, claim: QueueClaimRow, claimant: str) -> bool:
        """Make `claimant` the holder of an unqueued claim whose holder is gone: True for the
        one caller whose update finds the claim as it was read."""
        with self.session() as s:
            taken = s.execute(
                update(QueueClaimRow)
                .where(
                    QueueClaimRow.study == claim.study,
                    QueueClaimRow.config_hash == claim.config_hash,
                    QueueClaimRow.seed == claim.seed,
                    QueueClaimRow.claimant == claim.claimant,
                    QueueClaimRow.queued.is_(False),
                )
                .values(claimant=claimant, claimed_at=utcnow())
            )
            return bool(getattr(taken, "rowcount", 0) == 1)

    def final_values(
        self, study: str, metric: str
    ) -> list[tuple[str, int, RunStatus, float | None]]:
        """(config_hash, seed, status, the finished run's `metric`) of every run of the study."""
        query = select(RunRow.config_hash, RunRow.seed, RunRow.status, RunRow.metrics).where(
            RunRow.study == study
        )
        with self.session() as s:
            rows = s.execute(query).all()
        return [(h, seed, status, (found or {}).get(metric)) for h, seed, status, found in rows]

    def unresolved_failures(self, study: str, *, since: datetime) -> list[RunRow]:
        """Runs of `study` started at or after `since` that failed, of (configuration, seed)
        pairs with no complete run: what a call left undone."""
        with self.session() as s:
            complete = (
                select(RunRow.id)
                .where(
                    RunRow.study == study,
                    RunRow.status == RunStatus.COMPLETE,
                    RunRow.config_hash == FailedRun.config_hash,
                    RunRow.seed == FailedRun.seed,
                )
                .exists()
            )
            query = (
                select(FailedRun)
                .where(
                    FailedRun.study == study,
                    FailedRun.status == RunStatus.FAILED,
                    FailedRun.started_at >= since,
                    ~complete,
                )
                .order_by(FailedRun.id)
            )
            return list(s.scalars(query))

    def mean_run_seconds(self, study: str, *, one_offs: bool = True) -> dict[str | None, float]:
        """Mean seconds of the study's complete runs (teachers, caches, training and
        evaluation; training and evaluation alone with `one_offs=False`) per configuration
        hash, and over them all under None; computed by the database, empty before any run
        completes. A stem student costs 3x a token student: one mean for every
        configuration would misstate what is left. A run copied from another study counts
        at the seconds it took to train: it cost nothing here, but it is a measurement of
        what its configuration costs (left out, a configuration whose runs were all copied
        fell back to the study's mean, which in a schedule pilot whose only trained runs
        were the shortest understated the ETA 3.6x)."""
        total = RunRow.train_seconds + RunRow.eval_seconds
        if one_offs:
            total = total + RunRow.teacher_seconds + RunRow.cache_seconds
        query = (
            select(RunRow.config_hash, func.count(), func.sum(total))
            .where(RunRow.study == study, RunRow.status == RunStatus.COMPLETE)
            .group_by(RunRow.config_hash)
        )
        with self.session() as s:
            found = s.execute(query).all()
        if not found:
            return {}
        runs, seconds = sum(n for _, n, _ in found), sum(float(t) for _, _, t in found)
        return {None: seconds / runs} | {key: float(t) / n for key, n, t in found}

    def mean_build_seconds(self, study: str) -> dict[str, float]:
        """Per configuration, the mean over its complete seeds that needed something built
        of what building it took (what a seed that must build its own teachers and caches
        adds). A seed's cost is the larger of what its runs spent building (failed runs too)
        and the recorded build seconds of the teachers and caches they used, each counted
        once: a run stopped after its teachers were stored but before its costs were leaves
        them to its re-queued copy, which finds them and builds nothing. A seed still
        running is left out: its builds are not all in."""
        complete = (
            select(RunRow.config_hash, RunRow.seed)
            .where(RunRow.study == study, RunRow.status == RunStatus.COMPLETE)
            .distinct()
        )
        spent = (
            select(
                RunRow.config_hash,
                RunRow.seed,
                func.sum(RunRow.teacher_seconds + RunRow.cache_seconds),
            )
            .where(RunRow.study == study)
            .group_by(RunRow.config_hash, RunRow.seed)
        )
        used = _artifacts_used(study, RunRow.config_hash, RunRow.seed)
        with self.session() as s:
            done = {(c, n) for c, n in s.execute(complete)}
            per_seed = {(c, n): float(t or 0.0) for c, n, t in s.execute(spent) if (c, n) in done}
            built: dict[tuple[str, int], float] = {}
            for config, seed, _key, _kind, seconds in s.execute(used):
                built[config, seed] = built.get((config, seed), 0.0) + float(seconds or 0.0)
        costs: dict[str, list[float]] = {}
        for pair, seconds in per_seed.items():
            cost = max(seconds, built.get(pair, 0.0))
            if cost > 0:
                costs.setdefault(pair[0], []).append(cost)
        return {config: sum(c) / len(c) for config, c in costs.items()}

    def one_off_costs(self, study: str) -> dict[str, dict[str, float]]:
        """Per configuration, the build seconds of the teachers and caches its runs used,
        each artifact counted once: {config_hash: {"teacher": s, "cache": s}}. What the
        configuration costs once, whichever run (of whichever configuration) paid it."""
        costs: dict[str, dict[str, float]] = {}
        with self.session() as s:
            for config, _key, kind, seconds in s.execute(
                _artifacts_used(study, RunRow.config_hash)
            ):
                bucket = costs.setdefault(config, {"teacher": 0.0, "cache": 0.0})
                bucket[kind] = bucket.get(kind, 0.0) + float(seconds or 0.0)
        return costs

    def artifacts(self, kind: str | None = None) -> list[ArtifactRow]:
        with self.session() as s:
            query = select(ArtifactRow).order_by(ArtifactRow.created_at)
            if kind is not None:
                query = query.where(ArtifactRow.kind == kind)
            return list(s.scalars(query))

    def study_artifacts(self, study: str) -> list[tuple[str, ArtifactRow]]:
        """(role, artifact) for every artifact the study's runs used, once per pair.

        DISTINCT runs over the role and the key only: PostgreSQL cannot compare JSON
        columns (the artifact's meta) for equality.
        """
        with self.session() as s:
            pairs = (
                select(RunArtifactRow.role, RunArtifactRow.artifact_key)
                .join(RunRow, RunRow.id == RunArtifactRow.run_id)
                .where(RunRow.study == study)
                .distinct()
                .subquery()
            )
            query = (
                select(pairs.c.role, ArtifactRow)
                .join(ArtifactRow, ArtifactRow.key == pairs.c.artifact_key)
                .order_by(pairs.c.role, ArtifactRow.key)
            )
            return [(role, artifact) for role, artifact in s.execute(query).all()]

    def artifact_runs(self, study: str) -> dict[str, list[int]]:
        """Artifact key -> the study's runs that used it (a teacher instance's runs share
        the data it was trained on)."""
        query = (
            select(RunArtifactRow.artifact_key, RunArtifactRow.run_id)
            .join(RunRow, RunRow.id == RunArtifactRow.run_id)
            .where(RunRow.study == study)
            .order_by(RunArtifactRow.run_id)
        )
        used: dict[str, list[int]] = {}
        with self.session() as s:
            for key, run_id in s.execute(query):
                used.setdefault(key, []).append(run_id)
        return used

    def artifact_use_counts(self) -> dict[str, int]:
        with self.session() as s:
            query = select(
                RunArtifactRow.artifact_key, func.count(func.distinct(RunArtifactRow.run_id))
            ).group_by(RunArtifactRow.artifact_key)
            return {key: count for key, count in s.execute(query).all()}
