"""The `file` kind on real files in the encodings and separators agencies send."""

from __future__ import annotations

import csv
import datetime as dt
import json
import socket
import tempfile
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.base import ROW
from tests.connectors.conformance import Conformance, as_text
from connectors.file import FileConnector
from connectors.kinds import connector_for
from connectors.registry import Source, load_source
from hub.errors import ConfigError, FatalSourceError, RetriableSourceError


def file_source(tmp_path: Path, path: Path | str, mapping: dict | None = None, **options) -> Source:
    return Source(
        id="dinsos_test", title="DTKS test", description="", agency_code="dinsos", agency_name="Dinas Sosial",
        standard_ref="penduduk@1.0.0", kind="file", schedule=None, options={"path": str(path), **options},
        mapping=mapping or {"nik": {"from": "NIK"}}, path=tmp_path / "dinsos_test.yaml",
    )


def read_all(connector) -> list:
    return list(connector.read())


def records(batches) -> list[dict]:
    return [row for b in batches for row in b.records.to_pylist()]


def write_lines(path: Path, lines: list[str], encoding: str, newline: str = "\n") -> Path:
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list], **sheets: list[list]) -> Path:
    """A workbook whose first sheet holds `rows`, and further sheets by name."""
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    for name, sheet_rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in sheet_rows:
            sheet.append(row)
    workbook.save(path)
    return path


# --- encodings and separators ----------------------------------------------------------------------


def test_windows_1252_semicolon_file_reads_its_accents_and_curly_quotes(tmp_path):
    path = write_lines(tmp_path / "dtks.csv", [
        "NIK;Nama Lengkap;Kode",
        "3271010101900001;Andi D’Angelo;007",
        "3271010101900002;Désirée Siregar;0012",
    ], "cp1252", newline="\r\n")
    rows = records(read_all(FileConnector(file_source(tmp_path, path, delimiter=";", encoding="cp1252"))))
    assert rows == [
        {"NIK": "3271010101900001", "Nama Lengkap": "Andi D’Angelo", "Kode": "007", ROW: 1},
        {"NIK": "3271010101900002", "Nama Lengkap": "Désirée Siregar", "Kode": "0012", ROW: 2},
    ]


def test_windows_1252_file_declared_as_windows_1252_name_variant(tmp_path):
    path = write_lines(tmp_path / "dtks.csv", ["Nama;Kode", "Ré;007"], "cp1252")
    rows = records(read_all(FileConnector(file_source(tmp_path, path, delimiter=";", encoding="windows-1252"))))
    assert rows == [{"Nama": "Ré", "Kode": "007", ROW: 1}]


def test_utf8_with_bom_does_not_leak_the_bom_into_the_first_column_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffNIK,Nama\n3271010101900001,Ré\n".encode("utf-8"))
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    assert batches[0].records.column_names == ["NIK", "Nama", ROW]
    assert records(batches) == [{"NIK": "3271010101900001", "Nama": "Ré", ROW: 1}]


def test_comma_csv_with_default_options(tmp_path):
    path = write_lines(tmp_path / "plain.csv", ["a,b", "1,x", '2,"y, with comma"'], "utf-8")
    assert records(read_all(FileConnector(file_source(tmp_path, path)))) == [
        {"a": "1", "b": "x", ROW: 1},
        {"a": "2", "b": "y, with comma", ROW: 2},
    ]


def test_every_column_is_arrow_string_and_codes_keep_their_digits(tmp_path):
    path = write_lines(tmp_path / "codes.csv", [
        "NIK,Kode,Umur,Tanggal,Nilai",
        "3271010101900001,007,42,2014-12-16,1.50",
        "0271010101900002,0012,7,2015-01-01,2",
    ], "utf-8")
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    schema = batches[0].records.schema
    assert all(schema.field(name).type == pa.string() for name in ["NIK", "Kode", "Umur", "Tanggal", "Nilai"])
    assert schema.field(ROW).type == pa.int64()
    rows = records(batches)
    assert [r["Kode"] for r in rows] == ["007", "0012"]
    assert [r["NIK"] for r in rows] == ["3271010101900001", "0271010101900002"]
    assert [r["Nilai"] for r in rows] == ["1.50", "2"]


def test_registered_yaml_source_reads_through_connector_for(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    write_lines(home / "x.csv", ["NIK;Nama", "3271010101900001;Ré"], "cp1252")
    registration = tmp_path / "dinsos_yaml.yaml"
    registration.write_text(
        "id: dinsos_yaml\ntitle: DTKS\nagency: {code: dinsos, name: Dinas Sosial}\nstandard: penduduk@1.0.0\n"
        "kind: file\noptions: {path: \"${HUB_HOME}/x.csv\", delimiter: \";\", encoding: cp1252}\n"
        "mapping: {nik: {from: NIK}}\n",
        encoding="utf-8",
    )
    connector = connector_for(load_source(registration, home))
    assert records(read_all(connector)) == [{"NIK": "3271010101900001", "Nama": "Ré", ROW: 1}]


def test_a_relative_path_is_next_to_the_registration(tmp_path):
    write_lines(tmp_path / "x.csv", ["NIK", "3271010101900001"], "utf-8")
    assert records(read_all(FileConnector(file_source(tmp_path, Path("x.csv"))))) == [{"NIK": "3271010101900001", ROW: 1}]


# --- detection of separator and encoding --------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"], ids=["semicolon", "comma", "tab", "pipe"])
def test_the_separator_is_detected_from_the_header(tmp_path, delimiter):
    others = "".join(d for d in ";,\t|" if d != delimiter)  # values hold the other separators: the header decides
    path = write_lines(tmp_path / "x.txt", [delimiter.join(["NIK", "Nama", "Alamat"]),
                                            delimiter.join(["3271010101900001", "Siti", f"Jl. A{others}1"])], "utf-8")
    connector = FileConnector(file_source(tmp_path, path, delimiter="auto"))
    assert records(read_all(connector)) == [
        {"NIK": "3271010101900001", "Nama": "Siti", "Alamat": f"Jl. A{others}1", ROW: 1}]
    assert connector.describe() == f"file x.txt ({delimiter!r}-separated, utf-8)"


def test_separators_inside_quoted_header_names_do_not_count(tmp_path):
    path = write_lines(tmp_path / "x.csv", ['"Nama; Gelar";"Kode, lama";NIK', "Ré;007;1"], "utf-8")
    assert records(read_all(FileConnector(file_source(tmp_path, path)))) == [
        {"Nama; Gelar": "Ré", "Kode, lama": "007", "NIK": "1", ROW: 1}]


def test_windows_1252_is_detected_when_the_bytes_are_not_utf8(tmp_path):
    path = write_lines(tmp_path / "dtks.csv", ["NIK;Nama Lengkap;Tanggal Lahir",
                                               "3271010101900001;Désirée Siregar;16 Desember 2014"], "cp1252", "\r\n")
    connector = FileConnector(file_source(tmp_path, path))
    assert records(read_all(connector)) == [
        {"NIK": "3271010101900001", "Nama Lengkap": "Désirée Siregar", "Tanggal Lahir": "16 Desember 2014", ROW: 1}]
    assert connector.describe() == "file dtks.csv (';'-separated, cp1252)"


def test_utf8_is_detected_and_a_bom_is_dropped(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeffNIK\tNama\n3271010101900001\tDésirée\n".encode("utf-8"))
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    assert batches[0].records.column_names == ["NIK", "Nama", ROW]
    assert records(batches) == [{"NIK": "3271010101900001", "Nama": "Désirée", ROW: 1}]


def test_a_file_that_stops_being_utf8_after_the_detection_sample_is_fatal_and_says_where(tmp_path):
    path = tmp_path / "late.csv"
    good = "a,b\n" + "".join(f"{i},{'x' * 40}\n" for i in range(150_000))
    path.write_bytes(good.encode("ascii") + "9,Ré\n".encode("cp1252"))
    with pytest.raises(FatalSourceError, match=r"late.csv: .*bytes that are not utf-8"):
        read_all(FileConnector(file_source(tmp_path, path, encoding="auto")))


# --- Excel -------------------------------------------------------------------------------------------

DTKS_MAPPING = {"nik": {"from": "NIK"}, "nama": {"from": "Nama Lengkap"}}


def test_excel_header_below_title_rows_is_found_and_empty_rows_are_skipped(tmp_path):
    path = write_xlsx(tmp_path / "dtks.xlsx", [
        ["DATA TERPADU KESEJAHTERAAN SOSIAL"],
        ["Kota Bogor", "Desember 2024"],
        [],
        ["No", "NIK", "Nama Lengkap", "Tanggal Lahir", "Kode", "Jumlah", "Dicatat"],
        [1, 3271010101900001, "Désirée Siregar", dt.date(2014, 12, 16), "007", 2.0, dt.datetime(2024, 12, 1, 8, 30)],
        [],
        [None, "   ", None],
        [3, "3271010101900003", "Ucok", "16 Desember 2014", "012", 2.5, True],
    ])
    batches = read_all(FileConnector(file_source(tmp_path, path, DTKS_MAPPING)))
    assert records(batches) == [
        {"No": "1", "NIK": "3271010101900001", "Nama Lengkap": "Désirée Siregar", "Tanggal Lahir": "2014-12-16",
         "Kode": "007", "Jumlah": "2", "Dicatat": "2024-12-01T08:30:00", ROW: 1},
        # The sheet's row is the header's row (4) + _row.
        {"No": "3", "NIK": "3271010101900003", "Nama Lengkap": "Ucok", "Tanggal Lahir": "16 Desember 2014",
         "Kode": "012", "Jumlah": "2.5", "Dicatat": "true", ROW: 4},
    ]
    assert all(b.records.schema.field(c).type == pa.string() for b in batches for c in b.records.column_names[:-1])


def test_a_nik_typed_as_a_number_in_excel_reads_without_a_decimal_point(tmp_path):
    path = write_xlsx(tmp_path / "nik.xlsx", [["NIK", "Nama Lengkap"], [3271010101900001, "Siti"],
                                              [3271010101900002.0, "Agus"]])
    assert [r["NIK"] for r in records(read_all(FileConnector(file_source(tmp_path, path, DTKS_MAPPING))))] == [
        "3271010101900001", "3271010101900002"]


def test_excel_header_row_option_and_sheet_by_name_or_position(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx", [["ringkasan"]], Data=[["Laporan"], ["NIK", "Jumlah"], ["007", 5]])
    expected = [{"NIK": "007", "Jumlah": "5", ROW: 1}]
    for sheet in ("Data", 2):
        assert records(read_all(FileConnector(file_source(tmp_path, path, sheet=sheet, header_row=2)))) == expected
    assert records(read_all(FileConnector(file_source(tmp_path, path, sheet="Data")))) == expected


def test_a_value_under_a_column_without_a_name_is_rejected_with_its_row(tmp_path):
    path = write_xlsx(tmp_path / "x.xlsx", [["NIK", "Nama Lengkap"], ["001", "Siti"], ["002", "Agus", "catatan"]])
    batches = read_all(FileConnector(file_source(tmp_path, path, DTKS_MAPPING)))
    assert records(batches) == [{"NIK": "001", "Nama Lengkap": "Siti", ROW: 1}]
    assert [r for b in batches for r in b.rejected] == [(2, "_record:column_count", "002\tAgus\tcatatan")]
    assert [r.details for b in batches for r in b.rejected] == [{"expected": 2, "found": 3, "unnamed": ["C"]}]


def test_a_value_under_a_header_gap_is_rejected_naming_its_column(tmp_path):
    # The header leaves column C without a name: a value there belongs to no field, whatever the widths say.
    path = write_xlsx(tmp_path / "x.xlsx", [["NIK", "Nama Lengkap", None, "Kode"], ["001", "Siti", None, "7"],
                                            ["002", "Agus", "catatan", "8"], ["003", "Dewi", "a", "9", "b"]])
    batches = read_all(FileConnector(file_source(tmp_path, path, DTKS_MAPPING)))
    assert [r[ROW] for r in records(batches)] == [1]
    assert [(r[0], r.details) for b in batches for r in b.rejected] == [
        (2, {"expected": 4, "found": 4, "unnamed": ["C"]}),
        (3, {"expected": 4, "found": 5, "unnamed": ["C", "E"]})]


@pytest.mark.parametrize("options, message", [
    ({}, r"dtks.xlsx: sheet 'Sheet': no header row in the first 100 rows: expected a row of text cells naming "
         r"\['NIK', 'Nama Lengkap'\]"),
    ({"header_row": 9}, r"dtks.xlsx: sheet 'Sheet': has no row 9"),
    ({"sheet": "Rekap"}, r"dtks.xlsx: no sheet 'Rekap'; sheets: \['Sheet'\]"),
    ({"sheet": 2}, r"dtks.xlsx: no sheet 2; the workbook has 1"),
], ids=["no-header", "header-row-beyond-the-end", "sheet-name", "sheet-position"])
def test_a_sheet_that_does_not_match_the_registration_is_fatal(tmp_path, options, message):
    path = write_xlsx(tmp_path / "dtks.xlsx", [["Laporan"], ["NIK", "Nama"], ["001", "Siti"]])
    with pytest.raises(FatalSourceError, match=message):
        read_all(FileConnector(file_source(tmp_path, path, DTKS_MAPPING, **options)))


def test_a_file_that_is_not_a_workbook_is_fatal(tmp_path):
    path = tmp_path / "dtks.xlsx"
    path.write_bytes(b"NIK;Nama\n001;Siti\n")
    with pytest.raises(FatalSourceError, match="dtks.xlsx: not a readable .xlsx workbook"):
        read_all(FileConnector(file_source(tmp_path, path)))


# --- JSON and JSON Lines ------------------------------------------------------------------------------


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def test_json_records_at_a_dotted_path_with_nested_objects_flattened(tmp_path):
    path = tmp_path / "api.json"
    path.write_text(
        '{"meta": {"total": 2}, "data": {"items": ['
        '{"nik": "3271010101900001", "alamat": {"rt": "001", "kelurahan": {"kode": "3271011001"}}, "umur": 42,'
        ' "nilai": 2.50, "aktif": true, "telepon": ["0812", "0251"], "catatan": null},'
        '{"nik": 3271010101900002, "umur": 7, "baru": "x"}]}}', encoding="utf-8")
    batches = read_all(FileConnector(file_source(tmp_path, path, {"nik": {"from": "nik"}}, records_path="data.items")))
    assert batches[0].records.column_names == ["nik", "alamat.rt", "alamat.kelurahan.kode", "umur", "nilai", "aktif",
                                               "telepon", "catatan", "baru", ROW]
    assert records(batches) == [
        {"nik": "3271010101900001", "alamat.rt": "001", "alamat.kelurahan.kode": "3271011001", "umur": "42",
         "nilai": "2.50", "aktif": "true", "telepon": '["0812", "0251"]', "catatan": None, "baru": None, ROW: 1},
        {"nik": "3271010101900002", "alamat.rt": None, "alamat.kelurahan.kode": None, "umur": "7", "nilai": None,
         "aktif": None, "telepon": None, "catatan": None, "baru": "x", ROW: 2},
    ]


def test_every_batch_has_the_mapped_columns_and_every_column_met_so_far(tmp_path):
    # JSON leaves out null values: the mapping reads `c`, which no record of the first batch holds.
    path = write_json(tmp_path / "x.json", [{"a": "1"}, {"a": "2"}, {"b": "3"}, {"c": "4"}, {"a": "5"}])
    batches = read_all(FileConnector(file_source(tmp_path, path, {"nik": {"from": "c"}}, batch_rows=2)))
    assert [b.records.column_names for b in batches] == [["c", "a", ROW], ["c", "a", "b", ROW], ["c", "a", "b", ROW]]
    assert records(batches)[2:] == [{"a": None, "b": "3", "c": None, ROW: 3}, {"a": None, "b": None, "c": "4", ROW: 4},
                                    {"a": "5", "b": None, "c": None, ROW: 5}]


def test_a_json_array_item_that_is_not_an_object_is_rejected_with_its_position(tmp_path):
    path = write_json(tmp_path / "x.json", [{"a": "1"}, ["a", 2], "teks", {"a": "4"}])
    batches = read_all(FileConnector(file_source(tmp_path, path, {"nik": {"from": "a"}})))
    assert records(batches) == [{"a": "1", ROW: 1}, {"a": "4", ROW: 4}]
    assert [r for b in batches for r in b.rejected] == [(2, "_record:not_object", '["a", 2]'),
                                                        (3, "_record:not_object", '"teks"')]


def test_an_empty_json_array_has_no_records(tmp_path):
    assert read_all(FileConnector(file_source(tmp_path, write_json(tmp_path / "x.json", {"data": []}),
                                              records_path="data"))) == []


@pytest.mark.parametrize("value, options, message", [
    ({"data": [{"a": 1}]}, {}, r"x.json: the top level holds an object, not an array of records"),
    ({"data": {"a": 1}}, {"records_path": "data"}, r"x.json: data holds an object, not an array"),
    ({"data": [{"a": 1}]}, {"records_path": "data.items"}, r"x.json: nothing at data.items"),
], ids=["object-at-top", "object-at-path", "missing-path"])
def test_records_path_that_does_not_lead_to_an_array_is_fatal(tmp_path, value, options, message):
    with pytest.raises(FatalSourceError, match=message):
        read_all(FileConnector(file_source(tmp_path, write_json(tmp_path / "x.json", value), **options)))


def test_broken_json_is_fatal_names_the_last_record_read_and_quotes_no_data(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('[{"nik": "3271010101900001"}, {"nik": "3271010101900002", "nama": Siti}]', encoding="utf-8")
    with pytest.raises(FatalSourceError, match=r"x.json: not valid JSON after record 1") as raised:
        read_all(FileConnector(file_source(tmp_path, path)))
    assert "Siti" not in str(raised.value)


def test_json_lines_quarantines_broken_lines_with_their_line_numbers(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join([
        '{"nik": "3271010101900001", "nama": "Désirée"}',
        '{"nik": "3271010101900002", "nama": "Agus"',
        "",
        '["3271010101900004"]',
        '{"nik": 3271010101900005, "nilai": 1.50, "alamat": {"rt": "005"}}',
    ]).encode("utf-8") + b"\n{\"nama\": \"R\xe9\"}\r\n")
    batches = read_all(FileConnector(file_source(tmp_path, path, {"nik": {"from": "nik"}})))
    assert records(batches) == [
        {"nik": "3271010101900001", "nama": "Désirée", "nilai": None, "alamat.rt": None, ROW: 1},
        {"nik": "3271010101900005", "nama": None, "nilai": "1.50", "alamat.rt": "005", ROW: 5},
    ]
    assert [r for b in batches for r in b.rejected] == [
        (2, "_record:json", '{"nik": "3271010101900002", "nama": "Agus"'),
        (4, "_record:not_object", '["3271010101900004"]'),
        (6, "_record:json", '{"nama": "R\ufffd"}'),
    ]


def test_rejections_count_towards_the_batch_bound(tmp_path):
    path = write_lines(tmp_path / "x.jsonl", ["{broken"] * 10 + ['{"a": 1}'], "utf-8")
    batches = read_all(FileConnector(file_source(tmp_path, path, batch_rows=3)))
    assert [len(b.rejected) for b in batches] == [3, 3, 3, 1]
    assert [b.records.num_rows for b in batches] == [0, 0, 0, 1]
    assert [r for b in batches for r, _, _ in b.rejected] == list(range(1, 11))


# --- Parquet -----------------------------------------------------------------------------------------


def test_parquet_values_arrive_as_text_and_structs_as_dotted_columns(tmp_path):
    table = pa.table({
        "nik": pa.array(["3271010101900001", None]),
        "kode": pa.array(["007", "012"]).dictionary_encode(),
        "umur": pa.array([42, None], pa.int32()),
        "nilai": pa.array([2.0, 2.5]),
        "aktif": pa.array([True, False]),
        "lahir": pa.array([dt.date(2014, 12, 16), None]),
        "dicatat": pa.array([dt.datetime(2024, 12, 1, 8, 30), None], pa.timestamp("ms")),
        "jumlah": pa.array([Decimal("1.50"), None], pa.decimal128(5, 2)),
        "alamat": pa.array([{"rt": "001", "wilayah": {"kode": "3271011001"}}, None]),
        "telepon": pa.array([["0812", "0251"], []]),
    })
    path = tmp_path / "x.parquet"
    pq.write_table(table, path)
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    assert all(f.type == pa.string() for b in batches for f in b.records.schema if f.name != ROW)
    assert records(batches) == [
        {"nik": "3271010101900001", "kode": "007", "umur": "42", "nilai": "2", "aktif": "true", "lahir": "2014-12-16",
         "dicatat": "2024-12-01T08:30:00", "jumlah": "1.50", "alamat.rt": "001", "alamat.wilayah.kode": "3271011001",
         "telepon": '["0812", "0251"]', ROW: 1},
        {"nik": None, "kode": "012", "umur": None, "nilai": "2.5", "aktif": "false", "lahir": None, "dicatat": None,
         "jumlah": None, "alamat.rt": None, "alamat.wilayah.kode": None, "telepon": "[]", ROW: 2},
    ]


def test_parquet_batches_are_bounded_across_row_groups(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"kode": [f"{i:03d}" for i in range(1, 26)]}), path, row_group_size=10)
    batches = read_all(FileConnector(file_source(tmp_path, path, batch_rows=4)))
    assert max(b.records.num_rows for b in batches) <= 4
    assert [(r["kode"], r[ROW]) for r in records(batches)] == [(f"{i:03d}", i) for i in range(1, 26)]


def test_a_file_that_is_not_parquet_is_fatal(tmp_path):
    path = write_lines(tmp_path / "x.parquet", ["NIK,Nama", "1,Siti"], "utf-8")
    with pytest.raises(FatalSourceError, match="x.parquet: not a readable Parquet file"):
        read_all(FileConnector(file_source(tmp_path, path)))


# --- files at a URL -------------------------------------------------------------------------------------


TOKEN = "t0ken-Rahasia-41c7"
# Quick retries: a test of an error answer runs them all.
FAST = {"max_retries": 1, "retry_backoff_seconds": 0.01}


class FileServer(BaseHTTPRequestHandler):
    """Serves the files of `server.folder`; /status/NNN/... answers NNN; /private/... needs the bearer TOKEN."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        status = int(path.split("/")[2]) if path.startswith("/status/") else None
        if path.startswith("/private/") and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            status = 401
        if status:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        file = self.server.folder / path.removeprefix("/private").lstrip("/")
        if not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path):
    """(folder, base URL): a loopback HTTP server serving the folder's files."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FileServer)
    server.daemon_threads = True
    server.folder = folder
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def temp_folder(tmp_path, monkeypatch):
    """The system temporary folder downloads go to, as TMPDIR would set it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/dtks.csv"


def test_a_file_at_a_url_is_downloaded_read_like_a_local_file_and_deleted(tmp_path, served, temp_folder):
    folder, url = served
    write_xlsx(folder / "dtks.xlsx", [["Laporan"], ["NIK", "Nama Lengkap"], [3271010101900001, "Désirée"]])
    connector = FileConnector(file_source(tmp_path, f"{url}/dtks.xlsx?edisi=rahasia", DTKS_MAPPING))
    connector.check()
    assert records(read_all(connector)) == [{"NIK": "3271010101900001", "Nama Lengkap": "Désirée", ROW: 1}]
    assert list(temp_folder.iterdir()) == []
    assert "rahasia" not in connector.describe() and "dtks.xlsx" in connector.describe()


def test_a_url_without_a_file_name_extension_needs_a_format(tmp_path, served):
    folder, url = served
    write_lines(folder / "download", ["NIK;Nama", "3271010101900001;Ré"], "cp1252")
    with pytest.raises(ConfigError, match="options/format: cannot tell the format of 'download'"):
        FileConnector(file_source(tmp_path, f"{url}/download"))
    connector = FileConnector(file_source(tmp_path, f"{url}/download", format="csv"))
    assert records(read_all(connector)) == [{"NIK": "3271010101900001", "Nama": "Ré", ROW: 1}]


@pytest.mark.parametrize("status, error", [(404, FatalSourceError), (403, FatalSourceError), (410, FatalSourceError),
                                           (429, RetriableSourceError), (500, RetriableSourceError),
                                           (503, RetriableSourceError)])
def test_an_error_answer_is_retriable_only_when_the_server_may_answer_later(tmp_path, served, status, error):
    _, url = served
    connector = FileConnector(file_source(tmp_path, f"{url}/status/{status}/dtks.csv?edisi=rahasia", **FAST))
    for attempt in (connector.check, lambda: read_all(connector)):
        with pytest.raises(error, match=rf"source dinsos_test: .*/status/{status}/dtks.csv: HTTP {status}") as raised:
            attempt()
        assert type(raised.value) is error and "rahasia" not in str(raised.value)


def test_a_closed_port_is_retriable(tmp_path):
    connector = FileConnector(file_source(tmp_path, closed_port_url(), **FAST))
    with pytest.raises(RetriableSourceError, match="source dinsos_test: .*/dtks.csv: ConnectError"):
        connector.check()


def test_a_file_behind_a_token_is_read_with_the_secret_the_registration_names(tmp_path, served, monkeypatch):
    folder, url = served
    write_lines(folder / "dtks.csv", ["NIK;Nama", "3271010101900001;Ré"], "cp1252")
    monkeypatch.setenv("DINSOS_FILE_TOKEN", TOKEN)
    auth = {"type": "bearer", "token": {"env": "DINSOS_FILE_TOKEN"}}
    assert records(read_all(FileConnector(file_source(tmp_path, f"{url}/private/dtks.csv", auth=auth)))) == [
        {"NIK": "3271010101900001", "Nama": "Ré", ROW: 1}]
    with pytest.raises(FatalSourceError, match="HTTP 401") as raised:
        read_all(FileConnector(file_source(tmp_path, f"{url}/private/dtks.csv")))
    assert TOKEN not in str(raised.value)


def test_http_options_apply_only_to_a_url(tmp_path):
    with pytest.raises(ConfigError, match="options/max_retries: applies to a path that is an http"):
        FileConnector(file_source(tmp_path, tmp_path / "dtks.csv", max_retries=2))
    with pytest.raises(ConfigError, match="options/path: credentials must not be written in the URL"):
        FileConnector(file_source(tmp_path, "https://dinsos:rahasia@data.kotabogor.go.id/dtks.csv"))


# --- batches and record numbers ----------------------------------------------------------------------


def fifty_rows(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "fifty.csv", ["NIK,Kode"] + [f"{3271010101900000 + i},{i:03d}" for i in range(1, 51)],
                       "utf-8")


def test_row_numbers_records_from_one(tmp_path):
    batches = read_all(FileConnector(file_source(tmp_path, fifty_rows(tmp_path))))
    assert batches[0].records[ROW].to_pylist()[:3] == [1, 2, 3]


def test_batches_never_exceed_batch_rows_and_number_every_record_in_order(tmp_path):
    batches = read_all(FileConnector(file_source(tmp_path, fifty_rows(tmp_path), batch_rows=7)))
    sizes = [b.records.num_rows for b in batches]
    assert all(0 < size <= 7 for size in sizes)
    assert sizes == [7] * 7 + [1]
    rows = records(batches)
    assert len(rows) == 50
    assert [r[ROW] for r in rows] == list(range(1, 51))
    # Each record keeps its own number: row n holds code n.
    assert all(int(r["Kode"]) == r[ROW] for r in rows)
    assert all(not b.rejected for b in batches)


def test_row_with_the_wrong_number_of_fields_is_rejected_with_its_record_number(tmp_path):
    lines = ["NIK;Nama;Kode"] + [f"{3271010101900000 + i};Nama {i};{i:03d}" for i in range(1, 21)]
    lines[5] = "3271010101900005;Nama 5"  # record 5: a field missing
    lines[12] = "3271010101900012;Nama; 12;012"  # record 12: a stray separator
    path = write_lines(tmp_path / "ragged.csv", lines, "cp1252")
    batches = read_all(FileConnector(file_source(tmp_path, path, delimiter=";", encoding="cp1252", batch_rows=7)))
    rejected = sorted(r for b in batches for r in b.rejected)
    assert [(row, reason) for row, reason, _ in rejected] == [
        (5, "_record:column_count"),
        (12, "_record:column_count"),
    ]
    assert rejected[0][2] == "3271010101900005;Nama 5"
    assert [r.details for r in rejected] == [{"expected": 3, "found": 2}, {"expected": 3, "found": 4}]
    rows = records(batches)
    assert [r[ROW] for r in rows] == [n for n in range(1, 21) if n not in (5, 12)]
    assert all(int(r["Kode"]) == r[ROW] for r in rows)
    assert all(b.records.num_rows <= 7 for b in batches)
    assert len(rows) + len(rejected) == 20


def test_rejected_rows_are_never_lost_across_many_blocks(tmp_path):
    # Larger than one 4 MiB read block, so rejections are seen while later batches are still pending.
    n = 300_000
    bad = {100, 250_000, 250_001, n}
    lines = ["a,b,c"] + [f"{i:07d},x{i},y" if i not in bad else f"{i:07d},only" for i in range(1, n + 1)]
    path = write_lines(tmp_path / "big.csv", lines, "utf-8")
    numbers, rejected = [], []
    for batch in FileConnector(file_source(tmp_path, path, batch_rows=1000)).read():
        assert batch.records.num_rows <= 1000
        numbers.extend(batch.records[ROW].to_pylist())
        assert batch.records["a"].to_pylist() == [f"{r:07d}" for r in batch.records[ROW].to_pylist()]
        rejected.extend(row for row, _, _ in batch.rejected)
    assert sorted(rejected) == sorted(bad)
    assert numbers == [i for i in range(1, n + 1) if i not in bad]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_reading_does_not_load_the_file_ahead_of_the_batches(tmp_path, encoding):
    path = tmp_path / "big.csv"
    path.write_bytes(("NIK;Nama\n" + "".join(f"{3271010101900000 + i};Désirée {i:07d}\n" for i in range(600_000)))
                     .encode(encoding))
    assert path.stat().st_size > 16 << 20
    before = pa.total_allocated_bytes()
    batches = FileConnector(file_source(tmp_path, path, encoding=encoding, batch_rows=1000)).read()
    next(batches)
    time.sleep(0.2)  # room for a reader thread to run ahead
    assert pa.total_allocated_bytes() - before < 12 << 20
    batches.close()


def test_quoted_line_break_is_one_record_not_two(tmp_path):
    path = tmp_path / "multiline.csv"
    path.write_text('a,b\n1,"first line\nsecond line"\n2,z\n3\n4,w\n', encoding="utf-8")
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    assert [(r["a"], r[ROW]) for r in records(batches)] == [("1", 1), ("2", 2), ("4", 4)]
    assert [(row, reason) for b in batches for row, reason, _ in b.rejected] == [(3, "_record:column_count")]
    assert [r.details for b in batches for r in b.rejected] == [{"expected": 2, "found": 1}]


def test_a_wrong_field_count_is_counted_with_the_files_delimiter_and_quotes(tmp_path):
    # Semicolons in Windows-1252: a quoted semicolon is part of a value, a comma is just a character.
    lines = ["NIK;Nama;Alamat",
             '001;"Wulan; Désirée";"Jl. Sudirman, 5"',
             '002;Agus, S.T.;"Gg. Mawar; RT 1";catatan',
             '003;"Sri ""Ibu"" Rahayu"',
             '004;"Rt ;01";"a"";b";x;y']
    path = write_lines(tmp_path / "warga.csv", lines, "cp1252", newline="\r\n")
    batches = read_all(FileConnector(file_source(tmp_path, path, delimiter=";", encoding="cp1252")))
    assert [r[ROW] for r in records(batches)] == [1]
    assert [(r[0], r[2], r.details) for b in batches for r in b.rejected] == [
        (2, lines[2], {"expected": 3, "found": 4}),
        (3, lines[3], {"expected": 3, "found": 2}),
        (4, lines[4], {"expected": 3, "found": 5}),
    ]
    # As Python's csv module splits the same lines.
    assert [len(next(csv.reader([text], delimiter=";"))) for text in lines[2:]] == [4, 2, 5]


# --- errors ------------------------------------------------------------------------------------------


def test_missing_file_is_retriable(tmp_path):
    connector = FileConnector(file_source(tmp_path, tmp_path / "not_yet_delivered.csv"))
    with pytest.raises(RetriableSourceError, match="not_yet_delivered.csv"):
        connector.check()
    with pytest.raises(RetriableSourceError, match="not_yet_delivered.csv"):
        read_all(connector)


def test_bytes_not_in_the_declared_encoding_are_fatal_and_name_the_file(tmp_path):
    path = tmp_path / "dtks_cp1252.csv"
    path.write_bytes("NIK;Nama\n3271010101900001;Désirée\n".encode("cp1252"))
    with pytest.raises(FatalSourceError, match="dtks_cp1252.csv"):
        read_all(FileConnector(file_source(tmp_path, path, delimiter=";", encoding="utf-8")))


@pytest.mark.parametrize("declared, bad_bytes", [("utf-8", "Désirée".encode("cp1252")), ("cp1252", b"\x81")],
                         ids=["cp1252-bytes-declared-utf8", "undefined-cp1252-byte"])
def test_bad_bytes_after_a_valid_header_are_fatal_and_name_the_file(tmp_path, declared, bad_bytes):
    # Far enough from the header that the header check (one text buffer) decodes fine.
    path = tmp_path / "late_bad_bytes.csv"
    good = "NIK;Nama\n" + "".join(f"{3271010101900000 + i};Nama {i}\n" for i in range(2000))
    path.write_bytes(good.encode("ascii") + b"3271010101909999;" + bad_bytes + b"\n")
    with pytest.raises(FatalSourceError, match="late_bad_bytes.csv"):
        read_all(FileConnector(file_source(tmp_path, path, delimiter=";", encoding=declared)))


def test_bad_bytes_beyond_the_first_block_are_fatal_and_name_the_file(tmp_path):
    path = tmp_path / "huge.csv"
    good = "a,b\n" + "".join(f"{i},{'x' * 40}\n" for i in range(150_000))
    assert len(good) > 4 << 20
    path.write_bytes(good.encode("ascii") + "9,Ré\n".encode("cp1252"))
    with pytest.raises(FatalSourceError, match="huge.csv"):
        read_all(FileConnector(file_source(tmp_path, path)))


def test_empty_file_is_fatal(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(FatalSourceError, match="empty.csv"):
        read_all(FileConnector(file_source(tmp_path, path)))


def test_repeated_column_names_are_fatal(tmp_path):
    path = write_lines(tmp_path / "dupe.csv", ["NIK,Nama,NIK", "1,a,1"], "utf-8")
    with pytest.raises(FatalSourceError, match="repeated column names"):
        read_all(FileConnector(file_source(tmp_path, path)))


def test_an_option_of_another_format_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="options/sheet: applies to format xlsx, not csv"):
        FileConnector(file_source(tmp_path, fifty_rows(tmp_path), sheet="Data"))


def test_a_name_without_a_known_extension_needs_a_format(tmp_path):
    with pytest.raises(ConfigError, match="options/format: cannot tell the format of 'export.dat'"):
        FileConnector(file_source(tmp_path, tmp_path / "export.dat"))
    assert FileConnector(file_source(tmp_path, tmp_path / "export.dat", format="csv")).format == "csv"


def test_unknown_encoding_is_a_config_error_naming_the_option(tmp_path):
    path = fifty_rows(tmp_path)
    with pytest.raises(ConfigError, match="options/encoding") as info:
        FileConnector(file_source(tmp_path, path, encoding="windows-9999"))
    assert "windows-9999" in str(info.value) and "dinsos_test.yaml" in str(info.value)


# --- the connector conformance suite ------------------------------------------------------------------


class TestCsvConformance(Conformance):
    """A CSV as agencies export it: semicolons, Windows-1252, nulls as empty cells."""

    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        lines = [";".join(records[0])]
        lines += [";".join(as_text(v) or "" for v in r.values()) for r in records]
        path = write_lines(tmp_path / "uji.csv", lines, "cp1252", "\r\n")
        return file_source(tmp_path, path, delimiter=";", encoding="cp1252", batch_rows=batch_rows)

    def unreachable_source(self, tmp_path):
        return file_source(tmp_path, tmp_path / "not-yet-delivered.csv")


class TestTsvConformance(Conformance):
    """Tab-separated UTF-8 with separator and encoding detected."""

    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        lines = ["\t".join(records[0])]
        lines += ["\t".join(as_text(v) or "" for v in r.values()) for r in records]
        path = write_lines(tmp_path / "uji.tsv", lines, "utf-8")
        return file_source(tmp_path, path, batch_rows=batch_rows)

    def unreachable_source(self, tmp_path):
        return file_source(tmp_path, tmp_path / "not-yet-delivered.tsv")


def columns_mapping(records: list[dict]) -> dict:
    return {column: {"from": column} for column in records[0]}


class TestXlsxConformance(Conformance):
    """A workbook with a title above the header, values typed as Excel types them."""

    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        rows = [["Data uji"], list(records[0])] + [list(r.values()) for r in records]
        path = write_xlsx(tmp_path / "uji.xlsx", rows)
        return file_source(tmp_path, path, columns_mapping(records), batch_rows=batch_rows)

    def unreachable_source(self, tmp_path):
        return file_source(tmp_path, tmp_path / "not-yet-delivered.xlsx")


class TestJsonConformance(Conformance):
    """An API export: the records in an array under data.items."""

    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        path = write_json(tmp_path / "uji.json", {"meta": {"count": len(records)}, "data": {"items": records}})
        return file_source(tmp_path, path, records_path="data.items", batch_rows=batch_rows)

    def unreachable_source(self, tmp_path):
        return file_source(tmp_path, tmp_path / "not-yet-delivered.json")


class TestJsonLinesConformance(Conformance):
    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        path = write_lines(tmp_path / "uji.jsonl", [json.dumps(r, ensure_ascii=False) for r in records], "utf-8")
        return file_source(tmp_path, path, batch_rows=batch_rows)

    def unreachable_source(self, tmp_path):
        return file_source(tmp_path, tmp_path / "not-yet-delivered.jsonl")


class TestParquetConformance(Conformance):
    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        path = tmp_path / "uji.parquet"
        pq.write_table(pa.Table.from_pylist(records), path, row_group_size=4)
        return file_source(tmp_path, path, batch_rows=batch_rows)

    def unreachable_source(self, tmp_path):
        return file_source(tmp_path, tmp_path / "not-yet-delivered.parquet")


class TestHttpConformance(Conformance):
    """The Windows-1252 semicolon CSV, served over HTTP."""

    @pytest.fixture(autouse=True)
    def _served(self, served):
        self.folder, self.url = served

    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        lines = [";".join(records[0])]
        lines += [";".join(as_text(v) or "" for v in r.values()) for r in records]
        write_lines(self.folder / "uji.csv", lines, "cp1252", "\r\n")
        return file_source(tmp_path, f"{self.url}/uji.csv", batch_rows=batch_rows)

    def unreachable_source(self, tmp_path):
        return file_source(tmp_path, closed_port_url(), **FAST)


# --- limits: oversized files, values and lines are refused with a message --------------------------

from connectors._file_formats import DEFAULT_MAX_FIELD_CHARS, TOO_LONG  # noqa: E402
from connectors.file import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_LINE_BYTES  # noqa: E402


def rejected(batches) -> list[tuple[int, str, str]]:
    return [r for b in batches for r in b.rejected]


def test_the_default_limits():
    assert (DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FIELD_CHARS, DEFAULT_MAX_LINE_BYTES) == (1 << 30, 32_767, 4 << 20)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".xlsx", ".parquet"])
def test_a_file_over_max_file_bytes_is_fatal_naming_source_file_and_limit(tmp_path, suffix):
    path = tmp_path / f"big{suffix}"
    path.write_bytes(b"NIK\n" + b"3271010101900001\n" * 100)
    connector = FileConnector(file_source(tmp_path, path, max_file_bytes=1000))
    for attempt in (connector.check, lambda: read_all(connector)):
        with pytest.raises(FatalSourceError) as info:
            attempt()
        message = str(info.value)
        assert "source dinsos_test" in message and f"big{suffix}" in message
        assert "1000 bytes" in message and "options/max_file_bytes" in message and "1704 bytes" in message


def test_a_download_over_max_file_bytes_stops_at_the_limit(tmp_path, served, temp_folder):
    """A file at a URL is refused while it streams in: the disk holds at most the limit, never the whole file."""
    folder, url = served
    (folder / "big.csv").write_bytes(b"NIK\n" + b"3271010101900001\n" * 200_000)  # 3.4 MB
    with pytest.raises(FatalSourceError) as info:
        read_all(FileConnector(file_source(tmp_path, f"{url}/big.csv", max_file_bytes=100_000)))
    message = str(info.value)
    # Stopped while streaming (the size of the whole file was never known), not checked once it was all in.
    assert "the file is more than the limit of 100000 bytes (options/max_file_bytes)" in message
    assert "source dinsos_test" in message and "big.csv" in message and "3271010101900001" not in message
    assert list(temp_folder.iterdir()) == []  # the partial download is gone with its folder


def test_a_csv_value_over_max_field_chars_quarantines_its_row_without_copying_the_value(tmp_path):
    huge = "Jl. " + "Panjang " * 5000
    path = write_lines(tmp_path / "dtks.csv", ["NIK;Nama;Alamat", "3271010101900001;Siti;Jl. Pendek",
                                              f"3271010101900002;Agus;{huge}", "3271010101900003;Budi;Jl. Baru"],
                       "cp1252")
    batches = read_all(FileConnector(file_source(tmp_path, path, max_field_chars=1000)))
    assert [r["NIK"] for r in records(batches)] == ["3271010101900001", "3271010101900003"]
    assert [r[ROW] for r in records(batches)] == [1, 3]
    ((row, reason, text),) = rejected(batches)
    assert (row, reason) == (2, TOO_LONG)
    assert text.startswith("3271010101900002;Agus;Jl. Panjang") and len(text) < 400
    assert f"({len(huge)} characters)" in text


def test_the_default_field_limit_is_excels_cell_limit(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("NIK,Catatan\n1," + "a" * 32_767 + "\n2," + "a" * 32_768 + "\n", encoding="utf-8")
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    assert [r["NIK"] for r in records(batches)] == ["1"]
    assert [(r[0], r[1]) for r in rejected(batches)] == [(2, TOO_LONG)]


def test_a_csv_line_over_max_line_bytes_quarantines_its_row(tmp_path):
    many = ",".join(["x" * 100] * 30)  # 30 short values: 3029 bytes in all
    path = write_lines(tmp_path / "wide.csv", [",".join(f"c{i}" for i in range(30)), many, ",".join("y" * 30)],
                       "utf-8")
    batches = read_all(FileConnector(file_source(tmp_path, path, max_line_bytes=2048)))
    assert [r[ROW] for r in records(batches)] == [2]
    assert [(r[0], r[1]) for r in rejected(batches)] == [(1, TOO_LONG)]


def test_an_unclosed_quote_makes_one_record_of_the_rest_as_csv_readers_do_and_it_is_quarantined(tmp_path):
    import csv

    path = tmp_path / "broken.csv"
    path.write_bytes(b'NIK,Nama\n3271010101900001,Siti\n3271010101900002,"Agus\n'
                     + b"3271010101900003,Budi Santoso\n" * 200_000)  # 6 MB: more than one block
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    limit = csv.field_size_limit(1 << 30)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            assert len(list(csv.reader(f))) - 1 == 2  # Python's reader agrees: the rest is one value
    finally:
        csv.field_size_limit(limit)
    assert [r[ROW] for r in records(batches)] == [1]
    ((row, reason, text),) = rejected(batches)
    assert (row, reason) == (2, TOO_LONG) and len(text) < 400


def test_a_header_line_over_max_line_bytes_is_fatal(tmp_path):
    path = tmp_path / "header.csv"
    path.write_bytes(b"NIK," + b"x" * 5000 + b"\n1,2\n")
    with pytest.raises(FatalSourceError, match="header line is longer than 2048 bytes"):
        read_all(FileConnector(file_source(tmp_path, path, max_line_bytes=2048)))


def test_a_json_lines_line_over_max_line_bytes_is_skipped_unread_and_quarantined(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"NIK": "1"}\n{"NIK": "' + b"9" * 100_000 + b'"}\n{"NIK": "3"}\n')
    batches = read_all(FileConnector(file_source(tmp_path, path, max_line_bytes=4096)))
    assert [(r["NIK"], r[ROW]) for r in records(batches)] == [("1", 1), ("3", 3)]
    ((row, reason, text),) = rejected(batches)
    assert (row, reason) == (2, TOO_LONG) and len(text) < 400 and "100012 bytes" in text


def test_a_json_value_over_max_field_chars_and_deep_nesting_are_quarantined(tmp_path):
    path = tmp_path / "x.json"
    deep = {"NIK": "3"}
    for _ in range(70):
        deep = {"x": deep}
    path.write_text(json.dumps([{"NIK": "1"}, {"NIK": "2", "Catatan": "z" * 5000}, deep, {"NIK": "4"}]),
                    encoding="utf-8")
    batches = read_all(FileConnector(file_source(tmp_path, path, max_field_chars=1000)))
    assert [r[ROW] for r in records(batches)] == [1, 4]
    assert [(r[0], r[1]) for r in rejected(batches)] == [(2, TOO_LONG), (3, TOO_LONG)]
    assert all(len(r[2]) < 1000 for r in rejected(batches))


def test_deep_json_lines_are_quarantined_not_a_crash(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"NIK": "1"}\n' + b"[" * 100_000 + b"]" * 100_000 + b'\n{"a": ' * 1 + b"[" * 80 + b"]" * 80
                     + b'}\n{"NIK": "4"}\n')
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    assert [r[ROW] for r in records(batches)] == [1, 4]
    assert [(r[0], r[1]) for r in rejected(batches)] == [(2, TOO_LONG), (3, TOO_LONG)]


def test_an_excel_cell_over_max_field_chars_quarantines_its_row(tmp_path):
    path = write_xlsx(tmp_path / "x.xlsx", [["NIK", "Catatan"], ["1", "pendek"], ["2", "p" * 3000], ["3", None]])
    batches = read_all(FileConnector(file_source(tmp_path, path, max_field_chars=1000)))
    assert [r[ROW] for r in records(batches)] == [1, 3]
    assert [(r[0], r[1]) for r in rejected(batches)] == [(2, TOO_LONG)]


def test_a_workbook_that_unpacks_past_max_file_bytes_is_fatal(tmp_path):
    path = write_xlsx(tmp_path / "bomb.xlsx", [["NIK"], *[["0" * 1000] for _ in range(2000)]])
    assert path.stat().st_size < 200_000  # zeros pack well: the file is small, its XML is not
    with pytest.raises(FatalSourceError) as info:
        read_all(FileConnector(file_source(tmp_path, path, max_file_bytes=300_000)))
    assert "unpacks to" in str(info.value) and "options/max_file_bytes" in str(info.value)


def test_a_parquet_value_over_max_field_chars_quarantines_its_row(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"NIK": ["1", "2", "3"], "Catatan": ["a", "b" * 2000, None]}), path)
    batches = read_all(FileConnector(file_source(tmp_path, path, max_field_chars=1000)))
    assert [r[ROW] for r in records(batches)] == [1, 3]
    assert [(r[0], r[1]) for r in rejected(batches)] == [(2, TOO_LONG)]


def test_limit_options_are_checked_by_the_registration_schema(tmp_path):
    def loaded(**options):
        path = tmp_path / "dinsos_lim.yaml"
        path.write_text(json.dumps({"id": "dinsos_lim", "title": "DTKS", "agency": {"code": "dinsos", "name": "Dinsos"},
                                    "standard": "penduduk@1.0.0", "kind": "file",
                                    "options": {"path": "x.csv", **options}, "mapping": {"nik": {"from": "NIK"}}}),
                        encoding="utf-8")
        return load_source(path, tmp_path)

    assert loaded(max_file_bytes=5 << 30, max_field_chars=100_000, max_line_bytes=64 << 20)
    for bad in ({"max_file_bytes": 0}, {"max_field_chars": "many"}, {"max_line_bytes": 10}):
        with pytest.raises(ConfigError, match=f"options/{next(iter(bad))}"):
            loaded(**bad)
    with pytest.raises(ConfigError, match="max_line_bytes: applies to format csv or jsonl"):
        path = tmp_path / "x.xlsx"
        FileConnector(file_source(tmp_path, path, max_line_bytes=2048))


def test_a_utf16_file_with_its_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "unicode.txt"  # Excel's "Unicode text": UTF-16 with a byte order mark, tab-separated
    path.write_bytes("NIK\tNama\r\n3271010101900001\tDésirée\r\n".encode("utf-16"))
    assert records(read_all(FileConnector(file_source(tmp_path, path)))) == [
        {"NIK": "3271010101900001", "Nama": "Désirée", ROW: 1}]


def test_a_json_file_nested_past_what_the_parser_survives_is_refused_unread(tmp_path):
    # ijson's C parser crashes the whole process building a value nested ~100,000 levels deep.
    path = tmp_path / "x.json"
    path.write_bytes(b'[{"NIK": "1"}, ' + b"[" * 200_000 + b"]" * 200_000 + b"]")
    with pytest.raises(FatalSourceError, match="nested 200001 levels deep, more than 10000"):
        read_all(FileConnector(file_source(tmp_path, path)))
    path.write_bytes(b'[{"NIK": "[[[[\\"[[["}, ' + b"[" * 5000 + b"]" * 5000 + b"]")  # brackets in text do not count
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    assert [r[ROW] for r in records(batches)] == [1] and [(r[0], r[1]) for r in rejected(batches)] == [(2, TOO_LONG)]


def test_a_json_number_longer_than_python_converts_is_refused_not_a_crash(tmp_path):
    # ijson's C parser crashes the whole process on an integer of more than 4300 digits (Python's limit).
    path = tmp_path / "x.json"
    path.write_bytes(b'[{"NIK": "1"}, {"NIK": -' + b"9" * 5000 + b"}]")
    with pytest.raises(FatalSourceError, match="a number of 5000 digits, more than 4300"):
        read_all(FileConnector(file_source(tmp_path, path)))
    path.write_bytes(b'[{"NIK": "1", "Catatan": "' + b"9" * 5000 + b'"}, {"NIK": ' + b"9" * 4300 + b"}]")
    batches = read_all(FileConnector(file_source(tmp_path, path)))  # digits in a text, and 4300 digits, are fine
    assert [r[ROW] for r in records(batches)] == [1, 2]


def test_broken_json_is_fatal_without_quoting_the_file(tmp_path):
    # yajl's message quotes the text around the mistake; the NIK there must not reach the error.
    path = tmp_path / "x.json"
    path.write_bytes(b'\xff[{"NIK": "3271014101900042", "Nama": "Kartini"}]')
    with pytest.raises(FatalSourceError) as info:
        read_all(FileConnector(file_source(tmp_path, path)))
    assert "not valid JSON" in str(info.value) and "lexical error" in str(info.value)
    assert "3271014101900042" not in str(info.value) and "Kartini" not in str(info.value)


def test_a_lone_surrogate_in_json_lines_rejects_its_record_and_stops_a_json_array(tmp_path):
    records_text = ['{"NIK": "1"}', '{"NIK": "\\ud800"}', '"\\udfff"', '{"NIK": "\\ud83d\\ude00"}']
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(records_text) + "\n", encoding="utf-8")
    batches = read_all(FileConnector(file_source(tmp_path, path)))
    assert [(r["NIK"], r[ROW]) for r in records(batches)] == [("1", 1), ("😀", 4)]  # a whole pair is a character
    assert [(r[0], r[1], r[2]) for r in rejected(batches)] == [(2, "_record:json", '{"NIK": "\\ud800"}'),
                                                              (3, "_record:not_object", '"\\udfff"')]
    path = tmp_path / "x.json"  # ijson cannot read past it: the run stops, as for other broken JSON
    path.write_text("[" + ",".join(records_text) + "]", encoding="utf-8")
    with pytest.raises(FatalSourceError, match=r"after record \d: text that is not UTF-8 or not Unicode"):
        read_all(FileConnector(file_source(tmp_path, path)))


def test_long_fractions_and_exponents_are_not_refused_as_long_integers(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'[{"NIK": 0.' + b"0" * 5000 + b'1}, {"NIK": 1e-999999999}]')
    assert [r[ROW] for r in records(read_all(FileConnector(file_source(tmp_path, path))))] == [1, 2]
    path.write_bytes(b'[{"NIK": 1' + b"0" * 5000 + b'.5}]')  # 5000 digits before a point: a Decimal too
    assert [r[ROW] for r in records(read_all(FileConnector(file_source(tmp_path, path))))] == [1]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_an_exponent_out_of_decimal_range_is_no_crash(tmp_path, suffix):
    number = b"1e-" + b"1" * 5000
    path = tmp_path / f"x{suffix}"
    if suffix == ".json":
        path.write_bytes(b'[{"NIK": "1"}, {"NIK": ' + number + b"}]")
        with pytest.raises(FatalSourceError, match="a number out of range"):
            read_all(FileConnector(file_source(tmp_path, path)))
    else:
        path.write_bytes(b'{"NIK": "1"}\n{"NIK": ' + number + b"}\n")
        batches = read_all(FileConnector(file_source(tmp_path, path)))
        assert [r[ROW] for r in records(batches)] == [1] and [r[:2] for r in rejected(batches)] == [(2, "_record:json")]


def test_a_credential_in_a_file_url_is_refused_without_quoting_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        FileConnector(file_source(tmp_path, "https://data.kotabogor.go.id/dtks.csv?access_token=rahasia"))
    assert "looks like a credential" in str(info.value) and "rahasia" not in str(info.value)


# --- memory: Arrow's CSV reader reads a few blocks ahead, not the file --------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_the_csv_reader_reads_a_few_blocks_ahead_of_the_batches_taken(tmp_path, encoding, monkeypatch):
    """Arrow's background reader would read up to 32 blocks (128 MB) ahead of a consumer that is busy with a batch;
    the connector keeps it to _Paced.AHEAD blocks, whatever the encoding."""
    import connectors._file_formats as formats

    paced, original = [], formats._Paced

    class Watched(original):
        def __init__(self, raw) -> None:
            super().__init__(raw)
            paced.append(self)

    monkeypatch.setattr(formats, "_Paced", Watched)
    row = "3271010101900001;Siti Aminah;Jl. Pajajaran No. 1;01-01-1990\n"
    path = tmp_path / "big.csv"
    with path.open("w", encoding=encoding) as f:
        f.write("NIK;Nama;Alamat;Tanggal Lahir\n")
        f.write(row * (40 * (4 << 20) // len(row)))  # 40 blocks of 4 MB
    batches = FileConnector(file_source(tmp_path, path, batch_rows=1000, encoding=encoding)).read()
    first = next(batches)
    assert first.records.num_rows == 1000
    time.sleep(0.3)  # busy with the first batch (shorter than the wait after which a read goes on regardless)
    assert paced[0]._reads <= 8  # blocks read so far; Arrow alone reads 32
    assert sum(b.records.num_rows for b in batches) + 1000 == 40 * (4 << 20) // len(row)


def test_blocks_of_blank_lines_yield_no_batch_and_the_read_goes_on(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("NIK;Nama\n3271010101900001;Siti\n" + "\n" * (10 << 20) + "3271010101900002;Budi\n")
    got = records(read_all(FileConnector(file_source(tmp_path, path))))
    assert [(r["NIK"], r[ROW]) for r in got] == [("3271010101900001", 1), ("3271010101900002", 2)]
