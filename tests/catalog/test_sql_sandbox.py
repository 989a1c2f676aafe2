"""The SQL sandbox: no file, network, extension, setting or write, time and row limits; each tried for real.

Two walls stand in the way, and each is tried on its own: the check of the statement (one SELECT over the
datasets, no table function, no hub function), through `POST /api/sql`; and the DuckDB connection itself
(external access off, only the snapshots' own files allowed, configuration locked), with statements sent to
it directly, as if the check had let them through.
"""

from __future__ import annotations

import re

import pytest

from catalog.identity import Identity
from catalog.query import connect
from catalog.sql import run_sql
from hub.errors import QueryError
from hub.settings import ROOT, Settings

ANALYST = Identity(name="analis", role="analyst", agency=None)


@pytest.fixture(scope="module")
def settings(home, published) -> Settings:
    return Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}", registry=ROOT / "connectors" / "registry")


@pytest.fixture
def sandbox(settings):
    con = connect(settings, ANALYST, sandboxed=True)
    yield con
    con.close()


ATTEMPTS = {  # what an analyst might try -> (statement, what the check answers)
    "read a file": ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"),
    "read a file as text": ("SELECT * FROM read_text('/etc/hostname')", "read_text() is not allowed"),
    "read a file by name": ("SELECT * FROM '/etc/passwd'", "unknown dataset '/etc/passwd'"),
    "read a warehouse file": ("SELECT * FROM read_parquet('{warehouse}/**/*.parquet')", "read_parquet() is not allowed"),
    "list files": ("SELECT * FROM glob('/*')", "glob() is not allowed"),
    "reach the network": ("SELECT * FROM read_parquet('https://example.org/x.parquet')", "read_parquet() is not allowed"),
    "reach the network by name": ("SELECT * FROM 'https://example.org/x.csv'", "unknown dataset"),
    "install an extension": ("INSTALL httpfs", "only SELECT"),
    "load an extension": ("LOAD httpfs", "only SELECT"),
    "change a setting": ("SET enable_external_access = true", "only SELECT"),
    "change a setting by pragma": ("PRAGMA threads=1", "only SELECT"),
    "unlock the configuration": ("RESET lock_configuration", "only SELECT"),
    "read the settings": ("SELECT * FROM duckdb_settings()", "duckdb_settings() is not allowed"),
    "write a file": ("COPY (SELECT * FROM penduduk) TO '/tmp/penduduk.csv'", "only SELECT"),
    "export everything": ("EXPORT DATABASE '/tmp/hub-export'", "only SELECT"),
    "attach a database": ("ATTACH '{home}/catalog.db' AS catalog", "only SELECT"),
    "create a table": ("CREATE TABLE copy AS SELECT * FROM penduduk", "only SELECT"),
    "replace a view": ("CREATE OR REPLACE VIEW penduduk AS SELECT 1 AS nik", "only SELECT"),
    "run other SQL inside": ("SELECT * FROM query('SELECT * FROM duckdb_views()')", "query() is not allowed"),
    "read the views' definitions": ("SELECT sql FROM duckdb_views()", "duckdb_views() is not allowed"),
    "two statements": ("SELECT 1; DROP VIEW penduduk", "exactly one SELECT"),
}


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_the_check_refuses_it_with_a_clear_error(settings, attempt):
    statement, message = ATTEMPTS[attempt]
    statement = statement.format(warehouse=settings.warehouse, home=settings.home)
    with pytest.raises(QueryError, match=re.escape(message)):
        run_sql(settings, statement, ANALYST, "127.0.0.1")


# What the connection itself does with each statement the check refuses: the statement fails, or (a table
# or view in the connection's own memory) changes nothing outside it.
LOCKED = {
    "read a file": "Permission Error",
    "read a file as text": "Permission Error",
    "read a file by name": "does not exist",
    "read a warehouse file": "Permission Error",
    "list files": "Permission Error",
    "reach the network": "Permission Error",
    "install an extension": "Permission Error",
    "load an extension": "Loading external extensions is disabled",
    "change a setting": "Cannot change configuration option",
    "change a setting by pragma": "Cannot change configuration option",
    "unlock the configuration": "Cannot change configuration option",
    "write a file": "Permission Error",
    "export everything": "Permission Error",
    "attach a database": "Permission Error",
}


@pytest.mark.parametrize("attempt", LOCKED)
def test_the_connection_refuses_it_even_past_the_check(settings, sandbox, attempt):
    import duckdb

    statement = ATTEMPTS[attempt][0].format(warehouse=settings.warehouse, home=settings.home)
    with pytest.raises(duckdb.Error, match=re.escape(LOCKED[attempt])):
        sandbox.execute(statement).fetchall()


def test_the_connection_has_a_memory_limit(sandbox):
    [(limit,)] = sandbox.execute("SELECT current_setting('memory_limit')").fetchall()
    assert limit.replace(" ", "") in ("1.8GiB", "1.9GiB", "2.0GiB", "2GB")


def test_nothing_written_in_the_connection_outlives_it(settings, sandbox):
    """A table made in a sandbox's own memory (were the check passed) is gone with it; the datasets are whole."""
    before = run_sql(settings, "SELECT count(*) AS n FROM penduduk", ANALYST, None)["table"].to_pylist()
    sandbox.execute("CREATE OR REPLACE VIEW penduduk AS SELECT 1 AS n")
    assert sandbox.execute("SELECT * FROM penduduk").fetchall() == [(1,)]
    assert run_sql(settings, "SELECT count(*) AS n FROM penduduk", ANALYST, None)["table"].to_pylist() == before


def test_the_time_limit_stops_a_query_and_the_row_limit_cuts_one(settings):
    with pytest.raises(QueryError, match="stopped after its time limit of 0.5 s"):
        run_sql(settings, "SELECT count(*) FROM range(10000000000) a, range(10) b", ANALYST, None, timeout=0.5)
    cut = run_sql(settings, "SELECT * FROM range(100000)", ANALYST, None, max_rows=7)
    assert cut["table"].num_rows == 7 and cut["truncated"] is True
    whole = run_sql(settings, "SELECT * FROM range(7)", ANALYST, None, max_rows=7)
    assert whole["table"].num_rows == 7 and whole["truncated"] is False


def test_every_refusal_is_in_the_audit_log_without_its_text(settings):
    import json

    from catalog.audit import recent

    secret_looking = "SELECT * FROM read_csv('/etc/shadow') WHERE x = '3271010101900001'"
    with pytest.raises(QueryError):
        run_sql(settings, secret_looking, ANALYST, "10.1.2.3")
    entry = recent(settings, limit=1)[0]
    assert (entry["actor"], entry["action"], entry["client"], entry["details"]["outcome"]) == (
        "analis", "sql.query", "10.1.2.3", "refused")
    assert "3271010101900001" not in json.dumps(entry) and "shadow" not in json.dumps(entry)
