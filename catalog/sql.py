"""Analysts' SQL over the catalog: one read-only SELECT over the views the caller may read, within a time and a row limit."""

from __future__ import annotations

import json
import threading
import time

import duckdb
import pyarrow as pa

from catalog import audit
from catalog.access import listed
from catalog.identity import Identity
from catalog.masking import PSEUDONYM_FUNCTION
from catalog.query import connect
from hub.errors import QueryError

__all__ = ["MAX_ROWS", "TIMEOUT_SECONDS", "run_sql"]

MAX_ROWS = 10_000
TIMEOUT_SECONDS = 30.0
# Table functions that only make values; every other one (read_parquet, read_csv, glob, query, ...) could
# reach past the datasets' views.
_SAFE_TABLE_FUNCTIONS = {"range", "generate_series", "unnest"}


def _references(node, tables: set[str], functions: set[str], ctes: set[str], calls: set[str]) -> None:
    """Every table, table function, CTE and function name in a parsed statement (DuckDB's JSON syntax tree)."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            tables.add(".".join(filter(None, (node.get("catalog_name"), node.get("schema_name"),
                                              node.get("table_name")))))
        elif kind == "TABLE_FUNCTION":
            functions.add(node["function"]["function_name"].lower())
        elif kind == "FUNCTION" and node.get("class") == "FUNCTION":
            calls.add(str(node.get("function_name", "")).lower())
        for entry in (node.get("cte_map") or {}).get("map", []):
            ctes.add(entry["key"])
        for value in node.values():
            _references(value, tables, functions, ctes, calls)
    elif isinstance(node, list):
        for value in node:
            _references(value, tables, functions, ctes, calls)


def _check(con: duckdb.DuckDBPyConnection, sql: str, datasets: set[str], unreadable: dict) -> set[str]:
    """The datasets `sql` reads, once it is known to be one SELECT that reads nothing else.

    `datasets` are those the caller may read; `unreadable` those it may know of but not read (their Access),
    which are refused with the reason rather than as unknown. `con` only parses.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise QueryError(str(e)) from None
    if len(statements) != 1:
        raise QueryError(f"send exactly one SELECT statement, not {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise QueryError(f"only SELECT is allowed, not {statements[0].type.name}")
    tree = json.loads(con.execute("SELECT json_serialize_sql($sql)", {"sql": sql}).fetchall()[0][0])
    if tree.get("error"):
        raise QueryError(f"this SELECT cannot be checked: {tree.get('error_message', 'unsupported syntax')}")
    tables, functions, ctes, calls = set(), set(), set(), set()
    _references(tree["statements"], tables, functions, ctes, calls)
    for name in sorted(tables - datasets - ctes):
        if name in unreadable:
            unreadable[name].require_readable()
    unknown = sorted(tables - datasets - ctes)
    if unknown:
        raise QueryError(f"unknown dataset {unknown[0]!r}; datasets: {', '.join(sorted(datasets))}")
    refused = sorted(functions - _SAFE_TABLE_FUNCTIONS)
    if refused:
        raise QueryError(f"table function {refused[0]}() is not allowed: select from the datasets by name")
    if PSEUDONYM_FUNCTION in calls:
        # Called on a NIK one knows, it would find that person's rows by pseudonym.
        raise QueryError(f"function {PSEUDONYM_FUNCTION}() is the hub's own and cannot be called")
    return tables & datasets


def run_sql(settings, sql: str, who: Identity, client: str | None, *, max_rows: int = MAX_ROWS,
            timeout: float = TIMEOUT_SECONDS) -> dict:
    """The result of `sql` over the current version of every dataset `who` may read, as it may see them
    (`catalog.access`), and the names of the `datasets` it read. Every query, answered or refused, is in the
    audit log as `who`'s, from `client`. A dataset `who` knows of but may not read raises AccessDenied.

    At most `max_rows` rows come back (`truncated` says whether there were more); a query still running
    after `timeout` seconds is stopped.
    """
    read, count, outcome, con = set(), 0, "refused", None
    try:
        known = listed(settings, who)
        # The statement is checked before any dataset is opened; then only the datasets it reads get a view.
        with duckdb.connect(":memory:", config={"autoload_known_extensions": False}) as parser:
            read = _check(parser, sql, {i for i, a in known.items() if a.readable},
                          {i: a for i, a in known.items() if not a.readable})
        con = connect(settings, who, sandboxed=True, only=read)
        timer = threading.Timer(timeout, con.interrupt)
        started = time.perf_counter()
        timer.start()
        try:
            reader = con.sql(sql).to_arrow_reader(batch_size=min(max_rows + 1, 100_000))
            batches = []
            for batch in reader:
                batches.append(batch)
                count += batch.num_rows
                if count > max_rows:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema).slice(0, max_rows)
        except duckdb.InterruptException:
            outcome = "stopped"
            raise QueryError(f"the query was stopped after its time limit of {timeout:g} s") from None
        except duckdb.Error as e:
            raise QueryError(str(e)) from None
        finally:
            timer.cancel()
        outcome = "answered"
        return {"columns": [{"name": f.name, "type": str(f.type)} for f in table.schema], "table": table,
                "truncated": count > max_rows, "seconds": round(time.perf_counter() - started, 3),
                "datasets": sorted(read)}
    finally:
        if con is not None:
            con.close()
        # The audit log keeps the query's hash, never its text (`catalog.audit.record`).
        audit.read(settings, who, client, "sql.query", None,
                   {"sql": sql, "datasets": sorted(read), "rows": min(count, max_rows), "outcome": outcome})
