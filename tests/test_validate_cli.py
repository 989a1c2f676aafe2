"""`hub validate STANDARD DATA --json`: real files of records (CSV, JSON Lines, Parquet) in a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

HUB = str(Path(sys.executable).parent / "hub")

SATU_DATA = {
    "x-walidata": "Diskominfo", "x-produsen-data": ["Disdukcapil"], "x-frequency": "bulanan",
    "x-spatial-coverage": "Kota Bogor", "x-temporal-coverage": "2025", "x-license": "CC-BY-4.0",
    "x-classification": "publik",
}


def hub(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HUB, *args], capture_output=True, text=True, timeout=300)


def report(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout)


def reasons(found: dict) -> dict[int, list[str]]:
    return {r["row"]: [f"{x['field']}:{x['rule']}" for x in r["reasons"]] for r in found["invalid_rows"]}


@pytest.fixture
def standard(tmp_path) -> Path:
    """A steward's draft: a code (text with leading zeros), a count, a flag."""
    path = tmp_path / "warung-1.0.0.json"
    path.write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Warung", "description": "Warung.",
        "type": "object", "additionalProperties": False, "x-name": "warung", "x-version": "1.0.0",
        "required": ["kode", "jumlah"], "x-primary-key": ["kode"], **SATU_DATA,
        "properties": {
            "kode": {"title": "Kode", "description": "Kode.", "type": "string", "pattern": "^[0-9]{3}$"},
            "jumlah": {"title": "Jumlah", "description": "Jumlah.", "type": "integer", "minimum": 0,
                       "multipleOf": 5},
            "buka": {"title": "Buka", "description": "Buka.", "type": "boolean"},
        },
    }), encoding="utf-8")
    return path


def test_csv_text_is_read_as_the_standard_types_it(standard, tmp_path):
    data = tmp_path / "warung.csv"
    data.write_text("kode,jumlah,buka\n007,10,true\n008,,false\n009,lima,\n010,7,ya\n", encoding="utf-8")
    done = hub("validate", str(standard), str(data), "--json")
    assert done.returncode == 1, done.stderr
    found = report(done)
    assert found["summary"] == {"rows": 4, "valid": 1, "invalid": 3, "standard": "warung@1.0.0",
                                "reasons": {"jumlah:required": 1, "jumlah:type": 1, "jumlah:multiple_of": 1,
                                            "buka:type": 1}}
    # "007" stays text for the string field (the pattern passes); an empty cell is absent; text that is no
    # literal of the field's type stays text and fails the type.
    assert reasons(found) == {2: ["jumlah:required"], 3: ["jumlah:type"], 4: ["jumlah:multiple_of", "buka:type"]}


def test_json_lines_values_keep_their_json_type(standard, tmp_path):
    data = tmp_path / "warung.jsonl"
    lines = [{"kode": "001", "jumlah": 5}, {"kode": "002", "jumlah": "1"}, {"kode": "003", "jumlah": 10.0},
             {"kode": "004", "jumlah": True}, {"kode": "004", "jumlah": -5, "buka": None}]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    found = report(done := hub("validate", str(standard), str(data), "--json"))
    assert done.returncode == 1
    assert reasons(found) == {2: ["jumlah:type"], 4: ["kode:duplicate_key", "jumlah:type"],
                              5: ["kode:duplicate_key", "jumlah:range"]}


def test_parquet_all_valid_exits_zero(standard, tmp_path):
    data = tmp_path / "warung.parquet"
    pq.write_table(pa.table({"kode": ["001", "002"], "jumlah": pa.array([5, None], pa.int64()),
                             "buka": [True, None]}), data)
    done = hub("validate", str(standard), str(data), "--json")
    assert done.returncode == 1  # jumlah is required
    assert reasons(report(done)) == {2: ["jumlah:required"]}
    pq.write_table(pa.table({"kode": ["001", "002"], "jumlah": [5, 0]}), data)
    done = hub("validate", str(standard), str(data), "--json")
    assert done.returncode == 0, done.stderr
    assert report(done) == {"summary": {"rows": 2, "valid": 2, "invalid": 0, "standard": "warung@1.0.0",
                                        "reasons": {}},
                            "invalid_rows": []}


def test_a_registered_standard_by_name_and_version(tmp_path):
    data = tmp_path / "penduduk.csv"
    data.write_text("nik,nama\n3271010101900001,Ani\n", encoding="utf-8")
    found = report(hub("validate", "penduduk@1.0.0", str(data), "--json"))
    assert found["summary"]["standard"] == "penduduk@1.0.0" and found["summary"]["invalid"] == 1
    assert "nik:pattern" not in reasons(found)[1] and "jenis_kelamin:required" in reasons(found)[1]


@pytest.mark.parametrize("problem", ["unknown standard", "unknown column", "not json", "no such file", "suffix"])
def test_usage_and_configuration_errors_exit_two(standard, tmp_path, problem):
    data = tmp_path / "warung.jsonl"
    data.write_text('{"kode": "001", "jumlah": 5}\n', encoding="utf-8")
    args = {
        "unknown standard": ["no_such_standard", str(data)],
        "unknown column": [str(standard), str(tmp_path / "extra.csv")],
        "not json": [str(standard), str(tmp_path / "broken.jsonl")],
        "no such file": [str(standard), str(tmp_path / "missing.jsonl")],
        "suffix": [str(standard), str(tmp_path / "warung.txt")],
    }[problem]
    (tmp_path / "extra.csv").write_text("kode,jumlah,warna\n001,5,merah\n", encoding="utf-8")
    (tmp_path / "broken.jsonl").write_text('{"kode": "001"}\n{"kode": \n', encoding="utf-8")
    (tmp_path / "warung.txt").write_text("x", encoding="utf-8")
    done = hub("validate", *args, "--json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "hub: error:" in done.stderr
    if problem == "unknown column":
        assert "warna" in done.stderr
    if problem == "not json":
        assert "line 2" in done.stderr
