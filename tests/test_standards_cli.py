"""The stewards' commands: `hub standards ...` and `hub codelists ...`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.settings import ROOT

HUB = str(Path(sys.executable).parent / "hub")


def hub(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([HUB, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env} if env else None)


def _penduduk() -> dict:
    return json.loads((ROOT / "schemas" / "standards" / "penduduk-1.0.0.json").read_text())


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
    assert "did you mean" not in done.stdout  # nothing the hub knows is near


@pytest.mark.parametrize("place, wrong, meant", [
    ("field", "minLenght", "minLength"), ("field", "x-personal_data", "x-personal-data"),
    ("top", "x-licence", "x-license"), ("top", "descripton", "description"),
])
def test_standards_check_suggests_the_keyword_meant(tmp_path, place, wrong, meant):
    schema = _penduduk()
    if place == "field":
        schema["properties"]["nama"][wrong] = schema["properties"]["nama"].get(meant, 1)
        says = f"field 'nama' uses keyword {wrong!r}, which the hub does not enforce; did you mean {meant!r}?"
    else:
        schema[wrong] = schema.pop(meant)
        says = f"keyword {wrong!r} is not supported at the top level of a standard; did you mean {meant!r}?"
    draft = tmp_path / "penduduk-1.0.0.json"
    draft.write_text(json.dumps(schema))
    done = hub("standards", "check", str(draft))
    assert done.returncode == 2 and says in done.stdout, done.stdout


def test_comment_and_examples_are_annotations_that_change_no_check(tmp_path):
    plain = hub("standards", "check", str(ROOT / "schemas" / "standards" / "penduduk-1.0.0.json"))
    assert plain.returncode == 0, plain.stdout
    schema = _penduduk()
    schema["$comment"] = "Disusun bersama Disdukcapil; lihat notulen rapat walidata."
    schema["examples"] = [{"nik": "3271014101900001", "nama": "Siti Aminah"}]
    schema["properties"]["nik"]["$comment"] = "16 digit, jangan dibaca sebagai angka"
    schema["properties"]["nik"]["examples"] = ["3271014101900001"]
    schema["properties"]["agama"]["examples"] = []
    standards = tmp_path / "standards"
    standards.mkdir()
    (standards / "penduduk-1.0.0.json").write_text(json.dumps(schema))

    done = hub("standards", "check", str(standards / "penduduk-1.0.0.json"))
    assert done.returncode == 0, done.stdout
    assert done.stdout == plain.stdout  # the same fields, the same number of checks

    shown = json.loads(hub("standards", "show", "penduduk@1.0.0", "--json", HUB_STANDARDS=str(standards)).stdout)
    assert shown["fields"][0]["rules"] == {"pattern": "^[0-9]{16}$"}  # no annotation among the rules
    assert not any("examples" in f["rules"] or "$comment" in f["rules"] for f in shown["fields"])

    docs = hub("standards", "docs", "--output", str(tmp_path / "docs"), HUB_STANDARDS=str(standards))
    assert docs.returncode == 0, docs.stderr
    assert "penduduk-1.0.0.html" in (tmp_path / "docs" / "index.html").read_text()


@pytest.mark.parametrize("where, key, value, says", [
    ("top", "examples", {"nik": "1"}, "at examples: {'nik': '1'} is not of type 'array'"),
    ("field", "examples", "3271014101900001", "at properties/nik/examples: '3271014101900001' is not of type 'array'"),
    ("field", "$comment", ["a note"], "at properties/nik/$comment: ['a note'] is not of type 'string'"),
    ("top", "$comment", 7, "at $comment: 7 is not of type 'string'"),
])
def test_annotations_of_the_wrong_json_type_are_named(tmp_path, where, key, value, says):
    schema = _penduduk()
    (schema if where == "top" else schema["properties"]["nik"])[key] = value
    draft = tmp_path / "penduduk-1.0.0.json"
    draft.write_text(json.dumps(schema))
    done = hub("standards", "check", str(draft))
    assert done.returncode == 2 and says in done.stdout, done.stdout


def test_unknown_standard_is_a_clear_error():
    done = hub("standards", "show", "nope")
    assert done.returncode == 2 and "unknown standard 'nope'" in done.stderr


def test_codelists_list_and_show():
    lists = {f"{c['name']}@{c['edition']}": c for c in json.loads(hub("codelists", "list", "--json").stdout)}
    assert lists["kode_wilayah@2025"]["codes"] == 91599 and lists["kode_wilayah@2025"]["owner"]
    agama = json.loads(hub("codelists", "show", "agama", "--json").stdout)
    assert agama["rows"][0] == {"kode": "1", "nama": "Islam", "nama_en": "Islam"} and len(agama["rows"]) == 7
    done = hub("codelists", "show", "nope")
    assert done.returncode == 2 and "unknown code list 'nope'" in done.stderr


def test_standards_docs_writes_a_dictionary_per_standard(tmp_path):
    done = hub("standards", "docs", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "penduduk-1.0.0.html").is_file() and (tmp_path / "penduduk-1.0.0.md").is_file()
    assert "penduduk-1.0.0.html" in (tmp_path / "index.html").read_text()
