"""Whole datasets as CSV, JSON or Parquet, streamed a batch at a time: memory stays flat whatever the size."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pyarrow as pa

__all__ = ["FORMATS", "stream"]

BATCH_ROWS = 50_000
# format -> media type
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json", "parquet": "application/vnd.apache.parquet"}


class _Drain(io.RawIOBase):
    """A write-only file whose bytes are taken out as they come: Parquet written into a response."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def stream(reader: pa.RecordBatchReader, fmt: str) -> Iterator[bytes]:
    """The reader's records in `fmt`, as chunks of bytes (the reader gives them masked: `catalog.query`)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    def batches() -> Iterator[pa.Table]:
        for batch in reader:
            yield pa.Table.from_batches([batch])

    if fmt == "csv":
        first = True
        for table in batches():
            out = io.BytesIO()
            pcsv.write_csv(table, out, pcsv.WriteOptions(include_header=first))
            first = False
            yield out.getvalue()
        if first:  # no rows: still the header
            out = io.BytesIO()
            pcsv.write_csv(reader.schema.empty_table(), out)
            yield out.getvalue()
    elif fmt == "json":
        yield b"["
        separator = b""
        for table in batches():
            if table.num_rows:
                yield separator + ",".join(json.dumps(record, ensure_ascii=False, default=str)
                                           for record in table.to_pylist()).encode()
                separator = b","
        yield b"]"
    elif fmt == "parquet":
        drain = _Drain()
        schema = reader.schema
        with pq.ParquetWriter(drain, schema) as writer:
            for table in batches():
                writer.write_table(table.cast(schema))
                yield drain.take()
        yield drain.take()
    else:
        raise ValueError(f"unknown download format {fmt!r}; known: {', '.join(FORMATS)}")
