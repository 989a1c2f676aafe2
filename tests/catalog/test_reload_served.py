"""A running `hub serve` follows the standards and code lists: a code list added shows on the next request, a
file that breaks leaves the dataset's page and API answer as they were with a notice naming the file (never a
500), and the notice goes when the file is fixed. With no good version ever loaded, the answer is a clear 503."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from _served import hub, serve
from hub.settings import ROOT
from schemas.codelists import CODELISTS_DIR
from schemas.standards import STANDARDS_DIR

DATASET = "disdukcapil_siak"  # harmonized to penduduk@1.1.0
STANDARD = "penduduk-1.1.0.json"


def write(path: Path, text: str) -> None:
    """Write as an editor would; a change within one tick of the clock and of the same size gets the next tick."""
    before = path.stat() if path.exists() else None
    path.write_text(text, encoding="utf-8")
    now = path.stat()
    if before is not None and (before.st_mtime_ns, before.st_size) == (now.st_mtime_ns, now.st_size):
        os.utime(path, ns=(now.st_atime_ns, now.st_mtime_ns + 1_000_000_000))


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    """A hub home whose standards and code lists are a steward's own folders, with SIAK published."""
    from demo.agencies import build

    root = tmp_path_factory.mktemp("reload")
    home, standards, lists, registry = root / "home", root / "standards", root / "codelists", root / "registry"
    build(home, people_count=200, dinsos_count=40)
    shutil.copytree(STANDARDS_DIR, standards)
    shutil.copytree(CODELISTS_DIR, lists)
    registry.mkdir()
    shutil.copy(ROOT / "connectors" / "registry" / f"{DATASET}.yaml", registry)
    env = {"HUB_STANDARDS": str(standards), "HUB_CODELISTS": str(lists), "HUB_REGISTRY": str(registry)}
    hub(home, "run", DATASET, env=env)
    return {"root": root, "home": home, "standards": standards, "lists": lists, "env": env}


@pytest.fixture(scope="module")
def served(published) -> str:
    server, base = serve(published["home"], env=published["env"])
    yield base
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def steward(published):
    """The steward's folders, put back as they were after each test."""
    saved = {p: p.read_bytes() for folder in (published["standards"], published["lists"]) for p in folder.iterdir()}
    yield published
    for folder in (published["standards"], published["lists"]):
        for path in folder.iterdir():
            if path not in saved:
                path.unlink()
    for path, content in saved.items():
        if path.read_bytes() != content:
            write(path, content.decode("utf-8"))


def page(base: str) -> httpx.Response:
    answer = httpx.get(f"{base}/dataset/{DATASET}", params={"lang": "en"}, timeout=60)
    assert answer.status_code == 200, answer.text[-2000:]
    assert "<script" not in answer.text.lower() and " style=" not in answer.text
    return answer


def api(base: str, path: str = "") -> httpx.Response:
    answer = httpx.get(f"{base}/api/datasets/{DATASET}{path}", timeout=60)
    assert answer.status_code == 200, answer.text[-2000:]
    return answer


def notice(text: str) -> bool:
    return "A standard could not be loaded:" in text


def test_a_code_list_added_while_serving_is_shown_without_a_restart(served, steward):
    assert "Agama (2026)" not in page(served).text
    lists, standards = steward["lists"], steward["standards"]
    write(lists / "agama_2026.csv", "kode,nama\n1,Islam\n2,Kristen\n8,Kepercayaan lain\n")
    write(lists / "codelists.yaml", (lists / "codelists.yaml").read_text(encoding="utf-8") + (
        "agama_2026:\n  title: Agama (2026)\n  owner: Dukcapil\n  editions:\n"
        '    "1":\n      file: agama_2026.csv\n      legal_basis: test\n'))
    schema = json.loads((standards / STANDARD).read_text(encoding="utf-8"))
    schema["properties"]["agama"]["x-code-list"] = {"name": "agama_2026", "edition": "1"}
    write(standards / STANDARD, json.dumps(schema, indent=2))

    shown = page(served).text
    assert "Agama (2026)" in shown and not notice(shown)
    agama = next(f for f in api(served, "/dictionary").json()["fields"] if f["name"] == "agama")
    assert agama["code_list"]["title"] == "Agama (2026)" and agama["code_list"]["count"] == 3


def test_a_standard_broken_while_serving_keeps_the_page_with_a_notice(served, steward):
    path = steward["standards"] / STANDARD
    good = path.read_text(encoding="utf-8")
    title = json.loads(good)["title"]
    assert not notice(page(served).text) and "load_problems" not in api(served).json()

    write(path, good.replace('"x-name"', '"x-name" "penduduk",', 1))
    line = good[:good.index('"x-name"')].count("\n") + 1
    shown = page(served).text
    assert notice(shown) and f"<code>{STANDARD}</code>, line {line}, column " in shown
    assert "not valid JSON: Expecting &#39;:&#39; delimiter" in shown
    assert str(steward["root"]) not in shown  # the file's name, never where it is
    assert title in shown and "kode_wilayah" in shown  # the last good version: metadata and data dictionary
    answer = api(served).json()
    [problem] = answer["load_problems"]
    assert problem["file"] == STANDARD and problem["line"] == line and problem["message"].startswith("not valid JSON")
    assert answer["standard_title"] == title and api(served, "/dictionary").json()["ref"] == "penduduk@1.1.0"
    assert httpx.get(f"{served}/", timeout=60).status_code == 200

    write(path, json.dumps({**json.loads(good), "title": "Penduduk, diperbaiki"}, indent=2))
    shown = page(served).text
    assert not notice(shown) and "Penduduk, diperbaiki" in shown
    assert "load_problems" not in api(served).json()


def test_a_code_list_broken_while_serving_keeps_its_codes_with_a_notice(served, steward):
    agama = steward["lists"] / "agama.csv"
    good = agama.read_text(encoding="utf-8")
    write(agama, good + "1,Islam lagi,Islam again\n")
    shown = page(served).text
    assert notice(shown) and "<code>agama.csv</code>, line 9, column 1: <span lang=\"en\">code &#39;1&#39; twice: " \
                             "also on line 2</span>" in shown
    assert api(served).json()["load_problems"] == [
        {"file": "agama.csv", "line": 9, "column": 1, "message": "code '1' twice: also on line 2"}]
    agama_field = next(f for f in api(served, "/dictionary").json()["fields"] if f["name"] == "agama")
    assert agama_field["code_list"]["count"] == 7  # the last good version

    write(agama, good)
    assert not notice(page(served).text) and "load_problems" not in api(served).json()


def test_with_no_good_version_ever_loaded_the_answer_is_a_clear_503(published, tmp_path):
    standards = tmp_path / "standards"
    shutil.copytree(published["standards"], standards)
    write(standards / STANDARD, '{"title": "Penduduk",\n  "x-name": penduduk}\n')
    server, base = serve(published["home"], env={**published["env"], "HUB_STANDARDS": str(standards)})
    try:
        shown = httpx.get(f"{base}/dataset/{DATASET}", params={"lang": "en"}, timeout=60)
        assert shown.status_code == 503 and shown.headers["content-type"].startswith("text/html")
        assert notice(shown.text) and f"<code>{STANDARD}</code>, line 2, column 13" in shown.text
        assert "Traceback" not in shown.text and str(tmp_path) not in shown.text
        answer = httpx.get(f"{base}/api/datasets/{DATASET}", timeout=60)
        assert answer.status_code == 503
        assert answer.json()["problems"] == [{"file": STANDARD, "line": 2, "column": 13,
                                              "message": "not valid JSON: Expecting value"}]
        # Every other page still answers: the search, without the dataset whose standard never loaded.
        search = httpx.get(f"{base}/api/datasets", timeout=60)
        assert search.status_code == 200 and DATASET not in {d["id"] for d in search.json()["datasets"]}
        assert httpx.get(f"{base}/", timeout=60).status_code == 200
        # Fixed, the same server shows it.
        write(standards / STANDARD, (published["standards"] / STANDARD).read_text(encoding="utf-8"))
        assert not notice(page(base).text)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_code_list_never_loaded_well_leaves_the_rest_of_the_page(served, steward):
    lists, standards = steward["lists"], steward["standards"]
    write(lists / "agama_baru.csv", "kode,nama\n1,Islam\n2,Kristen, Protestan\n")
    write(lists / "codelists.yaml", (lists / "codelists.yaml").read_text(encoding="utf-8") + (
        "agama_baru:\n  title: Agama baru\n  owner: Dukcapil\n  editions:\n"
        '    "1":\n      file: agama_baru.csv\n'))
    schema = json.loads((standards / STANDARD).read_text(encoding="utf-8"))
    schema["properties"]["agama"]["x-code-list"] = {"name": "agama_baru", "edition": "1"}
    write(standards / STANDARD, json.dumps(schema, indent=2))

    problem = {"file": "agama_baru.csv", "line": 3, "column": 3,
               "message": "3 fields where the header has 2: a value with a comma must be in double quotes"}
    assert api(served).json()["load_problems"] == [problem]  # the metadata needs no code
    shown = page(served).text
    assert notice(shown) and "<code>agama_baru.csv</code>, line 3, column 3" in shown
    assert "No version of it has loaded yet" in shown  # where the data dictionary would be
    dictionary = httpx.get(f"{served}/api/datasets/{DATASET}/dictionary", timeout=60)
    assert dictionary.status_code == 503 and dictionary.json()["problems"] == [problem]
