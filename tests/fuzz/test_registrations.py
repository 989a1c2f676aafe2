"""Fuzz: malformed source registrations (wrong types, unknown keys, YAML tags, alias bombs, duplicate keys,
damaged bytes) through the registry loader and `hub sources check`."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from connectors.registry import load_source

from ._hostile import SECRET, SECRET_ENV, assert_hub_error, assert_no_leak, budget, cells, home_with_registry

HUB = str(Path(sys.executable).parent / "hub")
# A secret written where only its name belongs: the loader must refuse it without quoting it.
INLINE_SECRET = "inline-s3cr3t-value-91e2"

FILE_SOURCE = {
    "id": "fuzz_reg", "title": "Fuzz registration", "description": "x",
    "agency": {"code": "dinsos", "name": "Dinas Sosial"}, "standard": "penduduk@1.0.0", "kind": "file",
    "schedule": "@daily",
    "options": {"path": "${HUB_HOME}/incoming/dtks.csv", "delimiter": ";", "encoding": "cp1252"},
    "mapping": {"nik": {"from": "NIK", "normalize": "nik"}, "nama": {"from": "Nama", "normalize": "name"},
                "jenis_kelamin": {"from": "JK", "crosswalk": {"L": "1", "P": "2"}},
                "tanggal_lahir": {"from": "Lahir", "date_formats": ["%d/%m/%Y"]}},
}
REST_SOURCE = {**FILE_SOURCE, "kind": "rest", "options": {
    "url": "http://127.0.0.1:9/v1/penduduk", "records": "data", "max_retries": 0,
    "auth": {"type": "bearer", "token": {"env": SECRET_ENV}}}}
SQL_SOURCE = {**FILE_SOURCE, "kind": "sql", "options": {"url": "sqlite:///${HUB_HOME}/siak.db", "table": "penduduk"}}

yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30),
                         st.floats(), cells, st.just("/etc/passwd"),
                         st.just("${HUB_HOME}/../../etc/passwd"), st.just("file:///etc/passwd"),
                         st.just("sqlite:////etc/hub.db"))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(cells, inner, max_size=3)),
                           max_leaves=8)
# Where a mutation lands: a top-level field, an option, a mapping entry or a part of one.
places = st.sampled_from([("id",), ("title",), ("agency",), ("agency", "code"), ("standard",), ("kind",),
                          ("schedule",), ("options",), ("options", "path"), ("options", "url"),
                          ("options", "delimiter"), ("options", "batch_rows"), ("options", "max_file_bytes"),
                          ("options", "auth"), ("options", "auth", "token"), ("options", "url_env"),
                          ("options", "unknown_option"), ("mapping",), ("mapping", "nik"),
                          ("mapping", "nik", "from"), ("mapping", "jenis_kelamin", "crosswalk"),
                          ("mapping", "tanggal_lahir", "date_formats"), ("extra_key",)])
# A secret written where a secret or its name belongs, in the forms people get wrong.
secret_changes = st.lists(st.tuples(
    st.sampled_from([("options", "auth"), ("options", "auth", "token"), ("options", "auth", "token", "env"),
                     ("options", "url_env"), ("options", "url"), ("options", "api_key"), ("options", "connection")]),
    st.sampled_from([INLINE_SECRET, [INLINE_SECRET], {"x": INLINE_SECRET}, {"env": INLINE_SECRET},
                     f"postgresql://hub:{INLINE_SECRET}@db/siak", f"https://u:{INLINE_SECRET}@x.go.id/a",
                     {"type": "bearer", "token": INLINE_SECRET}])), max_size=2)
# Text-level hostility: YAML tags, alias bombs, duplicate keys, tabs, deep nesting, damaged bytes.
BOMB = "".join(f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
               for i in range(9))
snippets = st.sampled_from([
    "title: !!python/object/apply:os.system ['echo pwned']\n", "title: !!python/name:os.system\n",
    "title: !!binary aGVsbG8=\n", "title: !!set {a, b}\n", "schedule: !!timestamp 2024-01-01\n", BOMB,
    "mapping:\n  nik: {from: NIK2}\n", "id: fuzz_reg\n", "\ttitle: tab\n", "loop: &l [*l]\n",
    "deep: " + "[" * 2000 + "]" * 2000 + "\n", "options: {path: ${HUB_HOME}/incoming/dtks.csv, path: /etc/passwd}\n",
    "<<: {title: merged}\n", "%YAML 1.1\n---\n", "--- \n...\n--- \n", "? [a, b]\n: c\n", "&a title: x\n",
    f"secret_line: \"{INLINE_SECRET}\n  - [\n",
])


def _set(document: dict, place: tuple, value) -> None:
    target = document
    for key in place[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[place[-1]] = value


def load(text: bytes) -> tuple[Path, BaseException | None]:
    """Load the registration `text` in a fresh home: (its path, the error or None)."""
    with tempfile.TemporaryDirectory(prefix="hub-fuzz-reg-") as folder:
        home, registry = home_with_registry(Path(folder))
        path = registry / "fuzz_reg.yaml"
        path.write_bytes(text)
        try:
            load_source(path, home, data_dirs=())
            return path, None
        except Exception as e:  # judged below: only the hub's own errors may come out
            return path, e


@budget(60)
@given(base=st.sampled_from([FILE_SOURCE, REST_SOURCE, SQL_SOURCE]),
       changes=st.lists(st.tuples(places, yaml_values), max_size=3), secrets=secret_changes,
       drops=st.lists(st.sampled_from(["id", "title", "agency", "standard", "kind", "options", "mapping"]), max_size=2),
       appended=st.lists(snippets, max_size=2),
       cut=st.one_of(st.none(), st.floats(0, 1)), junk=st.one_of(st.none(), st.binary(min_size=1, max_size=8)))
def test_registration(base, changes, secrets, drops, appended, cut, junk):
    document = copy.deepcopy(base)
    for place, value in [*changes, *secrets]:
        _set(document, place, value)
    for key in drops:
        document.pop(key, None)
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False) + "".join(appended)
    data = text.encode("utf-8")
    if cut is not None:
        data = data[:int(cut * len(data))]
    if junk is not None:
        data = data[:len(data) // 2] + junk + data[len(data) // 2:]
    path, error = load(data)
    if error is not None:
        assert_hub_error(error, str(path))
        # A registration holds no personal data (the fuzz may even write a NIK as one of its keys, which a
        # message then names): what it must never show is a secret.
        assert SECRET not in str(error) and INLINE_SECRET not in str(error), error
    assert not Path("pwned").exists()


def test_a_registration_too_big_to_read():
    path, error = load(yaml.safe_dump(FILE_SOURCE).encode() + b"# " + b"x" * (1 << 20) + b"\n")
    assert_hub_error(error, str(path))
    assert "1048576 bytes" in str(error)


def test_every_secret_written_where_its_name_belongs_stays_out_of_the_message():
    for options in ({"auth": {"type": "bearer", "token": INLINE_SECRET}},
                    {"auth": {"type": "bearer", "token": {"env": INLINE_SECRET}}},
                    {"auth": {"type": "basic", "username": "x", "password": [INLINE_SECRET]}},
                    {"auth": [INLINE_SECRET]}, {"url": INLINE_SECRET}, {"url": f"https://a:{INLINE_SECRET}@x.go.id/"}):
        document = {**REST_SOURCE, "options": {**REST_SOURCE["options"], **options}}
        path, error = load(yaml.safe_dump(document).encode())
        assert_hub_error(error, str(path))
        assert INLINE_SECRET not in str(error), error
    for options in ({"url_env": f"postgresql://hub:{INLINE_SECRET}@db/siak", "table": "t"}, [INLINE_SECRET]):
        path, error = load(yaml.safe_dump({**SQL_SOURCE, "options": options}).encode())
        assert_hub_error(error, str(path))
        assert INLINE_SECRET not in str(error), error


@budget(6)
@given(base=st.sampled_from([REST_SOURCE, FILE_SOURCE]), changes=st.lists(st.tuples(places, yaml_values), max_size=2))
def test_sources_check_in_a_child_process(base, changes):
    """`hub sources check` as an agency runs it: a secret in the environment the registration names, a
    system that does not answer; its output (stdout and stderr) holds no secret and no traceback."""
    document = copy.deepcopy(base)
    for place, value in changes:
        _set(document, place, value)
    with tempfile.TemporaryDirectory(prefix="hub-fuzz-check-") as folder:
        home, registry = home_with_registry(Path(folder))
        (home / "incoming" / "dtks.csv").write_bytes("NIK;Nama\n3271014101900042;Kartini\n".encode("cp1252"))
        (registry / "fuzz_reg.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))}
        env.update(HUB_HOME=str(home), HUB_REGISTRY=str(registry), **{SECRET_ENV: SECRET})
        done = subprocess.run([HUB, "sources", "check", "fuzz_reg", "--json"], env=env, capture_output=True,
                              text=True, timeout=300)
    assert done.returncode in (0, 1, 2), done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    if done.returncode:
        assert "fuzz_reg" in done.stderr, done.stderr[-3000:]
    assert_no_leak([done.stdout, done.stderr])
