"""All database access goes through Store.session(), which commits or rolls back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from harness.store._engine import make_engine
from harness.store._models import ArtifactRow, Base, EpochRow, RunArtifactRow, RunRow


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store:
    """The harness's tables in one database (next to Optuna's)."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        Base.metadata.create_all(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def start_run(self, **fields: Any) -> int:
        row = RunRow(status="running", started_at=utcnow(), metrics={}, **fields)
        with self.session() as s:
            s.add(row)
            s.flush()
            return row.id

    def update_run(self, run_id: int, **fields: Any) -> None:
        with self.session() as s:
            row = s.get(RunRow, run_id)
            for name, value in fields.items():
                setattr(row, name, value)

    def finish_run(self, run_id: int, *, status: str, error: str | None = None, **fields: Any):
        self.update_run(run_id, status=status, error=error, finished_at=utcnow(), **fields)

    def add_epoch(self, run_id: int, epoch: int, metrics: dict[str, float]) -> None:
        with self.session() as s:
            s.add_all(
                EpochRow(run_id=run_id, epoch=epoch, name=name, value=float(value))
                for name, value in metrics.items()
            )
            s.get(RunRow, run_id).epochs_done = epoch + 1

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
        raise RuntimeError(f"could not record artifact {key}")

    def link_artifact(self, run_id: int, key: str, *, role: str, hit: bool) -> None:
        with self.session() as s:
            s.add(RunArtifactRow(run_id=run_id, artifact_key=key, role=role, hit=hit))

    def runs(self, study: str | None = None) -> list[RunRow]:
        with self.session() as s:
            query = select(RunRow).order_by(RunRow.id)
            if study is not None:
                query = query.where(RunRow.study == study)
            return list(s.scalars(query))

    def artifacts(self, kind: str | None = None) -> list[ArtifactRow]:
        with self.session() as s:
            query = select(ArtifactRow).order_by(ArtifactRow.created_at)
            if kind is not None:
                query = query.where(ArtifactRow.kind == kind)
            return list(s.scalars(query))

    def study_artifacts(self, study: str) -> list[tuple[str, ArtifactRow]]:
        """(role, artifact) for every artifact the study's runs used, once per pair."""
        with self.session() as s:
            query = (
                select(RunArtifactRow.role, ArtifactRow)
                .join(ArtifactRow, ArtifactRow.key == RunArtifactRow.artifact_key)
                .join(RunRow, RunRow.id == RunArtifactRow.run_id)
                .where(RunRow.study == study)
                .distinct()
                .order_by(RunArtifactRow.role)
            )
            return [(role, artifact) for role, artifact in s.execute(query).all()]

    def artifact_use_counts(self) -> dict[str, int]:
        with self.session() as s:
            query = select(
                RunArtifactRow.artifact_key, func.count(func.distinct(RunArtifactRow.run_id))
            ).group_by(RunArtifactRow.artifact_key)
            return dict(s.execute(query).all())

    def forget_artifact(self, key: str) -> None:
        with self.session() as s:
            for link in s.scalars(select(RunArtifactRow).where(RunArtifactRow.artifact_key == key)):
                s.delete(link)
            row = s.get(ArtifactRow, key)
            if row is not None:
                s.delete(row)
