"""Mask or pseudonymize personal-data fields (NIK, names, birth dates, addresses) before rows leave the hub.

The rule is written once, as SQL: the views of `catalog.query` apply it, so rows, downloads, SQL and the
CKAN API all see the same columns, and a query cannot reach around it. `catalog.access` says which rule
each column gets for a caller.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

__all__ = ["mask_table", "masked_select", "personal_fields", "quoted", "select_list"]


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


def select_list(columns: list[str], access, secret: bytes) -> str:
    """The select list that gives of `columns` what a caller with `access` (a `catalog.access.Access`) sees:
    columns it may not see left out, personal data plain, pseudonymized (with the pseudonym key `secret`) or
    masked. It holds the key: for the hub's own connections only (`catalog.views`)."""
    from catalog.access import MASKED, PSEUDONYM
    from transforms.pseudonym import sql_pseudonym

    parts = []
    for c in columns:
        rule = access.column(c)
        if rule == MASKED:
            parts.append(_masked(c, access.fields[c][1]))
        elif rule == PSEUDONYM:
            parts.append(f"{sql_pseudonym(f'CAST({quoted(c)} AS VARCHAR)', secret)} AS {quoted(c)}")
        elif rule is not None:
            parts.append(quoted(c))
    return ", ".join(parts)


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
