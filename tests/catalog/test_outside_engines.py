"""Outside engines read the `publik` namespace as `hub catalog engines` tells them, and find what anonymous sees."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import polars as pl
import pytest

from _served import hub, serve
from _venv import tool_venv
from schemas.standards import STANDARDS_DIR

# The residents' standard made `publik` in this test's copy of the standards: a public dataset full of personal data
# (NIK, names, birth dates, addresses), which anonymous sees masked.
PERSONAL = ("nik", "nama", "tanggal_lahir", "alamat")
# DuckDB with its iceberg extension, as wheels from the package registry: the hub's own DuckDB has no extension
# here (its INSTALL downloads from extensions.duckdb.org), and the extensions are built for one DuckDB version.
DUCKDB = ("duckdb==1.5.5", "duckdb-extension-avro==1.5.5", "duckdb-extension-iceberg==1.5.5")
# Run in that virtualenv: install the extensions from their wheels, run the printed settings, print every view.
DUCKDB_READER = """
import importlib.util, json, pathlib, sys
import duckdb

settings, extensions = sys.stdin.read(), sys.argv[1]
connection = duckdb.connect()
connection.execute(f"SET extension_directory = '{extensions}'")
for name in ("avro", "iceberg"):  # what INSTALL would download, taken from the wheels
    package = pathlib.Path(importlib.util.find_spec(f"duckdb_extension_{name}").submodule_search_locations[0])
    connection.execute(f"INSTALL '{next(package.glob(f'extensions/*/{name}.duckdb_extension'))}'")
connection.execute(settings)  # as a user pastes them
views = [v for (v,) in connection.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
print(json.dumps({v: [[None if x is None else str(x) for x in row]
                      for row in connection.execute(f"SELECT * FROM {v}").fetchall()] for v in views}))
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A demo home whose residents (`publik` here) and businesses (`publik`, owners' names `terbatas`) are published."""
    from demo.agencies import build

    home = tmp_path_factory.mktemp("outside-engines")
    build(home, people_count=240, dinsos_count=60)
    standards = home / "standards"
    shutil.copytree(STANDARDS_DIR, standards)
    for path in standards.glob("penduduk-*.json"):
        standard = json.loads(path.read_text())
        path.write_text(json.dumps({**standard, "x-classification": "publik"}, ensure_ascii=False, indent=2))
    env = {"HUB_STANDARDS": str(standards)}
    hub(home, "run", "disdukcapil_siak", env=env)
    hub(home, "run", "dpmptsp_oss", env=env)
    return home, env


def engines(home, env, engine: str) -> str:
    return hub(home, "catalog", "engines", "--engine", engine, env=env).stdout


def public_tables(home, env) -> dict[str, pl.DataFrame]:
    """Every table of the `publik` namespace, read with Polars through the settings `hub catalog engines` prints."""
    space: dict = {}
    exec(engines(home, env, "polars"), space)  # the printed snippet, as a user pastes it
    catalog = space["catalog"]
    return {name: pl.scan_iceberg(catalog.load_table(("publik", name))).collect()
            for _, name in catalog.list_tables("publik")}


def operator_values(home, env) -> set[str]:
    """Every personal value of the residents as the operator reads them, unmasked (`hub query`), and the owners'
    names of the businesses."""
    found = set()
    for dataset, fields in (("disdukcapil_siak", PERSONAL), ("dpmptsp_oss", ("nama_pemilik",))):
        rows = json.loads(hub(home, "query", f"SELECT {', '.join(fields)} FROM {dataset}", "--format", "json",
                              env=env).stdout)
        found |= {str(r[f]) for r in rows for f in fields if r[f] not in (None, "")}
    return found


def test_outside_engines_read_only_what_anonymous_sees(published):
    home, env = published
    tables = public_tables(home, env)
    # Each published dataset anonymous may read, and only those (the indicator on penduduk is public too).
    assert {"disdukcapil_siak", "dpmptsp_oss", "penduduk"} <= set(tables)
    personal = operator_values(home, env)
    assert len(personal) > 500  # the check below is only as good as this list
    for name, frame in tables.items():
        cells = {str(v) for column in frame.columns for v in frame[column].to_list() if v is not None}
        leaked = personal & cells
        assert not leaked, (name, len(leaked))  # counted, never printed
    residents = tables["disdukcapil_siak"]
    assert residents.height > 100
    assert all(n.endswith("*" * 10) and len(n) == 16 for n in residents["nik"].to_list())
    assert set(residents["nama"].drop_nulls().to_list()) == {"***"}
    assert "nama_pemilik" not in tables["dpmptsp_oss"].columns  # terbatas: not even the column

    server, base = serve(home, env)
    try:
        for name, frame in tables.items():
            rows = []
            while True:  # the API's pages, as anonymous reads them
                answer = httpx.get(f"{base}/api/datasets/{name}/rows", params={"limit": 1000, "offset": len(rows)},
                                   timeout=60)
                assert answer.status_code == 200, (name, answer.status_code)
                body = answer.json()
                assert frame.columns == [f["name"] for f in body["fields"]], name
                rows += body["rows"]
                if len(body["rows"]) < 1000:
                    break
            served = pl.DataFrame(rows, schema=frame.columns, orient="row")
            as_text = [pl.col(c).cast(pl.Utf8) for c in frame.columns]
            assert sorted(frame.select(as_text).rows(), key=str) == sorted(served.select(as_text).rows(), key=str), name
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_publish_is_one_public_snapshot_and_a_restricted_dataset_loses_its_table(published):
    home, env = published
    space: dict = {}
    exec(engines(home, env, "polars"), space)
    table = space["catalog"].load_table(("publik", "disdukcapil_siak"))
    before = len(table.metadata.snapshots)
    assert before == 1 and table.current_snapshot().summary.operation.value == "append"
    current = table.current_snapshot().snapshot_id
    hub(home, "run", "disdukcapil_siak", env=env)  # nothing new: the same public table and snapshot
    table = space["catalog"].load_table(("publik", "disdukcapil_siak"))
    assert len(table.metadata.snapshots) == before and table.current_snapshot().snapshot_id == current

    # With the shipped standards the residents are `terbatas` again: their public table goes, files and all.
    location = table.location().removeprefix("file://")
    hub(home, "run", "disdukcapil_siak")
    names = [name for _, name in space["catalog"].list_tables("publik")]
    assert "disdukcapil_siak" not in names and "dpmptsp_oss" in names
    assert not list((home / "warehouse").glob(f"{location.split('/warehouse/', 1)[1]}/data/*.parquet"))
    assert "disdukcapil_siak" not in engines(home, {}, "duckdb")


def test_the_printed_settings_name_the_catalog_and_never_a_password(published, postgres):
    home, env = published
    printed = hub(home, "catalog", "engines", env=env).stdout
    warehouse = (home / "warehouse").as_uri()
    for engine in ("spark-sql", "pyspark", "trino", "duckdb", "polars"):
        assert f"## {engine}" in printed
    assert "spark.sql.catalog.hub.type=jdbc" in printed and f"jdbc:sqlite:{home / 'catalog.db'}" in printed
    assert f"spark.sql.catalog.hub.warehouse={warehouse}" in printed
    duckdb = engines(home, env, "duckdb")
    scan = f"VIEW dpmptsp_oss AS SELECT * FROM iceberg_scan('{home / 'warehouse'}/publik/dpmptsp_oss/metadata/"
    assert scan in duckdb

    # On PostgreSQL (its test cluster trusts loopback: any password connects) the password is a placeholder.
    from sqlalchemy.engine import make_url

    url = make_url(postgres.create_database("engines_settings")).set(password="s3cr3t-value")
    printed = hub(home, "catalog", "engines", env={**env, "HUB_CATALOG_URL": url.render_as_string(False)}).stdout
    assert "s3cr3t-value" not in printed and "<password>" in printed
    assert "iceberg.catalog.type=jdbc" in printed and "iceberg.jdbc-catalog.catalog-name=hub" in printed
    assert "iceberg.jdbc-catalog.connection-url=jdbc:postgresql://" in printed
    postgres.drop_database("engines_settings")


def test_duckdb_reads_the_public_tables_through_the_printed_settings(published, tmp_path):
    home, env = published
    python = tool_venv(*DUCKDB) / "bin" / "python"
    done = subprocess.run([str(python), "-c", DUCKDB_READER, str(tmp_path / "extensions")],
                          input=engines(home, env, "duckdb"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    read = json.loads(done.stdout)
    tables = public_tables(home, env)
    assert set(read) == set(tables)
    for name, frame in tables.items():
        # Text as each engine writes it differs for dates and numbers: compare the columns both write alike.
        alike = [i for i, c in enumerate(frame.columns) if frame[c].dtype == pl.Utf8]
        polars_rows = sorted(([row[i] for i in alike] for row in frame.rows()), key=str)
        duckdb_rows = sorted(([row[i] for i in alike] for row in read[name]), key=str)
        assert alike and len(duckdb_rows) == len(polars_rows) > 0, name
        assert duckdb_rows == polars_rows, name
