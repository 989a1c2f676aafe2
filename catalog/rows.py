"""A page of a dataset's rows: filters, full-text match, sort, chosen fields, as the caller may see them."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from catalog import audit
from catalog.access import MASKED, PLAIN, PSEUDONYM
from catalog.identity import Identity
from catalog.masking import quoted
from catalog.query import sandbox
from hub.errors import QueryError

__all__ = ["OPERATORS", "ROW_ID", "Condition", "page", "parse_filter", "parse_sort", "reader"]

# Longer operators first: `>=` must not be read as `>` followed by a value starting with `=`. `~` keeps
# rows whose field contains the text, ignoring case.
OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "~")
_SQL_OPERATOR = {"=": "=", "!=": "<>", ">=": ">=", "<=": "<=", ">": ">", "<": "<", "~": "ILIKE"}
ROW_ID = "_id"  # with `numbered`: the row's position in the version's stored order, from 1


@dataclass(frozen=True)
class Condition:
    """`field op value`; `=` with several values matches any of them."""

    field: str
    op: str
    values: tuple[str, ...]


def parse_filter(text: str) -> Condition:
    """`kode_wilayah=32.71.01.1001`, `tanggal_lahir>=1990-01-01`, `agama!=1`, `nama~sekolah`."""
    positions = [(text.find(op), op) for op in OPERATORS if text.find(op) > 0]
    if not positions:
        raise QueryError(f"filter {text!r}: write FIELD OP VALUE with OP one of {' '.join(OPERATORS)}")
    at, op = min(positions, key=lambda p: (p[0], -len(p[1])))
    return Condition(text[:at].strip(), op, (text[at + len(op):],))


def parse_sort(text: str) -> list[tuple[str, bool]]:
    """`tanggal_lahir,-kode_wilayah` or CKAN's `tanggal_lahir asc, kode_wilayah desc`: (field, descending)."""
    order = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        words = part.split()
        if len(words) == 2 and words[1].lower() in ("asc", "desc"):
            order.append((words[0], words[1].lower() == "desc"))
        elif len(words) == 1:
            order.append((words[0].lstrip("-"), words[0].startswith("-")))
        else:
            raise QueryError(f"sort {part!r}: write FIELD, -FIELD, FIELD asc or FIELD desc")
    return order


def _json_value(value):
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def page(settings, dataset, who: Identity, client: str | None, *, snapshot_id: int | None = None,
         where: list[Condition] = (),
         q: str | None = None, sort: list[tuple[str, bool]] = (), fields: list[str] | None = None,
         limit: int = 100, offset: int = 0, audited: bool = True, numbered: bool = False,
         distinct: bool = False) -> dict:
    """One page of `dataset` (a catalog Dataset) at `snapshot_id` (default: current), as `who` may see it
    (`catalog.views`); `AccessDenied` if it may not read the dataset, `Busy` if no query slot is free.

    Without `sort`, rows come in the order the snapshot stores them, which is stable for a snapshot.
    Masked fields cannot be filtered, searched or sorted on. `numbered` adds ROW_ID first, a field like the
    others; `distinct` keeps one of each distinct row of `fields` (`total` counts those). A read of anything not
    `publik` is in the audit log as `who`'s, from `client`, unless the caller records the read itself
    (`audited=False`: the service bus's message log, `exchange.call`).
    """
    with sandbox(settings, who, {dataset.id: snapshot_id}) as (con, shown):
        seen, withheld = shown[dataset.id].access, list(shown[dataset.id].withheld)
        columns, rows, total, types = _page(con, dataset, seen, where, q, sort, fields, limit, offset, numbered,
                                            distinct)
    if audited and seen.restricted(columns):
        audit.read(settings, who, client, "rows.read", dataset.id,
                   {"columns": columns, "rows": len(rows), "offset": offset, "snapshot_id": snapshot_id})
    return {
        "dataset": dataset.id, "snapshot_id": snapshot_id if snapshot_id is not None else dataset.snapshot_id,
        "total": total, "limit": limit, "offset": offset,
        "fields": [{"name": c, "type": types[c]} for c in columns],
        "masked_fields": sorted(c for c in columns if seen.column(c) == MASKED),
        "pseudonymized_fields": sorted(c for c in columns if seen.column(c) == PSEUDONYM),
        "withheld_fields": withheld, "rows": rows,
    }


@contextmanager
def reader(settings, dataset, who: Identity, *, snapshot_id: int | None = None, where: list[Condition] = (),
           q: str | None = None, sort: list[tuple[str, bool]] = (), fields: list[str] | None = None,
           numbered: bool = False, batch_rows: int = 10_000):
    """Every row of `dataset` that the filters keep, in order, as `who` may see them: an Arrow record batch
    reader (a filtered download). The sandbox's query slot is held until the context ends; the caller audits.
    `fields` and `numbered` as for `page`."""
    with sandbox(settings, who, {dataset.id: snapshot_id}) as (con, shown):
        try:
            sql, params, _, _ = _select(con, dataset, shown[dataset.id].access, where, q, sort, fields, numbered)
            rows = con.execute(sql, params).to_arrow_reader(batch_rows)
        except duckdb.Error as e:
            raise QueryError(f"dataset {dataset.id}: {e}") from None
        yield rows


def _select(con, dataset, seen, where, q, sort, fields, numbered=False, distinct=False) -> tuple[str, dict, str, dict]:
    """The statement of the rows the filters keep, in order, its parameters, the statement counting them, and
    the column types."""
    types = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {quoted(dataset.id)}").fetchall()}
    relation = quoted(dataset.id)
    if numbered:
        # Numbered before any filter, in the stored order: a row keeps its number in every read of the version.
        relation = f"(SELECT row_number() OVER () AS {ROW_ID}, * FROM {relation})"
        types = {ROW_ID: "BIGINT", **types}

    def known(field: str, use: str) -> str:
        if field not in types:
            raise QueryError(f"dataset {dataset.id}: no field {field!r} to {use}; fields: {', '.join(types)}")
        if seen.column(field) == MASKED:
            raise QueryError(f"dataset {dataset.id}: field {field!r} is personal data, masked for you, and "
                             f"cannot be used to {use}")
        return quoted(field)

    clauses, params = [], {}
    for i, c in enumerate(where):
        column = known(c.field, "filter")
        if c.op not in _SQL_OPERATOR or not c.values:
            raise QueryError(f"filter on {c.field!r}: operator {c.op!r} with values {len(c.values)}")
        if c.op == "~":
            clauses += [f"CAST({column} AS VARCHAR) ILIKE $v{i}_{j}" for j in range(len(c.values))]
            params.update({f"v{i}_{j}": f"%{value}%" for j, value in enumerate(c.values)})
            continue
        names = []
        for j, value in enumerate(c.values):
            name = f"v{i}_{j}"
            typed = con.execute(f"SELECT TRY_CAST($v AS {types[c.field]})", {"v": value}).fetchall()[0][0]
            if typed is None:
                raise QueryError(f"filter on {c.field!r}: {value!r} is not a value of type {types[c.field]}")
            params[name] = typed
            names.append(f"${name}")
        if len(names) > 1 and c.op in ("=", "!="):
            clauses.append(f"{column} {'NOT ' if c.op == '!=' else ''}IN ({', '.join(names)})")
        else:
            clauses += [f"{column} {_SQL_OPERATOR[c.op]} {n}" for n in names]
    if q:
        # Only plain text: a masked or pseudonymized value would match what the caller cannot see.
        text = [quoted(f) for f, kind in types.items() if kind == "VARCHAR" and seen.column(f) == PLAIN]
        if text:
            params["q"] = f"%{q}%"
            clauses.append("(" + " OR ".join(f"{c} ILIKE $q" for c in text) + ")")
        else:
            clauses.append("false")
    condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    for f in fields or ():
        if f not in types:
            raise QueryError(f"dataset {dataset.id}: no field {f!r}; fields: {', '.join(types)}")
    select = ", ".join(map(quoted, fields)) if fields else "*"
    if distinct:
        # Every shown field breaks ties, so pages of distinct rows never repeat or skip one.
        for f, _ in sort:
            if f not in (fields or types):
                raise QueryError(f"dataset {dataset.id}: sort on {f!r} needs it among the fields of distinct rows")
        order = [f"{known(f, 'sort')} {'DESC' if desc else 'ASC'} NULLS LAST" for f, desc in sort]
        order += [f"{quoted(f)} NULLS LAST" for f in fields or types]
        rows = f"SELECT DISTINCT {select} FROM {relation}{condition}"
        return f"{rows} ORDER BY {', '.join(order)}", params, f"SELECT count(*) FROM ({rows})", types
    counted = f"SELECT count(*) FROM {relation}{condition}"
    if sort:
        # Ties keep the stored order, so pages never repeat or skip a row.
        order = ", ".join(f"{known(f, 'sort')} {'DESC' if desc else 'ASC'} NULLS LAST" for f, desc in sort)
        stored = f"SELECT *, row_number() OVER () AS _stored FROM {relation}{condition}"
        return (f"SELECT {select if fields else '* EXCLUDE (_stored)'} FROM ({stored}) ORDER BY {order}, _stored",
                params, counted, types)
    return f"SELECT {select} FROM {relation}{condition}", params, counted, types


def _page(con, dataset, seen, where, q, sort, fields, limit, offset, numbered,
          distinct) -> tuple[list, list, int, dict]:
    """The page's columns, rows, total count and column types, from the sandbox `con`."""
    try:
        sql, params, counted, types = _select(con, dataset, seen, where, q, sort, fields, numbered, distinct)
        total = con.execute(counted, params).fetchall()[0][0]
        result = con.execute(f"{sql} LIMIT $limit OFFSET $offset", {**params, "limit": limit, "offset": offset})
        columns = [d[0] for d in result.description]
        rows = [dict(zip(columns, map(_json_value, r))) for r in result.fetchall()]
    except duckdb.Error as e:
        raise QueryError(f"dataset {dataset.id}: {e}") from None
    return columns, rows, total, types
