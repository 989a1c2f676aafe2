"""Fuzz: hostile agency files (CSV, Excel, JSON, JSON Lines) through the hub's own reading, mapping and validation."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
from pathlib import Path

import openpyxl
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from connectors.registry import load_source
from hub.pipeline import stage_into

from ._hostile import (NAME, NIK, assert_hub_error, assert_no_leak, budget, capture_all_logs, cells,
                       home_with_registry, messages_of)

HEADER = ["NIK", "Nama Lengkap", "Jenis Kelamin", "Agama", "Tanggal Lahir", "Kode Kelurahan"]
MAPPING = {
    "nik": {"from": "NIK", "normalize": "nik"},
    "nama": {"from": "Nama Lengkap", "normalize": "name"},
    "jenis_kelamin": {"from": "Jenis Kelamin", "crosswalk": {"LK": "1", "PR": "2", "L": "1", "P": "2"}},
    "agama": {"from": "Agama", "crosswalk": {"Islam": "1", "Kristen": "2", "1": "1"}},
    "tanggal_lahir": {"from": "Tanggal Lahir", "date_formats": ["%d %B %Y", "%d/%m/%Y", "%Y-%m-%d"]},
    "kode_wilayah": {"from": "Kode Kelurahan", "normalize": "kode_wilayah"},
}
SOURCE_ID = "fuzz_src"


def run_source(data: bytes, file_name: str, options: dict, caplog) -> tuple[dict | None, BaseException | None]:
    """Register `data` as a file source in a fresh hub home and stage it as `hub sources test` does (read,
    harmonize, validate; nothing published): (summary, None) or (None, the error)."""
    caplog.clear()
    if os.environ.get("HUB_FUZZ_DUMP"):  # a crash that kills the process (a segfault) leaves its input there
        Path(os.environ["HUB_FUZZ_DUMP"]).write_bytes(data)
    with tempfile.TemporaryDirectory(prefix="hub-fuzz-") as folder:
        home, registry = home_with_registry(Path(folder))
        (home / "incoming" / file_name).write_bytes(data)
        registration = registry / f"{SOURCE_ID}.yaml"
        registration.write_text(yaml.safe_dump({
            "id": SOURCE_ID, "title": "Fuzz source", "agency": {"code": "dinsos", "name": "Dinas Sosial"},
            "standard": "penduduk@1.0.0", "kind": "file",
            "options": {"path": "${HUB_HOME}/incoming/" + file_name, **options}, "mapping": MAPPING,
        }, allow_unicode=True), encoding="utf-8")
        staged = Path(folder) / "staged"
        staged.mkdir()
        try:
            return stage_into(staged, load_source(registration, home, data_dirs=()), "fuzz"), None
        except Exception as e:  # judged by check(): only the hub's own errors may come out
            return None, e


def check(summary, error, caplog, file_name: str, reference: int | None = None) -> None:
    """The properties: a clear hub error, or every record published, quarantined or counted as an identical
    repeat (as many as a reference reader counts, where there is one); and no planted value in any message or
    log line."""
    if error is not None:
        assert_hub_error(error, SOURCE_ID, file_name)
        assert "refusing to publish" not in str(error), error  # the pipeline's own guard against a lost row
        assert reference is None, f"a well-formed file failed: {error}"
    else:
        assert summary["rows_in"] == summary["rows_valid"] + summary["rows_quarantined"] + summary["rows_repeated"]
        if reference is not None:
            assert summary["rows_in"] == reference, (summary, reference)
    assert_no_leak(messages_of(error, caplog))


# --- CSV ---------------------------------------------------------------------------------------------


rows = st.lists(st.lists(cells, min_size=0, max_size=8), max_size=25)  # ragged: 0 to 8 cells for 6 columns
planted_row = [NIK, NAME, "PR", "Islam", "21 April 1990", "32.71.01.1001"]


def csv_text(records: list[list[str]], delimiter: str, line_end: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(HEADER)
    writer.writerows(records)
    return out.getvalue()


def reference_count(text: str, delimiter: str) -> int:
    """Records after the header as Python's csv module reads them (blank lines are no record)."""
    limit = csv.field_size_limit(1 << 30)
    try:
        return sum(1 for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r) - 1
    finally:
        csv.field_size_limit(limit)


encodings = st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"])
# Byte damage after the header line: invalid UTF-8, NULs, stray quotes and line breaks, BOMs, cuts.
damage = st.lists(st.tuples(st.floats(0, 1), st.one_of(
    st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xe2\x80", b"\x81", b'"', b"\r", b"\n", b"\xef\xbb\xbf",
                     b"\xff\xfe", b";;;", b'"\n"', b"cut", b"dup"]),
    st.binary(min_size=1, max_size=6))), max_size=4)


def damaged(data: bytes, start: int, edits: list[tuple[float, bytes]]) -> bytes:
    for where, what in edits:
        at = start + int(where * (len(data) - start))
        if what == b"cut":
            data = data[:at]
        elif what == b"dup":
            data = data[:at] + data[start:at] + data[at:]
        else:
            data = data[:at] + what + data[at:]
    return data


@budget(40)
@given(records=rows, planted_at=st.integers(0, 25), delimiter=st.sampled_from([";", ",", "\t", "|"]),
       line_end=st.sampled_from(["\n", "\r\n", "\r"]), encoding=encodings, declare=st.booleans(),
       edits=damage, huge=st.sampled_from([0, 0, 0, 40_000]),
       limits=st.sampled_from([{}, {}, {"max_field_chars": 16}, {"max_line_bytes": 1024}]))
def test_csv(caplog, records, planted_at, delimiter, line_end, encoding, declare, edits, huge, limits):
    capture_all_logs(caplog)
    records = [*records[:planted_at], planted_row, *records[planted_at:]]
    if huge:
        records.append([NIK, "x" * huge, "LK"])
    text = csv_text(records, delimiter, line_end)
    data = text.encode(encoding, errors="replace")
    header_end = len(csv_text([], delimiter, line_end).encode(encoding, errors="replace"))
    broken = damaged(data, header_end, edits)
    options = {**limits, **({"delimiter": delimiter, "encoding": encoding} if declare else {})}
    summary, error = run_source(broken, "dtks.csv", options, caplog)
    reference = None
    if not edits:
        # The reader sees the text the encoding gives back ('?' where cp1252 has no character).
        reference = reference_count(data.decode(encoding), delimiter)
    check(summary, error, caplog, "dtks.csv", reference)


@pytest.mark.parametrize("data", [
    b"", b"\n\n\n", b"\xef\xbb\xbf", "NIK;Nama Lengkap\n".encode(), b"NIK;Nama Lengkap", b"\x00" * 64,
    b"\xff\xfe\x00\x00garbage", bytes(range(256)) * 8, b"NIK;NIK;NIK\n1;2;3\n", b'"NIK;"Nama\n1;2\n',
    b"NIK;" + b"N" * 50_000 + b"\n1;2\n", ";".join(HEADER).encode() + b"\n" + b"1;2;3;4;5;6\n" * 3 + b"\x1a",
], ids=["empty", "blank-lines", "bom-only", "header-only", "header-no-newline", "nuls", "utf16-garbage",
        "all-bytes", "repeated-names", "open-quote-header", "huge-header-name", "ctrl-z-end"])
def test_csv_edge_files(caplog, data):
    capture_all_logs(caplog)
    summary, error = run_source(data, "edge.csv", {}, caplog)
    check(summary, error, caplog, "edge.csv")


# --- Excel --------------------------------------------------------------------------------------------


xlsx_cells = st.one_of(cells, st.integers(-10**18, 10**18), st.floats(allow_nan=True, allow_infinity=True),
                       st.booleans(), st.none(), st.just(3271014101900042),
                       st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2100, 1, 1)),
                       st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2100, 1, 1)),
                       st.sampled_from(["=1+1", "=A1&B1", "=1/0", "=NOW()"]))


def workbook_bytes(title_rows: int, records: list[list], merges: list[tuple[int, int, int, int]],
                   extra_sheet: bool) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for i in range(title_rows):
        sheet.append([f"Rekap {i}"])
    sheet.append(HEADER)
    for record in records:
        sheet.append([_excel_value(v) for v in record])
    for r, c, h, w in merges:  # merged cells over the data (never the header)
        top = title_rows + 2 + r
        try:
            sheet.merge_cells(start_row=top, start_column=1 + c, end_row=top + h, end_column=1 + c + w)
        except ValueError:
            pass
    if extra_sheet:
        workbook.create_sheet("Lampiran").append(["x"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _excel_value(value):
    if isinstance(value, str):
        # openpyxl refuses control characters in cells, as Excel does: what it cannot hold, no agency sends.
        return "".join(ch for ch in value if ch in "\t\n\r" or ord(ch) >= 32)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    return value


def xlsx_reference(data: bytes) -> int:
    """Rows after the header holding a value, as openpyxl (not in read-only mode) reads them back."""
    sheet = openpyxl.load_workbook(io.BytesIO(data), data_only=True).worksheets[0]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    at = next(i for i, row in enumerate(values) if [v for v in row if v is not None][:len(HEADER)] == HEADER)
    return sum(1 for row in values[at + 1:] if any(v is not None and str(v).strip() for v in row))


@budget(20)
@given(title_rows=st.integers(0, 3), records=st.lists(st.lists(xlsx_cells, max_size=8), max_size=15),
       merges=st.lists(st.tuples(st.integers(0, 10), st.integers(0, 5), st.integers(0, 2), st.integers(0, 2)),
                       max_size=3),
       extra_sheet=st.booleans(), edits=damage, limits=st.sampled_from([{}, {"max_field_chars": 16}]))
def test_xlsx(caplog, title_rows, records, merges, extra_sheet, edits, limits):
    capture_all_logs(caplog)
    records = [[NIK, NAME, "PR", "Islam", dt.date(1990, 4, 21), "32.71.01.1001"], *records]
    data = workbook_bytes(title_rows, records, merges, extra_sheet)
    broken = damaged(data, 0, edits)
    summary, error = run_source(broken, "dapodik.xlsx", limits, caplog)
    check(summary, error, caplog, "dapodik.xlsx", None if edits else xlsx_reference(data))


def test_xlsx_that_is_no_workbook(caplog):
    capture_all_logs(caplog)
    for data in (b"", b"PK\x03\x04", b"PK\x05\x06" + b"\x00" * 18, b"not a zip at all", NIK.encode()):
        summary, error = run_source(data, "broken.xlsx", {}, caplog)
        check(summary, error, caplog, "broken.xlsx")
        assert error is not None


# --- JSON and JSON Lines ------------------------------------------------------------------------------


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), cells),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(cells, inner, max_size=3)),
    max_leaves=10)
records_json = st.lists(st.one_of(
    st.fixed_dictionaries({"NIK": st.one_of(cells, st.integers()), "Nama Lengkap": cells},
                          optional={"Agama": json_values, "Jenis Kelamin": cells, "Tanggal Lahir": cells,
                                    "Kode Kelurahan": json_values, "alamat": json_values}),
    json_values), max_size=20)
planted_record = {"NIK": NIK, "Nama Lengkap": NAME, "Jenis Kelamin": "PR", "Agama": "Islam",
                  "Tanggal Lahir": "21/04/1990", "Kode Kelurahan": "32.71.01.1001"}
# Text that is JSON only to a lenient reader, or whose numbers or nesting are huge.
json_oddities = st.sampled_from(["1e999999", "-" + "9" * 5000, "0." + "0" * 5000 + "1", "[" * 3000 + "]" * 3000,
                                 '{"a":' * 500 + "1" + "}" * 500, "NaN", '"\\ud800"', '{"NIK": "\\u0000"}',
                                 '{"NIK": 1, "NIK": 2}', "{}", "[]", '"text"'])


@budget(30)
@given(records=records_json, oddities=st.lists(json_oddities, max_size=3), wrap=st.booleans(), edits=damage,
       bom=st.booleans())
def test_json(caplog, records, oddities, wrap, edits, bom):
    capture_all_logs(caplog)
    items = [json.dumps(r, ensure_ascii=False) for r in [planted_record, *records]] + oddities
    body = "[" + ",".join(items) + "]"
    text = '{"data": {"items": ' + body + "}}" if wrap else body
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    broken = damaged(data, 0, edits)
    options = {"records_path": "data.items"} if wrap else {}
    summary, error = run_source(broken, "faskes.json", options, caplog)
    reference = None
    # Python's reader also takes NaN and half a surrogate pair, which are not JSON (RFC 8259): no reference then.
    if not edits and not {"NaN", '"\\ud800"'} & set(oddities):
        try:
            parsed = json.loads(text)
            reference = len(parsed["data"]["items"] if wrap else parsed)
        except (ValueError, RecursionError):
            reference = None  # not JSON to Python's reader either: any clear refusal will do
    check(summary, error, caplog, "faskes.json", reference)


@budget(30)
@given(records=records_json, oddities=st.lists(json_oddities, max_size=3), garbage=st.lists(cells, max_size=4),
       blank=st.integers(0, 3), edits=damage, bom=st.booleans(),
       limits=st.sampled_from([{}, {"max_line_bytes": 1024}, {"max_field_chars": 16}]))
def test_jsonl(caplog, records, oddities, garbage, blank, edits, bom, limits):
    capture_all_logs(caplog)
    lines = [json.dumps(r, ensure_ascii=False) for r in [planted_record, *records]]
    lines += oddities + [g.replace("\n", " ").replace("\r", " ") for g in garbage] + [""] * blank
    lines.append(json.dumps({"NIK": NIK, "Nama Lengkap": "x" * 3000}))
    data = (b"\xef\xbb\xbf" if bom else b"") + "\n".join(lines).encode("utf-8") + b"\n"
    broken = damaged(data, 0, edits)
    summary, error = run_source(broken, "faskes.jsonl", limits, caplog)
    reference = None
    if not edits:
        reference = sum(1 for line in data.removeprefix(b"\xef\xbb\xbf").split(b"\n") if line.strip())
    check(summary, error, caplog, "faskes.jsonl", reference)


def test_files_of_other_formats_under_a_json_name(caplog):
    capture_all_logs(caplog)
    for data in (b"", b"\x00\x01", "NIK;Nama\n".encode(), b"PK\x03\x04", b'{"data": 1}', b"[1, 2, ",
                 NIK.encode()):
        for name in ("x.json", "x.jsonl"):
            summary, error = run_source(data, name, {}, caplog)
            check(summary, error, caplog, name)
