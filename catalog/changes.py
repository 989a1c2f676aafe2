"""Record-level changes between a dataset's versions (inserted, updated and deleted keys), and the feed that pages them.

A version's changes are what differs between its Iceberg snapshot and the previous version's, by the standard's
primary key: a key only in the new snapshot is an `insert`, only in the old one a `delete`, in both with other
content an `update`. pyiceberg has no changelog scan, and the hub's publishes replace files (a full extract is one
new file), so the two snapshots are compared whole: DuckDB hashes each row's content and joins the hashes by key,
over the Parquet files that are not in both snapshots (a file both share holds the same rows in both). A
1,000,000-row version compares with the one before it in about half a second; the result (op and key) is kept
under HUB_HOME/changes, so each version is compared once, and read back a page at a time.

The feed (`feed`) pages the changes of the versions after a cursor, version by version, and within a version in
a fixed order of the keys (`_order`). A change
shows its record (for `insert` and `update`) from its own version's snapshot, as the caller may see it: the same
access rule and the same masking SQL as `catalog.rows.page` (`catalog.access`, `catalog.masking.select_list`), so a
caller not cleared for a NIK sees its pseudonym, in the key of a deleted record too.

A dataset whose standard declares no primary key has no record-level changes (`NoPrimaryKey`). A version whose
snapshot expired (a standard's `x-retention`, `hub maintain`) has none any more either (`VersionGone`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from catalog.identity import Identity
from hub.errors import HubError

__all__ = ["CACHE", "DEFAULT_LIMIT", "MAX_LIMIT", "BadCursor", "ChangesError", "NoPrimaryKey", "Version",
           "VersionGone", "change_set", "changes_of", "cursor_after", "diff", "feed", "key_fields",
           "versions"]

CACHE = "changes"  # the folder of HUB_HOME that keeps each version's change set
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000  # changes in one page of the feed
OPS = ("insert", "update", "delete")
_ROW_GROUP = 65_536  # rows of a cached change set read at a time: a page reads one or two of them
_CURSOR = re.compile(r"^(-?\d{1,20})(?::(\d{1,12}))?$")


class ChangesError(HubError):
    """A request for changes the hub cannot answer; `status` is the HTTP answer's. Messages never quote a value."""

    status = 400


class BadCursor(ChangesError):
    """`since` is not a cursor, or names no version of the dataset."""


class NoPrimaryKey(ChangesError):
    """The dataset's standard declares no primary key: records cannot be told apart from one version to the next."""

    status = 409


class VersionGone(ChangesError):
    """A version (or the one before it) has expired: its records, and so its changes, are no longer kept."""

    status = 410


@dataclass(frozen=True)
class Version:
    """One recorded version of a dataset, and the version before it (None for the first)."""

    sequence: int  # its row in hub_dataset_versions: versions of one dataset in the order they were committed
    snapshot_id: int
    previous: int | None
    committed_at: dt.datetime  # UTC


def versions(settings, dataset_id: str) -> list[Version]:
    """The dataset's versions still kept, oldest first, each with the snapshot of the version before it, which may
    have expired (`hub maintain` drops an expired version from hub_dataset_versions; its published run stays)."""
    return _history(settings, dataset_id)[0]


def _history(settings, dataset_id: str) -> tuple[list[Version], set[int]]:
    """`versions`, and the snapshots of the versions once published and no longer kept: both from one read of the
    kept versions and the published runs."""
    from sqlalchemy import select

    from catalog.db import DatasetVersion, Run, session

    with session(settings.catalog_url) as s:
        rows = s.execute(select(DatasetVersion.id, DatasetVersion.snapshot_id, DatasetVersion.committed_at)
                         .where(DatasetVersion.dataset_id == dataset_id).order_by(DatasetVersion.id)).all()
        published = [i for i in s.scalars(select(Run.snapshot_id).where(
            Run.dataset_id == dataset_id, Run.status == "published").order_by(Run.id)) if i is not None]
    before = dict(zip(published, [None, *published]))  # every version ever published: a run records each
    found, previous = [], None
    for sequence, snapshot_id, committed_at in rows:
        found.append(Version(sequence, snapshot_id, before.get(snapshot_id, previous), committed_at))
        previous = snapshot_id
    return found, set(published) - {v.snapshot_id for v in found}


def _standard(dataset, written_with: str | None = None):
    from hub.errors import ConfigError
    from schemas import load_standard

    try:
        return load_standard(written_with or f"{dataset.standard}@{dataset.standard_version}")
    except ConfigError:  # that version's file is gone: the dataset's current version still describes it
        return load_standard(f"{dataset.standard}@{dataset.standard_version}")


def key_fields(dataset) -> list[str]:
    """The columns that tell a dataset's records apart: its standard's primary key, and the source of each row in
    an integrated dataset (which holds one row per source and key). NoPrimaryKey when the standard has none."""
    from catalog.storage import INTEGRATED, SOURCE_COLUMN

    standard = _standard(dataset)
    if not standard.primary_key:
        raise NoPrimaryKey(f"dataset {dataset.id}: its standard {standard.ref} declares no primary key "
                           "(x-primary-key), so its records cannot be followed from one version to the next and it "
                           "has no change feed; its versions are listed at /api/datasets/" + dataset.id + "/versions")
    key = list(standard.primary_key)
    return key + [SOURCE_COLUMN] if dataset.kind == INTEGRATED else key


# --- comparing two snapshots ------------------------------------------------------------------------------------


def _snapshot_files(settings, dataset, snapshot_id: int | None):
    """The snapshot's files (storage.SnapshotFiles); VersionGone if the table no longer holds the snapshot."""
    from catalog import storage

    if snapshot_id is None:
        return None
    table = storage.iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri()).load_table(
        dataset.table_identifier)
    if table.snapshot_by_id(snapshot_id) is None:
        raise VersionGone(f"dataset {dataset.id}: version {snapshot_id} has expired (the standard's retention), and "
                          "the changes it and the version after it made with it; read the dataset's rows at a "
                          "version kept and follow the feed with since=that version (/api/datasets/"
                          f"{dataset.id}/versions lists them)")
    return storage.data_files(settings, dataset.table_identifier, snapshot_id)


_DUCK_TYPES = {pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.int64(): "BIGINT", pa.int32(): "INTEGER",
               pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN", pa.date32(): "DATE"}


def _listing(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def _rows(con, files: list[str], schema: pa.Schema, key: list[str]) -> str:
    """SQL of (key columns, _content): each record's key and the hash of all its columns, every column cast to the
    table's type and a column the files lack (added by a later standard version) null, as a reader sees it."""
    from catalog.masking import quoted

    source = f"read_parquet({_listing(files)}, union_by_name = true)"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    columns = [f"CAST({quoted(f.name) if f.name in present else 'NULL'} AS {_DUCK_TYPES.get(f.type, 'VARCHAR')})"
               for f in schema]
    return (f"SELECT {', '.join(quoted(k) for k in key)}, hash({', '.join(columns)}) AS _content "
            f"FROM {source}")


def _order(settings, key: list[str], table: str = "") -> str:
    """SQL of the order of changes within a version: by a keyed digest of the key, the same for every caller. Not
    by the key itself: a NIK holds a birth date and a district, and a caller who sees NIKs as pseudonyms must not
    learn from their order which are near each other."""
    import hashlib
    import hmac

    from catalog.masking import quoted
    from transforms import pseudonym

    salt = hmac.new(pseudonym.key(settings.home), b"order of changes", hashlib.sha256).hexdigest()
    parts = " || chr(31) || ".join(f"CAST({table}{quoted(k)} AS VARCHAR)" for k in key)
    return f"md5('{salt}' || {parts})"


def diff(settings, dataset, previous: int | None, snapshot_id: int) -> pa.Table:
    """The changes from snapshot `previous` (None: an empty table) to `snapshot_id`: columns `op` and the key
    columns, one row per changed key, in the order of `_order`. Memory is DuckDB's (spilling to disk past 1 GB),
    never a Python object per row."""
    from catalog.masking import quoted
    from catalog.query import hub_connection

    key = key_fields(dataset)
    new = _snapshot_files(settings, dataset, snapshot_id)
    old = _snapshot_files(settings, dataset, previous)
    schema = new.schema
    result_schema = pa.schema([pa.field("op", pa.string()),
                               *(pa.field(k, schema.field(k).type).with_nullable(True) for k in key)])
    shared = set(new.files) & set(old.files if old else ())
    # A file in both snapshots holds the same records in both: an incremental publish rewrites only some files.
    new_files = [f for f in new.files if f not in shared]
    old_files = [f for f in (old.files if old else []) if f not in shared]
    if not new_files and not old_files:
        return result_schema.empty_table()
    keys = ", ".join(quoted(k) for k in key)  # in the select list and, after the digest, to break its ties
    from catalog.query import SPILL

    spill = settings.home / SPILL / uuid.uuid4().hex
    spill.mkdir(parents=True, mode=0o700)
    con = hub_connection()
    try:
        con.execute("SET memory_limit = '1GB'")
        con.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
        if not old_files or not new_files:
            op, files = ("insert", new_files) if new_files else ("delete", old_files)
            changed = f"SELECT '{op}' AS op, {keys} FROM read_parquet({_listing(files)}, union_by_name = true)"
        else:
            joined = " AND ".join(f"o.{quoted(k)} = n.{quoted(k)}" for k in key)
            first = quoted(key[0])
            changed = (
                f"WITH o AS ({_rows(con, old_files, schema, key)}), n AS ({_rows(con, new_files, schema, key)}) "
                f"SELECT CASE WHEN o.{first} IS NULL THEN 'insert' WHEN n.{first} IS NULL THEN 'delete' "
                f"ELSE 'update' END AS op, "
                + ", ".join(f"coalesce(n.{quoted(k)}, o.{quoted(k)}) AS {quoted(k)}" for k in key)
                + f" FROM o FULL OUTER JOIN n ON {joined} WHERE o._content IS DISTINCT FROM n._content")
        found = con.sql(f"SELECT * FROM ({changed}) ORDER BY {_order(settings, key)}, {keys}").to_arrow_table()
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return found.cast(result_schema)


def _cache_path(settings, dataset_id: str, version: Version) -> Path:
    return settings.home / CACHE / dataset_id / f"{version.previous or 'none'}-{version.snapshot_id}.parquet"


def change_set(settings, dataset, version: Version) -> Path:
    """The file of `version`'s changes (`diff` against the version before it), compared once and kept: every
    later page and event reads it. VersionGone if either snapshot has expired (its cached changes go too: they
    hold keys, which retention must not outlive)."""
    path = _cache_path(settings, dataset.id, version)
    try:
        _snapshot_files(settings, dataset, version.snapshot_id)
        _snapshot_files(settings, dataset, version.previous)
    except VersionGone:
        path.unlink(missing_ok=True)
        raise
    if path.exists():
        return path
    found = diff(settings, dataset, version.previous, version.snapshot_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f"{path.stem}.{uuid.uuid4().hex}.partial")
    try:
        pq.write_table(found, partial, row_group_size=_ROW_GROUP, compression="zstd")
        os.replace(partial, path)  # two processes comparing the same versions write the same file
    finally:
        partial.unlink(missing_ok=True)
    return path


def _naming(settings, dataset_id: str, expired: set[int]) -> list[Path]:
    """The kept change sets of the dataset that name an expired version (as the one compared or the one before)."""
    names = {str(e) for e in expired}
    return [path for path in (settings.home / CACHE / dataset_id).glob("*.parquet")
            if {p for p in path.stem.split("-") if p != "none"} & names]


def _forget_expired(settings, dataset_id: str, expired: set[int]) -> None:
    """Remove the kept change sets that name an expired version: they hold its keys, which must not outlive it."""
    for path in _naming(settings, dataset_id, expired):
        path.unlink(missing_ok=True)


def retire_change_sets(settings, now: float | None = None, dry_run: bool = False) -> list[Path]:
    """What `hub maintain` removes of the kept change sets: those naming a version retention expired (they hold its
    keys, which must not outlive it, even when nobody reads the feed again), every one of a dataset no longer in the
    catalog, and the half-written files a killed comparison left, a day on. Returns the paths removed."""
    from catalog.db import Dataset, session

    root = settings.home / CACHE
    cutoff = (time.time() if now is None else now) - 24 * 3600
    removed: list[Path] = []
    with session(settings.catalog_url) as s:
        known = {d for (d,) in s.query(Dataset.id)}
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        if not folder.is_dir():
            continue
        if folder.name not in known:
            gone = sorted(folder.iterdir())
        else:
            gone = _naming(settings, folder.name, _history(settings, folder.name)[1])
        gone += [p for p in folder.glob("*.partial") if p not in gone and p.stat().st_mtime < cutoff]
        for path in gone:
            if not dry_run:
                path.unlink(missing_ok=True)
            removed.append(path)
        if not dry_run and folder.name not in known:
            shutil.rmtree(folder, ignore_errors=True)
    return removed


def _counts(path: Path) -> dict[str, int]:
    counted = {row["values"]: row["counts"]
               for row in pc.value_counts(pq.read_table(path, columns=["op"])["op"]).to_pylist()}
    return {op: counted.get(op, 0) for op in OPS}


def _slice(path: Path, offset: int, count: int) -> pa.Table:
    """Rows offset .. offset+count of a cached change set, reading only the row groups that hold them."""
    file = pq.ParquetFile(path)
    groups, start, first = [], 0, None
    for i in range(file.metadata.num_row_groups):
        rows = file.metadata.row_group(i).num_rows
        if start + rows > offset and start < offset + count:
            groups.append(i)
            first = start if first is None else first
        start += rows
    if not groups:
        return file.schema_arrow.empty_table()
    return file.read_row_groups(groups).slice(offset - first, count)


# --- shaping changes for a caller -------------------------------------------------------------------------------


def _json_value(value):
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def _timestamp(at: dt.datetime) -> str:
    return at.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


@dataclass(frozen=True)
class _Shown:
    """What one caller sees of one version: each column's rule, and the columns in its records."""

    access: object  # catalog.access.Access
    columns: list[str]
    schema: pa.Schema
    files: list[str]


def _shown_to(settings, dataset, who: Identity, snapshot_id: int, fields: list[str] | None) -> _Shown:
    """The columns of the version `snapshot_id` that `who` may see (of `fields`, if given), by the rule
    `catalog.views.visible` applies; AccessDenied if it may not read the dataset, or may not see its key."""
    from catalog.access import AccessDenied, access_to

    files = _snapshot_files(settings, dataset, snapshot_id)
    access = access_to(who, dataset, _standard(dataset, files.standard))
    access.require_readable()
    for k in key_fields(dataset):
        if access.column(k) is None:
            raise AccessDenied(f"dataset {dataset.id}: its key field {k} is withheld from you, so its changes "
                               "cannot be shown to you", needs_token=who.anonymous)
    columns = [c for c in files.schema.names if access.column(c) is not None and (fields is None or c in fields)]
    return _Shown(access, columns, files.schema, files.files)


def _shaped(settings, dataset, shown: _Shown, version: Version, part: pa.Table) -> list[dict]:
    """The changes `part` (op and key columns) as the caller sees them: keys and records through the same
    masking SQL as the caller's rows (`masking.select_list`), records read from `version`'s own snapshot."""
    from catalog.masking import quoted, select_list
    from catalog.query import hub_connection
    from transforms import pseudonym

    key = key_fields(dataset)
    secret = pseudonym.key(settings.home)
    positions = pa.array(range(part.num_rows), pa.int64())
    keys = part.drop_columns(["op"]).append_column("_hub_pos", positions)
    wanted = keys.filter(pc.not_equal(part["op"], "delete"))
    records = {}
    con = hub_connection()
    try:
        con.register("changed_keys", keys)
        shown_keys = con.execute(f"SELECT _hub_pos, {select_list(key, shown.access, secret)} FROM changed_keys "
                                 "ORDER BY _hub_pos").fetchall()
        if wanted.num_rows and shown.columns and shown.files:
            # pyarrow reads only the row groups whose statistics may hold the keys, then the join is exact.
            scan = ds.dataset(shown.files, schema=shown.schema, format="parquet")
            found = scan.to_table(columns=sorted({*shown.columns, *key}),
                                  filter=pc.field(key[0]).isin(wanted[key[0]].unique()))
            con.register("found_rows", found)
            con.register("wanted_keys", wanted)
            on = ", ".join(quoted(k) for k in key)
            result = con.execute(f"SELECT w._hub_pos, {select_list(shown.columns, shown.access, secret)} "
                                 f"FROM found_rows JOIN wanted_keys w USING ({on})")
            names = [d[0] for d in result.description][1:]
            for position, *values in result.fetchall():
                records[position] = dict(zip(names, map(_json_value, values)))
    finally:
        con.close()
    ops = part["op"].to_pylist()
    return [{"op": ops[position], "key": dict(zip(key, map(_json_value, values))),
             "record": records.get(position) if ops[position] != "delete" else None,
             "snapshot_id": version.snapshot_id, "committed_at": _timestamp(version.committed_at)}
            for position, *values in shown_keys]


def _fields_lists(shown: _Shown) -> dict:
    from catalog.access import MASKED, PSEUDONYM

    return {"masked_fields": sorted(c for c in shown.columns if shown.access.column(c) == MASKED),
            "pseudonymized_fields": sorted(c for c in shown.columns if shown.access.column(c) == PSEUDONYM),
            "withheld_fields": sorted(c for c in {*shown.schema.names, *shown.access.fields}
                                      if shown.access.column(c) is None)}


def changes_of(settings, dataset, who: Identity, version: Version, offset: int = 0, limit: int = DEFAULT_LIMIT,
               fields: list[str] | None = None) -> dict:
    """Changes `offset` .. `offset+limit` of one version as `who` sees them (`changes`), with how many the version
    has (`total`, and `counts` by op) and which fields `who` sees masked, pseudonymized or not at all."""
    path = change_set(settings, dataset, version)
    shown = _shown_to(settings, dataset, who, version.snapshot_id, fields)
    total = pq.read_metadata(path).num_rows
    part = _slice(path, offset, limit) if offset < total else None
    changes = _shaped(settings, dataset, shown, version, part) if part is not None and part.num_rows else []
    return {"changes": changes, "total": total, "counts": _counts(path), **_fields_lists(shown)}


def _position(history: list[Version], since: str | None, expired=frozenset()) -> tuple[int, int]:
    """Where a cursor points: (index of the version to read from, changes of it already read). VersionGone for a
    version in `expired`."""
    if since is None or since == "":
        return 0, 0
    match = _CURSOR.match(since.strip())
    if match is None:
        raise BadCursor("since: give a version's snapshot id (the changes after it), or the `next` cursor of a "
                        "page (SNAPSHOT:N)")
    snapshot_id, read = int(match[1]), match[2]
    index = next((i for i in range(len(history) - 1, -1, -1) if history[i].snapshot_id == snapshot_id), None)
    if index is None and snapshot_id in expired:
        raise VersionGone(_gone_message(history))
    if index is None:
        raise BadCursor("since: the snapshot id given is not a version of this dataset (its versions list them)")
    return (index + 1, 0) if read is None else (index, int(read))


def _gone_message(history: list[Version]) -> str:
    oldest = history[0].snapshot_id if history else None
    return ("the changes asked for need a version that has expired (the standard's retention); read the dataset's "
            "rows at its oldest version kept" + (f" ({oldest}) and follow the feed with since={oldest}"
                                                 if oldest is not None else ""))


def cursor_after(history: list[Version], index: int, offset: int) -> str | None:
    """The cursor of a position: `SNAPSHOT` once a version is read whole, `SNAPSHOT:N` within one."""
    if index < len(history) and offset:
        return f"{history[index].snapshot_id}:{offset}"
    return str(history[index - 1].snapshot_id) if index else None


def feed(settings, dataset, who: Identity, client: str | None, *, since: str | None = None,
         limit: int = DEFAULT_LIMIT, fields: list[str] | None = None, audited: bool = True) -> dict:
    """A page of the changes of `dataset` after the cursor `since`, oldest version first and by key within a
    version, as `who` may see them; `next` is the cursor of the page after this one.

    `since` omitted starts at the first version (whose changes insert every record it had); a snapshot id
    starts after that version; `SNAPSHOT:N` after the first N changes of that version (a `next` cursor). Once
    everything is read, `next` is the last version's snapshot id, `more` false: ask again with it later. `fields`
    narrows the records (the service bus's declared fields). A read of anything not `publik` is in the audit log
    as a `rows.read`, unless the caller logs it itself (`audited=False`: the service bus's message log).
    """
    from catalog import audit

    limit = max(1, min(int(limit), MAX_LIMIT))
    key = key_fields(dataset)
    history, expired = _history(settings, dataset.id)
    _forget_expired(settings, dataset.id, expired)
    index, offset = _position(history, since, expired)
    # Refused before anything is read; the field lists of the answer are the current version's.
    shown = _shown_to(settings, dataset, who, dataset.snapshot_id, fields) if dataset.snapshot_id is not None else None
    changes: list[dict] = []
    while index < len(history) and len(changes) < limit:
        version = history[index]
        try:
            found = changes_of(settings, dataset, who, version, offset, limit - len(changes), fields)
        except VersionGone:
            raise VersionGone(_gone_message(history)) from None
        changes += found["changes"]
        offset += len(found["changes"])
        if offset >= found["total"]:
            index, offset = index + 1, 0
    columns = shown.columns if shown else []
    if audited and shown is not None and shown.access.restricted(columns):
        audit.read(settings, who, client, "rows.read", dataset.id,
                   {"changes": True, "since": since if since and _CURSOR.match(since.strip()) else None,
                    "columns": columns, "rows": len(changes)})
    return {"dataset": dataset.id, "key": key, "since": since or None, "changes": changes,
            "next": cursor_after(history, index, offset), "more": index < len(history),
            "current_snapshot_id": dataset.snapshot_id, **(_fields_lists(shown) if shown else
                                                           {"masked_fields": [], "pseudonymized_fields": [],
                                                            "withheld_fields": []})}
