"""SQL over the published datasets with DuckDB: each dataset is a view on its current snapshot's Parquet files."""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa

from catalog import storage
from catalog.db import Dataset, init_db, session
from hub.errors import QueryError

__all__ = ["connect", "query"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def connect(settings, versions: dict[str, int] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per catalog dataset, named by the dataset id.

    A view reads the dataset's current snapshot, or the snapshot `versions` names for it (a past version).
    """
    init_db(settings.catalog_url)
    con = duckdb.connect(":memory:")
    with session(settings.catalog_url) as s:
        datasets = s.query(Dataset).order_by(Dataset.id).all()
    for d in datasets:
        if not _NAME.match(d.id):
            continue
        files, schema = storage.data_files(settings, d.table_identifier, (versions or {}).get(d.id))
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            # Files written before a compatible schema change lack the new columns: match columns by name.
            con.execute(f'CREATE VIEW "{d.id}" AS SELECT * FROM read_parquet([{listing}], union_by_name = true)')
        else:
            con.register(f"_{d.id}_empty", schema.empty_table())
            con.execute(f'CREATE VIEW "{d.id}" AS SELECT * FROM "_{d.id}_empty"')
    return con


def query(settings, sql: str) -> pa.Table:
    con = connect(settings)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise QueryError(str(e)) from None
    finally:
        con.close()
