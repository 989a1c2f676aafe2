"""The `sql` kind on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import importlib.util
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from connectors.base import ROW
from tests.connectors.conformance import IncrementalConformance
from connectors.sql import SqlConnector
from connectors.registry import Source
from hub.errors import ConfigError, FatalSourceError, RetriableSourceError

UNREACHABLE = "postgresql+psycopg2://hub@127.0.0.1:1/x"


def sql_source(tmp_path: Path, **options) -> Source:
    return Source(
        id="siak_test", title="SIAK test", description="", agency_code="disdukcapil", agency_name="Disdukcapil",
        standard_ref="penduduk@1.0.0", kind="sql", schedule=None, options=options,
        mapping={"nik": {"from": "nik"}}, path=tmp_path / "siak_test.yaml",
    )


def insert(url: str, first: int, last: int) -> None:
    """Rows first..last: code with leading zeros, a birth date, an age and a change time that grows with the row."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO penduduk (kode, tgl_lahir, umur, updated_at) VALUES (:kode, :tgl, :umur, :ts)"),
                [{"kode": f"{i:04d}", "tgl": f"1990-08-{i:02d}", "umur": i, "ts": f"2024-01-01 00:00:{i:02d}"}
                 for i in range(first, last + 1)],
            )
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A database holding table `penduduk` with rows 1..20."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'siak.db'}"
    else:
        name = f"siak_{zlib.crc32(request.node.nodeid.encode()) % 10**8}"
        url = request.getfixturevalue("postgres").create_database(name)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "CREATE TABLE penduduk (kode VARCHAR(10) NOT NULL, tgl_lahir DATE, umur INTEGER, updated_at TIMESTAMP)"
            ))
    finally:
        engine.dispose()
    insert(url, 1, 20)
    return url


def read_all(connector, cursor=None) -> list:
    return list(connector.read(cursor))


def rows_of(batches) -> list[dict]:
    return [row for b in batches for row in b.records.to_pylist()]


def test_values_come_back_as_text_with_leading_zeros_kept(db_url, tmp_path):
    batches = read_all(SqlConnector(sql_source(tmp_path, url=db_url, table="penduduk")))
    schema = batches[0].records.schema
    assert [schema.field(c).type for c in ["kode", "tgl_lahir", "umur", "updated_at"]] == [pa.string()] * 4
    assert schema.field(ROW).type == pa.int64()
    first = sorted(rows_of(batches), key=lambda r: r["kode"])[0]
    assert first["kode"] == "0001"
    assert first["tgl_lahir"] == "1990-08-01"
    assert first["umur"] == "1"
    assert first["updated_at"].replace("T", " ") == "2024-01-01 00:00:01"


def test_batches_never_exceed_batch_rows(db_url, tmp_path):
    batches = read_all(SqlConnector(sql_source(tmp_path, url=db_url, table="penduduk", cursor_column="updated_at",
                                               batch_rows=7)))
    assert [b.records.num_rows for b in batches] == [7, 7, 6]
    rows = rows_of(batches)
    assert [r[ROW] for r in rows] == list(range(1, 21))
    assert [r["kode"] for r in rows] == [f"{i:04d}" for i in range(1, 21)]


def test_each_batch_cursor_is_the_last_change_time_and_json_storable(db_url, tmp_path):
    batches = read_all(SqlConnector(sql_source(tmp_path, url=db_url, table="penduduk", cursor_column="updated_at",
                                               batch_rows=7)))
    cursors = [b.cursor for b in batches]
    assert [c.replace("T", " ") for c in cursors] == ["2024-01-01 00:00:07", "2024-01-01 00:00:14",
                                                      "2024-01-01 00:00:20"]
    assert json.loads(json.dumps(cursors)) == cursors


def test_a_batch_fetched_in_parts_is_whole_with_its_rows_and_cursor(db_url, tmp_path, monkeypatch):
    import connectors.sql

    monkeypatch.setattr(connectors.sql, "FETCH_ROWS", 3)  # batches of 7 fetched 3, 3 and 1 rows at a time
    batches = read_all(SqlConnector(sql_source(tmp_path, url=db_url, table="penduduk", cursor_column="updated_at",
                                               batch_rows=7)))
    assert [b.records.num_rows for b in batches] == [7, 7, 6]
    assert [b.cursor.replace("T", " ") for b in batches] == ["2024-01-01 00:00:07", "2024-01-01 00:00:14",
                                                             "2024-01-01 00:00:20"]
    rows = rows_of(batches)
    assert [r[ROW] for r in rows] == list(range(1, 21))
    assert [(r["kode"], r["umur"]) for r in rows] == [(f"{i:04d}", str(i)) for i in range(1, 21)]


def test_reading_after_the_last_cursor_returns_nothing(db_url, tmp_path):
    connector = SqlConnector(sql_source(tmp_path, url=db_url, table="penduduk", cursor_column="updated_at",
                                        batch_rows=7))
    last = read_all(connector)[-1].cursor
    assert rows_of(read_all(connector, last)) == []


def test_reading_after_the_cursor_returns_only_newer_rows(db_url, tmp_path):
    connector = SqlConnector(sql_source(tmp_path, url=db_url, table="penduduk", cursor_column="updated_at",
                                        batch_rows=7))
    last = json.loads(json.dumps(read_all(connector)[-1].cursor))  # as the catalog stores it
    insert(db_url, 21, 23)
    batches = read_all(connector, last)
    rows = rows_of(batches)
    assert [r["kode"] for r in rows] == ["0021", "0022", "0023"]
    assert [r[ROW] for r in rows] == [1, 2, 3]
    assert batches[-1].cursor.replace("T", " ") == "2024-01-01 00:00:23"


def test_incremental_only_with_a_cursor_column(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert SqlConnector(sql_source(tmp_path, url=url, table="penduduk", cursor_column="updated_at")).incremental
    assert not SqlConnector(sql_source(tmp_path, url=url, table="penduduk")).incremental


def test_full_read_has_no_cursor(db_url, tmp_path):
    batches = read_all(SqlConnector(sql_source(tmp_path, url=db_url, table="penduduk", batch_rows=7)))
    assert sum(b.records.num_rows for b in batches) == 20
    assert all(b.cursor is None for b in batches)


def test_query_option_reads_instead_of_a_table(db_url, tmp_path):
    connector = SqlConnector(sql_source(tmp_path, url=db_url, query="SELECT kode, umur FROM penduduk WHERE umur > 15",
                                        batch_rows=3))
    connector.check()
    batches = read_all(connector)
    assert [b.records.num_rows for b in batches] == [3, 2]
    rows = rows_of(batches)
    assert batches[0].records.column_names == ["kode", "umur", ROW]
    assert [r[ROW] for r in rows] == [1, 2, 3, 4, 5]
    assert sorted((r["kode"], r["umur"]) for r in rows) == [(f"{i:04d}", str(i)) for i in range(16, 21)]


def test_query_option_with_cursor_column_is_incremental(db_url, tmp_path):
    connector = SqlConnector(sql_source(tmp_path, url=db_url, query="SELECT * FROM penduduk",
                                        cursor_column="updated_at"))
    middle = read_all(SqlConnector(sql_source(tmp_path, url=db_url, query="SELECT * FROM penduduk",
                                              cursor_column="updated_at", batch_rows=14)))[0].cursor
    assert [r["kode"] for r in rows_of(read_all(connector, middle))] == [f"{i:04d}" for i in range(15, 21)]


def test_check_passes_on_an_existing_table(db_url, tmp_path):
    SqlConnector(sql_source(tmp_path, url=db_url, table="penduduk")).check()


def test_check_on_a_missing_table_is_fatal(db_url, tmp_path):
    with pytest.raises(FatalSourceError, match="'tidak_ada'"):
        SqlConnector(sql_source(tmp_path, url=db_url, table="tidak_ada")).check()


@pytest.mark.parametrize("db_url", [
    "sqlite",
    "postgresql",
], indirect=True)
def test_read_of_a_missing_table_is_fatal(db_url, tmp_path):
    with pytest.raises(FatalSourceError):
        read_all(SqlConnector(sql_source(tmp_path, url=db_url, table="tidak_ada")))


@pytest.mark.parametrize("db_url", [
    "sqlite",
    "postgresql",
], indirect=True)
def test_missing_cursor_column_is_fatal(db_url, tmp_path):
    with pytest.raises(FatalSourceError, match="diubah_pada"):
        read_all(SqlConnector(sql_source(tmp_path, url=db_url, table="penduduk", cursor_column="diubah_pada")))


def test_unreachable_server_is_retriable_from_check(tmp_path):
    with pytest.raises(RetriableSourceError, match="siak_test"):
        SqlConnector(sql_source(tmp_path, url=UNREACHABLE, table="penduduk")).check()


def test_unreachable_server_is_retriable_from_read(tmp_path):
    with pytest.raises(RetriableSourceError, match="siak_test"):
        read_all(SqlConnector(sql_source(tmp_path, url=UNREACHABLE, table="penduduk")))


def test_url_env_reads_the_url_from_the_environment(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAK_TEST_URL", db_url)
    connector = SqlConnector(sql_source(tmp_path, url_env="SIAK_TEST_URL", table="penduduk"))
    connector.check()
    assert len(rows_of(read_all(connector))) == 20
    assert db_url not in connector.describe()


def test_missing_url_env_variable_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SIAK_TEST_URL", raising=False)
    connector = SqlConnector(sql_source(tmp_path, url_env="SIAK_TEST_URL", table="penduduk"))
    with pytest.raises(ConfigError, match="SIAK_TEST_URL"):
        connector.check()
    with pytest.raises(ConfigError, match="SIAK_TEST_URL"):
        read_all(connector)


def test_an_unreadable_url_in_url_env_is_a_config_error_that_does_not_quote_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAK_TEST_URL", "postgresql//siak:rahasia-sekali@db/siak")  # the ':' forgotten
    connector = SqlConnector(sql_source(tmp_path, url_env="SIAK_TEST_URL", table="penduduk"))
    with pytest.raises(ConfigError) as info:
        connector.check()
    assert "cannot be read" in str(info.value) and "rahasia-sekali" not in str(info.value)


def test_url_with_a_password_is_refused_pointing_to_url_env_or_connection(tmp_path):
    with pytest.raises(ConfigError, match="url_env") as info:
        SqlConnector(sql_source(tmp_path, url="postgresql+psycopg2://hub:s3cret@127.0.0.1/siak", table="penduduk"))
    assert "connection" in str(info.value) and "s3cret" not in str(info.value)


# --- the connector conformance suite ------------------------------------------------------------------


class TestSqlConformance(IncrementalConformance):
    """A table with typed columns (integer, text, float, boolean) on SQLite and PostgreSQL."""

    @pytest.fixture(autouse=True, params=["sqlite", "postgresql"])
    def database(self, request, tmp_path):
        if request.param == "sqlite":
            self.url = f"sqlite:///{tmp_path / 'uji.db'}"
        else:
            name = f"uji_{zlib.crc32(request.node.nodeid.encode()) % 10**8}"
            self.url = request.getfixturevalue("postgres").create_database(name)

    TABLE = sa.Table(
        "uji", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False), sa.Column("kode", sa.String(10)),
        sa.Column("nama", sa.String(100)), sa.Column("jumlah", sa.Integer), sa.Column("nilai", sa.Float),
        sa.Column("aktif", sa.Boolean), sa.Column("catatan", sa.String(100)),
    )

    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        engine = sa.create_engine(self.url)
        try:
            self.TABLE.create(engine)
            with engine.begin() as conn:
                conn.execute(self.TABLE.insert(), records)
        finally:
            engine.dispose()
        options = {"url": self.url, "table": "uji", "batch_rows": batch_rows}
        return sql_source(tmp_path, **options, **({"cursor_column": "id"} if incremental else {}))

    def add_records(self, source, records):
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as conn:
                conn.execute(self.TABLE.insert(), records)
        finally:
            engine.dispose()

    def unreachable_source(self, tmp_path):
        url = UNREACHABLE if self.url.startswith("postgresql") else f"sqlite:///{tmp_path / 'gone' / 'uji.db'}"
        return sql_source(tmp_path, url=url, table="uji")


@pytest.mark.parametrize("url, driver", [("mysql+pymysql://hub@db.example/siak", "pymysql"),
                                         ("mssql+pyodbc://hub@db.example/siak", "pyodbc")])
def test_a_database_whose_driver_is_not_installed_is_named(tmp_path, url, driver):
    if importlib.util.find_spec(driver):
        pytest.skip(f"{driver} is installed here")  # the pinned environment has neither
    connector = SqlConnector(sql_source(tmp_path, url=url, table="penduduk"))
    with pytest.raises(ConfigError, match=f"the database driver '{driver}' .* is not installed"):
        connector.check()
