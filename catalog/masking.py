"""Mask personal-data fields (NIK, names, birth dates, addresses) before rows leave the hub publicly.

The rule is written once, as SQL: the public views of `catalog.query` apply it, so rows, downloads, SQL
and the CKAN API all see the same masked columns, and a query cannot reach around it.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

__all__ = ["mask_table", "masked_select", "personal_fields", "quoted"]


def personal_fields(standard) -> dict[str, str]:
    return {f.name: f.personal_data for f in standard.fields if f.personal_data}


def quoted(name: str) -> str:
    """`name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _masked(name: str, kind: str) -> str:
    text = f"CAST({quoted(name)} AS VARCHAR)"
    if kind == "nik":
        # The first six digits name the kecamatan of registration, which is not personal.
        value = f"left({text}, 6) || '**********'"
    elif kind == "birth_date":
        value = f"left({text}, 4) || '-**-**'"
    else:  # names, addresses, phones: nothing of the value survives
        value = "'***'"
    return f"CASE WHEN {quoted(name)} IS NULL THEN NULL ELSE {value} END AS {quoted(name)}"


def masked_select(columns: list[str], fields: dict[str, str]) -> str:
    """The select list that gives `columns` with the personal-data `fields` among them masked."""
    return ", ".join(_masked(c, fields[c]) if c in fields else quoted(c) for c in columns)


def mask_table(table: pa.Table, fields: dict[str, str]) -> pa.Table:
    """`table` with its personal-data `fields` masked (for records that are not in the catalog yet)."""
    if not set(fields) & set(table.column_names):
        return table
    con = duckdb.connect(":memory:")
    try:
        con.register("records", table)
        return con.sql(f"SELECT {masked_select(table.column_names, fields)} FROM records").to_arrow_table()
    finally:
        con.close()
