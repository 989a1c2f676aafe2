"""Reading files of records for `hub validate`: limits and broken files give clear errors or row reasons."""

from __future__ import annotations

import pytest

from hub.errors import ConfigError
from schemas import load_standard
from schemas.records import MAX_FIELD_CHARS, MAX_FILE_BYTES, TOO_LONG, validate_file

STANDARD = load_standard("penduduk@1.0.0")
HEADER = "nik,nama,jenis_kelamin,agama,tanggal_lahir,kode_wilayah\n"
ROW = "3271014101900042,Kartini,2,1,1990-04-21,32.71.01.1001\n"


def test_a_value_over_the_limit_makes_its_row_invalid_as_too_long_and_the_others_are_validated(tmp_path):
    path = tmp_path / "records.csv"
    path.write_text(HEADER + ROW + ROW.replace("Kartini", "K" * (MAX_FIELD_CHARS + 1)).replace("42,", "43,")
                    + ROW.replace("42,", "44,").replace(",2,", ",9,"), encoding="utf-8")
    report = validate_file(STANDARD, path)
    assert report["summary"]["rows"] == 3 and report["summary"]["valid"] == 1
    assert report["invalid_rows"] == [{"row": 2, "reasons": [{"field": "_record", "rule": "too_long"}]},
                                      {"row": 3, "reasons": [{"field": "jenis_kelamin", "rule": "code_list"}]}]
    assert report["summary"]["reasons"][TOO_LONG] == 1


def test_a_json_lines_value_over_the_limit_is_too_long(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"nik": "3271014101900042", "nama": "' + "K" * (MAX_FIELD_CHARS + 1) + '"}\n', encoding="utf-8")
    assert validate_file(STANDARD, path)["invalid_rows"][0]["reasons"] == [{"field": "_record", "rule": "too_long"}]


def test_a_file_over_the_limit_is_refused_unread(tmp_path):
    path = tmp_path / "records.csv"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: the size is what counts
    with pytest.raises(ConfigError, match=f"records.csv: {MAX_FILE_BYTES + 1} bytes, more than hub validate reads"):
        validate_file(STANDARD, path)


@pytest.mark.parametrize("name, data, says", [
    ("records.csv", (HEADER + ROW).encode() + b"\xff\xfe\n", "not UTF-8 text"),
    ("records.csv", (HEADER + "1," + "x" * 200_000 + "\n").encode(), "line 2: field larger than field limit"),
    ("records.jsonl", b'{"nik": "1"}\n{"nik": \xff}\n', "line 2 is not UTF-8"),
    ("records.jsonl", b'{"nik": 1' + b"0" * 5000 + b"}\n", "line 1 is not JSON"),
    ("records.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1 is nested too deeply"),
    ("records.parquet", b"PAR1 not really", "not a readable Parquet file"),
])
def test_broken_files_are_config_errors_naming_the_file(tmp_path, name, data, says):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=says) as info:
        validate_file(STANDARD, path)
    assert name in str(info.value) and "3271014101900042" not in str(info.value)


def test_a_header_holding_a_record_names_no_identifier(tmp_path):
    path = tmp_path / "records.csv"
    path.write_text(ROW + ROW, encoding="utf-8")  # the header row is missing
    with pytest.raises(ConfigError) as info:
        validate_file(STANDARD, path)
    assert "not fields of standard" in str(info.value) and "3271014101900042" not in str(info.value)
