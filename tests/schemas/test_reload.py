"""A running process follows the standard and code-list files: changes are seen on the next call, a file that
breaks keeps its last good version (its problem on record, with file, line and column), one never read well is
a clear ConfigError, and one bad file takes nothing from the others."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from hub.errors import ConfigError
from hub.followed import BrokenFile
from schemas import list_standards, load_problems, load_standard
from schemas.codelists import CODELISTS_DIR, codelists_dir, codes, describe, rows
from schemas.dictionary import dictionary
from schemas.standards import STANDARDS_DIR, load_standard_file, standards_dir
from schemas.suite import expectation_specs
from schemas.validation import validate

AGAMA = {"name": "agama", "edition": "1"}


@pytest.fixture
def folders(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A copy of the standards and the code lists, which the hub follows (HUB_STANDARDS, HUB_CODELISTS)."""
    standards, lists = tmp_path / "standards", tmp_path / "codelists"
    shutil.copytree(STANDARDS_DIR, standards)
    shutil.copytree(CODELISTS_DIR, lists)
    monkeypatch.setenv("HUB_STANDARDS", str(standards))
    monkeypatch.setenv("HUB_CODELISTS", str(lists))
    return standards, lists


def write(path: Path, text: str) -> None:
    """Write `text` as a steward's editor would. A change is seen by its modification time, size and inode: if
    the clock's tick and the size are the same as before, move the time on, as the next tick would."""
    before = path.stat() if path.exists() else None
    path.write_text(text, encoding="utf-8")
    now = path.stat()
    if before is not None and (before.st_mtime_ns, before.st_size) == (now.st_mtime_ns, now.st_size):
        os.utime(path, ns=(now.st_atime_ns, now.st_mtime_ns + 1_000_000_000))


def edit_standard(path: Path, change) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    write(path, json.dumps(schema, indent=2, ensure_ascii=False))


def penduduk(records: list[dict]) -> pa.Table:
    standard = load_standard("penduduk@1.1.0")
    return pa.Table.from_pylist(records, schema=pa.schema([(f.name, pa.string()) for f in standard.fields]))


RECORD = {"nik": "3271010101900001", "nama": "SITI AMINAH", "jenis_kelamin": "2", "agama": "1",
          "tanggal_lahir": "1990-08-03", "kode_wilayah": "32.71.01.1001"}


def test_the_folders_follow_their_settings(folders):
    standards, lists = folders
    assert standards_dir() == standards.resolve() and codelists_dir() == lists.resolve()
    assert load_standard("penduduk@1.1.0").path.parent == standards.resolve()


def test_a_code_list_added_while_running_is_used_on_the_next_call(folders):
    standards, lists = folders
    before = load_standard("penduduk@1.1.0")
    assert validate(before, penduduk([{**RECORD, "agama": "8"}])).reasons == {0: ["agama:code_list"]}
    assert dictionary(before)["fields"][3]["code_list"]["title"] == "Agama"

    write(lists / "agama_2026.csv", "kode,nama\n1,Islam\n2,Kristen\n8,Kepercayaan lain\n")
    write(lists / "codelists.yaml", (lists / "codelists.yaml").read_text(encoding="utf-8") + (
        "agama_2026:\n  title: Agama (2026)\n  owner: Dukcapil\n  editions:\n"
        '    "1":\n      file: agama_2026.csv\n      legal_basis: test\n'))
    edit_standard(standards / "penduduk-1.1.0.json",
                  lambda s: s["properties"]["agama"].update({"x-code-list": {"name": "agama_2026", "edition": "1"}}))

    after = load_standard("penduduk@1.1.0")
    assert after.field("agama").code_list == {"name": "agama_2026", "edition": "1"}
    assert codes(after.field("agama").code_list) == ["1", "2", "8"]
    assert dictionary(after)["fields"][3]["code_list"]["title"] == "Agama (2026)"
    spec = next(s for s in expectation_specs(after) if s["reason"] == "agama:code_list")
    assert spec["kwargs"]["value_set"] == ["1", "2", "8"]
    # The compiled suite follows too: 8 is a code now, 3 no longer is.
    assert validate(after, penduduk([{**RECORD, "agama": "8"}, {**RECORD, "nik": "3271010101900002",
                                                                "agama": "3"}])).reasons == {1: ["agama:code_list"]}
    assert load_problems() == []


def test_a_changed_code_list_is_used_on_the_next_call(folders):
    _, lists = folders
    assert len(codes(AGAMA)) == 7
    agama = lists / "agama.csv"
    write(agama, agama.read_text(encoding="utf-8") + "8,Lainnya,Other\n")
    assert codes(AGAMA)[-1] == "8" and rows("agama", "1")[-1] == {"kode": "8", "nama": "Lainnya", "nama_en": "Other"}
    assert validate(load_standard("penduduk@1.1.0"), penduduk([{**RECORD, "agama": "8"}])).success


def test_a_broken_code_list_keeps_its_last_good_version_and_says_where(folders):
    _, lists = folders
    standard = load_standard("penduduk@1.1.0")
    assert validate(standard, penduduk([RECORD])).success
    agama = lists / "agama.csv"
    good = agama.read_text(encoding="utf-8")

    write(agama, good + "1,Islam lagi,Islam again\n8,Lainnya, atau tidak diketahui,Other\n")
    assert codes(AGAMA) == ["1", "2", "3", "4", "5", "6", "7"]  # the last good version
    assert validate(standard, penduduk([RECORD])).success
    problems = [(p.file, p.line, p.column, p.message) for p in load_problems(standard)]
    assert problems == [
        ("agama.csv", 9, 1, "code '1' twice: also on line 2"),
        ("agama.csv", 10, 4, "4 fields where the header has 3: a value with a comma must be in double quotes"),
    ]
    assert load_problems() == load_problems(standard)
    # A steward's check sees the file as it is now.
    with pytest.raises(BrokenFile, match=r"agama\.csv:9:1: code '1' twice"):
        load_standard_file(standard.path)

    write(agama, good + '8,"Lainnya, atau tidak diketahui",Other\n')
    assert codes(AGAMA)[-1] == "8"
    assert load_problems(standard) == [] and load_problems() == []
    assert load_standard_file(standard.path).ref == "penduduk@1.1.0"


def test_a_broken_standard_keeps_its_last_good_version_and_says_where(folders):
    standards, _ = folders
    path = standards / "penduduk-1.1.0.json"
    before = load_standard("penduduk@1.1.0")
    good = path.read_text(encoding="utf-8")

    write(path, good.replace('"x-name"', '"x-name" "penduduk",', 1))
    assert load_standard("penduduk@1.1.0") is before
    assert "penduduk@1.1.0" in {s.ref for s in list_standards()}
    [problem] = load_problems(before)
    line = good[:good.index('"x-name"')].count("\n") + 1
    assert (problem.file, problem.line, problem.message) == ("penduduk-1.1.0.json", line,
                                                             "not valid JSON: Expecting ':' delimiter")
    assert problem.column is not None
    assert load_problems(load_standard("penduduk@1.0.0")) == [problem]  # a version of the same standard
    assert load_problems(load_standard("umkm")) == []  # another standard's page has nothing to say
    with pytest.raises(BrokenFile, match=r"penduduk-1\.1\.0\.json:\d+:\d+: not valid JSON"):
        load_standard_file(path)

    write(path, json.dumps({**json.loads(good), "title": "Penduduk (baru)"}))
    assert load_standard("penduduk@1.1.0").title == "Penduduk (baru)"
    assert load_problems() == []


def test_a_standard_added_changed_or_removed_is_seen(folders):
    standards, _ = folders
    assert load_standard("penduduk").version == "1.1.0"
    schema = json.loads((standards / "penduduk-1.1.0.json").read_text(encoding="utf-8"))
    schema.update({"x-version": "1.2.0", "title": "Penduduk 1.2"})
    write(standards / "penduduk-1.2.0.json", json.dumps(schema))
    assert load_standard("penduduk").title == "Penduduk 1.2"
    (standards / "penduduk-1.2.0.json").unlink()
    assert load_standard("penduduk").version == "1.1.0"
    assert "penduduk@1.2.0" not in {s.ref for s in list_standards()}


def test_a_file_never_read_well_is_a_clear_config_error_and_takes_nothing_from_the_others(folders):
    standards, lists = folders
    write(standards / "penduduk-1.2.0.json", '{"title": "Penduduk",\n  "x-name": penduduk}\n')
    # The other standards load; asking for the broken one, or for the newest penduduk, names its problem.
    assert {"penduduk@1.1.0", "umkm@1.0.0"} <= {s.ref for s in list_standards()}
    assert load_standard("penduduk@1.1.0").version == "1.1.0"
    for ref in ("penduduk@1.2.0", "penduduk"):
        with pytest.raises(ConfigError, match=r"penduduk-1\.2\.0\.json:2:13: not valid JSON: Expecting value"):
            load_standard(ref)
    assert [(p.file, p.line, p.column) for p in load_problems()] == [("penduduk-1.2.0.json", 2, 13)]

    # A code list never read well: its codes are a clear error naming the file and the place.
    write(lists / "codelists.yaml", (lists / "codelists.yaml").read_text(encoding="utf-8") + (
        "suku:\n  title: Suku\n  owner: BPS\n  editions:\n    \"1\":\n      file: suku.csv\n"))
    write(lists / "suku.csv", "kode,name\n1,Sunda\n")
    with pytest.raises(BrokenFile, match=r"suku\.csv:1:2: no column 'nama'"):
        codes({"name": "suku", "edition": "1"})
    assert describe("agama", "1")["title"] == "Agama" and len(codes(AGAMA)) == 7

    # Removed, the standard file's problem goes with it.
    (standards / "penduduk-1.2.0.json").unlink()
    assert load_standard("penduduk").version == "1.1.0"
    assert [p.file for p in load_problems()] == ["suku.csv"]


def test_a_broken_index_keeps_every_list_it_named(folders):
    _, lists = folders
    assert len(codes(AGAMA)) == 7
    index = lists / "codelists.yaml"
    text = index.read_text(encoding="utf-8")
    write(index, text.replace("agama:\n  title: Agama\n", "agama:\n  title: Agama\n  title: Agama lagi\n", 1))
    assert describe("agama", "1")["title"] == "Agama" and len(codes(AGAMA)) == 7
    line = text[:text.index("agama:\n  title: Agama\n")].count("\n") + 3
    [problem] = load_problems(load_standard("penduduk@1.1.0"))
    assert (problem.file, problem.line, problem.column) == ("codelists.yaml", line, 3)
    assert problem.message == f"key 'title' of code list 'agama' twice: also on line {line - 1}"
    write(index, text)
    assert load_problems() == []
