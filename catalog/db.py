"""The catalog's own tables (datasets, versions, runs, quarantine, cursor state, lineage) in one SQL database."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = [
    "Dataset", "DatasetVersion", "LineageEdge", "QuarantinedRow", "Run", "SourceState",
    "engine", "init_db", "session", "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    """A published table: one per source (harmonized) and one per standard (integrated)."""

    __tablename__ = "hub_datasets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # also its name in SQL
    kind: Mapped[str] = mapped_column(String(16))  # harmonized | integrated
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    standard: Mapped[str] = mapped_column(String(64))
    standard_version: Mapped[str] = mapped_column(String(32))
    classification: Mapped[str] = mapped_column(String(16))
    agency_code: Mapped[str | None] = mapped_column(String(64))
    agency_name: Mapped[str | None] = mapped_column(String(300))
    table_identifier: Mapped[str] = mapped_column(String(200))
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    quality_score: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class DatasetVersion(Base):
    """One Iceberg snapshot of a dataset, with the run that made it."""

    __tablename__ = "hub_dataset_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("hub_datasets.id"), index=True)
    snapshot_id: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[str] = mapped_column(String(250))
    committed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    row_count: Mapped[int] = mapped_column(BigInteger)


class Run(Base):
    """One pipeline run of a source, or one refresh of an integrated dataset."""

    __tablename__ = "hub_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(250), index=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # source | integration
    status: Mapped[str] = mapped_column(String(16))  # published | unchanged | failed
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    rows_in: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_published: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, default=0)
    quality_score: Mapped[float | None] = mapped_column(Float)
    validation: Mapped[dict | None] = mapped_column(JSON)
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)


class QuarantinedRow(Base):
    """A record that was not published, with its reason codes (field:rule) and the values as received."""

    __tablename__ = "hub_quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str] = mapped_column(String(250), index=True)
    row_number: Mapped[int] = mapped_column(BigInteger)
    reasons: Mapped[list] = mapped_column(JSON)
    record: Mapped[dict] = mapped_column(JSON)


class SourceState(Base):
    """Where a source's next run starts; written only after the publish it describes has committed."""

    __tablename__ = "hub_source_state"
    source_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[object | None] = mapped_column(JSON)
    run_id: Mapped[str] = mapped_column(String(250))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class LineageEdge(Base):
    """`dataset_id` is derived from `upstream` (a dataset id, or `system:...` for an agency system)."""

    __tablename__ = "hub_lineage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    upstream: Mapped[str] = mapped_column(String(300))
    relation: Mapped[str] = mapped_column(String(32))  # harmonized_from | integrated_from


@cache
def engine(url: str) -> Engine:
    eng = create_engine(url, pool_pre_ping=True)
    if eng.dialect.name == "sqlite":
        # Airflow tasks, the API and the CLI may touch the file at once.
        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return eng


def init_db(url: str) -> None:
    eng = engine(url)
    if eng.dialect.name == "sqlite" and eng.url.database not in (None, "", ":memory:"):
        Path(eng.url.database).parent.mkdir(parents=True, exist_ok=True)
    Base.metadata.create_all(eng)


def session(url: str) -> Session:
    return Session(engine(url), expire_on_commit=False)
