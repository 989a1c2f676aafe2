"""The catalog's own tables (datasets, versions, runs, quarantine, cursor state, lineage) in one SQL database."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from sqlalchemy import (DDL, JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String, Text, create_engine, event,
                        inspect)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = [
    "Dataset", "DatasetVersion", "DownloadFile", "LineageEdge", "QuarantinedRow", "Run", "SearchDocument", "SearchFacet", "SourceState",
    "all_tables", "dataset_row", "engine", "init_db", "session", "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    """A published table: one per source (harmonized), one per standard (integrated), one per indicator."""

    __tablename__ = "hub_datasets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # also its name in SQL
    kind: Mapped[str] = mapped_column(String(16))  # harmonized | integrated | indicator
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


class DownloadFile(Base):
    """A whole download of a dataset version as one view of it gives it (`catalog.views.Visible.key`): its size and
    SHA-256, measured as it was first streamed. Callers who see the same view get the same bytes, so CKAN's resource
    `size`/`hash` and DCAT's byte size and checksum state these; rows of past versions are removed."""

    __tablename__ = "hub_download_files"
    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    view: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(16), primary_key=True)  # csv | json | parquet
    snapshot_id: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Run(Base):
    """One pipeline run of a source, or one refresh of an integrated dataset."""

    __tablename__ = "hub_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(250), index=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # source | integration | indicator
    status: Mapped[str] = mapped_column(String(16))  # published | unchanged | failed
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    rows_in: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_published: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, default=0)
    quality_score: Mapped[float | None] = mapped_column(Float)
    validation: Mapped[dict | None] = mapped_column(JSON)
    # Great Expectations' JSON of the run's validation (hub.pipeline); null for runs recorded before it was kept.
    validation_result: Mapped[dict | None] = mapped_column(JSON)
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)


class QuarantinedRow(Base):
    """A record that was not published, with its reason codes (field:rule), the values as received and, for the
    reasons that have them, details by reason code (the columns expected and found, the other rows of a key)."""

    __tablename__ = "hub_quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str] = mapped_column(String(250), index=True)
    row_number: Mapped[int] = mapped_column(BigInteger)
    reasons: Mapped[list] = mapped_column(JSON)
    record: Mapped[dict] = mapped_column(JSON)
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)


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


class SearchDocument(Base):
    """A dataset as search sees it: the normalized words of each part, and what results are sorted by.

    `words` holds every word once, separated by spaces. On SQLite the FTS5 table `hub_search_fts` indexes
    them; on PostgreSQL a GIN index over `array_to_tsvector` of them. Both are created with this table.
    """

    __tablename__ = "hub_search_documents"
    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    modified: Mapped[str | None] = mapped_column(String(40))
    title_words: Mapped[str] = mapped_column(Text)
    description_words: Mapped[str] = mapped_column(Text)
    tag_words: Mapped[str] = mapped_column(Text)
    field_words: Mapped[str] = mapped_column(Text)
    words: Mapped[str] = mapped_column(Text)
    # What made the document (catalog.search.index_version): one made by older indexing code is rebuilt on the
    # next search. Null in a catalog from before it was kept.
    index_version: Mapped[str | None] = mapped_column(String(64))


class SearchFacet(Base):
    """One facet value of a dataset (facet: one of catalog.search.FACETS)."""

    __tablename__ = "hub_search_facets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    facet: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(300), index=True)


# The words are normalized by catalog.search before they reach either engine, so the engines only split on
# spaces and never fold case or accents themselves: both then match exactly the same datasets.
event.listen(SearchDocument.__table__, "after_create", DDL(
    "CREATE VIRTUAL TABLE IF NOT EXISTS hub_search_fts USING fts5("
    "dataset_id UNINDEXED, words, tokenize = 'unicode61 remove_diacritics 0')").execute_if(dialect="sqlite"))
event.listen(SearchDocument.__table__, "after_create", DDL(
    "CREATE INDEX IF NOT EXISTS ix_hub_search_words ON hub_search_documents "
    "USING gin (array_to_tsvector(string_to_array(words, ' ')))").execute_if(dialect="postgresql"))


@cache
def engine(url: str) -> Engine:
    # hide_parameters: a failing statement's values (quarantined records, personal data) stay out of errors.
    # pre_ping tests a pooled connection to a server before use (one round trip per checkout); a SQLite file has
    # no server to have dropped it.
    eng = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), hide_parameters=True)
    if eng.dialect.name == "sqlite":
        # Airflow tasks, the API and the CLI may touch the file at once.
        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return eng


_created: set[str] = set()  # catalog URLs whose tables this process has made sure of


def all_tables() -> list:
    """Every table of the catalog database the hub declares, foreign keys first: the modules that declare tables
    of their own join Base.metadata when imported, here (not at the top: they import this module)."""
    import catalog.audit  # noqa: F401
    import catalog.identity  # noqa: F401
    import catalog.subscriptions  # noqa: F401
    import exchange.clients  # noqa: F401  (the service bus's client credentials and grants)

    return Base.metadata.sorted_tables


def init_db(url: str) -> None:
    """Create the catalog's tables where missing: once per process and database (every request asks)."""
    eng = engine(url)
    path = Path(eng.url.database) if eng.dialect.name == "sqlite" and eng.url.database not in (None, "", ":memory:") else None
    if url in _created and (path is None or path.exists()):
        return
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    all_tables()
    Base.metadata.create_all(eng)
    _add_missing_columns(eng)
    _created.add(url)


def _add_missing_columns(eng: Engine) -> None:
    """create_all makes missing tables but never adds a column to an existing one: a catalog made by an older hub
    gets each column it lacks here, null in its older rows (`hub_subscriptions.owner`, `hub_audit_head.mac`)."""
    tables = inspect(eng)
    for table in Base.metadata.sorted_tables:
        if not tables.has_table(table.name):
            continue
        present = {c["name"] for c in tables.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:  # older rows would have no value for it: that takes a migration of its own
                raise RuntimeError(f"the catalog's {table.name} lacks the column {column.name}, which may not be null")
            try:
                with eng.begin() as conn:
                    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} "
                                         f"{column.type.compile(eng.dialect)}")
            except DBAPIError:  # another process added it first
                if column.name not in {c["name"] for c in inspect(eng).get_columns(table.name)}:
                    raise


def dataset_row(url: str, dataset_id: str):
    """A dataset's catalog row, its columns as attributes (what readers of a Dataset use), read without the ORM: the
    service bus asks on every call. None when the catalog has no such dataset."""
    from sqlalchemy import select

    with engine(url).connect() as con:
        return con.execute(select(Dataset.__table__).where(Dataset.id == dataset_id)).first()


def session(url: str) -> Session:
    return Session(engine(url), expire_on_commit=False)
