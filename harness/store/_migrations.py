"""The version of libkd's tables in a database: created, stamped, checked and migrated when a
Store opens. Each migration takes a database from version v to v + 1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Engine, Table, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from harness.errors import StorageError
from harness.inputs import legacy_inputs_key, reads_user_files
from harness.metrics import VAL_TOP1
from harness.store._models import (
    EPOCH_INDEX,
    SCHEMA_VERSION,
    Base,
    EpochRow,
    QueueClaimRow,
    SchemaRow,
)

LEGACY_VERSION = 1
"""Databases written before the version table (up to libkd 0.1.0 at 093ee2d) hold the
version-1 tables unstamped; they are stamped 1 on first open."""


def _add_epoch_index(connection: Connection) -> None:
    """1 -> 2: the covering index of libkd_epochs (reading 1,000 runs x 50 epochs)."""
    index = next(i for i in cast(Table, EpochRow.__table__).indexes if i.name == EPOCH_INDEX)
    index.create(connection, checkfirst=True)


def _add_contrast_tables(connection: Connection) -> None:
    """2 -> 3: libkd_contrasts and libkd_seed_claims, new tables (created after the steps)."""


def _add_adopted_from(connection: Connection) -> None:
    """3 -> 4: libkd_runs.adopted_from; every run stored before was trained for its row.
    (A database stamped older than its tables, as tests make, has the column already.)"""
    columns = {column["name"] for column in inspect(connection).get_columns("libkd_runs")}
    if "adopted_from" in columns:
        return
    connection.execute(text("ALTER TABLE libkd_runs ADD COLUMN adopted_from INTEGER"))


def _add_target_metric(connection: Connection) -> None:
    """4 -> 5: libkd_contrasts.target_metric; every seed plan stored before aimed at
    validation top-1."""
    if "libkd_contrasts" not in inspect(connection).get_table_names():
        return  # a database from before version 3: the table is created with the column
    columns = {column["name"] for column in inspect(connection).get_columns("libkd_contrasts")}
    if "target_metric" not in columns:
        connection.execute(text("ALTER TABLE libkd_contrasts ADD COLUMN target_metric VARCHAR(32)"))
    connection.execute(
        text(
            "UPDATE libkd_contrasts SET target_metric = :metric "
            "WHERE halfwidth IS NOT NULL AND target_metric IS NULL"
        ),
        {"metric": VAL_TOP1},
    )


def _add_queue_claims_and_inputs(connection: Connection) -> None:
    """5 -> 6: libkd_queue_claims replaces libkd_seed_claims, and libkd_runs gains `inputs`.

    The seed plan's claims carry over unqueued and without a claimant, so the first worker
    checks each against Optuna's queue: queued ones are marked, one whose claimant died
    before queueing it is queued. A stored run's inputs key is what its row can vouch for:
    the legacy key of its device and precision where it read no file a user can change;
    none (never copied) where it read a dataset folder or a checkpoint."""
    columns = {column["name"] for column in inspect(connection).get_columns("libkd_runs")}
    if "inputs" not in columns:
        connection.execute(text("ALTER TABLE libkd_runs ADD COLUMN inputs VARCHAR(64)"))
    runs = connection.execute(
        text("SELECT id, config, device FROM libkd_runs WHERE inputs IS NULL")
    ).all()
    for run_id, config, device in runs:
        config = json.loads(config) if isinstance(config, str) else (config or {})
        if reads_user_files(config):
            continue
        precision = (config.get("train") or {}).get("precision", "auto")
        key = legacy_inputs_key(device_kind=str(device).split(":")[0], precision=precision)
        connection.execute(
            text("UPDATE libkd_runs SET inputs = :key WHERE id = :id"), {"key": key, "id": run_id}
        )
    table = cast(Table, QueueClaimRow.__table__)
    table.create(connection, checkfirst=True)
    if "libkd_seed_claims" not in inspect(connection).get_table_names():
        return
    connection.execute(
        text(
            "INSERT INTO libkd_queue_claims (study, config_hash, seed, claimant, claimed_at, "
            "queued) SELECT study, config_hash, seed, '', :epoch, :no FROM libkd_seed_claims"
        ),
        {"epoch": datetime(1970, 1, 1), "no": False},
    )


def _add_contrast_metric(connection: Connection) -> None:
    """6 -> 7: libkd_contrasts.metric (every contrast stored before compared the report's
    metric: None) and libkd_trends (a new table, created after the steps)."""
    if "libkd_contrasts" not in inspect(connection).get_table_names():
        return  # a database from before version 3: the table is created with the column
    columns = {column["name"] for column in inspect(connection).get_columns("libkd_contrasts")}
    if "metric" not in columns:
        connection.execute(text("ALTER TABLE libkd_contrasts ADD COLUMN metric VARCHAR(32)"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _add_epoch_index,
    2: _add_contrast_tables,
    3: _add_adopted_from,
    4: _add_target_metric,
    5: _add_queue_claims_and_inputs,
    6: _add_contrast_metric,
}
"""from-version -> the step to from-version + 1."""


def stored_version(engine: Engine) -> int | None:
    """The version stamped in the database; LEGACY_VERSION for unstamped libkd tables; None
    for a database without libkd tables."""
    tables = set(inspect(engine).get_table_names())
    if SchemaRow.__tablename__ in tables:
        with engine.connect() as connection:
            found = connection.execute(select(SchemaRow.version)).scalar()
        return LEGACY_VERSION if found is None else int(found)
    return LEGACY_VERSION if "libkd_runs" in tables else None


def ensure_schema(engine: Engine, *, create: bool) -> None:
    """Create (if `create`), stamp, check and migrate libkd's tables.

    Several workers may open a new database at once: whoever loses the race to create a
    table or the stamp finds the other's and goes on.
    """
    for attempt in range(3):
        try:
            _ensure(engine, create=create)
            return
        except (IntegrityError, OperationalError, ProgrammingError):
            if attempt == 2:
                raise
            time.sleep(0.05 * (attempt + 1))


def check_version(engine: Engine, *, create: bool) -> int | None:
    """The database's libkd version, refused when this libkd cannot use it: no libkd tables
    (unless `create`), or tables newer than this libkd's."""
    version = stored_version(engine)
    if version is None and not create:
        raise StorageError("this database holds no libkd tables; run a study into it first")
    if version is not None and version > SCHEMA_VERSION:
        raise StorageError(
            f"the database's libkd tables are version {version}, newer than this libkd's "
            f"{SCHEMA_VERSION}; upgrade libkd to read it"
        )
    return version


def _ensure(engine: Engine, *, create: bool) -> None:
    version = check_version(engine, create=create)
    with engine.begin() as connection:
        if version is None:
            Base.metadata.create_all(connection)
            version = SCHEMA_VERSION
        else:
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](connection)
                version += 1
            Base.metadata.create_all(connection)  # tables added since, the stamp among them
        stamped = connection.execute(select(SchemaRow.version)).scalar()
        if stamped is None:
            connection.execute(insert(SchemaRow).values(version=version))
        elif stamped != version:
            connection.execute(update(SchemaRow).values(version=version))
