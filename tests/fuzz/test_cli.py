"""Fuzz: `hub sources test` and `hub validate` as people run them, on damaged files: what they print."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from ._hostile import NAME, NIK, SECRET, SECRET_ENV, assert_no_leak, budget, home_with_registry
from .test_files import MAPPING, csv_text, damage, damaged, planted_row, rows

HUB = str(Path(sys.executable).parent / "hub")


def hub(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))}
    env.update(HUB_HOME=str(home), HUB_REGISTRY=str(home / "registry"), **{SECRET_ENV: SECRET})
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=300)


def assert_clean_exit(done: subprocess.CompletedProcess, codes: tuple[int, ...]) -> None:
    assert done.returncode in codes, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-3000:]
    if done.returncode == 2:
        assert done.stderr.startswith("hub: error: "), done.stderr[-3000:]


@budget(3)
@given(records=rows, edits=damage, encoding=st.sampled_from(["utf-8", "cp1252"]))
def test_hub_sources_test(records, edits, encoding):
    with tempfile.TemporaryDirectory(prefix="hub-fuzz-cli-") as folder:
        home, registry = home_with_registry(Path(folder))
        text = csv_text([planted_row, *records], ";", "\r\n")
        data = text.encode(encoding, errors="replace")
        header_bytes = len(csv_text([], ";", "\r\n").encode(encoding))
        (home / "incoming" / "dtks.csv").write_bytes(damaged(data, header_bytes, edits))
        (registry / "fuzz_cli.yaml").write_text(yaml.safe_dump({
            "id": "fuzz_cli", "title": "Fuzz CLI", "agency": {"code": "dinsos", "name": "Dinas Sosial"},
            "standard": "penduduk@1.0.0", "kind": "file",
            "options": {"path": "${HUB_HOME}/incoming/dtks.csv"}, "mapping": MAPPING}), encoding="utf-8")
        done = hub(home, "sources", "test", "fuzz_cli", "--json")
    assert_clean_exit(done, (0, 2))
    if done.returncode:
        assert "fuzz_cli" in done.stderr
    # What it prints on purpose (values of fields that are not personal data) is its output; its errors and
    # logs carry no record.
    assert_no_leak([done.stderr])
    assert NIK not in done.stdout  # the NIK is masked wherever it is shown


@budget(3)
@given(records=rows, edits=damage)
def test_hub_validate(records, edits):
    with tempfile.TemporaryDirectory(prefix="hub-fuzz-cli-") as folder:
        path = Path(folder) / "records.csv"
        header = ["nik", "nama", "jenis_kelamin", "agama", "tanggal_lahir", "kode_wilayah"]
        # The standard's field names as the header, then the records (the first line csv_text writes is its header).
        first = ",".join(header) + "\n"
        text = first + csv_text([planted_row, *records], ",", "\n").split("\n", 1)[1]
        path.write_bytes(damaged(text.encode(), len(first), edits))
        done = hub(Path(folder) / "home", "validate", "penduduk@1.0.0", str(path))
    assert_clean_exit(done, (0, 1, 2))
    assert_no_leak([done.stdout, done.stderr])  # rows and reasons only, never a value
    assert NAME not in done.stdout
