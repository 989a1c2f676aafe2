"""SQL over the published datasets with DuckDB: each dataset is a view on its current snapshot's Parquet files."""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa

from catalog import masking, storage
from catalog.access import access_to
from catalog.db import Dataset, init_db, session
from catalog.identity import Identity
from hub.errors import QueryError
from transforms import pseudonym

__all__ = ["connect", "query"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SANDBOX_MEMORY = "2GB"  # DuckDB's memory limit for analysts' SQL (a query needing more fails, it is not killed)


def connect(settings, who: Identity | None, versions: dict[str, int] | None = None, *,
            sandboxed: bool = False, only: set[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per dataset `who` may read, named by the dataset id.

    A view reads the dataset's current snapshot, or the snapshot `versions` names for it (a past version),
    and gives only what `who` may see of it (`catalog.access`): columns it may not see left out, personal
    data plain, pseudonymized or masked. `who` None is the operator on the machine that holds the warehouse
    (`hub query`, indicator builds): every dataset, plain. A `sandboxed` connection can then read no file
    but those snapshots' own and its configuration is locked (see `catalog.sql`). With `only`, just those
    datasets get a view (a request that reads one dataset need not open every table).
    """
    from schemas import load_standard

    init_db(settings.catalog_url)
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    if who is not None:
        secret = pseudonym.key(settings.home)
        con.create_function(masking.PSEUDONYM_FUNCTION, lambda values: pseudonym.pseudonyms(values, secret),
                            [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"), type="arrow")
    with session(settings.catalog_url) as s:
        datasets = s.query(Dataset).order_by(Dataset.id).all()
    readable: list[str] = []
    for d in datasets:
        if not _NAME.match(d.id) or (only is not None and d.id not in only):
            continue
        seen = None
        if who is not None:
            seen = access_to(who, d, load_standard(f"{d.standard}@{d.standard_version}"))
            if not seen.readable:
                continue
        # The version the catalog records, not the table's newest snapshot (see `storage.data_files`).
        files, schema = storage.data_files(settings, d.table_identifier, (versions or {}).get(d.id, d.snapshot_id))
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            # Files written before a compatible schema change lack the new columns: match columns by name.
            source = f"read_parquet([{listing}], union_by_name = true)"
            columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
            readable += files
        else:
            con.register(f"_{d.id}_empty", schema.empty_table())
            source, columns = f'"_{d.id}_empty"', schema.names
        select = masking.select_list(columns, seen) if seen else ", ".join(map(masking.quoted, columns))
        if select:
            con.execute(f'CREATE VIEW "{d.id}" AS SELECT {select} FROM {source}')
    if sandboxed:
        con.execute(f"SET memory_limit = '{SANDBOX_MEMORY}'")  # one analyst's query cannot starve the server
        con.execute("SET allowed_paths = $paths", {"paths": readable})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    return con


def query(settings, sql: str) -> pa.Table:
    """The operator's own SQL (`hub query`), on the machine that holds the warehouse: unmasked."""
    con = connect(settings, None)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise QueryError(str(e)) from None
    finally:
        con.close()
