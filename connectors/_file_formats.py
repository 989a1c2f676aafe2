"""Readers of the file formats agencies send, each yielding bounded batches of records as text."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from connectors.base import ROW, Batch
from hub.errors import FatalSourceError

_BLOCK_BYTES = 4 << 20
_DELIMITERS = ",;\t|"
_BOM = codecs.BOM_UTF8


# --- delimited text ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvDialect:
    """How a delimited text file is written: declared in the registration or detected from the file."""

    delimiter: str
    encoding: str
    header: list[str]


def detect_csv(path: Path, where: str, delimiter: str | None, encoding: str | None) -> CsvDialect:
    """The file's dialect; None means detect it (see docs/connectors.md, "Detection")."""
    with path.open("rb") as f:
        sample = f.read(_BLOCK_BYTES)
    encoding = encoding or _detect_encoding(sample)
    try:
        first_line = next(iter(io.StringIO(codecs.getincrementaldecoder(encoding)().decode(sample))), "")
    except UnicodeDecodeError as e:
        raise FatalSourceError(f"{where}: bytes that are not {encoding} near byte {e.start}") from None
    delimiter = delimiter or _detect_delimiter(first_line)
    header = next(csv.reader([first_line.lstrip("\ufeff")], delimiter=delimiter), None)
    if not header:
        raise FatalSourceError(f"{where} is empty (no header row)")
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FatalSourceError(f"{where}: repeated column names {dupes}")
    return CsvDialect(delimiter=delimiter, encoding=encoding, header=header)


def _detect_encoding(sample: bytes) -> str:
    """UTF-8 when the sample starts with a byte order mark or decodes as UTF-8, else Windows-1252."""
    if sample.startswith(_BOM):
        return "utf-8"  # the header's leading U+FEFF is dropped from its first name
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample)  # not final: a character cut at the end is fine
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _detect_delimiter(header_line: str) -> str:
    """The most frequent of , ; tab | outside quotes (the first of them on a tie; a comma when none occurs)."""
    outside = header_line.split('"')[::2]
    counts = {d: sum(part.count(d) for part in outside) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: Path, where: str, batch_rows: int, dialect: CsvDialect) -> Iterator[Batch]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    header = dialect.header
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
            path,
            read_options=pcsv.ReadOptions(
                encoding=dialect.encoding, column_names=header, skip_rows=1, use_threads=False, block_size=_BLOCK_BYTES
            ),
            parse_options=pcsv.ParseOptions(delimiter=dialect.delimiter, invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
        for record_batch in reader:
            pending.append(record_batch)
            pending_rows += record_batch.num_rows
            while pending_rows >= batch_rows:
                table = pa.Table.from_batches(pending)
                yield emit(table.slice(0, batch_rows))
                rest = table.slice(batch_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
    except pa.ArrowInvalid as e:
        # Keep Arrow's diagnosis, not the row text it may quote after a further colon (personal data).
        diagnosis = ":".join(str(e).splitlines()[0].split(":")[:2])
        if "invalid UTF8" in str(e):
            diagnosis += f": bytes that are not {dialect.encoding}"
        raise FatalSourceError(f"{where}: {diagnosis}") from None
    except UnicodeDecodeError as e:
        raise FatalSourceError(f"{where}: bytes that are not {dialect.encoding} near byte {e.start}") from None
    if pending_rows or rejected:
        schema = pa.schema([(h, pa.string()) for h in header])
        yield emit(pa.Table.from_batches(pending, schema=schema))
