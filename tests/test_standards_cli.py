"""The stewards' commands: `hub standards ...` and `hub codelists ...`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hub.settings import ROOT

HUB = str(Path(sys.executable).parent / "hub")


def hub(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HUB, *args], capture_output=True, text=True, timeout=120)


def test_standards_list_and_show():
    listed = json.loads(hub("standards", "list", "--json").stdout)
    assert {"name": "penduduk", "version": "1.0.0"}.items() <= next(s for s in listed if s["name"] == "penduduk").items()
    shown = json.loads(hub("standards", "show", "penduduk@1.0.0", "--json").stdout)
    assert shown["primary_key"] == ["nik"]
    assert shown["metadata"]["walidata"] and shown["metadata"]["classification"] == "terbatas"
    nik = shown["fields"][0]
    assert nik["name"] == "nik" and nik["personal_data"] == "nik" and nik["rules"] == {"pattern": "^[0-9]{16}$"}
    assert "personal:nik" in hub("standards", "show", "penduduk").stdout


def test_standards_check_passes_on_the_repository():
    done = hub("standards", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   penduduk@1.0.0" in done.stdout


def test_standards_check_names_an_unsupported_keyword_and_its_field(tmp_path):
    schema = json.loads((ROOT / "schemas" / "standards" / "penduduk-1.0.0.json").read_text())
    schema["properties"]["nama"]["uniqueItems"] = True
    draft = tmp_path / "penduduk-1.0.0.json"
    draft.write_text(json.dumps(schema))
    done = hub("standards", "check", str(draft))
    assert done.returncode == 2
    assert "field 'nama'" in done.stdout and "'uniqueItems'" in done.stdout and "FAIL" in done.stdout


def test_unknown_standard_is_a_clear_error():
    done = hub("standards", "show", "nope")
    assert done.returncode == 2 and "unknown standard 'nope'" in done.stderr


def test_codelists_list_and_show():
    lists = {f"{c['name']}@{c['edition']}": c for c in json.loads(hub("codelists", "list", "--json").stdout)}
    assert lists["kode_wilayah@2025"]["codes"] == 91599 and lists["kode_wilayah@2025"]["owner"]
    agama = json.loads(hub("codelists", "show", "agama", "--json").stdout)
    assert agama["rows"][0] == {"kode": "1", "nama": "Islam"} and len(agama["rows"]) == 7
    done = hub("codelists", "show", "nope")
    assert done.returncode == 2 and "unknown code list 'nope'" in done.stderr


def test_standards_docs_writes_a_dictionary_per_standard(tmp_path):
    done = hub("standards", "docs", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "penduduk-1.0.0.html").is_file() and (tmp_path / "penduduk-1.0.0.md").is_file()
    assert "penduduk-1.0.0.html" in (tmp_path / "index.html").read_text()
