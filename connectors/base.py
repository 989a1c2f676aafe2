"""The Connector interface every kind implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from connectors.registry import Source

__all__ = ["Batch", "Connector", "DEFAULT_BATCH_ROWS", "ROW"]

ROW = "_row"

DEFAULT_BATCH_ROWS = 250_000


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
