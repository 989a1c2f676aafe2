"""What a caller may see of a dataset version, as Arrow data: the only data that rows, SQL and downloads read.

The access rule (`catalog.access`) is applied here, outside any connection that runs a caller's query:

- Columns the caller may not see are not in the data at all: a dataset over the version's Parquet files
  whose schema holds only the visible columns (pyarrow reads the files, and only those columns).
- Where personal data must be masked or pseudonymized, the data is a masked copy of the version, written
  once per version and per rule by a connection of the hub's own that never runs a caller's statement, and
  kept under HUB_HOME/served. A caller's query reads the copy; the plain values are not within its reach.

What comes out is a `pyarrow.dataset.Dataset`, read lazily (projection and filters pushed down), so a caller's
DuckDB connection can be given it without any file access of its own (`catalog.query.sandbox`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds

from catalog import masking, storage
from catalog.access import HUB_COLUMNS, MASKED, PSEUDONYM, Access, access_to
from catalog.identity import Identity

__all__ = ["COPIES", "Visible", "retire_stale_copies", "view_key", "visible"]

COPIES = "served"  # the folder of HUB_HOME that holds the masked copies
_FORMAT = 2  # part of every copy's name: a change of how copies are made retires the old ones
_KEEP_OLD_VERSIONS_SECONDS = 24 * 3600  # copies of versions no longer current are removed after this


@dataclass(frozen=True)
class Visible:
    """One dataset version as one caller may see it."""

    access: Access  # the rule for each column, from the standard version the data was written with
    data: ds.Dataset  # the visible columns only, personal data already masked or pseudonymized
    withheld: tuple[str, ...]  # the fields and columns left out for this caller
    key: str  # the view's identity (`view_key`): callers with the same key read the same records

    def reader(self, batch_size: int) -> pa.RecordBatchReader:
        """The rows a batch at a time, codes read as dictionaries turned back into plain text (a download)."""
        plain = pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
                           for f in self.data.schema])
        batches = self.data.scanner(batch_size=batch_size).to_batches()
        return pa.RecordBatchReader.from_batches(plain, (b.cast(plain) for b in batches))


@dataclass(frozen=True)
class _Plan:
    """What a caller sees of a version, decided from the catalog and the table's metadata, before any data is read."""

    access: Access
    snapshot_id: int | None
    files: storage.SnapshotFiles
    shown: pa.Schema  # the visible columns
    rules: list  # (column, rule) for each visible column
    codes: list[str]  # the visible columns read as dictionaries
    withheld: tuple[str, ...]
    copy: str | None  # the masked copy's name, None when nothing is masked (the version's own files are read)
    secret: bytes | None  # the pseudonym key, when a copy is made

    @property
    def key(self) -> str:
        """The same for two callers exactly when they read the same records in the same columns and types."""
        seen = {"format": _FORMAT, "pyarrow": pa.__version__, "columns": [[f.name, str(f.type)] for f in self.shown],
                "read": self.copy or sorted(self.files.files)}
        return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()[:32]


def visible(settings, dataset, who: Identity, snapshot_id: int | None = None) -> Visible:
    """What `who` may see of `dataset` (a catalog Dataset) at `snapshot_id` (default: its current version).

    Raises `AccessDenied` when `who` may not read the dataset at all.
    """
    plan = _plan(settings, dataset, who, snapshot_id)
    if plan.copy is None:
        return Visible(plan.access, _scan(plan.files.files, plan.shown, plan.codes), plan.withheld, plan.key)
    copy = _masked_copy(settings, dataset.id, plan)
    return Visible(plan.access, _scan([copy], None, plan.codes), plan.withheld, plan.key)


def view_key(settings, dataset, who: Identity) -> str:
    """`Visible.key` of what `who` may see of the dataset's current version, without reading or copying any data.

    Raises `AccessDenied` when `who` may not read the dataset at all."""
    return _plan(settings, dataset, who, None).key


def _plan(settings, dataset, who: Identity, snapshot_id: int | None) -> _Plan:
    from hub.errors import ConfigError
    from schemas import load_standard

    snapshot_id = dataset.snapshot_id if snapshot_id is None else snapshot_id
    files = storage.data_files(settings, dataset.table_identifier, snapshot_id)
    try:
        standard = load_standard(files.standard or f"{dataset.standard}@{dataset.standard_version}")
    except ConfigError:  # that version's file is gone: the dataset's current version still classifies it
        standard = load_standard(f"{dataset.standard}@{dataset.standard_version}")
    access = access_to(who, dataset, standard)
    access.require_readable()
    plan = [(c, access.column(c)) for c in files.schema.names]
    plan = [(c, rule) for c, rule in plan if rule is not None]
    shown = pa.schema([files.schema.field(c) for c, _ in plan])
    withheld = tuple(sorted(c for c in {*files.schema.names, *access.fields} if access.column(c) is None))
    # Codes repeat: read as dictionaries, they reach a query several times faster than as plain text.
    codes = [c for c in (*(f.name for f in standard.fields if f.code_list), *HUB_COLUMNS) if c in shown.names]
    if not any(rule in (MASKED, PSEUDONYM) for _, rule in plan):
        return _Plan(access, snapshot_id, files, shown, plan, codes, withheld, None, None)
    from transforms import pseudonym

    secret = pseudonym.key(settings.home)
    rules = [(c, rule, access.fields.get(c, (0, None))[1]) for c, rule in plan]
    recipe = {"format": _FORMAT, "files": sorted(files.files), "columns": rules}
    if any(rule == PSEUDONYM for _, rule in plan):
        # A new pseudonym key gives everyone new pseudonyms: copies made with the old one must not be used.
        recipe["key"] = hmac.new(secret, b"served copies", hashlib.sha256).hexdigest()[:16]
    name = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:24]
    return _Plan(access, snapshot_id, files, shown, plan, codes, withheld, name, secret)


def _scan(files: list[str], schema: pa.Schema | None, codes: list[str] = ()) -> ds.Dataset:
    """The files as one dataset of `schema` (default: the files' own), the columns `codes` read as dictionaries:
    other columns are never read; a column a file lacks (written before a standard version added it) is null."""
    if not files:
        return ds.dataset(schema.empty_table())
    form = ds.ParquetFileFormat(read_options={"dictionary_columns": list(codes)})
    return ds.dataset(files, schema=schema, format=form)


def _masked_copy(settings, dataset_id: str, plan: _Plan) -> str:
    """The Parquet file of the version with the plan's rules applied, written once (by one process at a time)."""
    name = plan.copy
    folder = settings.home / COPIES / dataset_id / str(plan.snapshot_id)
    target = folder / f"{name}.parquet"
    if target.exists():
        return str(target)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another request or worker may be writing the same copy
        if not target.exists():
            partial = folder / f"{name}.{uuid.uuid4().hex}.partial"
            try:
                _write_copy(plan.files.files, plan.shown, plan.access, plan.secret, partial)
                os.replace(partial, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
    (folder / f"{name}.lock").unlink(missing_ok=True)
    _retire_old_copies(settings, dataset_id, plan.snapshot_id)
    return str(target)


def _write_copy(paths: list[str], shown: pa.Schema, access: Access, secret: bytes, out) -> None:
    """Write the version's visible columns, masked as `access` says (pseudonyms with the key `secret`), to `out`:
    a DuckDB connection of the hub's own, which reads only the snapshot given to it and runs only the statement
    made here."""
    import duckdb

    from catalog.query import hub_connection

    con = hub_connection()
    try:
        con.register("version", _scan(paths, shown))
        select = masking.select_list(shown.names, access, secret)
        target = str(out).replace("'", "''")
        con.execute(f"COPY (SELECT {select} FROM version) TO '{target}' (FORMAT parquet)")
    except duckdb.Error as e:
        raise RuntimeError(f"the masked copy of a dataset version could not be written: {e}") from None
    finally:
        con.close()


def _retire_old_copies(settings, dataset_id: str, keep_snapshot, now: float | None = None,
                       dry_run: bool = False) -> list:
    """Remove the copies of versions that are not current any more, once they are a day old (a past version
    read again is copied again); return the folders removed."""
    from catalog.db import Dataset, session

    with session(settings.catalog_url) as s:
        d = s.get(Dataset, dataset_id)
        current = str(d.snapshot_id) if d else None
    root = settings.home / COPIES / dataset_id
    cutoff = (time.time() if now is None else now) - _KEEP_OLD_VERSIONS_SECONDS
    removed = []
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.name in (current, str(keep_snapshot)):
            continue
        with contextlib.suppress(OSError):
            if folder.stat().st_mtime < cutoff:
                if not dry_run:
                    shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def retire_stale_copies(settings, now: float | None = None, dry_run: bool = False) -> list:
    """For every dataset (also those no longer in the catalog), what `_retire_old_copies` removes after a new copy,
    and the half-written files a killed copy left in the current version's folder, a day on (`hub maintain`):
    copies of a dataset nobody reads any more are otherwise never looked at again. Returns the paths removed."""
    root = settings.home / COPIES
    cutoff = (time.time() if now is None else now) - _KEEP_OLD_VERSIONS_SECONDS
    removed = []
    for dataset in sorted(root.iterdir()) if root.is_dir() else ():
        if not dataset.is_dir():
            continue
        removed += _retire_old_copies(settings, dataset.name, None, now, dry_run)
        for left in (*dataset.glob("*/*.partial"), *dataset.glob("*/*.lock")):
            with contextlib.suppress(OSError):
                if left.stat().st_mtime < cutoff:
                    if not dry_run:
                        left.unlink()
                    removed.append(left)
    return removed
