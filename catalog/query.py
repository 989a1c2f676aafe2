"""SQL over the published datasets with DuckDB: each dataset is a view on its current snapshot's Parquet files."""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa

from catalog import masking, storage
from catalog.db import Dataset, init_db, session
from hub.errors import QueryError

__all__ = ["connect", "query"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def connect(settings, versions: dict[str, int] | None = None, *, masked: bool = True,
            sandboxed: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per catalog dataset, named by the dataset id.

    A view reads the dataset's current snapshot, or the snapshot `versions` names for it (a past version).
    `masked` views give personal-data fields masked, as every public output must; only the operator's
    own `hub query` and the hub's internal builds read them unmasked. A `sandboxed` connection can then read
    no file but those snapshots' own and its configuration is locked (see `catalog.sql`).
    """
    from schemas import load_standard

    init_db(settings.catalog_url)
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    with session(settings.catalog_url) as s:
        datasets = s.query(Dataset).order_by(Dataset.id).all()
    readable: list[str] = []
    for d in datasets:
        if not _NAME.match(d.id):
            continue
        files, schema = storage.data_files(settings, d.table_identifier, (versions or {}).get(d.id))
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            # Files written before a compatible schema change lack the new columns: match columns by name.
            source = f"read_parquet([{listing}], union_by_name = true)"
            columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
            readable += files
        else:
            con.register(f"_{d.id}_empty", schema.empty_table())
            source, columns = f'"_{d.id}_empty"', schema.names
        personal = masking.personal_fields(load_standard(f"{d.standard}@{d.standard_version}")) if masked else {}
        con.execute(f'CREATE VIEW "{d.id}" AS SELECT {masking.masked_select(columns, personal)} FROM {source}')
    if sandboxed:
        con.execute("SET allowed_paths = $paths", {"paths": readable})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    return con


def query(settings, sql: str) -> pa.Table:
    """The operator's own SQL (`hub query`), on the machine that holds the warehouse: unmasked."""
    con = connect(settings, masked=False)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise QueryError(str(e)) from None
    finally:
        con.close()
