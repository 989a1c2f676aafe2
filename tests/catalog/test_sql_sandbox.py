"""The SQL sandbox: no file, network, extension, setting or write; time, row, byte, memory and slot limits.

Two walls stand in the way, and each is tried on its own: the check of the statement (one SELECT over the
datasets, no table function, no settings), through `run_sql`; and the sandbox connection itself (file access
off and configuration locked before it holds anything, data given as Arrow by the access rule), with
statements sent to it directly, as if the check had let them through.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog.identity import Identity
from catalog.query import SPILL, Limits, sandbox
from catalog.sql import run_sql
from hub.errors import Busy, QueryError
from hub.settings import ROOT, Settings

ANALYST = Identity(name="analis", role="analyst", agency=None)


@pytest.fixture(scope="module")
def settings(home, published) -> Settings:
    return Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}", registry=ROOT / "connectors" / "registry")


@pytest.fixture
def box(settings):
    with sandbox(settings, ANALYST, {"penduduk": None, "disdukcapil_siak": None}) as (con, _):
        yield con


def _warehouse_files(settings) -> list[Path]:
    return sorted(p for p in settings.warehouse.rglob("*") if p.is_file())


def _plain_niks(settings) -> set[str]:
    niks = set()
    for path in settings.warehouse.rglob("*.parquet"):
        table = pq.read_table(path)
        if "nik" in table.column_names:
            niks |= {v for v in table["nik"].to_pylist() if v}
    assert len(niks) > 100
    return niks


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
    "read a setting": ("SELECT current_setting('temp_directory')", "current_setting() is not allowed"),
    "write a file": ("COPY (SELECT * FROM penduduk) TO '/tmp/penduduk.csv'", "only SELECT"),
    "export everything": ("EXPORT DATABASE '/tmp/hub-export'", "only SELECT"),
    "attach a database": ("ATTACH '{home}/catalog.db' AS catalog", "only SELECT"),
    "create a table": ("CREATE TABLE copy AS SELECT * FROM penduduk", "only SELECT"),
    "replace a view": ("CREATE OR REPLACE VIEW penduduk AS SELECT 1 AS nik", "only SELECT"),
    "run other SQL inside": ("SELECT * FROM query('SELECT * FROM duckdb_views()')", "query() is not allowed"),
    "read the views' definitions": ("SELECT sql FROM duckdb_views()", "duckdb_views() is not allowed"),
    "two statements": ("SELECT 1; DROP VIEW penduduk", "exactly one SELECT"),
    "a file under a CTE's name, outside its scope": (
        "SELECT * FROM (WITH \"{data_file}\" AS (SELECT 1) SELECT 1) a, \"{data_file}\" b", "unknown dataset"),
    "a schema-qualified name": ("SELECT * FROM temp.main.penduduk", "without a schema"),
    "nested past the parser": ("SELECT " + "(" * 2000 + "1" + ")" * 2000, "expression depth"),
    "nested past the checker": ("SELECT " + "(SELECT " * 300 + "1" + ")" * 300, "nested too deeply"),
}


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_the_check_refuses_it_with_a_clear_error(settings, attempt):
    statement, message = ATTEMPTS[attempt]
    data_file = next(p for p in _warehouse_files(settings) if p.suffix == ".parquet")
    statement = statement.format(warehouse=settings.warehouse, home=settings.home, data_file=data_file)
    with pytest.raises(QueryError, match=re.escape(message)):
        run_sql(settings, statement, ANALYST, "127.0.0.1")


def test_a_cte_hides_a_dataset_only_within_its_own_with(settings):
    """Scope as DuckDB has it: the CTE `penduduk` answers inside its WITH; outside it, the dataset does."""
    inner = run_sql(settings, "SELECT * FROM (WITH penduduk AS (SELECT 42 AS n) SELECT n FROM penduduk)",
                    ANALYST, None)
    assert inner["table"].to_pylist() == [{"n": 42}] and inner["datasets"] == []
    both = run_sql(settings, "SELECT (SELECT count(*) FROM (WITH penduduk AS (SELECT 1) SELECT * FROM penduduk)) AS a,"
                             " (SELECT count(*) FROM penduduk) AS b", ANALYST, None)
    assert both["datasets"] == ["penduduk"] and both["table"].to_pylist()[0]["a"] == 1
    assert both["table"].to_pylist()[0]["b"] > 1


# What the sandbox itself does with each statement the check refuses: the statement fails, or (a table or
# view in the connection's own memory) changes nothing outside it.
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
    "a file under a CTE's name, outside its scope": "Permission Error",
}


@pytest.mark.parametrize("attempt", LOCKED)
def test_the_sandbox_refuses_it_even_past_the_check(settings, box, attempt):
    import duckdb

    data_file = next(p for p in _warehouse_files(settings) if p.suffix == ".parquet")
    statement = ATTEMPTS[attempt][0].format(warehouse=settings.warehouse, home=settings.home, data_file=data_file)
    with pytest.raises(duckdb.Error, match=re.escape(LOCKED[attempt])):
        box.execute(statement).fetchall()


def test_no_file_of_the_warehouse_or_the_home_is_within_the_sandboxs_reach(settings, box):
    """Every data, metadata and manifest file, by name and through each reading function, and a listing of
    every folder: all refused by the connection itself."""
    import duckdb

    files = _warehouse_files(settings) + [settings.home / "catalog.db", settings.home / "secrets" / "pseudonym.key"]
    assert any(p.suffix == ".avro" for p in files) and any(p.name.endswith(".metadata.json") for p in files)
    for path in files:
        for statement in (f"SELECT * FROM '{path}'", f"SELECT * FROM \"{path}\"", f"SELECT * FROM read_blob('{path}')",
                          f"SELECT * FROM read_text('{path}')", f"SELECT * FROM parquet_metadata('{path}')"):
            with pytest.raises(duckdb.Error, match="Permission Error|Catalog Error"):
                box.execute(statement).fetchall()
    for folder in {p.parent for p in files} | {settings.home, Path("/")}:
        with pytest.raises(duckdb.Error, match="Permission Error"):
            box.execute(f"SELECT * FROM glob('{folder}/*')").fetchall()


def test_the_sandbox_holds_no_plain_value_and_names_no_file_but_its_own_spill_folder(settings, box):
    niks = box.execute("SELECT DISTINCT nik FROM penduduk UNION SELECT DISTINCT nik FROM disdukcapil_siak").fetchall()
    assert niks and all(n is None or n.startswith("psn_") for (n,) in niks)
    assert not {n for (n,) in niks} & _plain_niks(settings)
    [(spill,)] = box.execute("SELECT current_setting('temp_directory')").fetchall()
    assert Path(spill).parent == settings.home / SPILL
    named = [value for _, value in box.execute("SELECT name, value FROM duckdb_settings()").fetchall()
             if str(value).startswith(("/", "[/", "~"))]
    assert all(spill in value for value in named), named
    views = " ".join(str(r) for r in box.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall())
    assert str(settings.home) not in views and "python_arrow_scan()" in views


def test_the_spill_folder_is_the_connections_own_and_goes_with_it(settings):
    with sandbox(settings, ANALYST, {"penduduk": None}) as (con, _):
        [(spill,)] = con.execute("SELECT current_setting('temp_directory')").fetchall()
        assert Path(spill).is_dir() and list(Path(spill).iterdir()) == []
    assert not Path(spill).exists()


def test_memory_and_spill_are_split_between_the_slots(settings, monkeypatch):
    monkeypatch.setenv("HUB_QUERY_MEMORY", "2GB")
    monkeypatch.setenv("HUB_QUERY_SPILL", "8GB")
    monkeypatch.setenv("HUB_QUERY_SLOTS", "4")
    with sandbox(settings, ANALYST, {}) as (con, _):
        memory, spill = con.execute("SELECT current_setting('memory_limit'), "
                                    "current_setting('max_temp_directory_size')").fetchall()[0]
    assert memory.replace(" ", "") in ("476.8MiB", "476.8MB", "500.0MB")
    assert spill.replace(" ", "") in ("1.8GiB", "1.9GiB", "2.0GB")


def test_a_query_over_its_memory_share_fails_cleanly(settings, monkeypatch):
    monkeypatch.setenv("HUB_QUERY_MEMORY", "64MB")
    monkeypatch.setenv("HUB_QUERY_SPILL", "1MB")
    with pytest.raises(QueryError, match="(?i)memory|temp|disk"):
        run_sql(settings, "SELECT count(DISTINCT md5(i::VARCHAR)) FROM range(20000000) t(i)", ANALYST, None)


def test_when_every_slot_is_taken_and_the_queue_is_full_the_next_is_refused_at_once(settings):
    limits = Limits(slots=1, queue=0, wait_seconds=30, memory_bytes=1 << 30, spill_bytes=1 << 30,
                    timeout_seconds=30, answer_bytes=1 << 20)
    held, release = threading.Event(), threading.Event()

    def hold():
        with sandbox(settings, ANALYST, {}, limits):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        with pytest.raises(Busy, match="try again") as refused:
            run_sql(settings, "SELECT 1", ANALYST, None, limits=limits)
        assert refused.value.retry_after >= 1
    finally:
        release.set()
        holder.join()
    assert run_sql(settings, "SELECT 1 AS n", ANALYST, None, limits=limits)["table"].to_pylist() == [{"n": 1}]


def test_a_waiting_query_runs_when_a_slot_comes_free(settings):
    limits = Limits(slots=1, queue=1, wait_seconds=30, memory_bytes=1 << 30, spill_bytes=1 << 30,
                    timeout_seconds=30, answer_bytes=1 << 20)
    held = threading.Event()

    def hold():
        with sandbox(settings, ANALYST, {}, limits):
            held.set()
            threading.Event().wait(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    assert run_sql(settings, "SELECT 2 AS n", ANALYST, None, limits=limits)["table"].to_pylist() == [{"n": 2}]
    holder.join()


def test_the_time_limit_stops_a_query_and_the_row_and_byte_limits_cut_one(settings, monkeypatch):
    with pytest.raises(QueryError, match="stopped after its time limit of 0.5 s"):
        run_sql(settings, "SELECT count(*) FROM range(10000000000) a, range(10) b", ANALYST, None, timeout=0.5)
    cut = run_sql(settings, "SELECT * FROM range(100000)", ANALYST, None, max_rows=7)
    assert cut["table"].num_rows == 7 and cut["truncated"] is True
    whole = run_sql(settings, "SELECT * FROM range(7)", ANALYST, None, max_rows=7)
    assert whole["table"].num_rows == 7 and whole["truncated"] is False
    monkeypatch.setenv("HUB_MAX_ANSWER_BYTES", "1MB")
    wide = run_sql(settings, "SELECT repeat('x', 100000) AS text FROM range(1000)", ANALYST, None)
    assert 0 < wide["table"].num_rows < 11 and wide["truncated"] is True and wide["table"].nbytes <= 1_000_000
    with pytest.raises(QueryError, match="first row is larger than the 1000000 bytes"):
        run_sql(settings, "SELECT repeat('x', 2000000) AS text", ANALYST, None)


def test_a_bad_limit_setting_names_the_setting(settings, monkeypatch):
    from hub.errors import ConfigError

    monkeypatch.setenv("HUB_QUERY_MEMORY", "lots")
    with pytest.raises(ConfigError, match="HUB_QUERY_MEMORY='lots'"):
        run_sql(settings, "SELECT 1", ANALYST, None)


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


def test_a_full_server_answers_503_with_retry_after_and_keeps_serving_others(home, published, tokens):
    """`hub serve` with one query slot and no queue: while a slow query holds the slot, the next query on every
    SQL path gets 503 and Retry-After at once, and other requests are answered."""
    import time

    import httpx

    from _served import serve

    server, base = serve(home, env={"HUB_QUERY_SLOTS": "1", "HUB_QUERY_QUEUE": "0", "HUB_QUERY_TIMEOUT_SECONDS": "20"})
    try:
        analyst = tokens["analis"]
        slow = threading.Thread(target=lambda: httpx.post(
            f"{base}/api/sql", headers=analyst, timeout=60,
            json={"sql": "SELECT count(*) FROM range(10000000000) a, range(10) b"}))
        slow.start()
        time.sleep(2)  # the slow query has its slot
        token = analyst["Authorization"].removeprefix("Bearer ")
        answers = {
            "api": httpx.post(f"{base}/api/sql", headers=analyst, json={"sql": "SELECT 1"}, timeout=60),
            "rows": httpx.get(f"{base}/api/datasets/penduduk/rows", headers=analyst, timeout=60),
            "ckan": httpx.post(f"{base}/api/3/action/datastore_search_sql", headers=analyst, timeout=60,
                               json={"sql": "SELECT 1"}),
            "portal": httpx.post(f"{base}/sql", data={"sql": "SELECT 1"}, cookies={"hub_token": token}, timeout=60),
        }
        for path, answer in answers.items():
            assert answer.status_code == 503, (path, answer.status_code, answer.text[:300])
            assert int(answer.headers["retry-after"]) >= 1, path
            assert "try again" in answer.text, path
        assert httpx.get(f"{base}/api/datasets", headers=analyst, timeout=60).status_code == 200
        preview = httpx.get(f"{base}/dataset/penduduk", cookies={"hub_token": token}, timeout=60)
        assert preview.status_code == 200 and "try again" in preview.text  # the page, with the preview's reason
        slow.join()
        assert httpx.post(f"{base}/api/sql", headers=analyst, json={"sql": "SELECT 1 AS n"},
                          timeout=60).json()["rows"] == [{"n": 1}]
    finally:
        server.terminate()
        server.wait(timeout=30)
