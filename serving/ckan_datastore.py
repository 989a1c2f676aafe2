"""CKAN's DataStore over the catalog: datastore_search, datastore_info, datastore_search_sql and /datastore/dump/.

A dataset's API resource is its DataStore table; the resource id is the dataset id. Each row has `_id`, its
position in the version's stored order, so the same row has the same `_id` in every read of that version. Field
types are PostgreSQL's names as CKAN gives them (`int4`, `int8`, `float8`, `numeric`, `text`, `date`,
`timestamp`, `bool`, ...). Rows come from `catalog.rows` and `catalog.sql`: each caller sees what
`catalog.access` lets it see, personal data masked or pseudonymized, and a dataset it may not read is refused
by the search, the info and the dump alike.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlencode
from xml.etree.ElementTree import Element, SubElement, tostring

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from catalog.access import AccessDenied
from catalog.db import Dataset, session
from catalog.identity import Identity, caller, client_of
from catalog.metadata import describe
from catalog.rows import ROW_ID, Condition
from hub.errors import QueryError
from serving.ckan_api import (DATASTORE_ROWS_MAX, ActionError, _bool, _Call, _decoded, _integer, _invalid,
                              _not_authorized, _not_found, _strings, _text)

__all__ = ["DUMP_FORMATS", "ckan_type", "datastore_info", "datastore_search", "datastore_search_sql", "router"]

RECORDS_FORMATS = ("objects", "lists", "csv", "tsv")
# dump format -> media type, as CKAN's /datastore/dump/ gives them
DUMP_FORMATS = {"csv": "text/csv; charset=utf-8", "tsv": "text/tab-separated-values; charset=utf-8",
                "json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
BOM = "\ufeff"
DUMP_BATCH_ROWS = 10_000

# A DuckDB or Arrow type name -> the PostgreSQL type CKAN would give. Arrow's int8 is one byte, PostgreSQL's eight.
_EXACT = {
    "tinyint": "int2", "smallint": "int2", "utinyint": "int2", "int8": "int2", "int16": "int2", "uint8": "int2",
    "integer": "int4", "usmallint": "int4", "int32": "int4", "uint16": "int4",
    "bigint": "int8", "uinteger": "int8", "int64": "int8", "uint32": "int8",
    "hugeint": "numeric", "uhugeint": "numeric", "ubigint": "numeric", "uint64": "numeric",
    "float": "float4", "halffloat": "float4", "real": "float4", "double": "float8",
    "varchar": "text", "string": "text", "large_string": "text", "string_view": "text",
    "boolean": "bool", "bool": "bool", "date": "date", "time": "time", "interval": "interval",
    "blob": "bytea", "binary": "bytea", "large_binary": "bytea", "uuid": "uuid", "json": "json",
}
# Prefixes, the longer first: "timestamp with time zone" before "timestamp", "time64" before "time".
_PREFIXES = (("decimal", "numeric"), ("timestamp with time zone", "timestamptz"), ("timestamptz", "timestamptz"),
             ("timestamp", "timestamp"), ("date32", "date"), ("date64", "date"), ("time32", "time"),
             ("time64", "time"), ("duration", "interval"), ("struct", "json"), ("map", "json"))


def ckan_type(type_name: str) -> str:
    """The CKAN DataStore type (PostgreSQL's name) of a DuckDB or Arrow type: `BIGINT` and `int64` are `int8`,
    `DOUBLE` is `float8`, `VARCHAR[]` and `list<item: string>` are `_text`; anything unknown is `text`."""
    t = type_name.strip().lower()
    if t.startswith("dictionary<values="):  # a code column read as a dictionary: the type of its values
        return ckan_type(t.removeprefix("dictionary<values=").split(",")[0])
    if t.endswith("[]"):
        return "_" + ckan_type(t[:-2])
    if t.startswith(("list<", "large_list<")):
        return "_" + ckan_type(t.partition(":")[2].rstrip(">").strip())
    if t.startswith("timestamp[") and "tz=" in t:
        return "timestamptz"
    if t in _EXACT:
        return _EXACT[t]
    return next((kind for prefix, kind in _PREFIXES if t.startswith(prefix)), "text")


def _field(name: str, type_name: str, described: dict) -> dict:
    """A field as CKAN lists it: `_id` is int4, as in every CKAN DataStore table; `info` from the standard."""
    field = {"id": name, "type": "int4" if name == ROW_ID else ckan_type(type_name)}
    if name in described:
        field["info"] = {"label": described[name]["title"], "notes": described[name]["description"]}
    return field


# Cells as text, for records_format csv and tsv and for the dump.

def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _delimited(rows: Iterable[list], delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


# What datastore_search and the dump both take: the resource, filters, q, sort and fields.

@dataclass(frozen=True)
class _Rows:
    """Which rows of which dataset a call asks for, in `catalog.rows` terms."""

    dataset: Dataset
    described: dict  # field name -> the standard's description of it
    where: list[Condition]
    q: str | None
    sort: list[tuple[str, bool]]
    fields: list[str] | None


def _condition(field: str, value) -> Condition:
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, (dict, list)) for v in values):
        raise _invalid(f"filter on {field!r}: a value or a list of values", "filters")
    return Condition(field, "=", tuple(json.dumps(v) if isinstance(v, bool) else str(v) for v in values))


def _dataset(call: _Call, resource_id) -> tuple[Dataset, dict]:
    """The dataset of DataStore resource `resource_id`, if the caller may know of it, and its fields described."""
    if not isinstance(resource_id, str) or not resource_id:
        raise _invalid("Missing value", "resource_id")
    with session(call.settings.catalog_url) as s:
        d = s.get(Dataset, resource_id)
        if d is None or d.id not in call.known:
            raise _not_found(f'Resource "{resource_id}" was not found.')
        return d, {f["name"]: f for f in describe(s, d)["schema"]}


def _rows(call: _Call) -> _Rows:
    from catalog.rows import parse_sort

    data = call.data
    d, described = _dataset(call, data.get("resource_id") or data.get("id"))
    filters = _decoded(data, "filters") or {}
    if not isinstance(filters, dict):
        raise _invalid("a JSON object of field: value", "filters")
    q = _decoded(data, "q")
    if q is not None and not isinstance(q, (str, dict)):
        raise _invalid("text to find in any text field, or a JSON object of field: text", "q")
    # A dict finds each text in its own field.
    contains = [Condition(field, "~", (str(text),)) for field, text in q.items()] if isinstance(q, dict) else []
    try:
        sort = parse_sort(", ".join(_strings(data, "sort")))
    except QueryError as e:
        raise _invalid(str(e), "sort") from None
    return _Rows(d, described, [_condition(f, v) for f, v in filters.items()] + contains,
                 q if isinstance(q, str) and q else None, sort,
                 _strings(data, "fields", comma_separated=True) or None)


def datastore_search(call: _Call) -> dict:
    """Rows of the DataStore resource `resource_id` (a dataset id), each with `_id`: `filters` ({field: value or
    [values]}), `q` (text in any text field, or {field: text}), `distinct`, `fields`, `sort` ("a asc, b desc"),
    `limit` (default 100), `offset`, `include_total`, `records_format` (objects, lists, or csv or tsv: one text
    without a header). Personal data is pseudonymized or masked for callers not cleared for it; masked fields
    cannot be filtered, searched or sorted on."""
    from catalog.rows import page

    data = call.data
    asked = _rows(call)
    records_format = _text(data, "records_format") or "objects"
    if records_format not in RECORDS_FORMATS:
        raise _invalid(f"one of {', '.join(RECORDS_FORMATS)}", "records_format")
    limit = _integer(data, "limit", 100, maximum=DATASTORE_ROWS_MAX)
    offset = _integer(data, "offset", 0)
    try:
        found = page(call.settings, asked.dataset, call.who, call.client, where=asked.where, q=asked.q,
                     sort=asked.sort, fields=asked.fields, limit=limit, offset=offset, numbered=True,
                     distinct=_bool(data, "distinct", False))
    except QueryError as e:
        raise _invalid(str(e)) from None
    except AccessDenied as e:
        raise _not_authorized(e) from None
    fields = [_field(f["name"], f["type"], asked.described) for f in found["fields"]]
    names = [f["id"] for f in fields]
    if records_format == "objects":
        records = found["rows"]
    else:
        lists = [[r[n] for n in names] for r in found["rows"]]
        records = lists if records_format == "lists" else _delimited(lists, "," if records_format == "csv" else "\t")
    # GET links that give the first, the next and (past the first) the previous page of the same query, as CKAN's.
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items() if k != "offset"}
    links = {"start": f"{call.path}?{urlencode(params)}",
             "next": f"{call.path}?{urlencode({**params, 'offset': offset + limit})}"}
    if offset > 0:
        links["prev"] = f"{call.path}?{urlencode({**params, 'offset': max(offset - limit, 0)})}"
    result = {
        "resource_id": asked.dataset.id, "fields": fields, "records": records, "records_format": records_format,
        "limit": limit, "offset": offset, "include_total": _bool(data, "include_total", True), "_links": links,
        **{k: data[k] for k in ("filters", "q", "sort", "distinct") if k in data},
    }
    if result["include_total"]:
        result.update(total=found["total"], total_was_estimated=False)
    return result


def datastore_info(call: _Call) -> dict:
    """The DataStore table of resource `id` (a dataset id), as CKAN 2.10 describes one: `meta` (its `id`, row
    `count`, `table_type` and `aliases`) and `fields` (the data dictionary: each field's `id`, `type`, `info`
    from the data standard and its `schema`), the fields the caller may see."""
    from catalog.rows import page

    d, described = _dataset(call, call.data.get("id") or call.data.get("resource_id"))
    try:
        # No value leaves, only the count and the fields: not a read for the audit log.
        found = page(call.settings, d, call.who, call.client, limit=0, audited=False)
    except QueryError as e:
        raise _invalid(str(e)) from None
    except AccessDenied as e:
        raise _not_authorized(e) from None
    fields = []
    for f in found["fields"]:
        field = _field(f["name"], f["type"], described)
        required = bool(described.get(f["name"], {}).get("required"))
        fields.append({**field, "schema": {"native_type": field["type"], "notnull": required, "is_index": False,
                                           "index_name": None, "uniquekey": False}})
    return {"meta": {"id": d.id, "count": found["total"], "table_type": "BASE TABLE", "aliases": []},
            "fields": fields}


def datastore_search_sql(call: _Call) -> dict:
    """One SELECT in `sql` over the DataStore, tables named by resource id (the dataset ids), as the caller may
    see them; `records_truncated` says when the row limit cut the result."""
    from catalog.sql import run_sql

    sql = call.data.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise _invalid("Missing value", "sql")
    try:
        result = run_sql(call.settings, sql, call.who, call.client)
    except QueryError as e:
        raise _invalid(str(e), "query") from None
    except AccessDenied as e:
        raise _not_authorized(e) from None
    fields = [{"id": c["name"], "type": ckan_type(c["type"])} for c in result["columns"]]
    answer = {"sql": sql, "fields": fields, "records": result["table"].to_pylist()}
    if result["truncated"]:
        answer["records_truncated"] = True
    return answer


# The dump: every row a search would page through, streamed in one file.

def _dumped(batches: Iterable, columns: list[str], fields: list[dict], fmt: str, bom: bool) -> Iterator[bytes]:
    """The rows of `batches` (lists of dicts) in `fmt`, as CKAN's dump writes them, a batch at a time."""
    start = BOM.encode() if bom else b""
    if fmt in ("csv", "tsv"):
        delimiter = "," if fmt == "csv" else "\t"
        yield start + _delimited([columns], delimiter).encode()
        for rows in batches:
            yield _delimited(([r[c] for c in columns] for r in rows), delimiter).encode()
    elif fmt == "json":
        yield start + ('{\n  "fields": %s,\n  "records": [' % json.dumps(fields, ensure_ascii=False)).encode()
        separator = "\n    "
        for rows in batches:
            if rows:
                yield (separator + ",\n    ".join(json.dumps([r[c] for c in columns], ensure_ascii=False,
                                                             default=_cell) for r in rows)).encode()
                separator = ",\n    "
        yield b"\n]}\n"
    else:
        yield start + b'<data xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        plain = [c for c in columns if c != ROW_ID]
        for rows in batches:
            out = []
            for r in rows:
                row = Element("row", {ROW_ID: str(r[ROW_ID])} if ROW_ID in columns else {})
                for c in plain:
                    cell = SubElement(row, c)
                    if r[c] is None:
                        cell.set("xsi:nil", "true")
                    else:
                        cell.text = _cell(r[c])
                out.append(tostring(row, encoding="unicode") + "\n")
            yield "".join(out).encode()
        yield b"</data>\n"


def _window(reader, offset: int, limit: int | None) -> Iterator[list[dict]]:
    """The reader's rows from `offset`, at most `limit` of them, as lists of dicts, a batch at a time."""
    for batch in reader:
        if limit is not None and limit <= 0:
            return
        if offset >= batch.num_rows:
            offset -= batch.num_rows
            continue
        batch = batch.slice(offset, limit)
        offset = 0
        if limit is not None:
            limit -= batch.num_rows
        yield batch.to_pylist()


def router(settings) -> APIRouter:
    """`GET /datastore/dump/{resource_id}`, for `app.include_router` in the catalog API."""
    api = APIRouter(tags=["CKAN"])
    current = caller(settings)

    @api.get("/datastore/dump/{resource_id}", response_class=StreamingResponse, operation_id="datastore_dump",
             responses={200: {"content": {t.partition(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                                          for t in DUMP_FORMATS.values()},
                              "description": "every row the query keeps, in one file"}})
    def dump(
        resource_id: str, request: Request,
        format: str = Query("csv", description="csv, tsv, json or xml"),
        bom: bool = Query(False, description="start with a UTF-8 byte order mark (for spreadsheets)"),
        limit: int | None = Query(None, ge=0, description="the most rows (default: all)"),
        offset: int = Query(0, ge=0, description="rows to skip"),
        q: str | None = Query(None, description="text in any text field, or a JSON object of field: text"),
        filters: str | None = Query(None, description="a JSON object of field: value or [values]"),
        sort: str | None = Query(None, description='"field asc, other desc"'),
        fields: str | None = Query(None, description="the fields, comma-separated (default: all, _id first)"),
        who: Identity = Depends(current),
    ) -> StreamingResponse:
        """A DataStore resource's rows as one file, as CKAN's DataStore dump gives them: the rows datastore_search
        would page through with the same parameters, each with `_id`, as the caller may see them; streamed."""
        from catalog import audit
        from catalog.rows import reader

        if format not in DUMP_FORMATS:
            raise HTTPException(400, f"format: one of {', '.join(DUMP_FORMATS)}")
        client = client_of(request)
        data = {"resource_id": resource_id, **{k: v for k, v in (("q", q), ("filters", filters), ("sort", sort),
                                                                  ("fields", fields)) if v is not None}}
        call = _Call(settings, str(request.base_url).rstrip("/"), request.url.path, data, who, client)
        held = ExitStack()
        try:
            asked = _rows(call)
            rows = held.enter_context(reader(settings, asked.dataset, who, where=asked.where, q=asked.q,
                                             sort=asked.sort, fields=asked.fields, numbered=True,
                                             batch_rows=DUMP_BATCH_ROWS))
        except ActionError as e:
            raise HTTPException(400 if e.status == 409 else e.status, e.error["message"]) from None
        except QueryError as e:
            raise HTTPException(400, str(e)) from None
        except AccessDenied as e:
            raise HTTPException(403, f"Access denied: {e}") from None
        columns = rows.schema.names
        typed = [_field(f.name, str(f.type), asked.described) for f in rows.schema]
        # The fields filtered or searched on, never the values: a value may be a NIK.
        asked_for = {"filtered_on": sorted({c.field for c in asked.where}), "searched": asked.q is not None,
                     "sort": sort, "fields": fields, "limit": limit, "offset": offset}
        try:
            audit.read(settings, who, client, "download", resource_id,
                       {"format": format, **{k: v for k, v in asked_for.items() if v}})
        except BaseException:
            held.close()  # the query slot, before the error answers
            raise

        def body() -> Iterator[bytes]:
            with held:
                yield from _dumped(_window(rows, offset, limit), columns, typed, format, bom)

        return StreamingResponse(body(), media_type=DUMP_FORMATS[format],
                                 headers={"Content-Disposition": f'attachment; filename="{resource_id}.{format}"'})

    return api
