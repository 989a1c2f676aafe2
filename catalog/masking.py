"""Mask personal-data fields (NIK, names, birth dates, addresses) before rows leave the hub publicly."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["mask_table", "personal_fields"]


def personal_fields(standard) -> dict[str, str]:
    return {f.name: f.personal_data for f in standard.fields if f.personal_data}


def _mask(column: pa.ChunkedArray, kind: str) -> pa.Array:
    text = pc.cast(column, pa.string())
    if kind == "nik":
        # The first six digits name the kecamatan of registration, which is not personal.
        return pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, 6), "**********", "")
    if kind == "birth_date":
        return pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, 4), "-**-**", "")
    # Names, addresses, phones: nothing of the value survives.
    return pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), "***")


def mask_table(table: pa.Table, fields: dict[str, str]) -> pa.Table:
    for name, kind in fields.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, _mask(table[name], kind))
    return table
