"""The `file` kind: delimited text files (CSV, semicolon-separated, TSV) in a declared encoding."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from connectors.base import ROW, Batch, Connector
from hub.errors import ConfigError, FatalSourceError, RetriableSourceError

__all__ = ["FileConnector"]

_BLOCK_BYTES = 4 << 20


class FileConnector(Connector):
    options_schema = {
        "type": "object",
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "minLength": 1},
            "format": {"enum": ["csv"]},
            "delimiter": {"type": "string", "minLength": 1, "maxLength": 1},
            "encoding": {"type": "string"},
            "batch_rows": {"type": "integer", "minimum": 1},
        },
    }

    def __init__(self, source) -> None:
        super().__init__(source)
        self.path = Path(self.options["path"])
        self.delimiter = self.options.get("delimiter", ",")
        self.encoding = self.options.get("encoding", "utf-8")
        try:
            codecs_name = io.TextIOWrapper(io.BytesIO(), encoding=self.encoding).encoding
        except LookupError:
            raise ConfigError(f"{source.path}: field options/encoding: unknown encoding {self.encoding!r}") from None
        self.encoding = codecs_name

    def describe(self) -> str:
        return f"file {self.path.name} ({self.delimiter!r}-separated, {self.encoding})"

    def check(self) -> None:
        if not self.path.is_file():
            raise RetriableSourceError(f"source {self.source.id}: file {self.path} not found")
        self._header()

    def _header(self) -> list[str]:
        try:
            with self.path.open(encoding=self.encoding, newline="") as f:
                header = next(csv.reader(f, delimiter=self.delimiter), None)
        except UnicodeDecodeError as e:
            raise FatalSourceError(f"source {self.source.id}: file {self.path.name}: header is not {self.encoding}: {e.reason}") from None
        if not header:
            raise FatalSourceError(f"source {self.source.id}: file {self.path.name} is empty (no header row)")
        header = [h.strip().lstrip("\ufeff") for h in header]
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise FatalSourceError(f"source {self.source.id}: file {self.path.name}: repeated column names {dupes}")
        return header

    def read(self, cursor=None) -> Iterator[Batch]:
        import numpy as np
        import pyarrow as pa
        import pyarrow.csv as pcsv

        self.check()
        header = self._header()
        rejected: list[tuple[int, str, str]] = []

        def on_invalid(row) -> str:
            # Line numbers count the header as line 1; rows count records from 1.
            rejected.append((row.number - 1, "_record:column_count", row.text))
            return "skip"

        next_row = 1
        skipped: set[int] = set()  # record numbers of rejected rows not yet passed
        pending: list[pa.RecordBatch] = []
        pending_rows = 0

        def emit(table: pa.Table) -> Batch:
            nonlocal next_row, skipped
            skipped |= {r for r, _, _ in rejected}
            ahead = sorted(r for r in skipped if r >= next_row)
            numbers = np.arange(next_row, next_row + table.num_rows + len(ahead), dtype=np.int64)
            numbers = numbers[~np.isin(numbers, ahead)][: table.num_rows]
            if len(numbers):
                next_row = int(numbers[-1]) + 1
            skipped = {r for r in skipped if r >= next_row}
            batch = Batch(records=table.append_column(ROW, pa.array(numbers)), rejected=list(rejected))
            rejected.clear()
            return batch

        try:
            reader = pcsv.open_csv(
                self.path,
                read_options=pcsv.ReadOptions(
                    encoding=self.encoding, column_names=header, skip_rows=1, use_threads=False, block_size=_BLOCK_BYTES
                ),
                parse_options=pcsv.ParseOptions(delimiter=self.delimiter, invalid_row_handler=on_invalid),
                convert_options=pcsv.ConvertOptions(
                    column_types={h: pa.string() for h in header}, strings_can_be_null=False, quoted_strings_can_be_null=False
                ),
            )
            for record_batch in reader:
                pending.append(record_batch)
                pending_rows += record_batch.num_rows
                while pending_rows >= self.batch_rows:
                    table = pa.Table.from_batches(pending)
                    yield emit(table.slice(0, self.batch_rows))
                    rest = table.slice(self.batch_rows)
                    pending, pending_rows = rest.to_batches(), rest.num_rows
        except pa.ArrowInvalid as e:
            # Keep Arrow's diagnosis, not the row text it may quote after a further colon (personal data).
            diagnosis = ":".join(str(e).splitlines()[0].split(":")[:2])
            raise FatalSourceError(f"source {self.source.id}: file {self.path.name}: {diagnosis}") from None
        except UnicodeDecodeError as e:
            raise FatalSourceError(
                f"source {self.source.id}: file {self.path.name}: bytes that are not {self.encoding} near byte {e.start}"
            ) from None
        if pending_rows or rejected:
            schema = pa.schema([(h, pa.string()) for h in header])
            yield emit(pa.Table.from_batches(pending, schema=schema))
