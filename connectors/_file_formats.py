"""Readers of the file formats agencies send, each yielding bounded batches of records as text."""

from __future__ import annotations

import codecs
import csv
import io
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from connectors.base import ROW, Batch, Rejected, as_text
from hub.errors import FatalSourceError

_BLOCK_BYTES = 4 << 20
_DELIMITERS = ",;\t|"
_BOM = codecs.BOM_UTF8
# Excel's own limit for one cell: nothing typed into a spreadsheet is longer.
DEFAULT_MAX_FIELD_CHARS = 32_767
DEFAULT_MAX_LINE_BYTES = _BLOCK_BYTES
# Nesting of JSON values in one record; deeper is no agency's record, and would exhaust Python's stack.
MAX_JSON_DEPTH = 64
# A JSON file nested deeper than this is refused whole: ijson's C parser crashes the process (it recurses)
# somewhere past 50,000 levels, and no file of records comes near.
MAX_JSON_FILE_DEPTH = 10_000
# The reason code of a record too big to keep: a value, a line or a nesting past the limits.
TOO_LONG = "_record:too_long"
# How much of a too-long value a quarantined record keeps: enough to find the row, never the whole value.
_KEPT_CHARS = 200


@dataclass(frozen=True)
class Limits:
    """The largest value (characters) and line (bytes) a record may have; a record past them is rejected."""

    field_chars: int = DEFAULT_MAX_FIELD_CHARS
    line_bytes: int = DEFAULT_MAX_LINE_BYTES


def _cut(text: str | None, limit: int = _KEPT_CHARS) -> str:
    """A value as a quarantined record keeps it: whole when short, else its start and its length."""
    if text is None:
        return ""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _too_long(table, limits: Limits, line: bool):
    """The rows of a table of text columns holding a value longer than the limit (or, with `line`, whose values
    and separators are longer than a line may be), as a boolean mask; None when there is none. Byte lengths
    settle the usual case: no value has more characters than bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [table[name] for name in table.column_names if name != ROW and pa.types.is_string(table[name].type)]
    mask = None
    total = None
    for column in columns:
        lengths = pc.fill_null(pc.binary_length(column), 0)
        if line:
            total = lengths if total is None else pc.add(total, lengths)
        if (pc.max(lengths).as_py() or 0) > limits.field_chars:
            long = pc.fill_null(pc.greater(pc.utf8_length(column), limits.field_chars), False)
            mask = long if mask is None else pc.or_(mask, long)
    if total is not None and (pc.max(total).as_py() or 0) + len(columns) - 1 > limits.line_bytes:
        long = pc.greater(pc.add(total, len(columns) - 1), limits.line_bytes)
        mask = long if mask is None else pc.or_(mask, long)
    if mask is None or not pc.any(mask).as_py():
        return None
    return mask


def _reject_too_long(batch: Batch, limits: Limits, separator: str, line: bool = False) -> Batch:
    """The batch without its records past the limits, which join its rejections (their long values cut)."""
    import pyarrow.compute as pc

    mask = _too_long(batch.records, limits, line)
    if mask is None:
        return batch
    long = batch.records.filter(mask)
    names = [n for n in long.column_names if n != ROW]
    texts = zip(*(long[n].to_pylist() for n in names)) if names else [() for _ in range(long.num_rows)]
    rejected = [(row, TOO_LONG, separator.join(_cut(v) for v in values))
                for row, values in zip(long[ROW].to_pylist(), texts)]
    return Batch(records=batch.records.filter(pc.invert(mask)), cursor=batch.cursor,
                 rejected=[*batch.rejected, *rejected])


# --- delimited text ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvDialect:
    """How a delimited text file is written: declared in the registration or detected from the file."""

    delimiter: str
    encoding: str
    header: list[str]


def detect_csv(path: Path, where: str, delimiter: str | None, encoding: str | None,
               limits: Limits = Limits()) -> CsvDialect:
    """The file's dialect; None means detect it (see docs/connectors.md, "Detection")."""
    with path.open("rb") as f:
        sample = f.read(max(_BLOCK_BYTES, limits.line_bytes + 4))
    encoding = encoding or _detect_encoding(sample)
    try:
        # Universal newlines: a header line may end in \r alone (old Mac exports), as the reader accepts.
        first_line = next(iter(io.StringIO(codecs.getincrementaldecoder(encoding)().decode(sample), newline=None)), "")
    except UnicodeDecodeError as e:
        raise FatalSourceError(f"{where}: bytes that are not {encoding} near byte {e.start}") from None
    if len(first_line.encode("utf-8")) > limits.line_bytes:
        raise FatalSourceError(f"{where}: the header line is longer than {limits.line_bytes} bytes "
                               "(options/max_line_bytes)")
    delimiter = delimiter or _detect_delimiter(first_line)
    try:
        header = next(csv.reader([first_line.lstrip("\ufeff")], delimiter=delimiter), None)
    except csv.Error as e:
        raise FatalSourceError(f"{where}: the header line is not delimited text ({e})") from None
    if not header:
        raise FatalSourceError(f"{where} is empty (no header row)")
    header = [h.strip() for h in header]
    if any(len(h) > limits.field_chars for h in header):
        raise FatalSourceError(f"{where}: a column name is longer than {limits.field_chars} characters "
                               "(options/max_field_chars)")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FatalSourceError(f"{where}: repeated column names {[_cut(d, 64) for d in dupes]}")
    return CsvDialect(delimiter=delimiter, encoding=encoding, header=header)


def _detect_encoding(sample: bytes) -> str:
    """UTF-8 when the sample starts with a byte order mark or decodes as UTF-8, UTF-16 after its byte order
    mark (Excel's "Unicode text"), else Windows-1252."""
    if sample.startswith(_BOM):
        return "utf-8"  # the header's leading U+FEFF is dropped from its first name
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the codec reads the mark and drops it
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


class _Utf8Stream(io.RawIOBase):
    """A file's bytes in `encoding`, read as UTF-8 one block at a time."""

    def __init__(self, raw, encoding: str) -> None:
        super().__init__()
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._read = 0  # bytes of the file decoded so far, for error positions
        self._utf8 = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._utf8:
            block = self._raw.read(_BLOCK_BYTES)
            try:
                self._utf8 = memoryview(self._decoder.decode(block, final=not block).encode("utf-8"))
            except UnicodeDecodeError as e:
                raise UnicodeDecodeError(e.encoding, e.object, self._read + e.start, self._read + e.end, e.reason) from None
            self._read += len(block)
            if not block:
                return 0
        n = min(len(buffer), len(self._utf8))
        buffer[:n] = self._utf8[:n]
        self._utf8 = self._utf8[n:]
        return n


class _Paced(io.RawIOBase):
    """A stream Arrow's CSV reader reads at most AHEAD blocks ahead of the batches taken from it (`took_batch`).

    The reader reads blocks on a thread of its own, up to 32 ahead of its consumer (Arrow's background reader,
    not configurable): 128 MB of 4 MB blocks, whatever the batch size. A block holds a record at least (the line
    limit), so a batch needs at most two; a block that yields none (blank lines) lets the read go on after
    WAIT_SECONDS."""

    AHEAD = 4
    WAIT_SECONDS = 0.5

    def __init__(self, raw) -> None:
        super().__init__()
        self._raw = raw
        self._reads = self._taken = 0
        self._turn = threading.Condition()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with self._turn:
            self._turn.wait_for(lambda: self._reads - self._taken < self.AHEAD, timeout=self.WAIT_SECONDS)
            self._reads += 1
        return self._raw.readinto(buffer)

    def took_batch(self) -> None:
        with self._turn:
            self._taken += 1
            self._turn.notify_all()


def read_csv(path: Path, where: str, batch_rows: int, dialect: CsvDialect,
             limits: Limits = Limits()) -> Iterator[Batch]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    header = dialect.header
    rejected: list[tuple[int, str, str]] = []

    def on_invalid(row) -> str:
        # Line numbers count the header as line 1; rows count records from 1. Arrow counts the record's fields
        # as it splits them, with the file's delimiter and quotes: a delimiter inside quotes splits nothing.
        rejected.append(Rejected(row.number - 1, "_record:column_count", row.text,
                                 {"expected": row.expected_columns, "found": row.actual_columns}))
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
        return _reject_too_long(batch, limits, dialect.delimiter, line=True)

    # A Python file object, not a path: given a path (or its own transcoding stream), pyarrow reads the
    # whole file ahead of the parser, and memory grows with the file.
    raw = path.open("rb")
    paced = _Paced(raw if dialect.encoding == "utf-8" else _Utf8Stream(raw, dialect.encoding))
    try:
        reader = pcsv.open_csv(
            paced,
            read_options=pcsv.ReadOptions(
                encoding="utf-8", column_names=header, skip_rows=1, use_threads=False,
                # Blocks hold a whole record as long as a line may be, so one never spans many of them.
                block_size=max(_BLOCK_BYTES, limits.line_bytes + 4),
            ),
            # A quoted value may hold line breaks (an address typed in Excel): blocks must end between records,
            # else a break near a block's end splits a record, and an unclosed quote swallows lines up to it.
            parse_options=pcsv.ParseOptions(delimiter=dialect.delimiter, newlines_in_values=True,
                                            invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
        for record_batch in reader:
            paced.took_batch()
            pending.append(record_batch)
            pending_rows += record_batch.num_rows
            while pending_rows >= batch_rows:
                table = pa.Table.from_batches(pending)
                yield emit(table.slice(0, batch_rows))
                rest = table.slice(batch_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
    except pa.ArrowInvalid as e:
        if "straddl" in str(e):
            # A quoted value runs on past a whole block: its closing quote is missing, or the record is huge.
            raise FatalSourceError(f"{where}: a record after row {next_row - 1 + pending_rows} does not end within "
                                   f"{limits.line_bytes} bytes: a quote is not closed, or the line is longer "
                                   "than options/max_line_bytes") from None
        # Keep Arrow's diagnosis, not the row text it may quote after a further colon (personal data).
        diagnosis = ":".join(str(e).splitlines()[0].split(":")[:2])
        if "invalid UTF8" in str(e):
            diagnosis += f": bytes that are not {dialect.encoding}"
        raise FatalSourceError(f"{where}: {diagnosis}") from None
    except UnicodeDecodeError as e:
        raise FatalSourceError(f"{where}: bytes that are not {dialect.encoding} near byte {e.start}") from None
    finally:
        raw.close()
    if pending_rows or rejected:
        schema = pa.schema([(h, pa.string()) for h in header])
        yield emit(pa.Table.from_batches(pending, schema=schema))


# --- Excel, JSON and JSON Lines: read record by record ----------------------------------------------


@dataclass(frozen=True)
class _Rejected:
    """A record that cannot be split into fields: why, its text as the file holds it, and details (Rejected)."""

    reason: str
    text: str
    details: dict | None = None


def _in_batches(items: Iterator[tuple[int, dict | _Rejected]], batch_rows: int,
                columns: Iterable[str] = (), limits: Limits = Limits()) -> Iterator[Batch]:
    """(row, record of text or rejection) in batches of at most `batch_rows` records (and rejections).

    A batch has `columns` and every column met so far, in the order first met, null where a record lacks it.
    A record with a name or value longer than `limits.field_chars` is rejected as too long.
    """
    import pyarrow as pa

    columns = dict.fromkeys(columns)
    records: list[dict] = []
    numbers: list[int] = []
    rejected: list[tuple[int, str, str]] = []

    def batch() -> Batch:
        table = pa.table({**{c: pa.array([r.get(c) for r in records], pa.string()) for c in columns},
                          ROW: pa.array(numbers, pa.int64())})
        return Batch(records=table, rejected=list(rejected))

    limit = limits.field_chars
    for number, item in items:
        if not isinstance(item, _Rejected) and any(len(k) > limit or (v is not None and len(v) > limit)
                                                   for k, v in item.items()):
            item = _Rejected(TOO_LONG, "\t".join(f"{_cut(k, 64)}={_cut(v)}" for k, v in item.items()))
        if isinstance(item, _Rejected):
            rejected.append(Rejected(number, item.reason, _cut(item.text, limit), item.details))
        else:
            columns.update(dict.fromkeys(item))
            records.append(item)
            numbers.append(number)
        if len(records) == batch_rows or len(rejected) == batch_rows:
            yield batch()
            records, numbers, rejected = [], [], []
    if records or rejected:
        yield batch()


_HEADER_SEARCH_ROWS = 100


def read_xlsx(path: Path, where: str, batch_rows: int, sheet: str | int | None, header_row: int | None,
              expected_columns: set[str], limits: Limits = Limits(),
              max_unpacked_bytes: int | None = None) -> Iterator[Batch]:
    """A sheet's rows after its header row, streamed (openpyxl read-only mode)."""
    with _sheet_rows(path, where, sheet, max_unpacked_bytes) as (where, rows):
        at, names = _xlsx_header(rows, where, header_row, expected_columns)
        records = ((number - at, record) for number, record in _xlsx_records(rows, names))
        yield from _in_batches(records, batch_rows, limits=limits)


def xlsx_columns(path: Path, where: str, sheet: str | int | None, header_row: int | None,
                 expected_columns: set[str], max_unpacked_bytes: int | None = None) -> list[str]:
    """The names in a sheet's header row: `header_row`, else the row read_xlsx takes (the first of text cells
    naming every expected column); when none does, the row of text cells naming most of them, spelt any case, else
    the widest (the first of equals; a title above the header is narrower): the header the mapping's author saw."""
    with _sheet_rows(path, where, sheet, max_unpacked_bytes) as (where, rows):
        if header_row is not None:
            return list(_xlsx_header(rows, where, header_row, expected_columns)[1].values())
        folded = {c.casefold() for c in expected_columns}
        best, best_score = None, None
        for number, cells in rows:
            names = [str(c).strip() for c in cells if not _blank(c)]
            if not names:
                continue
            text = all(isinstance(c, str) for c in cells if not _blank(c))
            score = (text, len(expected_columns & set(names)), len(folded & {n.casefold() for n in names}), len(names))
            if best_score is None or score > best_score:
                best, best_score = names, score
            if number >= _HEADER_SEARCH_ROWS or score[:2] == (True, len(expected_columns)):
                break
        return best or []


@contextmanager
def _sheet_rows(path: Path, where: str, sheet: str | int | None,
                max_unpacked_bytes: int | None) -> Iterator[tuple[str, Iterator[tuple[int, tuple]]]]:
    """The sheet's rows of cell values, numbered from 1, and `where` naming the sheet; the workbook closed after."""
    import zipfile

    from openpyxl import load_workbook

    # A file object, not a path: given a path, openpyxl refuses a name not ending in .xlsx (a download's).
    with path.open("rb") as f:
        try:
            # A workbook is a zip of XML: a small file may unpack to far more (a "zip bomb"). Python's zipfile
            # never unpacks a member past the size its directory declares, so the declared sizes are the bound.
            with zipfile.ZipFile(f) as archive:
                unpacked = sum(member.file_size for member in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise FatalSourceError(f"{where}: not a readable .xlsx workbook ({type(e).__name__})") from None
        if max_unpacked_bytes is not None and unpacked > max_unpacked_bytes:
            raise FatalSourceError(f"{where}: the workbook unpacks to {unpacked} bytes, more than the limit of "
                                   f"{max_unpacked_bytes} bytes (options/max_file_bytes)")
        f.seek(0)
        try:
            workbook = load_workbook(f, read_only=True, data_only=True)
        except Exception as e:  # openpyxl's errors on a damaged workbook are of many types (zip, XML, values)
            raise FatalSourceError(f"{where}: not a readable .xlsx workbook ({type(e).__name__})") from None
        try:
            worksheet = _worksheet(workbook, where, sheet)
            try:
                worksheet.reset_dimensions()  # some writers record wrong dimensions; read the rows as they are
            except AttributeError:  # a chartsheet, not a worksheet: it has no cells
                raise FatalSourceError(f"{where}: sheet {worksheet.title!r} holds no cells (a chart?)") from None
            where = f"{where}: sheet {worksheet.title!r}"
            yield where, enumerate(_xlsx_rows(worksheet, where), 1)
        finally:
            workbook.close()


def _xlsx_rows(worksheet, where: str) -> Iterator[tuple]:
    """The sheet's rows of cell values; a sheet damaged past some row fails naming that row."""
    rows = worksheet.iter_rows(values_only=True)
    number = 0
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except Exception as e:  # openpyxl's errors on damaged XML or cell values are of many types
            raise FatalSourceError(f"{where}: the sheet cannot be read after row {number} ({type(e).__name__})") from None
        number += 1
        yield cells


def _worksheet(workbook, where: str, sheet: str | int | None):
    sheets = workbook.worksheets
    if not sheets:
        raise FatalSourceError(f"{where}: the workbook has no worksheet")
    if sheet is None:
        return sheets[0]
    if isinstance(sheet, int):
        if sheet > len(sheets):
            raise FatalSourceError(f"{where}: no sheet {sheet}; the workbook has {len(sheets)}")
        return sheets[sheet - 1]
    if sheet not in workbook.sheetnames:
        raise FatalSourceError(f"{where}: no sheet {sheet!r}; sheets: {[_cut(n, 64) for n in workbook.sheetnames]}")
    return workbook[sheet]


def _xlsx_header(rows: Iterator[tuple[int, tuple]], where: str, header_row: int | None,
                 expected_columns: set[str]) -> tuple[int, dict[int, str]]:
    """The header's row number and its names by cell position; `rows` goes on after it."""
    for number, cells in rows:
        names = {i: str(c).strip() for i, c in enumerate(cells) if not _blank(c)}
        if header_row is not None:
            if number < header_row:
                continue
            if not names:
                raise FatalSourceError(f"{where}: header row {header_row} is empty")
        elif not (names and all(isinstance(c, str) for c in cells if not _blank(c))
                  and expected_columns <= set(names.values())):
            if number >= _HEADER_SEARCH_ROWS:
                break
            continue
        dupes = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
        if dupes:
            raise FatalSourceError(f"{where}: repeated column names {[_cut(d, 64) for d in dupes]} in row {number}")
        return number, names
    if header_row is not None:
        raise FatalSourceError(f"{where}: has no row {header_row} (options/header_row)")
    raise FatalSourceError(f"{where}: no header row in the first {_HEADER_SEARCH_ROWS} rows: expected a row of "
                           f"text cells naming {sorted(expected_columns)}; set options/header_row")


def _xlsx_records(rows: Iterator[tuple[int, tuple]], names: dict[int, str]) -> Iterator[tuple[int, dict | _Rejected]]:
    """The records under the header; a row with a value in a column the header does not name is rejected, with
    the header's width (`expected`: up to its last named column), the row's (`found`: up to its last value) and
    the columns holding a value but no name (`unnamed`, letters as Excel shows them)."""
    from openpyxl.utils import get_column_letter

    width = max(names) + 1
    for number, cells in rows:
        if all(_blank(c) for c in cells):
            continue
        unnamed = [i for i, c in enumerate(cells) if i not in names and not _blank(c)]
        if unnamed:
            found = max(i for i, c in enumerate(cells) if not _blank(c)) + 1
            yield number, _Rejected("_record:column_count", "\t".join(_cell_text(c) or "" for c in cells),
                                    {"expected": width, "found": found,
                                     "unnamed": [get_column_letter(i + 1) for i in unnamed]})
            continue
        yield number, {name: _cell_text(cells[i]) if i < len(cells) else None for i, name in names.items()}


def _blank(cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _cell_text(cell) -> str | None:
    """A cell as text; a date-time at midnight is a date cell (Excel stores both as one number)."""
    import datetime as dt

    if isinstance(cell, dt.datetime) and cell.time() == dt.time():
        return cell.date().isoformat()
    return as_text(cell)


def read_json(path: Path, where: str, batch_rows: int, records_path: str | None,
              columns: Iterable[str] = (), limits: Limits = Limits()) -> Iterator[Batch]:
    """The items of the array at `records_path` (dotted keys; None: the file is the array), streamed by ijson.

    Every batch has `columns` (the ones the mapping reads), even before a record holding them: JSON leaves
    out keys whose value is null."""
    import ijson

    prefix = records_path or ""
    read = 0

    def items() -> Iterator[tuple[int, dict | _Rejected]]:
        nonlocal read
        for read, item in enumerate(ijson.items(f, f"{prefix}.item" if prefix else "item"), 1):
            yield read, _record(item)
        if not read:
            _check_array_at(f, where, prefix)

    # ijson's C parser crashes the whole process (no exception) on a value nested some 70,000 levels deep, and
    # on an integer longer than Python converts (4300 digits): such a file is refused before it is parsed.
    deepest, longest = _json_extent(path)
    if deepest > MAX_JSON_FILE_DEPTH:
        raise FatalSourceError(f"{where}: nested {deepest} levels deep, more than {MAX_JSON_FILE_DEPTH}: "
                               "not a file of records")
    max_digits = sys.get_int_max_str_digits() or longest
    if longest > max_digits:
        raise FatalSourceError(f"{where}: holds a number of {longest} digits, more than {max_digits}: "
                               "not a value of a record")
    with path.open("rb") as f:
        _skip_bom(f)
        try:
            yield from _in_batches(items(), batch_rows, columns, limits)
        except ijson.JSONError as e:
            raise FatalSourceError(f"{where}: not valid JSON after record {read}: {_diagnosis(e)}") from None
        except UnicodeDecodeError:  # bytes not UTF-8, or a text escaping half of a surrogate pair ("\\ud800")
            raise FatalSourceError(f"{where}: not valid JSON after record {read}: text that is not UTF-8 or "
                                   "not Unicode") from None
        except (ValueError, ArithmeticError, RecursionError) as e:  # a number ijson cannot convert (1e-99999...)
            raise FatalSourceError(f"{where}: not valid JSON after record {read}: a number out of range "
                                   f"({type(e).__name__})") from None


def _json_extent(path: Path) -> tuple[int, int]:
    """The deepest nesting of arrays and objects in a JSON file, and the most digits in a row outside its
    strings (a number's), found block by block without parsing: brackets and digits count outside strings, and a
    quote ends a string unless an odd run of backslashes comes before it. Exact for valid JSON, and for broken
    JSON as far as a parser reads it (to the first mistake)."""
    import numpy as np

    depth = deepest = longest = 0
    in_string = False
    backslashes = 0  # the run of backslashes ending the previous block
    digits = 0  # the run of digits outside strings ending the previous block
    with path.open("rb") as f:
        while block := f.read(_BLOCK_BYTES):
            data = np.frombuffer(block, dtype=np.uint8)
            quotes = np.flatnonzero(data == ord('"'))
            if backslashes or b"\\" in block:  # rare: keep the quotes after an even run of backslashes
                escaped = [q for q in quotes.tolist() if _backslashes_before(block, q, backslashes) % 2]
                quotes = np.setdiff1d(quotes, np.array(escaped, dtype=quotes.dtype), assume_unique=True)

            def outside(positions):
                # Outside a string when an even number of quotes (with the state carried in) precede it.
                return (np.searchsorted(quotes, positions) + in_string) % 2 == 0

            brackets = np.flatnonzero((data == ord("[")) | (data == ord("{")) | (data == ord("]")) | (data == ord("}")))
            kinds = data[brackets[outside(brackets)]]
            steps = np.where((kinds == ord("[")) | (kinds == ord("{")), 1, -1)
            if len(steps):
                levels = depth + np.cumsum(steps)
                deepest, depth = max(deepest, int(levels.max()), depth), int(levels[-1])
            lead = len(block) - len(block.lstrip(_DIGITS))
            if digits and lead:
                longest = max(longest, digits + lead)
            # Runs of digits: where the digit mask turns on and off.
            is_digit = (data >= ord("0")) & (data <= ord("9"))
            edges = np.flatnonzero(is_digit[1:] != is_digit[:-1]) + 1
            edges = np.concatenate((np.array([0] if len(data) and is_digit[0] else [], dtype=edges.dtype), edges,
                                    np.array([len(data)] if len(data) and is_digit[-1] else [], dtype=edges.dtype)))
            starts, ends = edges[0::2], edges[1::2]
            long = (ends - starts) >= 64  # a few at most: a NIK has 16
            for start, end in zip(starts[long].tolist(), ends[long].tolist()):
                # Only an integer is converted by int(): digits of a fraction or an exponent, or before one, are
                # a Decimal's, which has no such limit.
                if outside(np.array([start]))[0] and not _part_of_decimal(block, start, end):
                    longest = max(longest, end - start + (digits if start == 0 else 0))
            trail = len(block) - len(block.rstrip(_DIGITS))
            if trail == len(block):  # digits only: inside or outside a string as the block began
                digits = 0 if in_string else digits + trail
            else:
                digits = trail if trail and outside(np.array([len(block) - trail]))[0] else 0
            in_string = (len(quotes) + in_string) % 2 == 1
            trailing = len(block) - len(block.rstrip(b"\\"))
            backslashes = trailing + (backslashes if trailing == len(block) else 0)
    return deepest, longest


_DIGITS = b"0123456789"


def _part_of_decimal(block: bytes, start: int, end: int) -> bool:
    """Whether the digits block[start:end] are a number's fraction or exponent, or come before either."""
    before = block[start - 1:start]
    if before == b"." or before in (b"e", b"E") or (before in (b"+", b"-") and block[start - 2:start - 1] in (b"e", b"E")):
        return True
    return block[end:end + 1] in (b".", b"e", b"E")


def _backslashes_before(block: bytes, at: int, carried: int) -> int:
    """The run of backslashes right before position `at` (with the previous block's run, if it reaches back)."""
    start = at
    while start > 0 and block[start - 1] == 0x5C:
        start -= 1
    return at - start + (carried if start == 0 else 0)


def _diagnosis(error) -> str:
    """The parser's diagnosis alone: its first line. The lines after it quote the file (personal data), and
    yajl gives the message as bytes, whose text shows its line breaks as \\n."""
    message = error.args[0] if error.args else ""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    first = str(message).splitlines()[0] if str(message).strip() else type(error).__name__
    return _cut(first.split("\\n")[0].strip(), 120)


def _check_array_at(f, where: str, prefix: str) -> None:
    """No item came out: an empty array is fine, anything else at `prefix` (or nothing there) is fatal."""
    import ijson

    f.seek(0)
    _skip_bom(f)
    place = prefix or "the top level"
    for at, event, _ in ijson.parse(f):
        if at == prefix:  # the first event there starts or is its value
            if event == "start_array":
                return
            found = "an object" if event == "start_map" else f"a {event}"
            raise FatalSourceError(f"{where}: {place} holds {found}, not an array of records (options/records_path)")
    raise FatalSourceError(f"{where}: nothing at {place} (options/records_path)")


def read_jsonl(path: Path, where: str, batch_rows: int, columns: Iterable[str] = (),
               limits: Limits = Limits()) -> Iterator[Batch]:
    """One record per line; `_row` is the line number. A line that is not a JSON object is rejected, and so is
    one longer than `limits.line_bytes` (skipped without being held in memory).

    Every batch has `columns`, as read_json's."""
    import json
    from decimal import Decimal

    decoder = json.JSONDecoder(parse_float=Decimal)  # Decimal keeps the number as written (2.50, not 2.5)
    limit = limits.line_bytes

    def items() -> Iterator[tuple[int, dict | _Rejected]]:
        with path.open("rb") as f:
            _skip_bom(f)
            number = 0
            while line := f.readline(limit + 1):
                number += 1
                if len(line) > limit and not line.endswith(b"\n"):
                    size = len(line)
                    while (more := f.readline(_BLOCK_BYTES)) and not more.endswith(b"\n"):
                        size += len(more)
                    size += len(more)
                    text = line[:_KEPT_CHARS].decode("utf-8", "replace")
                    yield number, _Rejected(TOO_LONG, f"{text}... ({size} bytes)")
                    continue
                if not line.strip():
                    continue
                try:
                    value = decoder.decode(line.decode("utf-8"))
                except (ValueError, ArithmeticError):  # not JSON, not UTF-8, or a number out of Decimal's range
                    yield number, _Rejected("_record:json", line.decode("utf-8", "replace").rstrip("\r\n"))
                except RecursionError:
                    yield number, _Rejected(TOO_LONG, f"{line[:_KEPT_CHARS].decode('utf-8', 'replace')}... "
                                                      f"(nested more than {MAX_JSON_DEPTH} levels)")
                else:
                    yield number, _record(value)

    yield from _in_batches(items(), batch_rows, columns, limits)


def _skip_bom(f) -> None:
    if f.read(len(_BOM)) != _BOM:
        f.seek(0)


def _record(value) -> dict | _Rejected:
    """A JSON value as a record of text: an object, nested objects flattened to dotted names."""
    if _deeper_than(value, MAX_JSON_DEPTH):
        return _Rejected(TOO_LONG, f"(a JSON value nested more than {MAX_JSON_DEPTH} levels)")
    if not isinstance(value, dict):
        return _Rejected("_record:not_object", _json_text(value))
    record: dict[str, str | None] = {}
    _flatten(value, "", record)
    if not all(_is_text(k) and (v is None or _is_text(v)) for k, v in record.items()):
        # JSON may escape half of a surrogate pair ("\\ud800"), which is no character: not text to keep.
        return _Rejected("_record:json", _json_text(value))
    return record


def _is_text(value: str) -> bool:
    """Whether a string is Unicode text (UTF-8 can write it): false for a lone surrogate."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _deeper_than(value, depth: int) -> bool:
    """Whether arrays and objects nest more than `depth` levels in `value` (walked without recursion)."""
    level = [value]
    for _ in range(depth + 1):
        level = [inner for v in level if isinstance(v, (dict, list))
                 for inner in (v.values() if isinstance(v, dict) else v)]
        if not level:
            return False
    return True


def _flatten(value: dict, prefix: str, into: dict) -> None:
    for key, inner in value.items():
        name = prefix + key
        if isinstance(inner, dict):
            _flatten(inner, name + ".", into)
        elif isinstance(inner, list):
            into[name] = _json_text(inner)
        else:  # most values are text already: as_text costs more than the test
            into[name] = inner if inner is None or isinstance(inner, str) else as_text(inner)


def _json_text(value) -> str:
    """A value as JSON text (numbers read as Decimal are written as numbers)."""
    import json
    from decimal import Decimal

    text = json.dumps(value, ensure_ascii=False, default=lambda v: float(v) if isinstance(v, Decimal) else as_text(v))
    # A lone surrogate stays escaped, as the file wrote it: UTF-8 cannot write it as a character.
    return text if _is_text(text) else json.dumps(value, default=lambda v: float(v) if isinstance(v, Decimal) else as_text(v))


# --- Parquet -----------------------------------------------------------------------------------------


def read_parquet(path: Path, where: str, batch_rows: int, limits: Limits = Limits()) -> Iterator[Batch]:
    """Row groups streamed in batches of `batch_rows`; struct columns flattened to dotted names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise FatalSourceError(f"{where}: not a readable Parquet file ({_cut(str(e).splitlines()[0], 120)})") from None
    next_row = 1
    with parquet:
        batches = parquet.iter_batches(batch_size=batch_rows, use_threads=False)
        while True:
            try:
                record_batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as e:  # a damaged page or row group
                raise FatalSourceError(f"{where}: the Parquet file cannot be read after row {next_row - 1} "
                                       f"({_cut(str(e).splitlines()[0], 120)})") from None
            table = pa.Table.from_batches([record_batch])
            while any(pa.types.is_struct(f.type) for f in table.schema):
                table = table.flatten()
            numbers = pa.array(range(next_row, next_row + table.num_rows), pa.int64())
            next_row += table.num_rows
            batch = Batch(records=pa.table({**{f.name: _text_array(table[f.name]) for f in table.schema}, ROW: numbers}))
            yield _reject_too_long(batch, limits, "\t")


def parquet_columns(path: Path, where: str) -> list[str]:
    """The columns read_parquet gives a Parquet file's records (struct columns flattened), from its schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_schema(path).empty_table()
    except (pa.ArrowException, OSError) as e:
        raise FatalSourceError(f"{where}: not a readable Parquet file ({_cut(str(e).splitlines()[0], 120)})") from None
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table.column_names


def _text_array(column):
    """A column as text, as `as_text` writes each value; Arrow's own cast where it writes the same."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if any(check(kind) for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer,
                                     pa.types.is_boolean, pa.types.is_date32, pa.types.is_null)):
        return pc.cast(column, pa.string())
    nested = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_map(kind)
    return pa.array([None if v is None else _json_text(v) if nested else as_text(v) for v in column.to_pylist()],
                    pa.string())
