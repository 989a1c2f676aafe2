"""Changes between versions of a standard are classified, and version numbers must say so."""

from __future__ import annotations

import copy
import json
from itertools import pairwise

import pytest

from hub.errors import ConfigError
from schemas.compatibility import diff, version_problem
from schemas.standards import STANDARDS_DIR, list_standards, load_standard_file

BASE = json.loads((STANDARDS_DIR / "penduduk-1.0.0.json").read_text(encoding="utf-8"))


def version(tmp_path, edit, number="1.1.0"):
    schema = copy.deepcopy(BASE)
    edit(schema)
    schema["x-version"] = number
    folder = tmp_path / number
    folder.mkdir()
    path = folder / f"penduduk-{number}.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return load_standard_file(path)


@pytest.fixture
def old(tmp_path):
    return version(tmp_path, lambda s: None, "1.0.0")


def props(s):
    return s["properties"]


def field_spec(title="Status", **rules):
    return {"title": title, "description": "Keterangan.", "type": "string", **rules}


@pytest.mark.parametrize("edit, breaking", [
    (lambda s: props(s).pop("agama") and s["required"].remove("agama"), True),
    (lambda s: props(s).update(status=field_spec()), False),
    (lambda s: (props(s).update(status=field_spec()), s["required"].append("status")), True),
    (lambda s: props(s)["nama"].update(maxLength=100), True),
    (lambda s: props(s)["nama"].update(maxLength=300), False),
    (lambda s: props(s)["nama"].update(minLength=2), True),
    (lambda s: props(s)["nama"].pop("minLength"), False),
    (lambda s: props(s)["nik"].update(pattern="^32[0-9]{14}$"), True),
    (lambda s: props(s)["jenis_kelamin"].update(enum=["1", "2"]), True),
    (lambda s: props(s)["kode_wilayah"]["x-code-list"].update(within="32.71.01"), True),
    (lambda s: props(s)["kode_wilayah"]["x-code-list"].pop("within"), False),
    (lambda s: (props(s)["nama"].update(type=["string", "null"]), s["required"].remove("nama")), False),
    (lambda s: s.update({"x-primary-key": ["nik", "nama"]}), True),
    (lambda s: props(s)["nama"].update(description="Nama lengkap penduduk."), False),
    (lambda s: s.update({"x-frequency": "tahunan"}), False),
    (lambda s: props(s).update(umur={"title": "Umur", "description": "Umur.", "type": "integer", "multipleOf": 5}), False),
])
def test_each_change_is_classified(tmp_path, old, edit, breaking):
    changes = diff(old, version(tmp_path, edit))
    assert changes, "the edit was not seen"
    assert any(c.breaking for c in changes) == breaking, [str(c) for c in changes]


def test_widening_an_enum_is_compatible_and_narrowing_it_breaks(tmp_path):
    three = version(tmp_path, lambda s: props(s)["jenis_kelamin"].update(enum=["1", "2", "3"]), "1.1.0")
    four = version(tmp_path, lambda s: props(s)["jenis_kelamin"].update(enum=["1", "2", "3", "4"]), "1.2.0")
    assert not any(c.breaking for c in diff(three, four))
    assert any(c.breaking for c in diff(four, three))


def test_integer_to_number_widens_and_number_to_integer_breaks(tmp_path):
    as_int = version(tmp_path, lambda s: props(s).update(umur={"title": "Umur", "description": "Umur.", "type": "integer"}), "1.1.0")
    as_num = version(tmp_path, lambda s: props(s).update(umur={"title": "Umur", "description": "Umur.", "type": "number"}), "1.2.0")
    assert not any(c.breaking for c in diff(as_int, as_num))
    assert any(c.breaking for c in diff(as_num, as_int))


def test_a_breaking_change_needs_a_new_major_version(tmp_path, old):
    tighter = version(tmp_path, lambda s: props(s)["nama"].update(maxLength=100), "1.1.0")
    assert "keeps major version 1" in version_problem(old, tighter, diff(old, tighter))
    major = version(tmp_path, lambda s: props(s)["nama"].update(maxLength=100), "2.0.0")
    assert version_problem(old, major, diff(old, major)) is None
    same = version(tmp_path, lambda s: None, "0.9.0")
    assert "higher version" in version_problem(old, same, diff(old, same))


def test_every_standard_in_the_repository_is_versioned_honestly():
    by_name: dict[str, list] = {}
    for standard in list_standards():
        by_name.setdefault(standard.name, []).append(standard)
    for versions in by_name.values():
        versions.sort(key=lambda s: tuple(int(p) for p in s.version.split(".")))
        for old, new in pairwise(versions):
            assert version_problem(old, new, diff(old, new)) is None, f"{old.ref} -> {new.ref}"


def test_multiple_of_tightening_breaks_and_loosening_does_not(tmp_path):
    def umur(d):
        return lambda s: props(s).update(umur={"title": "Umur", "description": "Umur.", "type": "integer", "multipleOf": d})

    by10, by5, by3 = (version(tmp_path, umur(d), n) for d, n in ((10, "1.1.0"), (5, "1.2.0"), (3, "1.3.0")))
    assert not any(c.breaking for c in diff(by10, by5))
    assert any(c.breaking for c in diff(by5, by10))
    assert any(c.breaking for c in diff(by5, by3))


def test_a_released_standard_file_changes_only_compatibly_since_its_first_commit(tmp_path):
    """A version, once committed, is what sources were validated against: later edits may only be compatible."""
    import subprocess

    from hub.settings import ROOT

    checked = 0
    for path in sorted(STANDARDS_DIR.glob("*.json")):
        relative = path.relative_to(ROOT).as_posix()
        commits = subprocess.run(["git", "rev-list", "--reverse", "HEAD", "--", relative], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.split()
        if not commits:
            continue  # not committed yet: nothing released to compare with
        released = None
        for commit in commits:  # the first committed content today's dialect reads is the release
            text = subprocess.run(["git", "show", f"{commit}:{relative}"], cwd=ROOT,
                                  capture_output=True, text=True, check=True).stdout
            folder = tmp_path / commit
            folder.mkdir(exist_ok=True)
            (folder / path.name).write_text(text, encoding="utf-8")
            try:
                released = load_standard_file(folder / path.name)
                break
            except ConfigError:
                continue
        assert released is not None, f"no committed version of {path.name} loads"
        breaking = [str(c) for c in diff(released, load_standard_file(path)) if c.breaking]
        assert not breaking, f"{path.name} changed incompatibly since {commit[:8]}: {breaking}"
        checked += 1
    assert checked >= 5
