"""`hub codelists check [FILES...] [--json]`: a malformed code list is refused with file, line and column."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _served import hub
from schemas.codelists import CODELISTS_DIR


@pytest.fixture
def lists(tmp_path) -> Path:
    """A walidata's own folder of code lists (HUB_CODELISTS), a copy of the checkout's."""
    folder = tmp_path / "codelists"
    shutil.copytree(CODELISTS_DIR, folder)
    return folder


def check(tmp_path: Path, lists: Path, *args: str):
    return hub(tmp_path / "home", "codelists", "check", *args, check=False, env={"HUB_CODELISTS": str(lists)})


def test_the_code_lists_pass(tmp_path, lists):
    done = check(tmp_path, lists)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(check(tmp_path, lists, "--json").stdout)
    assert answer["problems"] == []


def test_unquoted_commas_duplicate_codes_and_missing_columns_are_named_by_file_line_and_column(tmp_path, lists):
    with (lists / "agama.csv").open("a", encoding="utf-8") as f:
        f.write("1,Islam lagi,Islam again\n8,Lainnya, atau tidak diketahui,Other\n")
    (lists / "status_sekolah.csv").write_text("kode,name\nnegeri,Negeri\n", encoding="utf-8")
    done = check(tmp_path, lists)
    assert done.returncode == 1
    assert f"{lists / 'agama.csv'}:9:1: code '1' twice: also on line 2\n" in done.stdout
    assert (f"{lists / 'agama.csv'}:10:4: 4 fields where the header has 3: "
            "a value with a comma must be in double quotes\n") in done.stdout
    assert (f"{lists / 'status_sekolah.csv'}:1:2: no column 'nama': the header is kode,name; "
            "a code list needs kode, nama\n") in done.stdout

    answer = json.loads(check(tmp_path, lists, "--json").stdout)
    assert [(p["file"], p["line"], p["column"]) for p in answer["problems"]] == [
        ("agama.csv", 9, 1), ("agama.csv", 10, 4), ("status_sekolah.csv", 1, 2)]
    assert answer["problems"][0]["path"] == str(lists / "agama.csv")


def test_files_given_are_checked_alone(tmp_path, lists):
    draft = tmp_path / "suku.csv"
    draft.write_text("kode,nama\n1,Sunda\n1,Jawa\n", encoding="utf-8")
    done = check(tmp_path, lists, str(draft))
    assert done.returncode == 1 and f"{draft}:3:1: code '1' twice: also on line 2" in done.stdout
    assert check(tmp_path, lists, str(lists / "agama.csv")).returncode == 0


def test_a_missing_file_is_named_where_the_index_names_it(tmp_path, lists):
    index = lists / "codelists.yaml"
    text = index.read_text(encoding="utf-8")
    index.write_text(text.replace("file: agama.csv", "file: agama_baru.csv"), encoding="utf-8")
    line = text[:text.index("file: agama.csv")].count("\n") + 1
    done = check(tmp_path, lists)
    assert done.returncode == 1 and f"{index}:{line}:13: no such file: agama_baru.csv" in done.stdout


def test_standards_check_also_checks_the_code_lists_each_standard_names(tmp_path, lists):
    with (lists / "agama.csv").open("a", encoding="utf-8") as f:
        f.write("1,Islam lagi,Islam again\n")
    done = hub(tmp_path / "home", "standards", "check", check=False, env={"HUB_CODELISTS": str(lists)})
    assert done.returncode == 2
    assert "penduduk-1.1.0.json: agama.csv:9:1: code '1' twice: also on line 2" in done.stdout
    assert "ok   umkm@1.0.0" in done.stdout  # a standard without that list is fine
