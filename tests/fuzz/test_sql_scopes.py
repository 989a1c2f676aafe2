"""Fuzz: statements that mix dataset names, CTE names and file names in nested scopes.

Two properties, each over generated statements:
- the check resolves names as DuckDB does: run on a plain DuckDB where every dataset, every file and every
  other table is a table that names itself, a statement the check lets through reads no file and no table
  but the datasets, and every dataset DuckDB read is one the check named (so the sandbox gets it). (The
  check may refuse more: a name in a CTE nobody uses, which DuckDB never looks up.)
- the sandbox holds whatever the check would have said: sent straight to a caller's sandbox, a statement that
  names the warehouse's own raw files either fails or answers without one plain NIK.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.identity import Identity
from catalog.query import sandbox
from catalog.sql import _check
from hub.errors import QueryError
from hub.settings import ROOT, Settings

from ._hostile import budget

DATASETS = ("penduduk", "disdukcapil_siak", "dinsos_dtks")
ANALYST = Identity(name="analis", role="analyst", agency=None)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def statements(files: list[str], everything: bool):
    """SELECTs over `src` (or `*` when `everything`) from datasets, files and CTEs, nested in subqueries,
    WITHs, UNIONs and lateral joins; CTE names are drawn from the same names as tables."""
    column = "*" if everything else "src"
    union = "UNION ALL BY NAME" if everything else "UNION ALL"
    names = st.sampled_from([*DATASETS, *(_quoted(f) for f in files), "c1", "c2"])
    tables = st.one_of(
        names,
        st.sampled_from(DATASETS).map(_quoted),
        st.sampled_from(files).map(lambda f: "'" + f + "'"),
    )

    def nest(inner):
        return st.one_of(
            inner.map(lambda s: f"(SELECT {column} FROM {s} AS t)"),
            st.tuples(inner, inner).map(lambda p: f"(SELECT {column} FROM {p[0]} AS t {union} "
                                                  f"SELECT {column} FROM {p[1]} AS u)"),
            st.tuples(names, inner, inner).map(lambda p: f"(WITH {p[0]} AS (SELECT {column} FROM {p[1]} AS t) "
                                                         f"SELECT {column} FROM {p[2]} AS u)"),
            inner.map(lambda s: f"(SELECT l.{column} FROM (SELECT 1 AS one) AS o, "
                                f"LATERAL (SELECT {column} FROM {s} AS t) AS l)"),
        )

    sources = st.recursive(tables, nest, max_leaves=6)
    top = st.one_of(
        sources.map(lambda s: f"SELECT {column} FROM {s} AS top"),
        st.tuples(names, sources, sources).map(lambda p: f"WITH {p[0]} AS (SELECT {column} FROM {p[1]} AS t) "
                                                         f"SELECT {column} FROM {p[2]} AS top"),
    )
    return top


@pytest.fixture(scope="module")
def settings(home, published) -> Settings:
    return Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}", registry=ROOT / "connectors" / "registry")


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    """A plain DuckDB where each dataset is a table holding its own name, and files that hold theirs."""
    folder = tmp_path_factory.mktemp("marked")
    files = []
    for name in ("a", "b"):
        path = folder / f"{name}.parquet"
        pq.write_table(pa.table({"src": [f"file:{name}"]}), path)
        files.append(str(path))
    con = duckdb.connect(":memory:")
    for d in DATASETS:
        con.execute(f"CREATE TABLE {d} AS SELECT 'dataset:{d}' AS src")
    for other in ("c1", "c2"):  # names that are CTEs in some statements: elsewhere, tables that are no dataset
        con.execute(f"CREATE TABLE {other} AS SELECT 'other:{other}' AS src")
    yield con, files
    con.close()


def test_the_check_resolves_names_as_duckdb_does(marked):
    con, files = marked
    parser = duckdb.connect(":memory:")

    @budget(300)
    @given(statements(files, everything=False))
    def agree(sql):
        try:
            read_by_duckdb = {src for (src,) in con.execute(sql).fetchall()}
        except duckdb.Error:
            return  # not a statement DuckDB answers (a CTE used outside its scope, say)
        try:
            named = _check(parser, sql, set(DATASETS), {})
        except QueryError:
            return
        assert not {s for s in read_by_duckdb if not s.startswith("dataset:")}, f"the check let through: {sql}"
        assert {s.removeprefix("dataset:") for s in read_by_duckdb} <= named, f"a dataset read is not named: {sql}"

    agree()


def test_the_sandbox_reads_no_raw_file_whatever_the_statement(settings):
    files = sorted(str(p) for p in settings.warehouse.rglob("*.parquet"))
    niks = set()
    for path in files:
        table = pq.read_table(path)
        if "nik" in table.column_names:
            niks |= {v for v in table["nik"].to_pylist() if v}
    assert files and niks

    with sandbox(settings, ANALYST, dict.fromkeys(DATASETS)) as (con, _):
        @budget(200)
        @given(statements(files, everything=True))
        def holds(sql):
            try:
                answer = con.sql(sql).to_arrow_table()
            except duckdb.Error:
                return
            if "nik" in answer.column_names:
                assert not set(answer["nik"].to_pylist()) & niks, f"a plain NIK came out of: {sql}"

        holds()
