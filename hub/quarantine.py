"""A run's rejected rows as the agency sent them, each with its reasons in words: a table to read, or a CSV or
XLSX file to fix and send again.

One row per rejected record: the record's columns in the order the source sent them, the raw line of a record
that could not be read into columns, then the row number, the reason codes and their sentences (hub.reasons).
The added columns are named in the export's language:

| language | raw line | row number | reason codes | reasons |
| --- | --- | --- | --- | --- |
| id | baris_asli | nomor_baris | kode_alasan | alasan |
| en | raw_line | row_number | reason_codes | reasons |

(A source column of the same name pushes the added one aside as `_name`.) A row's codes are separated by "; ",
its sentences by line breaks, in the same order. Without values (a steward's export) only the last three columns
are there.

CSV is UTF-8 with a byte-order mark and ";" between values: Excel with Indonesian regional settings reads the
mark as UTF-8 and splits on ";" (its list separator, since "," is the decimal separator there); the hub's file
connector reads the same file back (it takes the mark off and finds the separator). A value Excel would run as a
formula (one starting with =, @, a tab, or + or - followed by more than a number) starts with an apostrophe in
the CSV. Excel still reads long digit strings in a CSV as numbers (a NIK becomes 3,27103E+15): the XLSX export
writes every value as text, in columns formatted as text, and is the one to open in Excel.

Rows are read from the catalog a page at a time and written as they come (openpyxl's write-only mode for XLSX),
so a run of a million rejects never sits in memory. Nothing here logs a value.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from hub.errors import ConfigError

__all__ = ["FORMATS", "HEADERS", "LINE", "Rejects", "csv_chunks", "file_name", "rejects", "sentences", "write_csv",
           "write_table", "write_xlsx"]

FORMATS = ("table", "csv", "xlsx")
# The added columns, by language.
HEADERS = {
    "id": {"line": "baris_asli", "row": "nomor_baris", "codes": "kode_alasan", "reasons": "alasan"},
    "en": {"line": "raw_line", "row": "row_number", "codes": "reason_codes", "reasons": "reasons"},
}
LINE = "_line"  # the key under which a record refused when read keeps its raw line (hub.pipeline)
CODE_SEPARATOR = "; "
CSV_DELIMITER = ";"
# Excel's limits: characters in a cell, rows in a sheet.
XLSX_CELL_CHARS = 32_767
XLSX_SHEET_ROWS = 1_048_576
_TITLES = {"id": "karantina", "en": "quarantine"}
# A number as Excel reads one, sign first: a phone number (+62 812...), an amount (-1.500), a lone "-".
_PLAIN_NUMBER = re.compile(r"[+-][0-9 .,()+\-]*")


@dataclass
class Rejects:
    """What an export holds: the run, its number of rejected rows, the header and the rows (cells) as they are
    read. `rows` can be iterated once, while the `rejects` block that made it is open."""

    dataset: str
    run_id: str | None
    standard: str | None
    lang: str
    count: int
    values: bool
    header: list[str]
    rows: Iterable[list] = field(default_factory=list)
    columns: int = 0  # how many of the header's columns hold the record's values (and its raw line)


def _added(lang: str, taken: set[str]) -> dict[str, str]:
    names = {}
    for key, name in HEADERS[lang].items():
        while name in taken:
            name = "_" + name
        names[key] = name
        taken.add(name)
    return names


def _text(value) -> str | None:
    """A received value as text: text as it is, anything else (a number, a nested object) as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@contextmanager
def rejects(settings, dataset_id: str, run_id: str | None = None, *, values: bool = True,
            lang: str = "id") -> Iterator[Rejects]:
    """The rejected rows of a source's run (default: its last run that staged any), ready to write.

    `values`: with the record's columns (the agency's own data, or the operator on the hub's machine); without,
    the row numbers and reasons only (a steward). The catalog session stays open while the block runs and
    `rows` is read.
    """
    from catalog.db import Dataset, session
    from catalog.metadata import quarantine_run, quarantined_columns, quarantined_rows
    from hub.reasons import LANGUAGES

    if lang not in LANGUAGES:
        raise ConfigError(f"language {lang!r}: one of {', '.join(LANGUAGES)}")
    with session(settings.catalog_url) as s:
        d = s.get(Dataset, dataset_id)
        if d is None:
            raise ConfigError(f"no dataset {dataset_id!r} in the catalog: the source has never been published "
                              f"(hub run {dataset_id})")
        run = quarantine_run(s, d, run_id)
        if run is None and run_id is not None:
            raise ConfigError(f"dataset {dataset_id!r} has no run {run_id!r}")
        sentence, standard = _sentences(settings, d, run, lang)
        received = quarantined_columns(s, d, run) if values and run is not None else []
        line = LINE in received
        columns = [c for c in received if c != LINE]
        names = _added(lang, set(columns))
        header = [*columns, *([names["line"]] if line else []), names["row"], names["codes"], names["reasons"]]

        def rows() -> Iterator[list]:
            if run is None:
                return
            for found in quarantined_rows(s, d, run, records=values):
                cells = []
                if values:
                    record = found["record"] if isinstance(found["record"], dict) else {}
                    cells = [_text(record.get(c)) for c in columns]
                    if line:
                        cells.append(_text(record.get(LINE)))
                reasons = list(found["reasons"] or [])
                details = found["details"] if isinstance(found["details"], dict) else {}
                cells += [found["row"], CODE_SEPARATOR.join(reasons),
                          "\n".join(sentence(code, details.get(code)) for code in reasons)]
                yield cells

        yield Rejects(dataset=d.id, run_id=run.run_id if run is not None else None,
                      standard=standard.ref if standard is not None else None,
                      lang=lang, count=(run.rows_quarantined or 0) if run is not None else 0, values=values,
                      header=header, rows=rows(), columns=len(columns) + (1 if line else 0))


def sentences(settings, d, run, lang: str = "id") -> Callable[[str, dict | None], str]:
    """The sentence of each reason code of a dataset's run (`sentence(code, details)`), from the standard the run
    was validated against and the registration of its source."""
    return _sentences(settings, d, run, lang)[0]


def _sentences(settings, d, run, lang: str):
    from hub.reasons import explainer
    from schemas import load_standard

    ref = ((run.validation or {}).get("suite") if run is not None else None) or f"{d.standard}@{d.standard_version}"
    try:
        standard = load_standard(ref)
    except ConfigError:
        # A standard that no longer loads still leaves the rows and their codes to show: the sentences then say
        # what the codes, the registration and the details say, without the standard's rules.
        standard = None
    return explainer(standard=standard, source=_source(settings, d), lang=lang), standard


def _source(settings, d):
    """The registration of the source a dataset is harmonized from, for its mapping; None if it does not load."""
    from hub.pipeline import find_source

    if d.kind != "harmonized":
        return None
    try:
        return find_source(settings, d.id)
    except ConfigError:
        return None


def file_name(found: Rejects, fmt: str) -> str:
    """The export's file name: `karantina-dinsos_dtks-RUN.csv` (`quarantine-...` in English)."""
    run = re.sub(r"[^A-Za-z0-9_.-]+", "_", found.run_id or "none")
    return f"{_TITLES[found.lang]}-{found.dataset}-{run}.{fmt}"


# --- CSV ----------------------------------------------------------------------------------------------------


def _defused(value: str | None) -> str | None:
    """A value Excel would run as a formula, with an apostrophe before it (OWASP's advice for CSV files)."""
    if not value:
        return value
    first = value[0]
    if first in "=@\t\r" or (first in "+-" and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def csv_chunks(found: Rejects, rows_per_chunk: int = 500) -> Iterator[bytes]:
    """The CSV file as bytes, a chunk per `rows_per_chunk` rows: the byte-order mark and the header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    writer.writerow(found.header)
    yield "\ufeff".encode() + buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    n = 0
    for cells in found.rows:
        writer.writerow([_defused(c) for c in cells[:found.columns]] + cells[found.columns:])
        n += 1
        if n % rows_per_chunk == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def write_csv(found: Rejects, sink: BinaryIO) -> int:
    """Write the CSV file to a binary stream; returns the rows written."""
    written = -1  # the header
    for chunk in csv_chunks(found, rows_per_chunk=1):
        sink.write(chunk)
        written += 1
    return max(written, 0)


# --- XLSX ---------------------------------------------------------------------------------------------------


def _cell_text(value: str) -> str:
    """Text as a cell may hold it: characters XML cannot carry as U+FFFD, cut at Excel's limit."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    if len(value) > XLSX_CELL_CHARS:
        value = value[:XLSX_CELL_CHARS - 1] + "…"
    return value


def write_xlsx(found: Rejects, sink) -> int:
    """Write the XLSX workbook (a path or a binary file) in openpyxl's write-only mode; returns the rows written.

    Every value is a text cell (a NIK keeps its 16 digits, a value starting with = is no formula), in a column
    formatted as text, so that what the agency types there stays text too. Past Excel's rows per sheet the rows
    go on in another sheet with the same header.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    bold, wrapped = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    sheets = 0

    def new_sheet():
        nonlocal sheets
        sheets += 1
        title = _TITLES[found.lang] + (f" {sheets}" if sheets > 1 else "")
        sheet = workbook.create_sheet(title)
        sheet.freeze_panes = "A2"
        for i, name in enumerate(found.header, start=1):
            letter = get_column_letter(i)
            if i <= found.columns:
                sheet.column_dimensions[letter].number_format = "@"
                sheet.column_dimensions[letter].width = 20
            elif i == len(found.header):
                sheet.column_dimensions[letter].width = 100
            else:
                sheet.column_dimensions[letter].width = 24
        header = []
        for name in found.header:
            cell = WriteOnlyCell(sheet, value=_cell_text(name))
            cell.data_type, cell.font = "s", bold
            header.append(cell)
        sheet.append(header)
        return sheet

    sheet, rows_in_sheet, written = new_sheet(), 1, 0
    for cells in found.rows:
        if rows_in_sheet == XLSX_SHEET_ROWS:
            sheet, rows_in_sheet = new_sheet(), 1
        out = []
        for i, value in enumerate(cells):
            if isinstance(value, str):
                value = _cell_text(value)
                if value.startswith("=") or i == len(cells) - 1:
                    cell = WriteOnlyCell(sheet, value=value)
                    cell.data_type = "s"  # text, never a formula
                    if i == len(cells) - 1:
                        cell.alignment = wrapped
                    value = cell
            out.append(value)
        sheet.append(out)
        rows_in_sheet += 1
        written += 1
    workbook.save(sink)
    return written


# --- a table for people -------------------------------------------------------------------------------------


def write_table(found: Rejects, out: TextIO) -> int:
    """The rows as text to read: per row its number, its values column by column, and each reason's code and
    sentence. Returns the rows written."""
    header = found.header
    row_at = len(header) - 3
    names = header[:found.columns]
    width = max((len(n) for n in names), default=0)
    row_word, none_word = {"id": ("baris", "tidak ada baris yang dikarantina"),
                           "en": ("row", "no row was quarantined")}[found.lang]
    out.write(f"{found.dataset} {found.run_id or '-'} ({found.standard}): {found.count} "
              f"{'baris dikarantina' if found.lang == 'id' else 'rows quarantined'}\n")
    written = 0
    for cells in found.rows:
        out.write(f"\n{row_word} {cells[row_at]}\n")
        for name, value in zip(names, cells[:found.columns]):
            if value is not None:
                shown = value.replace("\r", "\\r").replace("\n", "\\n")
                out.write(f"  {name:<{width}}  {shown}\n")
        codes = [c for c in cells[row_at + 1].split(CODE_SEPARATOR) if c]
        for code, sentence in zip(codes, cells[row_at + 2].split("\n")):
            out.write(f"  - {code}: {sentence}\n")
        written += 1
    if not written:
        out.write(f"{none_word}\n")
    return written
