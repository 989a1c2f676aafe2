"""The Connector interface every kind implements."""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import pyarrow as pa

    from connectors.registry import Source

__all__ = ["Batch", "COLUMNS_SAMPLE_ROWS", "Connector", "DEFAULT_BATCH_ROWS", "ROW", "Rejected", "as_text",
           "local_file_of_url", "mapped_columns", "text_array"]

ROW = "_row"

DEFAULT_BATCH_ROWS = 100_000  # at 1,000,000 rows: as fast as 250,000, 70 MB less at the peak (bench/pipeline.py)
# The records a kind without a header (JSON) reads to tell its columns (Connector.columns): a key JSON leaves out
# where its value is null is met in one of them, unless it is null that often.
COLUMNS_SAMPLE_ROWS = 1000
# Decimals whose exponent is within this many digits are written without one (2.50, 1000000).
_PLAIN_DIGITS = 100


def as_text(value) -> str | None:
    """A value from an agency system as the text it stands for: codes keep their leading zeros and dots,
    numbers and booleans read as JSON writes them (1, 2.5, true), dates as ISO 8601. The standard gives the
    types later, in harmonization."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        # Written out, 1E+999999999 would be a billion digits: far from everyday sizes, keep the exponent.
        return format(value, "f") if value.is_finite() and -_PLAIN_DIGITS < value.adjusted() < _PLAIN_DIGITS else str(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return str(value)


def mapped_columns(source) -> list[str]:
    """The source columns its mapping reads. Kinds reading JSON give every batch these columns: JSON leaves out
    keys whose value is null, and a column the mapping reads must be there, null or not."""
    from transforms.mapping import columns_used

    return [column for spec in source.mapping.values() for _, column in columns_used(spec)]


def text_array(values) -> "pa.Array":
    """A column of values as text (as_text), converting one by one only when some value is not text already."""
    import pyarrow as pa

    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([as_text(v) for v in values], type=pa.string())


class Rejected(tuple):
    """A record a connector could not split into fields: `(row, reason, raw text)`, unpacked and compared as
    that plain tuple, and `details` (a dict, or None) for what the reason alone cannot say: the quarantine keeps
    it under the reason, as in `{"_record:column_count": {"expected": 5, "found": 7}}`."""

    details: dict | None

    def __new__(cls, row: int, reason: str, text: str, details: dict | None = None) -> "Rejected":
        self = super().__new__(cls, (row, reason, text))
        self.details = details
        return self

    def __reduce__(self):
        return Rejected, (*self, self.details)

    def __repr__(self) -> str:
        return f"Rejected{tuple(self)!r}" + (f" details={self.details!r}" if self.details else "")


@dataclass
class Batch:
    """Up to `batch_rows` records as the agency wrote them (every column text), and where reading got to.

    `records` has a `_row` column numbering records from 1 in the order read, so errors can name
    the row; `rejected` holds records the connector could not split into fields: (row, reason, raw text)
    tuples, or `Rejected` ones, which carry details as well.
    `cursor` is where the next run starts once everything up to this batch is published.
    """

    records: "pa.Table"
    cursor: Any = None
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


class Connector(ABC):
    """Reads one registered source. Subclasses are registered with `register_kind`."""

    #: JSON Schema of the kind's options (the `options:` mapping of a source YAML).
    options_schema: dict = {"type": "object"}

    def __init__(self, source: "Source") -> None:
        self.source = source
        self.options = source.options
        self.batch_rows = int(source.options.get("batch_rows", DEFAULT_BATCH_ROWS))

    @classmethod
    def example_options(cls, source_id: str) -> dict:
        """The options a new registration of this kind starts from (`hub sources new`): the required ones."""
        return {name: "TODO" for name in cls.options_schema.get("required", [])}

    @abstractmethod
    def read(self, cursor: Any = None) -> Iterator[Batch]:
        """Yield bounded-size batches of records after `cursor` (None: from the start)."""

    def check(self) -> None:
        """Raise a SourceError if the system cannot be reached; the default reads nothing."""

    def columns(self) -> list[str] | None:
        """The names of the source's columns as `read` names them, read as cheaply as the kind can (a header
        row, a table's definition, the first records); None when nothing tells them (no record yet).

        The default reads the first batch. A kind that gives every batch the columns the mapping reads (as
        the JSON kinds do: JSON leaves out null keys) overrides this with the columns the source itself has."""
        batches = self.read(None)
        try:
            first = next(iter(batches), None)
        finally:
            close = getattr(batches, "close", None)
            if close:
                close()
        return None if first is None else [name for name in first.records.column_names if name != ROW]

    @property
    def incremental(self) -> bool:
        """True when runs read only what changed since the last committed cursor."""
        return False

    def describe(self) -> str:
        """Where the data comes from, for lineage (never includes secrets)."""
        return self.source.kind

    def local_paths(self) -> dict[str, Path]:
        """The local files the options name (option, e.g. `url` or `auth/token_url` -> path). The registry
        refuses a registration naming one outside the folders the hub may read (HUB_HOME, HUB_DATA_DIRS).

        This finds every `file:` URL and SQLite or DuckDB database URL in any text option, whatever the kind,
        so a kind that reads a local file through a URL needs nothing of its own; a kind naming local files
        another way (the file kind's `path`) adds them.
        """
        found: dict[str, Path] = {}

        def walk(value, where: str) -> None:
            if isinstance(value, str):
                path = local_file_of_url(value)
                if path is not None:
                    found[where] = path
            elif isinstance(value, dict):
                for key, inner in value.items():
                    walk(inner, f"{where}/{key}" if where else str(key))
            elif isinstance(value, list):
                for i, inner in enumerate(value):
                    walk(inner, f"{where}/{i}")

        walk(self.options, "")
        return found


# SQLAlchemy URLs of databases that are local files: sqlite:///relative.db, sqlite:////absolute.db,
# duckdb:///file.duckdb, with an optional driver (sqlite+pysqlite://...).
_FILE_DATABASE_URL = re.compile(r"^(?:sqlite|duckdb)(?:\+[\w.]+)?://[^/]*/(?P<database>[^?]*)", re.IGNORECASE)


def local_file_of_url(text: str) -> Path | None:
    """The local file a `file:` URL or a file database's SQLAlchemy URL names; None for any other text
    (an in-memory database included)."""
    text = text.strip()
    if text[:5].lower() == "file:":
        return Path(unquote(urlsplit(text).path) or "/")
    match = _FILE_DATABASE_URL.match(text)
    if not match:
        return None
    database = unquote(match["database"])
    if database.lower().startswith("file:"):  # SQLite's own URI form, sqlite:///file:path?uri=true
        database = unquote(urlsplit(database).path)
    if database in ("", ":memory:"):
        return None
    return Path(database)
