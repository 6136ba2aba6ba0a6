"""SQLAlchemy 2.0 typed models of the harness's own tables (prefixed libkd_)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy import Enum as SQLEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from harness.status import CacheStatus, RunStatus

SCHEMA_VERSION = 7
"""Version of the libkd_ tables below; bump it with a migration in `_schema.py`.
1: the tables of libkd 0.1.0. 2: the covering index of libkd_epochs. 3: libkd_studies,
libkd_contrasts and libkd_seed_claims (the study file as queued, declared contrasts, seeds
added by a precision goal). 4: libkd_runs.adopted_from (a run copied from another study).
5: libkd_contrasts.target_metric (the metric a seed plan aims at). 6: libkd_queue_claims, the
claim on every queued (configuration, seed), grid and seed plan alike (was libkd_seed_claims,
the seed plan's only, without a claimant), and libkd_runs.inputs (what a run read besides its
configuration, which a copy must match). 7: libkd_contrasts.metric (what a contrast compares)
and libkd_trends (a delta's slope along a numeric factor)."""
EPOCH_INDEX = "ix_libkd_epochs_run_name_epoch_value"

E = TypeVar("E", bound=Enum)


def _stored_as_value(enum: type[E]) -> SQLEnum:
    """An enum column holding the member's value as text, as databases before enums did."""
    return SQLEnum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class SchemaRow(Base):
    """One row: the version of libkd's tables in this database."""

    __tablename__ = "libkd_schema"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class RunRow(Base):
    """One (configuration, seed) training of a student."""

    __tablename__ = "libkd_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study: Mapped[str] = mapped_column(String(200), index=True)
    trial_number: Mapped[int | None]
    config_hash: Mapped[str] = mapped_column(String(64), index=True)
    seed: Mapped[int]
    label: Mapped[str] = mapped_column(Text)
    factors: Mapped[dict[str, Any]]
    config: Mapped[dict[str, Any]]
    status: Mapped[RunStatus] = mapped_column(_stored_as_value(RunStatus), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str] = mapped_column(String(64))
    worker: Mapped[str] = mapped_column(String(200))
    environment: Mapped[dict[str, Any]]
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    epochs_done: Mapped[int] = mapped_column(default=0)
    teacher_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cache_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    train_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    eval_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cache_status: Mapped[CacheStatus] = mapped_column(
        _stored_as_value(CacheStatus), default=CacheStatus.OFF
    )
    student_params: Mapped[int | None]
    top1: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]]
    # The id of the run this row copies, trained by another study of this database with the
    # same configuration hash and seed (None: trained for this row).
    adopted_from: Mapped[int | None]
    # What the run read besides its configuration (harness.inputs): a run is copied only into
    # a study whose run would read the same. None: stored before libkd kept it, and not keyable.
    inputs: Mapped[str | None] = mapped_column(String(64))

    epochs: Mapped[list[EpochRow]] = relationship(cascade="all, delete-orphan")


class EpochRow(Base):
    """One metric of one epoch of one run (long format: every loss term, every head)."""

    __tablename__ = "libkd_epochs"
    # Covers the reading queries (best and last epoch of a metric per run, curves of the
    # drawn metrics): they are answered from the index alone.
    __table_args__ = (Index(EPOCH_INDEX, "run_id", "name", "epoch", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("libkd_runs.id"), index=True)
    epoch: Mapped[int]
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)


class ArtifactRow(Base):
    """A teacher checkpoint or a logit cache, by content key."""

    __tablename__ = "libkd_artifacts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # teacher|cache
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int]
    build_seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    meta: Mapped[dict[str, Any]]


class RunArtifactRow(Base):
    """Which artifacts a run used, and whether it found them (hit) or made them (built)."""

    __tablename__ = "libkd_run_artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("libkd_runs.id"), index=True)
    artifact_key: Mapped[str] = mapped_column(ForeignKey("libkd_artifacts.key"), index=True)
    role: Mapped[str] = mapped_column(String(100))
    hit: Mapped[bool]


class ContrastRow(Base):
    """A study's contrast, resolved to its two configurations when the study was queued:
    what reports and the seed rule compare (treatment minus control, paired by seed)."""

    __tablename__ = "libkd_contrasts"

    study: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int]
    treatment_hash: Mapped[str] = mapped_column(String(64))
    control_hash: Mapped[str] = mapped_column(String(64))
    treatment_label: Mapped[str] = mapped_column(Text)
    control_label: Mapped[str] = mapped_column(Text)
    margin: Mapped[float | None] = mapped_column(Float)  # equivalence margin
    halfwidth: Mapped[float | None] = mapped_column(Float)  # the seed plan's target, if aimed
    target_metric: Mapped[str | None] = mapped_column(String(32))  # what the target is on
    min_seeds: Mapped[int | None]
    max_seeds: Mapped[int | None]
    metric: Mapped[str | None] = mapped_column(String(32))  # None: the report's metric


class TrendRow(Base):
    """A study's trend, resolved when the study was queued: at each level of a numeric
    factor (`levels`: value, treatment and control hashes and labels, in increasing
    order), a contrast; the trend is the slope of its delta against the factor or its log."""

    __tablename__ = "libkd_trends"

    study: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int]
    factor: Mapped[str] = mapped_column(Text)
    scale: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str | None] = mapped_column(String(32))
    levels: Mapped[list[Any]] = mapped_column(JSON)
    halfwidth: Mapped[float | None] = mapped_column(Float)
    target_metric: Mapped[str | None] = mapped_column(String(32))
    min_seeds: Mapped[int | None]
    max_seeds: Mapped[int | None]


class QueueClaimRow(Base):
    """The right to queue one (configuration, seed) of a study: the primary key makes the
    claim atomic, so two processes never queue the same pair, whatever runs at once. A claim
    is `queued` once its trial is in Optuna's queue; until then `claimant` (host:pid) holds it,
    and a claim whose claimant died, or that stayed unqueued past the heartbeat grace, is
    taken over and queued by any worker."""

    __tablename__ = "libkd_queue_claims"

    study: Mapped[str] = mapped_column(String(200), primary_key=True)
    config_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    seed: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    claimant: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(DateTime)
    queued: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class StudyRow(Base):
    """A queued study: its validated file (what workers run), where it came from and the
    overrides applied. Kept here, not in Optuna's study attributes, so Optuna's own tools
    list studies in short lines."""

    __tablename__ = "libkd_studies"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    file: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(Text)
    overrides: Mapped[dict[str, Any]]  # {"set": ["path=value", ...]}
