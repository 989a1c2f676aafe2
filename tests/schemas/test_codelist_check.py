"""`check_codelists`: a malformed code list or index is refused with file, line and column (from 1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.codelists import CODELISTS_DIR, MAX_PROBLEMS, check_codelists, read_table


def problems(path: Path, content: str | bytes) -> list[tuple]:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return [(p.file, p.line, p.column, p.message) for p in check_codelists([path])]


def test_the_repository_code_lists_pass():
    assert check_codelists() == []
    assert check_codelists([CODELISTS_DIR / "codelists.yaml"]) == []


@pytest.mark.parametrize("content, expected", [
    pytest.param("kode,nama\n1,Islam\n2,Kristen, Protestan\n3,Katolik\n",
                 [(3, 3, "3 fields where the header has 2: a value with a comma must be in double quotes")],
                 id="unquoted comma"),
    pytest.param("kode,nama\n1,Islam\n2,Kristen\n1,Katolik\n",
                 [(4, 1, "code '1' twice: also on line 2")], id="duplicate code"),
    pytest.param("kode,name\n1,Islam\n",
                 [(1, 2, "no column 'nama': the header is kode,name; a code list needs kode, nama")],
                 id="missing column"),
    pytest.param("nama\nIslam\n",
                 [(1, 1, "no column 'kode': the header is nama; a code list needs kode, nama")], id="no kode column"),
    pytest.param("kode,nama,tingkat\n11,ACEH\n",
                 [(2, 3, "2 fields where the header has 3: no value for column 'tingkat'")], id="missing field"),
    pytest.param("kode,nama\n,Islam\n 2,Kristen\n",
                 [(2, 1, "no code in column 'kode'"), (3, 1, "code ' 2' has spaces around it")], id="empty code"),
    pytest.param('kode,nama,keterangan\n1,A,"on two\nlines, quoted"\n\n1,B,x\n',
                 [(5, 1, "code '1' twice: also on line 2")], id="lines of a quoted value and blank lines count"),
    pytest.param('kode,nama\n1,Islam\n2,"Kristen\n3,Katolik\n',
                 [(3, 2, "a quoted value opened here is never closed")], id="unclosed quote"),
    pytest.param('kode,nama\n1,"Is"lam"\n', [(2, 2, 'a quote inside a quoted value is written twice ("")')],
                 id="quote inside quotes"),
    pytest.param(b"kode,nama\n1,Isl\xe2m\n", [(2, 6, "not UTF-8 text (byte 0xe2): save the file as UTF-8")],
                 id="not UTF-8"),
    pytest.param("kode,nama,nama\n1,A,B\n", [(1, 3, "column 'nama' twice: also column 2")], id="column twice"),
    pytest.param("", [(1, 1, "no header line: a code list starts with one, e.g. kode,nama")], id="empty file"),
    pytest.param("\ufeffkode,nama\r\n1,Islam\r\n", [], id="Excel's byte-order mark and CRLF are fine"),
])
def test_a_malformed_code_list_is_named_with_file_line_and_column(tmp_path, content, expected):
    assert problems(tmp_path / "agama.csv", content) == [("agama.csv", *e) for e in expected]


def test_many_problems_are_counted_past_the_first_fifty(tmp_path):
    found = problems(tmp_path / "x.csv", "kode,nama\n" + "1,a,b\n" * (MAX_PROBLEMS + 7))
    assert len(found) == MAX_PROBLEMS + 1
    assert found[-1] == ("x.csv", None, None, "and 7 more problems like these")


def test_the_loader_reads_what_the_check_passes(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('kode,nama,keterangan\n01,"Satu, dua",x\n', encoding="utf-8")
    assert read_table(path) == (({"kode": "01", "nama": "Satu, dua", "keterangan": "x"},), [])


@pytest.fixture
def lists(tmp_path) -> Path:
    folder = tmp_path / "codelists"
    shutil.copytree(CODELISTS_DIR, folder)
    return folder


def replace(path: Path, old: str, new: str) -> str:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text


def line_of(text: str, part: str) -> int:
    return text[:text.index(part)].count("\n") + 1


def test_the_index_names_a_missing_file_where_it_names_it(lists):
    text = replace(lists / "codelists.yaml", "file: agama.csv", "file: agama_baru.csv")
    assert [(p.file, p.line, p.column, p.message) for p in check_codelists([lists / "codelists.yaml"])] == [
        ("codelists.yaml", line_of(text, "file: agama.csv"), 13, "no such file: agama_baru.csv")]


def test_the_index_check_reads_every_file_it_names(lists):
    (lists / "agama.csv").write_text("kode,nama\n1,Islam\n1,Kristen\n", encoding="utf-8")
    (lists / "kode_wilayah_2022_2025.csv").write_text("kode_2022,kode_2025\n11,11\n", encoding="utf-8")
    assert [(p.file, p.line, p.column, p.message) for p in check_codelists([lists / "codelists.yaml"])] == [
        ("agama.csv", 3, 1, "code '1' twice: also on line 2"),
        ("kode_wilayah_2022_2025.csv", 1, 3, "no column 'perubahan': the header is kode_2022,kode_2025; "
                                             "a code list needs kode_2022, kode_2025, perubahan"),
    ]


def test_a_crosswalk_given_alone_is_read_as_the_index_beside_it_says(lists):
    crosswalk = lists / "kode_wilayah_2022_2025.csv"
    assert check_codelists([crosswalk]) == []  # its empty kode_2022 (new codes) are allowed
    with crosswalk.open("a", encoding="utf-8") as f:
        f.write("11,11,tetap\n")
    lines = crosswalk.read_text(encoding="utf-8").count("\n")
    assert [(p.line, p.column, p.message) for p in check_codelists([crosswalk])] == [
        (lines, 1, "code '11' twice: also on line 2")]


@pytest.mark.parametrize("old, new, expected", [
    pytest.param("agama:\n  title: Agama\n", "agama:\n  title: Agama\n  title: Agama\n",
                 lambda t: (line_of(t, "agama:\n") + 2, 3, "key 'title' of code list 'agama' twice: also on line "
                            f"{line_of(t, 'agama:') + 1}"), id="duplicate key"),
    pytest.param("  owner: Direktorat Jenderal Kependudukan dan Pencatatan Sipil\n  editions:\n    \"1\":\n"
                 "      file: agama.csv", "  editions:\n    \"1\":\n      file: agama.csv",
                 lambda t: (line_of(t, "agama:"), 1, "code list 'agama' has no owner"), id="no owner"),
    pytest.param("jenis_kelamin:\n", "jenis_kelamin: [\n",
                 lambda t: (line_of(t, "jenis_kelamin:") + 2, 8, "not valid YAML: expected ',' or ']', but got ':'"),
                 id="not YAML"),
    pytest.param("file: agama.csv", "file: ../agama.csv",
                 lambda t: (line_of(t, "file: agama.csv"), 13, "edition '1' of code list 'agama': file is the name of "
                                                               "a file in the code lists' folder, not a path"),
                 id="a path, not a file name"),
    pytest.param('      from: "2022"', '      from: "2021"',
                 lambda t: (line_of(t, '      from: "2022"'), 13, "crosswalk '2022->2025' of code list "
                                                                    "'kode_wilayah': 'from' is one of its editions "
                                                                    "(2022, 2025)"), id="crosswalk edition"),
])
def test_a_malformed_index_is_named_with_line_and_column(lists, old, new, expected):
    text = replace(lists / "codelists.yaml", old, new)
    found = [(p.file, p.line, p.column, p.message) for p in check_codelists([lists / "codelists.yaml"])]
    assert found == [("codelists.yaml", *expected(text))]
