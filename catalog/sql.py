"""Analysts' SQL over the catalog: one read-only SELECT, in a sandbox holding only what the caller may see.

Two walls stand between a statement and what it must not reach. The first is the sandbox itself
(`catalog.query.sandbox`): a connection with no file access, no extensions and locked settings, holding
nothing but Arrow data shaped by the access rule, so no statement can reach a file or a plain value. The second
is the check here, which gives clear errors: one SELECT, datasets by name (resolved by scope, as DuckDB does:
a CTE hides a dataset of the same name inside its WITH only), no table function that reads anything, no
function that reads settings. The check also decides which datasets the sandbox opens: only those read.
"""

from __future__ import annotations

import json
import threading
import time

import duckdb
import pyarrow as pa

from catalog import audit
from catalog.access import listed
from catalog.identity import Identity
from catalog.query import Limits, sandbox
from hub.errors import QueryError

__all__ = ["MAX_ROWS", "run_sql"]

MAX_ROWS = 10_000
_BATCH_ROWS = 1024  # rows taken from DuckDB at a time: the answer's size is checked after each
# Table functions that only make values; every other one (read_parquet, read_csv, glob, query, ...) could
# reach past the datasets, and the duckdb_* ones describe the connection.
_SAFE_TABLE_FUNCTIONS = {"range", "generate_series", "unnest"}
_REFUSED_FUNCTIONS = {"current_setting"}  # settings name folders; nothing in them is for a caller
# Parses statements (and serializes them with json_serialize_sql), one cursor per check: it holds no data and never
# runs a caller's statement. One database for the process: making one costs more than the rest of a small query.
_PARSER = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False,
                                             "enable_external_access": False})


class _Found:
    """What a statement refers to."""

    def __init__(self) -> None:
        self.tables: set[str] = set()  # unqualified names that are no CTE in scope where they are used
        self.qualified: set[str] = set()  # catalog.schema.table names
        self.functions: set[str] = set()  # table functions
        self.calls: set[str] = set()  # other functions


def _references(node, scope: frozenset[str], found: _Found) -> None:
    """Walk DuckDB's JSON syntax tree, resolving names as DuckDB does: a WITH's CTEs are in scope in its query
    and everything below it; a CTE's own body sees the CTEs before it, and itself only when it is recursive (a
    plain `WITH penduduk AS (SELECT * FROM penduduk)` reads the dataset). Names are matched without case."""
    if isinstance(node, list):
        for value in node:
            _references(value, scope, found)
        return
    if not isinstance(node, dict):
        return
    entries = (node.get("cte_map") or {}).get("map") or []
    before = scope
    for entry in entries:
        name = str(entry["key"]).lower()
        body = entry.get("value") or {}
        recursive = (body.get("query_node") or {}).get("type") == "RECURSIVE_CTE_NODE"
        _references(body, before | {name} if recursive else before, found)
        before = before | {name}
    scope = before
    kind = node.get("type")
    if kind == "BASE_TABLE":
        name = str(node.get("table_name") or "")
        if node.get("catalog_name") or node.get("schema_name"):
            found.qualified.add(".".join(filter(None, (node.get("catalog_name"), node.get("schema_name"), name))))
        elif name.lower() not in scope:
            found.tables.add(name.lower())
    elif kind == "TABLE_FUNCTION":
        found.functions.add(str(node["function"]["function_name"]).lower())
    elif kind == "FUNCTION" and node.get("class") == "FUNCTION":
        found.calls.add(str(node.get("function_name", "")).lower())
    for key, value in node.items():
        if key != "cte_map":  # walked above, each body in its own scope
            _references(value, scope, found)


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
    found = _Found()
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql($sql)", {"sql": sql}).fetchall()[0][0])
        if tree.get("error"):
            raise QueryError(f"this SELECT cannot be checked: {tree.get('error_message', 'unsupported syntax')}")
        _references(tree["statements"], frozenset(), found)
    except RecursionError:
        raise QueryError("this SELECT is nested too deeply to be checked: write it with fewer levels") from None
    if found.qualified:
        raise QueryError(f"{sorted(found.qualified)[0]!r}: name datasets by their id alone, without a schema")
    for name in sorted(found.tables - datasets):
        if name in unreadable:
            unreadable[name].require_readable()
    unknown = sorted(found.tables - datasets)
    if unknown:
        raise QueryError(f"unknown dataset {unknown[0]!r}; datasets: {', '.join(sorted(datasets))}")
    refused = sorted(found.functions - _SAFE_TABLE_FUNCTIONS)
    if refused:
        raise QueryError(f"table function {refused[0]}() is not allowed: select from the datasets by name")
    refused = sorted(found.calls & _REFUSED_FUNCTIONS)
    if refused:
        raise QueryError(f"function {refused[0]}() is not allowed")
    return found.tables


def run_sql(settings, sql: str, who: Identity, client: str | None, *, max_rows: int = MAX_ROWS,
            timeout: float | None = None, limits: Limits | None = None) -> dict:
    """The result of `sql` over the current version of every dataset `who` may read, as it may see them
    (`catalog.views`), and the names of the `datasets` it read. Every query, answered or refused, is in the
    audit log as `who`'s, from `client`. A dataset `who` knows of but may not read raises AccessDenied; no
    free query slot raises `Busy`.

    At most `max_rows` rows and `limits.answer_bytes` bytes come back (`truncated` says whether there were
    more); a query still running after `timeout` seconds (default: the limit's) is stopped.
    """
    limits = limits or Limits.from_env()
    timeout = limits.timeout_seconds if timeout is None else timeout
    read, count, outcome = set(), 0, "refused"
    try:
        known = listed(settings, who)
        # The statement is checked before any dataset is opened; then only the datasets it reads are given.
        with _PARSER.cursor() as parser:
            read = _check(parser, sql, {i for i, a in known.items() if a.readable},
                          {i: a for i, a in known.items() if not a.readable})
        with sandbox(settings, who, dict.fromkeys(read), limits) as (con, _):
            timer = threading.Timer(timeout, con.interrupt)
            started = time.perf_counter()
            timer.start()
            try:
                table, count, truncated = _collect(con.sql(sql), max_rows, limits.answer_bytes)
            except duckdb.InterruptException:
                outcome = "stopped"
                raise QueryError(f"the query was stopped after its time limit of {timeout:g} s") from None
            except duckdb.Error as e:
                raise QueryError(str(e)) from None
            finally:
                timer.cancel()
        outcome = "answered"
        return {"columns": [{"name": f.name, "type": str(f.type)} for f in table.schema], "table": table,
                "truncated": truncated, "seconds": round(time.perf_counter() - started, 3),
                "datasets": sorted(read)}
    finally:
        # The audit log keeps the query's hash, never its text (`catalog.audit.record`).
        audit.read(settings, who, client, "sql.query", None,
                   {"sql": sql, "datasets": sorted(read), "rows": count, "outcome": outcome})


def _collect(relation, max_rows: int, max_bytes: int) -> tuple[pa.Table, int, bool]:
    """The first rows of `relation`, at most `max_rows` of them and `max_bytes` of data; whether more were cut."""
    if relation is None:
        raise QueryError("the statement returns no rows")
    reader = relation.to_arrow_reader(batch_size=_BATCH_ROWS)
    batches, count, size, truncated = [], 0, 0, False
    for batch in reader:
        if count + batch.num_rows > max_rows:
            batch, truncated = batch.slice(0, max_rows - count), True
        if size + batch.nbytes > max_bytes:
            fits = 0  # the most rows of this batch that still fit
            while fits < batch.num_rows and size + batch.slice(0, fits + 1).nbytes <= max_bytes:
                fits += 1
            if count + fits == 0:
                raise QueryError(f"the result's first row is larger than the {max_bytes} bytes one answer may hold "
                                 "(HUB_MAX_ANSWER_BYTES): select fewer or shorter columns")
            batch, truncated = batch.slice(0, fits), True
        batches.append(batch)
        count += batch.num_rows
        size += batch.nbytes
        if truncated:
            break
    return pa.Table.from_batches(batches, schema=reader.schema), count, truncated
