"""Self-service registration: an agency scaffolds, checks and tries its source, in its own registry folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HUB = str(Path(sys.executable).parent / "hub")


def hub(home: Path, registry: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`hub` as an agency runs it, with its own home and registry folder."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))}
    # The agency's exports sit beside the home, in a folder the hub is allowed to read.
    clean.update(HUB_HOME=str(home), HUB_REGISTRY=str(registry), HUB_DATA_DIRS=str(home.parent), **env)
    return subprocess.run([HUB, *args], env=clean, capture_output=True, text=True, timeout=600)


# A kelurahan office's export: semicolons, Windows-1252, one row with a sex code nobody mapped.
CSV = ("NIK;Nama;JK;Agama;Lahir;Kelurahan\r\n"
       "3271014101900001;Siti Aminah;P;1;01/01/1990;32.71.01.1001\r\n"
       "3271010202850002;Agus Saputra;L;1;02/02/1985;32.71.01.1001\r\n"
       "3271014303920003;Désirée Wulan;X;2;03/03/1992;32.71.01.1002\r\n")


@pytest.fixture
def registered(tmp_path) -> tuple[Path, Path]:
    home, registry = tmp_path / "home", tmp_path / "registry"
    done = hub(home, registry, "sources", "new", "file", "kelurahan_x", "--standard", "penduduk@1.0.0",
               "--agency", "kelurahan")
    assert done.returncode == 0, done.stderr
    return home, registry


def test_new_writes_a_registration_to_fill_in_and_never_overwrites(registered):
    home, registry = registered
    path = registry / "kelurahan_x.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert spec["kind"] == "file" and spec["standard"] == "penduduk@1.0.0"
    assert spec["options"] == {"path": "TODO"}
    assert set(spec["mapping"]) == {"nik", "nama", "jenis_kelamin", "agama", "tanggal_lahir", "kode_wilayah"}
    again = hub(home, registry, "sources", "new", "file", "kelurahan_x", "--standard", "penduduk", "--agency", "x")
    assert again.returncode == 2 and "exists already" in again.stderr


def test_check_names_what_is_wrong_then_passes(registered, tmp_path):
    home, registry = registered
    path = registry / "kelurahan_x.yaml"
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode in (1, 2) and "TODO" in done.stderr  # the path is still to be filled in

    export = tmp_path / "export.csv"
    export.write_bytes(CSV.encode("cp1252"))
    text = path.read_text(encoding="utf-8").replace("path: TODO", f"path: {export}")
    path.write_text(text.replace("  nik: {from: TODO}", "  nik: {from: NIK, normalize: nik}\n  umur: {from: Umur}"),
                    encoding="utf-8")
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 2 and "field mapping: ['umur'] are not fields of standard" in done.stderr

    path.write_text(text.replace("path: " + str(export), f"path: {export}\n  delimiter: ','\n  batch_rows: lots"),
                    encoding="utf-8")
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "batch_rows" in t)
    assert done.returncode == 2 and f"kelurahan_x.yaml:{line}: field options/batch_rows:" in done.stderr

    path.write_text(_filled(text, export), encoding="utf-8")
    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["required_fields_not_mapped"] == []


def _filled(text: str, export: Path) -> str:
    spec = yaml.safe_load(text)
    spec["options"] = {"path": str(export), "delimiter": ";", "encoding": "cp1252"}
    spec["mapping"] = {
        "nik": {"from": "NIK", "normalize": "nik"}, "nama": {"from": "Nama", "normalize": "name"},
        "jenis_kelamin": {"from": "JK", "crosswalk": {"L": "1", "P": "2"}}, "agama": {"from": "Agama"},
        "tanggal_lahir": {"from": "Lahir", "date_formats": ["%d/%m/%Y"]}, "kode_wilayah": {"from": "Kelurahan"},
    }
    return yaml.safe_dump(spec, allow_unicode=True)


def test_test_shows_what_would_be_published_and_rejected_and_writes_nothing(registered, tmp_path):
    home, registry = registered
    export = tmp_path / "export.csv"
    export.write_bytes(CSV.encode("cp1252"))
    path = registry / "kelurahan_x.yaml"
    path.write_text(_filled(path.read_text(encoding="utf-8"), export), encoding="utf-8")

    done = hub(home, registry, "sources", "test", "kelurahan_x", "--limit", "2", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert (found["rows_read"], found["would_publish"], found["would_quarantine"]) == (2, 2, 0)

    done = hub(home, registry, "sources", "test", "kelurahan_x", "--json")
    found = json.loads(done.stdout)
    assert (found["rows_read"], found["would_publish"], found["would_quarantine"]) == (3, 2, 1)
    assert found["rejected"] == [{"row": 3, "reasons": [
        {"field": "jenis_kelamin", "rule": "unmapped_code", "column": "JK", "value": "X"}]}]
    preview = found["published_preview"]
    assert [r["nik"] for r in preview] == ["327101**********"] * 2 and {r["nama"] for r in preview} == {"***"}
    assert "3271014101900001" not in done.stdout and "Siti" not in done.stdout.title()
    assert not (home / "catalog.db").exists() and not (home / "warehouse").exists()

    text = hub(home, registry, "sources", "test", "kelurahan_x").stdout
    assert "row 3: jenis_kelamin unmapped_code (column 'JK': 'X')" in text


def test_a_new_registration_is_a_dag_without_touching_dags(registered, tmp_path):
    home, registry = registered
    export = tmp_path / "export.csv"
    export.write_bytes(CSV.encode("cp1252"))
    path = registry / "kelurahan_x.yaml"
    path.write_text(_filled(path.read_text(encoding="utf-8"), export), encoding="utf-8")
    program = ("from hub.settings import load_settings, configure_airflow\n"
               "configure_airflow(load_settings())\n"
               "from airflow.dag_processing.dagbag import DagBag\n"
               "from hub.settings import ROOT\n"
               "print('DAGS', ' '.join(sorted(DagBag(str(ROOT / 'dags')).dag_ids)))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))}
    env.update(HUB_HOME=str(home), HUB_REGISTRY=str(registry), HUB_DATA_DIRS=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (dags,) = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("DAGS ")]
    # penduduk feeds an indicator, whose DAG follows the integrated dataset.
    assert dags == ["hub__maintenance", "indicator__penduduk_umur_jenis_kelamin", "source__kelurahan_x",
                    "standard__penduduk", "subscriptions__deliver"]


def test_a_kind_from_an_outside_package_is_found_by_its_entry_point(tmp_path):
    home, registry = tmp_path / "home", tmp_path / "registry"
    registry.mkdir()
    (registry / "warga_inline.yaml").write_text(yaml.safe_dump({
        "id": "warga_inline", "title": "Warga (inline)", "agency": {"code": "kelurahan", "name": "Kelurahan X"},
        "standard": "penduduk@1.0.0", "kind": "inline",
        "options": {"records": [{"nik": "3271014101900001", "nama": "Siti", "jk": "2", "agama": "1",
                                 "lahir": "1990-01-01", "kel": "32.71.01.1001"}]},
        "mapping": {"nik": {"from": "nik"}, "nama": {"from": "nama"}, "jenis_kelamin": {"from": "jk"},
                    "agama": {"from": "agama"}, "tanggal_lahir": {"from": "lahir"}, "kode_wilayah": {"from": "kel"}},
    }), encoding="utf-8")
    done = hub(home, registry, "sources", "list")
    assert done.returncode == 2 and "unknown connector kind 'inline'" in done.stderr

    # The example package (tests/plugins) as pip would install it: a module and its dist-info with the entry point.
    done = hub(home, registry, "sources", "test", "warga_inline", "--json",
               PYTHONPATH=str(Path(__file__).parent / "plugins"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["would_publish"] == 1


def test_check_refuses_a_path_outside_the_folders_the_hub_may_read(registered, tmp_path):
    home, registry = registered
    path = registry / "kelurahan_x.yaml"
    path.write_text(_filled(path.read_text(encoding="utf-8"), Path("/etc/dtks.csv")), encoding="utf-8")
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{path}:" in done.stderr and "field options/path: /etc/dtks.csv is outside the folders" in done.stderr
