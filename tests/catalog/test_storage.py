"""Iceberg storage: a compatible new version of a standard evolves the table in place; old versions stay readable."""

from __future__ import annotations

import json

import pyarrow as pa

from catalog import storage
from hub.settings import ROOT, Settings
from schemas.standards import STANDARDS_DIR, load_standard, load_standard_file

RECORD = {"nik": "3271010101900001", "nama": "SITI AMINAH", "jenis_kelamin": "2", "agama": "1",
          "tanggal_lahir": "1990-01-01", "kode_wilayah": "32.71.01.1001"}


def _next_version(tmp_path):
    schema = json.loads((STANDARDS_DIR / "penduduk-1.0.0.json").read_text(encoding="utf-8"))
    schema["x-version"] = "1.1.0"
    schema["properties"]["status_perkawinan"] = {
        "title": "Status perkawinan", "description": "Status perkawinan menurut kode Dukcapil.",
        "type": ["string", "null"], "x-code-list": {"name": "status_perkawinan", "edition": "1"},
    }
    path = tmp_path / "penduduk-1.1.0.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return load_standard_file(path)


def test_a_compatible_version_evolves_the_integrated_table_in_place(tmp_path, catalog_url):
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    old, new = load_standard("penduduk@1.0.0"), _next_version(tmp_path)
    first = storage.commit_source(settings, "siak", old, pa.Table.from_pylist([RECORD]), "run-1", False, "a")
    before = storage.commit_integrated(settings, old, {"siak": first}, "run-2")
    after = storage.commit_integrated(settings, new, {"siak": first}, "run-3")
    assert after != before

    current = storage.read_table(settings, storage.INTEGRATED, "penduduk")
    assert current.column_names[-2:] == ["_source", "status_perkawinan"]  # appended: old files stay valid
    assert current.to_pylist()[0]["status_perkawinan"] is None  # the source is still on 1.0.0
    past = storage.read_table(settings, storage.INTEGRATED, "penduduk", before)
    assert past.num_rows == 1 and past.to_pylist()[0]["nik"] == RECORD["nik"]


def test_publishing_the_same_content_again_makes_no_snapshot(tmp_path, catalog_url):
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    standard = load_standard("penduduk@1.0.0")
    records = pa.Table.from_pylist([RECORD])
    first = storage.commit_source(settings, "siak", standard, records, "run-1", False, "digest-1")
    again = storage.commit_source(settings, "siak", standard, records, "run-2", False, "digest-1")
    changed = storage.commit_source(settings, "siak", standard, records, "run-3", False, "digest-2")
    assert again == first and changed != first
