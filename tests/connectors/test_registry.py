"""The source registry (YAML validated by source.schema.json) and the registry of connector kinds."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from connectors import kinds
from connectors.base import Batch, Connector
from connectors.file import FileConnector
from connectors.kinds import connector_for, known_kinds, register_kind
from connectors.registry import MAX_REGISTRATION_BYTES, Source, load_source, load_sources
from connectors.sql import SqlConnector
from hub.errors import ConfigError
from hub.settings import ROOT

VALID = {
    "id": "dinsos_test",
    "title": "Penduduk DTKS (test)",
    "agency": {"code": "dinsos", "name": "Dinas Sosial Kota Bogor"},
    "standard": "penduduk@1.0.0",
    "kind": "file",
    "schedule": "@daily",
    "options": {"path": "${HUB_HOME}/demo/dtks.csv", "delimiter": ";", "encoding": "cp1252"},
    "mapping": {"nik": {"from": "NIK", "normalize": "nik"}, "nama": {"from": "Nama Lengkap", "normalize": "name"}},
}


def write(folder: Path, data, name: str | None = None) -> Path:
    """Write one registration; the file is named after its id unless `name` says otherwise."""
    stem = name or (data.get("id") if isinstance(data, dict) else None) or "source"
    path = folder / f"{stem}.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def changed(**fields) -> dict:
    """VALID with top-level fields replaced (a value of ... removes the field)."""
    data = copy.deepcopy(VALID)
    for key, value in fields.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return data


def config_error(path: Path, home: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_source(path, home)
    return str(info.value)


@pytest.fixture
def restore_kinds():
    """register_kind changes a process-wide dict: put it back as it was after the test."""
    known_kinds()
    before = dict(kinds._kinds)
    yield
    kinds._kinds.clear()
    kinds._kinds.update(before)


# --- a valid registration ---------------------------------------------------------------------------


def test_valid_registration_loads_into_a_source(tmp_path):
    source = load_source(write(tmp_path, VALID), tmp_path)
    assert source.id == "dinsos_test"
    assert (source.agency_code, source.agency_name) == ("dinsos", "Dinas Sosial Kota Bogor")
    assert source.standard_ref == "penduduk@1.0.0" and source.standard_name == "penduduk"
    assert source.kind == "file" and source.schedule == "@daily"
    assert source.mapping == VALID["mapping"]


def test_hub_home_is_substituted_in_options(tmp_path):
    home = tmp_path / "home"
    source = load_source(write(tmp_path, VALID), home)
    assert source.options["path"] == f"{home}/demo/dtks.csv"
    assert "${HUB_HOME}" not in str(source.options)


def test_the_real_registrations_load(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_DEMO_URL", "http://127.0.0.1:8799/")
    sources = load_sources(ROOT / "connectors" / "registry", tmp_path)
    assert [s.id for s in sources] == ["dinkes_faskes", "dinkes_sitb", "dinsos_bansos", "dinsos_dtks",
                                       "disdik_dapodik", "disdukcapil_siak", "dpmptsp_oss", "satudata_posyandu"]
    by_id = {s.id: s for s in sources}
    assert {s.id: s.standard_ref for s in sources if s.agency_code != "disdukcapil" and s.id != "dinsos_dtks"} == {
        "dinkes_faskes": "fasilitas_kesehatan@1.0.0", "dinkes_sitb": "kasus_tbc@1.0.0",
        "dinsos_bansos": "penerima_bantuan_sosial@1.0.0", "disdik_dapodik": "satuan_pendidikan@1.0.0",
        "dpmptsp_oss": "umkm@1.0.0", "satudata_posyandu": "posyandu_kelurahan@1.0.0"}
    # The demo exercises every built-in kind; the live systems are found through HUB_DEMO_URL.
    assert {s.kind for s in sources} == {"file", "sql", "rest", "ckan"}
    assert by_id["dinkes_faskes"].options["url"] == "http://127.0.0.1:8799/dinkes/api/v1/faskes"
    assert by_id["satudata_posyandu"].options["url"] == "http://127.0.0.1:8799/satudata"
    assert by_id["dinkes_faskes"].options["auth"]["key"] == {"connection": "dinkes_api"}
    assert not any(s.unresolved for s in sources)
    # One agency, one name, whichever of its sources names it.
    assert by_id["dinkes_sitb"].agency_name == by_id["dinkes_faskes"].agency_name == "Dinas Kesehatan Kota Bogor"
    assert (by_id["dpmptsp_oss"].agency_code, by_id["dpmptsp_oss"].agency_name) == (
        "dpmptsp", "Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu Kota Bogor")
    sources = [by_id["dinsos_dtks"], by_id["disdukcapil_siak"]]
    assert by_id["dinsos_dtks"].options["path"] == f"{tmp_path}/demo/dinsos/dtks_penduduk.csv"
    assert by_id["disdukcapil_siak"].options["url"] == f"sqlite:///{tmp_path}/demo/disdukcapil/siak.db"
    assert {s.id: s.standard_ref for s in sources} == {"dinsos_dtks": "penduduk@1.0.0", "disdukcapil_siak": "penduduk@1.1.0"}
    assert isinstance(connector_for(by_id["dinsos_dtks"]), FileConnector)
    assert isinstance(connector_for(by_id["disdukcapil_siak"]), SqlConnector)


def test_load_sources_returns_every_registration_sorted_by_id(tmp_path):
    write(tmp_path, changed(id="zz_last"))
    write(tmp_path, changed(id="aa_first"))
    assert [s.id for s in load_sources(tmp_path, tmp_path)] == ["aa_first", "zz_last"]


def test_load_sources_names_the_broken_file_among_good_ones(tmp_path):
    write(tmp_path, changed(id="aa_good"))
    broken = write(tmp_path, changed(id="bb_broken", standard="penduduk"))
    with pytest.raises(ConfigError, match="bb_broken.yaml") as info:
        load_sources(tmp_path, tmp_path)
    assert str(broken) in str(info.value)


def test_load_sources_on_a_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_sources(tmp_path / "nope", tmp_path)


# --- broken registrations: the message names the file, the field and what was expected -------------


def test_missing_standard_names_the_file_and_the_field(tmp_path):
    path = write(tmp_path, changed(standard=...))
    message = config_error(path, tmp_path)
    assert str(path) in message
    assert "'standard' is a required property" in message


def test_standard_without_version_names_the_field_and_the_expected_form(tmp_path):
    path = write(tmp_path, changed(standard="penduduk"))
    message = config_error(path, tmp_path)
    assert str(path) in message
    assert "field standard:" in message
    assert "'penduduk' does not match" in message and "@" in message


def test_agency_of_the_wrong_type_names_the_field_and_the_expected_type(tmp_path):
    path = write(tmp_path, changed(agency="Dinsos"))
    message = config_error(path, tmp_path)
    assert str(path) in message
    assert "field agency:" in message and "is not of type 'object'" in message


def test_unknown_kind_lists_the_known_kinds(tmp_path):
    message = config_error(write(tmp_path, changed(kind="ftp")), tmp_path)
    assert "'ftp'" in message
    assert "file" in message and "sql" in message


def test_unknown_kind_message_names_the_file_and_the_field(tmp_path):
    path = write(tmp_path, changed(kind="ftp"))
    message = config_error(path, tmp_path)
    assert str(path) in message
    assert "field kind" in message


def test_a_normalizer_that_is_no_name_is_refused_where_it_is_written(tmp_path):
    # Which normalizers exist is checked with the mapping (transforms.mapping.check_mapping), where the standard is
    # at hand and loading the registry stays cheap for Airflow's parsing; the shape is checked here.
    path = write(tmp_path, changed(mapping={"nik": {"from": "NIK", "normalize": {"nik": {}, "name": {}}}}))
    message = config_error(path, tmp_path)
    assert str(path) in message and "field mapping/nik/normalize:" in message


def test_mapping_with_both_from_and_value_is_refused(tmp_path):
    path = write(tmp_path, changed(mapping={"agama": {"from": "Agama", "value": "1"}}))
    message = config_error(path, tmp_path)
    assert str(path) in message and "field mapping/agama:" in message


def test_file_name_must_match_the_id(tmp_path):
    path = write(tmp_path, VALID, name="other_name")
    message = config_error(path, tmp_path)
    assert str(path) in message
    assert "field id:" in message and "'other_name'" in message and "'dinsos_test'" in message


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path):
    path = write(tmp_path, "- just\n- a list\n", name="dinsos_test")
    message = config_error(path, tmp_path)
    assert str(path) in message and "expected a mapping" in message


def test_invalid_yaml_syntax_names_the_file(tmp_path):
    path = write(tmp_path, "id: [unclosed\n", name="dinsos_test")
    message = config_error(path, tmp_path)
    assert str(path) in message and "not valid YAML" in message


def test_option_of_another_kind_is_refused_naming_the_kind(tmp_path):
    path = write(tmp_path, changed(options={"path": "x.csv", "table": "penduduk"}))
    message = config_error(path, tmp_path)
    assert str(path) in message
    assert "field options" in message and "'table' was unexpected" in message and "kind file" in message


def test_option_of_the_wrong_type_names_the_option(tmp_path):
    path = write(tmp_path, changed(options={"path": "x.csv", "batch_rows": "many"}))
    message = config_error(path, tmp_path)
    assert str(path) in message
    assert "field options/batch_rows:" in message and "is not of type 'integer'" in message


def test_missing_required_option_of_the_kind_is_refused(tmp_path):
    path = write(tmp_path, changed(options={"delimiter": ";"}))
    message = config_error(path, tmp_path)
    assert str(path) in message and "'path' is a required property" in message


def test_sql_source_with_both_table_and_query_is_refused(tmp_path):
    path = write(tmp_path, changed(kind="sql", options={"url": "sqlite://", "table": "a", "query": "SELECT 1"}))
    message = config_error(path, tmp_path)
    assert str(path) in message and "kind sql" in message


SECRET_URL = "postgresql+psycopg2://hub:s3cret@db.example/siak"


def test_loading_a_registration_with_a_password_in_the_sql_url_is_refused(tmp_path):
    path = write(tmp_path, changed(kind="sql", options={"url": SECRET_URL, "table": "penduduk"}))
    message = config_error(path, tmp_path)
    assert str(path) in message and "options/url" in message
    assert "url_env" in message and "connection" in message
    assert "s3cret" not in message


# --- runs_on: a connector inside the agency's own network (an Edge worker's queue) ------------------


def test_a_source_may_run_on_an_edge_queue_and_one_without_runs_on_the_hub(tmp_path):
    source = load_source(write(tmp_path, changed(runs_on={"edge_queue": "dinsos-kantor_2"})), tmp_path)
    assert source.edge_queue == "dinsos-kantor_2"
    assert load_source(write(tmp_path, changed(id="dinsos_hub")), tmp_path).edge_queue is None


def test_a_wrong_runs_on_names_the_file_line_and_field(tmp_path):
    lines = ["id: dinsos_edge", "title: DTKS", "agency: {code: dinsos, name: Dinas Sosial}",
             "standard: penduduk@1.0.0", "kind: file", "runs_on:", "  edge_queue: Dinsos Kantor", "options:",
             "  path: x.csv", "mapping:", "  nik: {from: NIK}"]
    path = tmp_path / "dinsos_edge.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert f"{path}:7: field runs_on/edge_queue: text does not match" in config_error(path, tmp_path)
    lines[6] = "  queue: dinsos"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = config_error(path, tmp_path)
    assert f"{path}:7: field runs_on: 'edge_queue' is a required property" in message
    assert "Additional properties are not allowed ('queue' was unexpected)" in message
    lines[5:7] = ["runs_on: dinsos"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert f"{path}:6: field runs_on: 'dinsos' is not of type 'object'" in config_error(path, tmp_path)


# --- the registry of kinds ------------------------------------------------------------------------


class MemoryConnector(Connector):
    """A kind an outside package could add: records from its options."""

    options_schema = {"type": "object", "required": ["rows"], "properties": {"rows": {"type": "array"}}}

    def read(self, cursor=None):
        rows = self.options["rows"]
        yield Batch(records=pa.table({"kode": pa.array(rows, pa.string()),
                                      "_row": pa.array(range(1, len(rows) + 1), pa.int64())}))


def test_builtin_kinds_are_known():
    assert {"file", "sql"} <= set(known_kinds())


AN_INSTANCE = FileConnector(Source(id="x_src", title="x", description="", agency_code="a", agency_name="aaa",
                                   standard_ref="penduduk@1.0.0", kind="file", schedule=None,
                                   options={"path": "x.csv"}, mapping={}, path=Path("x_src.yaml")))


@pytest.mark.parametrize("not_a_connector", [object, dict, "connectors.file:FileConnector", AN_INSTANCE],
                         ids=["object", "dict", "dotted-name", "instance"])
def test_register_kind_rejects_what_is_not_a_connector_subclass(restore_kinds, not_a_connector):
    with pytest.raises(TypeError, match="subclass of connectors.Connector"):
        register_kind("bogus", not_a_connector)
    assert "bogus" not in known_kinds()


def test_registered_kind_is_used_by_connector_for_and_load_source(restore_kinds, tmp_path):
    register_kind("memory", MemoryConnector)
    assert "memory" in known_kinds() and {"file", "sql"} <= set(known_kinds())
    source = load_source(write(tmp_path, changed(kind="memory", options={"rows": ["007", "0012"]})), tmp_path)
    connector = connector_for(source)
    assert isinstance(connector, MemoryConnector)
    assert [b.records["kode"].to_pylist() for b in connector.read()] == [["007", "0012"]]


def test_options_schema_of_a_registered_kind_is_enforced(restore_kinds, tmp_path):
    register_kind("memory", MemoryConnector)
    path = write(tmp_path, changed(kind="memory", options={"rows": "007"}))
    message = config_error(path, tmp_path)
    assert "field options/rows:" in message and "kind memory" in message


def test_registering_a_kind_first_keeps_the_builtin_kinds():
    # A fresh interpreter: an outside package registering its kind at import, before any lookup.
    program = textwrap.dedent("""
        from connectors.base import Connector
        from connectors.kinds import known_kinds, register_kind

        class Extra(Connector):
            def read(self, cursor=None):
                yield from ()

        register_kind("extra", Extra)
        print(",".join(known_kinds()))
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.strip().split(",")) >= {"extra", "file", "sql"}


# --- ${HUB_DEMO_URL}: the base URL of the demo agencies' live systems ---------------------------------

DEMO_API = changed(id="dinkes_live", kind="rest", options={
    "url": "${HUB_DEMO_URL}/dinkes/api/v1/faskes", "records": "data.faskes",
    "auth": {"type": "api_key", "in": "header", "name": "X-API-Key", "key": {"connection": "dinkes_api"}}})


@pytest.mark.parametrize("value", ["http://127.0.0.1:8799", "http://127.0.0.1:8799/", " https://demo.example/base/ "])
def test_the_demo_url_is_substituted_from_its_environment_variable(tmp_path, monkeypatch, value):
    monkeypatch.setenv("HUB_DEMO_URL", value)
    source = load_source(write(tmp_path, DEMO_API), tmp_path)
    assert source.options["url"] == value.strip().rstrip("/") + "/dinkes/api/v1/faskes"
    assert source.unresolved == () and connector_for(source).describe().startswith("rest ")


@pytest.mark.parametrize("value, why", [(None, "is not set"), ("", "is not set"),
                                        ("127.0.0.1:8799", "is not a base URL"),
                                        ("ftp://127.0.0.1:8799", "is not a base URL"),
                                        ("http://hub:s3cr3t@127.0.0.1:8799", "is not a base URL"),
                                        ("http://127.0.0.1:8799/?key=s3cr3t", "is not a base URL"),
                                        ("http://127.0.0.1:port", "is not a base URL")])
def test_without_a_usable_demo_url_the_registry_loads_and_only_that_source_cannot_run(tmp_path, monkeypatch,
                                                                                      value, why):
    if value is None:
        monkeypatch.delenv("HUB_DEMO_URL", raising=False)
    else:
        monkeypatch.setenv("HUB_DEMO_URL", value)
    path = write(tmp_path, DEMO_API)
    write(tmp_path, VALID)
    sources = {s.id: s for s in load_sources(tmp_path, tmp_path)}  # every other source still loads and runs
    assert isinstance(connector_for(sources["dinsos_test"]), FileConnector)
    with pytest.raises(ConfigError) as info:
        connector_for(sources["dinkes_live"])
    message = str(info.value)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "HUB_DEMO_URL" in text)
    assert message.startswith(f"{path}:{line}: field options/url: names ${{HUB_DEMO_URL}}, but the environment "
                              f"variable HUB_DEMO_URL {why}")
    assert "s3cr3t" not in message and "port" not in message.partition("HUB_DEMO_URL")[2][:30]


def test_only_hub_home_and_the_demo_url_are_substituted(tmp_path, monkeypatch):
    """A registration cannot pull any other environment value (a secret, say) into its options, nor the demo URL
    anywhere but at the start of a text."""
    monkeypatch.setenv("HUB_DEMO_URL", "http://127.0.0.1:8799")
    monkeypatch.setenv("HUB_TEST_SECRET", "s3cr3t")
    spec = changed(options={"path": "${HUB_HOME}/demo/${HUB_TEST_SECRET}-${HUB_DEMO_URL}.csv"})
    source = load_source(write(tmp_path, spec), tmp_path)
    assert source.options["path"] == f"{tmp_path}/demo/${{HUB_TEST_SECRET}}-${{HUB_DEMO_URL}}.csv"


def test_errors_name_the_line_of_the_field(tmp_path):
    lines = ["id: dinsos_lines", "title: DTKS", "agency: {code: dinsos, name: Dinas Sosial}",
             "standard: penduduk@1.0.0", "kind: file", "options:", "  path: x.csv", "  batch_rows: many",
             "mapping:", "  nik: {from: NIK}"]
    path = tmp_path / "dinsos_lines.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert f"{path}:8: field options/batch_rows: 'many' is not of type 'integer'" in config_error(path, tmp_path)
    lines[3] = "standard: penduduk"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert f"{path}:4: field standard: 'penduduk' does not match" in config_error(path, tmp_path)
    lines[3], lines[4] = "standard: penduduk@1.0.0", "kind: fax"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert f"{path}:5: field kind: unknown connector kind 'fax'" in config_error(path, tmp_path)


def test_a_secret_written_in_the_registration_is_refused_without_being_quoted(tmp_path):
    spec = changed(kind="rest", options={"url": "https://api.example.go.id/v1/penduduk",
                                         "auth": {"type": "bearer", "token": "s3cr3t-t0ken-value"}})
    message = config_error(write(tmp_path, spec), tmp_path)
    assert "field options/auth" in message and "s3cr3t-t0ken-value" not in message


# --- local paths stay inside the folders the hub may read -------------------------------------------


def _outside_error(tmp_path: Path, options: dict, kind: str = "file", data_dirs=()) -> str:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    path = write(tmp_path, changed(kind=kind, options=options))
    with pytest.raises(ConfigError) as info:
        load_source(path, home, data_dirs=data_dirs)
    message = str(info.value)
    assert str(path) in message and "outside the folders the hub may read" in message
    return message


@pytest.mark.parametrize("written", ["${HUB_HOME}/../secret.csv", "/etc/passwd", "../../../../../../etc/passwd",
                                     "${HUB_HOME}/demo/../../elsewhere/x.csv"],
                         ids=["dot-dot-after-home", "absolute-elsewhere", "relative-dot-dots", "dot-dots-inside"])
def test_a_file_path_outside_home_is_refused_naming_the_file_and_field(tmp_path, written):
    message = _outside_error(tmp_path, {"path": written, "format": "csv"})
    assert "field options/path" in message and "HUB_DATA_DIRS" in message


def test_a_symbolic_link_pointing_out_of_home_is_refused(tmp_path):
    home = tmp_path / "home"
    (home / "incoming").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.csv").write_text("NIK\n", encoding="utf-8")
    (home / "incoming" / "x.csv").symlink_to(tmp_path / "elsewhere" / "x.csv")
    (home / "linked").symlink_to(tmp_path / "elsewhere")
    for written in ("${HUB_HOME}/incoming/x.csv", "${HUB_HOME}/linked/x.csv", "${HUB_HOME}/linked/not_yet.csv"):
        message = _outside_error(tmp_path, {"path": written})
        assert str(tmp_path / "elsewhere") in message  # the place the link leads to is named


def test_a_file_url_is_refused_as_a_path(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for written in ("file:///etc/passwd", f"file://{home}/x.csv"):
        message = config_error(write(tmp_path, changed(options={"path": written})), home)
        assert "field options/path" in message and "file://" in message


def test_a_path_inside_home_or_a_data_dir_is_accepted(tmp_path):
    home, drop = tmp_path / "home", tmp_path / "drop"
    home.mkdir()
    drop.mkdir()
    (home / "linked").symlink_to(home / "real")  # a link that stays inside is fine
    for written in ("${HUB_HOME}/x.csv", "${HUB_HOME}/linked/x.csv", f"{home}/sub/../x.csv"):
        source = load_source(write(tmp_path, changed(options={"path": written})), home, data_dirs=())
        assert source.options["path"].endswith("x.csv")
    source = load_source(write(tmp_path, changed(options={"path": f"{drop}/dtks.csv"})), home, data_dirs=(drop,))
    assert source.options["path"] == f"{drop}/dtks.csv"
    _outside_error(tmp_path, {"path": f"{drop}/dtks.csv"}, data_dirs=())


def test_data_dirs_come_from_the_hub_data_dirs_setting(tmp_path, monkeypatch):
    home, first, second = tmp_path / "home", tmp_path / "first", tmp_path / "second"
    home.mkdir()
    monkeypatch.setenv("HUB_DATA_DIRS", f"{first}{os.pathsep}{second}")
    for folder in (first, second):
        assert load_source(write(tmp_path, changed(options={"path": f"{folder}/x.csv"})), home)
    monkeypatch.setenv("HUB_DATA_DIRS", str(first))
    message = config_error(write(tmp_path, changed(options={"path": f"{second}/x.csv"})), home)
    assert "outside the folders the hub may read" in message and str(first) in message


def test_a_relative_path_resolves_next_to_the_registration_and_must_stay_inside(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    registry = home / "registry"
    registry.mkdir()
    assert load_source(write(registry, changed(options={"path": "x.csv"})), home)
    with pytest.raises(ConfigError, match="outside the folders"):
        load_source(write(registry, changed(options={"path": "../../x.csv"})), home)


@pytest.mark.parametrize("url", ["sqlite:////etc/hub.db", "sqlite:///../../../../../etc/hub.db",
                                 "sqlite+pysqlite:////etc/hub.db?mode=ro", "sqlite:///file:/etc/hub.db?uri=true"])
def test_a_sqlite_database_outside_home_is_refused(tmp_path, url):
    message = _outside_error(tmp_path, {"url": url, "table": "penduduk"}, kind="sql")
    assert "field options/url" in message


def test_a_sqlite_database_in_home_and_an_in_memory_one_are_accepted(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for url in ("sqlite:///${HUB_HOME}/demo/siak.db", "sqlite://", "sqlite:///:memory:"):
        assert load_source(write(tmp_path, changed(kind="sql", options={"url": url, "table": "t"})), home)


def test_a_kind_from_outside_naming_a_file_url_in_any_option_is_refused(restore_kinds, tmp_path):
    register_kind("memory", MemoryConnector)
    message = _outside_error(tmp_path, {"rows": ["file:///etc/shadow"]}, kind="memory")
    assert "field options/rows/0" in message


# --- hostile YAML -----------------------------------------------------------------------------------


def test_a_registration_larger_than_the_limit_is_refused_unread(tmp_path):
    path = write(tmp_path, VALID)
    with path.open("a", encoding="utf-8") as f:
        f.write("# " + "x" * MAX_REGISTRATION_BYTES + "\n")
    message = config_error(path, tmp_path)
    assert str(path) in message and str(MAX_REGISTRATION_BYTES) in message


def test_a_python_tag_is_refused_without_running_anything(tmp_path):
    text = yaml.safe_dump(VALID).replace("title: Penduduk DTKS (test)",
                                         "title: !!python/object/apply:os.system ['touch pwned']")
    message = config_error(write(tmp_path, text, name="dinsos_test"), tmp_path)
    assert "not valid YAML" in message and "python/object" in message
    assert not (Path.cwd() / "pwned").exists()


def test_an_alias_bomb_is_refused(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
              for i in range(1, 10)]
    text = yaml.safe_dump(VALID) + "\n".join(lines) + "\n"
    message = config_error(write(tmp_path, text, name="dinsos_test"), tmp_path)
    assert "aliases" in message and str(tmp_path) in message


def test_a_self_referring_alias_is_refused(tmp_path):
    text = yaml.safe_dump(VALID) + "extra: &loop [*loop]\n"
    with pytest.raises(ConfigError, match="dinsos_test.yaml"):
        load_source(write(tmp_path, text, name="dinsos_test"), tmp_path)


def test_a_key_written_twice_is_refused_naming_both_lines(tmp_path):
    text = yaml.safe_dump(VALID, sort_keys=False).replace("mapping:\n", "mapping:\n  nik: {from: NIK_LAMA}\n", 1)
    message = config_error(write(tmp_path, text, name="dinsos_test"), tmp_path)
    assert "'nik' is written twice" in message and "first on line" in message


def test_a_yaml_error_names_the_line_but_does_not_quote_it(tmp_path):
    text = yaml.safe_dump(VALID) + 'secret_line: "3271010101900001 Siti Aminah s3cr3t\n  - [\n'
    message = config_error(write(tmp_path, text, name="dinsos_test"), tmp_path)
    assert "not valid YAML" in message and "line " in message
    assert "3271010101900001" not in message and "s3cr3t" not in message and "Siti" not in message


def test_deep_nesting_is_refused(tmp_path):
    text = yaml.safe_dump(VALID) + "deep: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ConfigError, match="dinsos_test.yaml"):
        load_source(write(tmp_path, text, name="dinsos_test"), tmp_path)


def test_a_kind_whose_constructor_fails_on_an_option_gives_a_config_error(tmp_path):
    path = write(tmp_path, changed(kind="sql", options={"url": "not a url at all ::", "table": "t"}))
    message = config_error(path, tmp_path)
    assert str(path) in message and "sql kind" in message


NIK, NAME = "3271014101900042", "Kartini Wulandari"


@pytest.mark.parametrize("fields, where", [
    ({"id": NIK}, "field id: text does not match"),
    ({"id": int(NIK)}, "field id: a number is not of type 'string'"),
    ({"kind": NAME}, "field kind: text does not match"),
    ({"mapping": {NIK: None}}, "field mapping/…: None is not of type 'object'"),
    ({"mapping": {"jenis_kelamin": {"from": "JK", "crosswalk": {NAME: None}}}},
     "field mapping/jenis_kelamin/crosswalk/…: None is not of type 'string'"),
    ({NIK: NAME}, "Additional properties are not allowed ('…' was unexpected)"),
])
def test_a_value_or_key_that_is_no_name_is_described_not_quoted(tmp_path, fields, where):
    """A NIK or a person's name written anywhere in a registration (as a value or as a key) is never quoted by
    its error: only names are; the line says where the rest is."""
    message = config_error(write(tmp_path, {**copy.deepcopy(VALID), **fields}, name="dinsos_test"), tmp_path)
    assert where in message
    assert NIK not in message and NAME not in message
