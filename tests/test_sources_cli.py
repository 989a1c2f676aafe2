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
    [rejected] = found["rejected"]
    sentence = rejected["reasons"][0].pop("sentence")
    assert rejected == {"row": 3, "reasons": [
        {"field": "jenis_kelamin", "rule": "unmapped_code", "column": "JK", "value": "X"}]}
    assert 'dari kolom "JK"' in sentence and '"L" atau "P"' in sentence and "jenis_kelamin@1" in sentence
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


# --- `hub sources check` reads the source's column names ------------------------------------------------------


def _register(path: Path, options: dict, mapping: dict, kind: str | None = None) -> None:
    """The scaffolded registration at `path` with its kind, options and mapping filled in."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec.update(options=options, mapping=mapping, **({"kind": kind} if kind else {}))
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")


MAPPING = {"nik": {"from": "NIK", "normalize": "nik"}, "nama": {"from": "NAMA PENERIMA", "normalize": "name"},
           "jenis_kelamin": {"from": "JK", "crosswalk": {"L": "1", "P": "2"}}, "agama": {"from": "Agama"},
           "tanggal_lahir": {"from": "Lahir", "date_formats": ["%d/%m/%Y"]}, "kode_wilayah": {"from": "Kelurahan"}}
# A Dinsos export: its own column names (one with a Windows-1252 dash), semicolons, Windows-1252.
DINSOS_CSV = ("NIK;NAMA PENERIMA;JK;Agama;Lahir;Kelurahan;Alamat – RT/RW\r\n"
              "3271014101900001;Siti Aminah;P;1;01/01/1990;32.71.01.1001;Jl. Pajajaran 1 – 01/02\r\n"
              "3271010202850002;Agus Saputra;L;1;02/02/1985;32.71.01.1001;Gg. Mawar 3 – 03/04\r\n")
PERSONAL = ("3271014101900001", "Siti", "Aminah", "Pajajaran", "3271010202850002", "Agus")


def _private(done: subprocess.CompletedProcess) -> None:
    for value in PERSONAL:
        assert value not in done.stdout + done.stderr, value


def test_check_names_every_mapped_column_the_csv_header_lacks_with_the_one_meant(registered, tmp_path):
    home, registry = registered
    export = tmp_path / "dinsos.csv"
    export.write_bytes(DINSOS_CSV.encode("cp1252"))
    path = registry / "kelurahan_x.yaml"
    # As an agency writes it at first: the names it remembers, in its own case; one it does not remember at all.
    _register(path, {"path": str(export)}, {**MAPPING, "nik": {"from": "nik", "normalize": "nik"},
                                            "nama": {"from": "NAMA"}, "agama": {"from": "Religi"}})
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("FAIL kelurahan_x (") and "reads 3 columns the source does not have" in done.stderr
    assert f"{path}: field mapping/nik/from: column 'nik' is not in the source; did you mean 'NIK'?" in done.stderr
    assert (f"{path}: field mapping/nama/from: column 'NAMA' is not in the source; did you mean 'NAMA PENERIMA'?"
            in done.stderr)
    # Nothing near: the columns there are, read in the file's own encoding.
    assert (f"{path}: field mapping/agama/from: column 'Religi' is not in the source; its columns: ['NIK', "
            "'NAMA PENERIMA', 'JK', 'Agama', 'Lahir', 'Kelurahan', 'Alamat – RT/RW']") in done.stderr
    assert "';'-separated, cp1252" in done.stderr and "Traceback" not in done.stderr
    _private(done)

    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    assert done.returncode == 1 and done.stderr.startswith("FAIL kelurahan_x (")  # JSON for tools, a word for people
    found = json.loads(done.stdout)
    assert found["missing_columns"] == [
        {"field": "nik", "column": "nik", "at": "mapping/nik/from", "did_you_mean": "NIK"},
        {"field": "nama", "column": "NAMA", "at": "mapping/nama/from", "did_you_mean": "NAMA PENERIMA"},
        {"field": "agama", "column": "Religi", "at": "mapping/agama/from", "did_you_mean": None},
    ]
    assert found["columns"][-1] == "Alamat – RT/RW" and found["columns_hidden"] is False
    _private(done)

    _register(path, {"path": str(export)}, MAPPING)
    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["missing_columns"] == []
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 0 and done.stdout.startswith("ok   kelurahan_x") and not done.stderr.strip()


def test_check_names_the_required_fields_left_unmapped(registered, tmp_path):
    home, registry = registered
    export = tmp_path / "dinsos.csv"
    export.write_bytes(DINSOS_CSV.encode("cp1252"))
    path = registry / "kelurahan_x.yaml"
    _register(path, {"path": str(export), "delimiter": ";"},
              {k: v for k, v in MAPPING.items() if k not in ("agama", "tanggal_lahir")})
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 0, done.stderr
    assert ("every record will be quarantined until these required fields of penduduk@1.0.0 are mapped: "
            "agama, tanggal_lahir") in done.stdout
    found = json.loads(hub(home, registry, "sources", "check", "kelurahan_x", "--json").stdout)
    assert found["required_fields_not_mapped"] == ["agama", "tanggal_lahir"] and found["missing_columns"] == []

    # Both at once: the columns fail the check, the fields are named with them.
    _register(path, {"path": str(export)}, {"nik": {"from": "NIK"}, "nama": {"from": "Nama Penerima "}})
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 1
    assert "column 'Nama Penerima ' is not in the source; did you mean 'NAMA PENERIMA'?" in done.stderr
    assert "are mapped: jenis_kelamin, agama, tanggal_lahir, kode_wilayah" in done.stderr

    # A field the standard does not have: the one meant.
    _register(path, {"path": str(export)}, {**MAPPING, "nama_lengkap": {"from": "NAMA PENERIMA"}})
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 2
    assert ("field mapping: ['nama_lengkap'] are not fields of standard penduduk@1.0.0; did you mean 'nama' for "
            "'nama_lengkap'?") in done.stderr


def test_a_file_whose_header_row_is_a_record_is_named_and_never_shown(registered, tmp_path):
    home, registry = registered
    export = tmp_path / "dinsos.csv"
    export.write_bytes(DINSOS_CSV.split("\r\n", 1)[1].encode("cp1252"))  # the export without its header row
    path = registry / "kelurahan_x.yaml"
    _register(path, {"path": str(export)}, MAPPING)
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 1
    assert ("field mapping/nik/from: column 'NIK' is not in the source; the source's column names look like a "
            "record's values (not shown): does it start with its header row?") in done.stderr
    _private(done)
    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    found = json.loads(done.stdout)
    assert done.returncode == 1 and found["columns"] is None and found["columns_hidden"] is True
    assert len(found["missing_columns"]) == 6 and {m["did_you_mean"] for m in found["missing_columns"]} == {None}
    _private(done)


def test_check_reads_the_header_of_a_sheet_below_its_title(registered, tmp_path):
    import openpyxl

    home, registry = registered
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Data penerima bantuan Kelurahan X, Januari 2025"])
    sheet.append([])
    sheet.append(["NIK", "Nama Lengkap", "Jenis Kelamin", "Agama", "Tanggal Lahir", "Kode Kelurahan"])
    sheet.append(["3271014101900001", "Siti Aminah", "P", 1, "01/01/1990", "32.71.01.1001"])
    export = tmp_path / "penerima.xlsx"
    workbook.save(export)
    path = registry / "kelurahan_x.yaml"
    mapping = {"nik": {"from": "NIK"}, "nama": {"from": "Nama"}, "jenis_kelamin": {"from": "jenis_kelamin"},
               "agama": {"from": "Agama"}, "tanggal_lahir": {"from": "Tanggal Lahir", "date_formats": ["%d/%m/%Y"]},
               "kode_wilayah": {"from": "Kode Kelurahan"}}
    _register(path, {"path": str(export)}, mapping)
    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    assert [(m["column"], m["did_you_mean"]) for m in found["missing_columns"]] == [
        ("Nama", "Nama Lengkap"), ("jenis_kelamin", "Jenis Kelamin")]
    assert found["columns"] == ["NIK", "Nama Lengkap", "Jenis Kelamin", "Agama", "Tanggal Lahir", "Kode Kelurahan"]
    _private(done)

    _register(path, {"path": str(export)}, {**mapping, "nama": {"from": "Nama Lengkap"},
                                            "jenis_kelamin": {"from": "Jenis Kelamin", "crosswalk": {"P": "2"}}})
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 0 and done.stdout.startswith("ok   kelurahan_x"), done.stderr
    # The header the check read is the one the run reads.
    found = json.loads(hub(home, registry, "sources", "test", "kelurahan_x", "--json").stdout)
    assert (found["rows_read"], found["would_publish"]) == (1, 1)


def test_check_reads_a_database_tables_columns(registered, tmp_path):
    import sqlite3

    home, registry = registered
    database = tmp_path / "dinsos.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE penerima (nik TEXT PRIMARY KEY, nama_lengkap TEXT, jk TEXT, agama TEXT, "
                   "tgl_lahir TEXT, kelurahan TEXT)")  # no row yet: the table's definition tells its columns
    db.close()
    path = registry / "kelurahan_x.yaml"
    mapping = {"nik": {"from": "nik"}, "nama": {"from": "nama"}, "jenis_kelamin": {"from": "JK"},
               "agama": {"from": "agama"}, "tanggal_lahir": {"from": "tanggal_lahir"},
               "kode_wilayah": {"from": "kelurahan"}}
    _register(path, {"url": f"sqlite:///{database}", "table": "penerima"}, mapping, kind="sql")
    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    assert [(m["field"], m["column"], m["did_you_mean"]) for m in found["missing_columns"]] == [
        ("nama", "nama", "nama_lengkap"), ("jenis_kelamin", "JK", "jk"),
        ("tanggal_lahir", "tanggal_lahir", "tgl_lahir")]

    _register(path, {"url": f"sqlite:///{database}", "query": "SELECT nik, nama_lengkap AS nama, jk AS JK, agama, "
                     "tgl_lahir AS tanggal_lahir, kelurahan FROM penerima"}, mapping, kind="sql")
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 0 and done.stdout.startswith("ok   kelurahan_x"), done.stderr


@pytest.fixture
def api():
    """An agency's JSON API on loopback: `api.records` is what it answers, under `data`; `api.paths` maps other
    paths to (content type, body)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            kind, body = self.server.paths.get(self.path.split("?")[0], ("application/json", None))
            body = body if body is not None else json.dumps({"data": self.server.records}).encode()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.records, server.paths = [], {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_check_reads_an_apis_first_page(registered, api):
    home, registry = registered
    # JSON leaves out a key whose value is null: agama is only in the second record; nested keys are dotted.
    api.records = [{"nik": "3271014101900001", "nama": "Siti Aminah", "jk": "P", "tgl_lahir": "1990-01-01",
                    "alamat": {"kelurahan": "32.71.01.1001"}},
                   {"nik": "3271010202850002", "nama": "Agus Saputra", "jk": "L", "agama": "1",
                    "tgl_lahir": "1985-02-02", "alamat": {"kelurahan": "32.71.01.1001"}}]
    path = registry / "kelurahan_x.yaml"
    options = {"url": f"http://127.0.0.1:{api.server_address[1]}/api/penerima", "records": "data"}
    mapping = {"nik": {"from": "nik"}, "nama": {"from": "nama"}, "jenis_kelamin": {"from": "jk"},
               "agama": {"from": "agama"}, "tanggal_lahir": {"from": "tgl_lahir"},
               "kode_wilayah": {"from": "kelurahan"}}
    _register(path, options, mapping, kind="rest")
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 1, done.stderr
    assert (f"{path}: field mapping/kode_wilayah/from: column 'kelurahan' is not in the source; "
            "did you mean 'alamat.kelurahan'?") in done.stderr
    assert "agama" not in done.stderr
    _private(done)

    _register(path, options, {**mapping, "kode_wilayah": {"from": "alamat.kelurahan"}}, kind="rest")
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 0 and done.stdout.startswith("ok   kelurahan_x"), done.stderr

    api.records = []  # nothing to tell the columns by: said, not failed
    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["columns"] is None
    assert "the source sent no record yet" in hub(home, registry, "sources", "check", "kelurahan_x").stdout


def test_check_reads_a_ckan_datastore_resources_fields_and_a_datasets_file(registered, api):
    home, registry = registered
    fields = [{"id": "_id", "type": "int"}, *({"id": name, "type": "text"} for name in
                                              ("NIK", "Nama", "JK", "Agama", "Tgl Lahir", "Kode Kelurahan"))]
    result = {"success": True, "result": {"fields": fields, "records": [], "limit": 0}}
    api.paths["/api/3/action/datastore_search"] = ("application/json", json.dumps(result).encode())
    path = registry / "kelurahan_x.yaml"
    portal = f"http://127.0.0.1:{api.server_address[1]}"
    mapping = {"nik": {"from": "NIK"}, "nama": {"from": "Nama"}, "jenis_kelamin": {"from": "JK"},
               "agama": {"from": "Agama"}, "tanggal_lahir": {"from": "tgl_lahir"},
               "kode_wilayah": {"from": "Kode Kelurahan"}}
    _register(path, {"url": portal, "resource_id": "penerima-bansos"}, mapping, kind="ckan")
    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    assert found["missing_columns"] == [{"field": "tanggal_lahir", "column": "tgl_lahir",
                                         "at": "mapping/tanggal_lahir/from", "did_you_mean": "Tgl Lahir"}]
    assert found["columns"][0] == "_id"

    # A dataset's file: downloaded, its header read as the file kind reads it.
    package = {"success": True, "result": {"resources": [
        {"id": "r1", "name": "penerima", "format": "CSV", "url": f"{portal}/files/penerima.csv"}]}}
    api.paths["/api/3/action/package_show"] = ("application/json", json.dumps(package).encode())
    api.paths["/files/penerima.csv"] = ("text/csv", DINSOS_CSV.encode("cp1252"))
    _register(path, {"url": portal, "dataset": "bansos", "resource": "penerima"},
              {**MAPPING, "nama": {"from": "Nama"}}, kind="ckan")
    done = hub(home, registry, "sources", "check", "kelurahan_x")
    assert done.returncode == 1, done.stderr
    assert "field mapping/nama/from: column 'Nama' is not in the source; did you mean 'NAMA PENERIMA'?" in done.stderr
    _private(done)


@pytest.mark.parametrize("name", ["penerima.jsonl", "penerima.json", "penerima.parquet"])
def test_check_reads_the_keys_of_json_records_and_a_parquet_schema(registered, tmp_path, name):
    import pyarrow as pa
    import pyarrow.parquet as pq

    home, registry = registered
    records = [{"nik": "3271014101900001", "nama": "Siti Aminah", "lahir": "1990-01-01",
                "alamat": {"kelurahan": "32.71.01.1001"}},
               {"nik": "3271010202850002", "nama": "Agus Saputra", "agama": "1", "lahir": "1985-02-02",
                "alamat": {"kelurahan": "32.71.01.1001"}}]
    export = tmp_path / name
    if name.endswith(".jsonl"):
        export.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif name.endswith(".json"):
        export.write_text(json.dumps({"data": records}))
    else:
        pq.write_table(pa.Table.from_pylist(records[::-1]), export)  # its columns: the first record's keys
    path = registry / "kelurahan_x.yaml"
    options = {"path": str(export), **({"records_path": "data"} if name.endswith(".json") else {})}
    mapping = {"nik": {"from": "nik"}, "nama": {"from": "nama"}, "agama": {"from": "agama"},
               "tanggal_lahir": {"from": "tgl_lahir"}, "kode_wilayah": {"from": "alamat_kelurahan"}}
    _register(path, options, mapping)
    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    # agama, absent from the first record, is there; the columns the mapping reads but the source lacks are named.
    assert [(m["column"], m["did_you_mean"]) for m in found["missing_columns"]] == [
        ("tgl_lahir", "lahir"), ("alamat_kelurahan", "alamat.kelurahan")]
    assert set(found["columns"]) == {"nik", "nama", "agama", "lahir", "alamat.kelurahan"}
    _private(done)


def test_the_columns_a_mapping_reads_include_a_region_lookups_kecamatan():
    from hub.sources import mapping_columns, missing_columns
    from transforms.mapping import NOT_SHOWN

    mapping = {"nik": {"from": "NIK"}, "jumlah": {"value": 1},
               "kode_wilayah": {"from": "Kelurahan", "region": {"level": "desa_kelurahan", "within": "32.71",
                                                               "edition": "2025", "kecamatan": "Kecamtan"}},
               "kode_kecamatan": {"from": "Kecamatan", "region": {"level": "kecamatan", "within": "32.71"}}}
    assert mapping_columns(mapping) == [("nik", "from", "NIK"), ("kode_wilayah", "from", "Kelurahan"),
                                        ("kode_wilayah", "region/kecamatan", "Kecamtan"),
                                        ("kode_kecamatan", "from", "Kecamatan")]
    long = "Keterangan " * 7
    missing, shown, hidden = missing_columns(mapping, ["NIK", "KELURAHAN", "Kecamatan", long])
    assert missing == [
        {"field": "kode_wilayah", "column": "Kelurahan", "at": "mapping/kode_wilayah/from",
         "did_you_mean": "KELURAHAN"},
        {"field": "kode_wilayah", "column": "Kecamtan", "at": "mapping/kode_wilayah/region/kecamatan",
         "did_you_mean": "Kecamatan"},
    ]
    assert shown == ["NIK", "KELURAHAN", "Kecamatan", NOT_SHOWN] and hidden is False
    assert missing_columns(mapping, None) == ([], None, False)


# A Dinsos list naming kelurahan and kecamatan as people write them, one name misspelt and one in the wrong kecamatan.
REGION_CSV = ("NIK;NAMA PENERIMA;JK;Agama;Lahir;Kelurahan;Kecamatan\r\n"
              "3271014101900001;Siti Aminah;P;1;01/01/1990;Kel. Tanah Sareal;Kec. Tanah Sareal\r\n"
              "3271010202850002;Agus Saputra;L;1;02/02/1985;BARANANGSIANG;BOGOR TIMUR\r\n"
              "3271014303920003;Dewi Lestari;P;1;03/03/1992;Tanah Sarel;Tanah Sareal\r\n"
              "3271014303920004;Rina Marlina;P;1;04/04/1993;Kebon Pedes;Bogor Tengah\r\n")


def test_region_names_resolve_and_a_name_that_does_not_lists_the_closest_regions(registered, tmp_path):
    home, registry = registered
    export = tmp_path / "dinsos.csv"
    export.write_bytes(REGION_CSV.encode("cp1252"))
    path = registry / "kelurahan_x.yaml"
    _register(path, {"path": str(export)},
              {**MAPPING, "kode_wilayah": {"from": "Kelurahan", "region": {"kecamatan": "KECAMATAN"}}})
    done = hub(home, registry, "sources", "check", "kelurahan_x", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["missing_columns"] == [
        {"field": "kode_wilayah", "column": "KECAMATAN", "at": "mapping/kode_wilayah/region/kecamatan",
         "did_you_mean": "Kecamatan"}]

    _register(path, {"path": str(export)},
              {**MAPPING, "kode_wilayah": {"from": "Kelurahan", "region": {"kecamatan": "Kecamatan"}}})
    assert hub(home, registry, "sources", "check", "kelurahan_x").returncode == 0
    done = hub(home, registry, "sources", "test", "kelurahan_x", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["would_publish"] == 2 and found["reasons"] == {"kode_wilayah:region_unknown": 1,
                                                               "kode_wilayah:region_not_in_kecamatan": 1}
    [unknown], [elsewhere] = (r["reasons"] for r in found["rejected"])
    assert unknown["rule"] == "region_unknown" and unknown["value"] == "Tanah Sarel"
    assert unknown["candidates"][0] == {"code": "32.71.06.1001", "name": "Tanah Sareal"}
    assert elsewhere["rule"] == "region_not_in_kecamatan"
    assert elsewhere["candidates"] == [{"code": "32.71.06.1002", "name": "Kebon Pedes"}]
    done = hub(home, registry, "sources", "test", "kelurahan_x")
    assert "row 3: kode_wilayah region_unknown (column 'Kelurahan': 'Tanah Sarel'); closest: Tanah Sareal " \
           "(32.71.06.1001)" in done.stdout
    _private(done)
