"""Whole datasets as CSV, JSON or Parquet, streamed a batch at a time: memory stays flat whatever the size.

A whole download is measured as it streams (size, SHA-256) and recorded for the view it was written from
(`catalog.views.Visible.key`): every caller with that view gets the same bytes, so the catalog's metadata states
them (CKAN's `size` and `hash`, DCAT's `dcat:byteSize` and `spdx:checksum`) once one download has been made.
Nothing is written ahead: each format of each view would cost a write at every publish, for files few may fetch.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator

import pyarrow as pa

__all__ = ["FORMATS", "described", "measured", "record", "stream"]

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


def measured(chunks: Iterator[bytes], done: Callable[[int, str], None]) -> Iterator[bytes]:
    """The chunks, passed on; once the last has been sent, `done(size, sha256 hex)`. Not called when the stream
    stops early (the client went away)."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    done(size, digest.hexdigest())


def record(settings, dataset_id: str, snapshot_id: int, view: str, fmt: str, size: int, sha256: str) -> None:
    """Keep a whole download's size and checksum, if its version is still the dataset's current one; forget those
    of past versions."""
    from sqlalchemy import delete
    from sqlalchemy.exc import IntegrityError

    from catalog.db import Dataset, DownloadFile, session, utcnow

    with session(settings.catalog_url) as s:
        current = s.get(Dataset, dataset_id)
        if current is None or current.snapshot_id != snapshot_id:
            return
        s.execute(delete(DownloadFile).where(DownloadFile.dataset_id == dataset_id,
                                             DownloadFile.snapshot_id != snapshot_id))
        if s.get(DownloadFile, (dataset_id, view, fmt)) is None:
            s.add(DownloadFile(dataset_id=dataset_id, view=view, format=fmt, snapshot_id=snapshot_id, size=size,
                               sha256=sha256, recorded_at=utcnow()))
        try:
            s.commit()
        except IntegrityError:  # another download of the same view recorded it first
            s.rollback()


def _files_known(settings, datasets: list, who) -> dict[str, dict[str, tuple[int, str]]]:
    """dataset id -> format -> (size, sha256) of the whole downloads `who` would get of those catalog Datasets'
    current versions, for those recorded; a dataset `who` may not read has none."""
    from sqlalchemy import select

    from catalog.access import AccessDenied
    from catalog.db import DownloadFile, session
    from catalog.views import view_key

    current = {d.id: d for d in datasets if d.snapshot_id is not None}
    if not current:
        return {}
    with session(settings.catalog_url) as s:
        rows = s.scalars(select(DownloadFile).where(DownloadFile.dataset_id.in_(current))).all()
    recorded: dict[str, list] = {}
    for row in rows:
        if row.snapshot_id == current[row.dataset_id].snapshot_id:
            recorded.setdefault(row.dataset_id, []).append(row)
    known = {}
    for dataset_id, rows in recorded.items():  # the view is worked out only where a download was recorded
        try:
            view = view_key(settings, current[dataset_id], who)
        except AccessDenied:
            continue
        known[dataset_id] = {r.format: (r.size, r.sha256) for r in rows if r.view == view}
    return known


def _with_files(description: dict, known: dict[str, tuple[int, str]]) -> dict:
    """The description (`catalog.metadata.describe`) with each download's `byte_size` and `sha256`, None where
    not known (see `_files_known`)."""
    distributions = []
    for dist in description["distributions"]:
        size, sha256 = known.get(dist["format"].lower(), (None, None))
        distributions.append({**dist, "byte_size": size, "sha256": sha256})
    return {**description, "distributions": distributions}


def described(settings, s, datasets: list, who) -> list[dict]:
    """Each catalog Dataset's description (`catalog.metadata.describe`, in session `s`), its downloads with the
    size and SHA-256 `who` would get where known."""
    from catalog.metadata import describe

    known = _files_known(settings, datasets, who)
    return [_with_files(describe(s, d), known.get(d.id, {})) for d in datasets]
