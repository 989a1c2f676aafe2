"""The Connector interface every kind implements."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from connectors.registry import Source

__all__ = ["Batch", "Connector", "DEFAULT_BATCH_ROWS", "ROW", "as_text", "mapped_columns", "text_array"]

ROW = "_row"

DEFAULT_BATCH_ROWS = 250_000


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
        return format(value, "f")
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return str(value)


def mapped_columns(source) -> list[str]:
    """The source columns its mapping reads. Kinds reading JSON give every batch these columns: JSON leaves out
    keys whose value is null, and a column the mapping reads must be there, null or not."""
    return [spec["from"] for spec in source.mapping.values() if "from" in spec]


def text_array(values) -> "pa.Array":
    """A column of values as text (as_text), converting one by one only when some value is not text already."""
    import pyarrow as pa

    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([as_text(v) for v in values], type=pa.string())


@dataclass
class Batch:
    """Up to `batch_rows` records as the agency wrote them (every column text), and where reading got to.

    `records` has a `_row` column numbering records from 1 in the order read, so errors can name
    the row; `rejected` holds records the connector could not split into fields: (row, reason, raw text).
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

    @property
    def incremental(self) -> bool:
        """True when runs read only what changed since the last committed cursor."""
        return False

    def describe(self) -> str:
        """Where the data comes from, for lineage (never includes secrets)."""
        return self.source.kind
