"""Iceberg tables of the catalog (pyiceberg SqlCatalog on the catalog database): one commit per publish."""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from hub.read_ahead import ReadAhead

__all__ = [
    "HARMONIZED", "INDICATOR", "INTEGRATED", "NAMESPACES", "PUBLIC", "SOURCE_COLUMN",
    "commit_indicator", "commit_integrated", "commit_public", "commit_source", "conform", "data_files", "drop_public",
    "file_schema", "iceberg_catalog", "read_table", "snapshot_rows", "SnapshotFiles",
]

HARMONIZED = "harmonized"
INTEGRATED = "integrated"
INDICATOR = "indicator"
PUBLIC = "publik"  # what anonymous may read, for outside engines (`catalog.public`); the others are back-office
NAMESPACES = (HARMONIZED, INTEGRATED, INDICATOR, PUBLIC)
SOURCE_COLUMN = "_source"
_RUN = "hub.run-id"
_UPSERT_ROWS = 100_000  # records an upsert matches at a time: its memory
_STREAM_ROWS = 100_000  # records read at a time where a table is rebuilt from others (integration)
# A written data file's records: a row group every _GROUP_ROWS, a new file past _FILE_BYTES of Arrow bytes.
_GROUP_ROWS = 100_000
_FILE_BYTES = 256 * 1024 * 1024
_CONTENT = "hub.content-sha256"
_STANDARD = "hub.standard"  # the standard version a snapshot was written with: its columns' classification
_RULES = "hub.public-rules"  # how a public table's columns reach anonymous: a change starts the table anew


@cache
def iceberg_catalog(url: str, warehouse: str):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("hub", uri=url, warehouse=warehouse)
    for namespace in NAMESPACES:
        catalog.create_namespace_if_not_exists(namespace)
    return catalog


def _catalog(settings):
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    return iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri())


def _iceberg_schema(standard, with_source: bool):
    from pyiceberg.schema import Schema
    from pyiceberg.types import BooleanType, DateType, DoubleType, LongType, NestedField, StringType

    types = {"string": StringType, "integer": LongType, "number": DoubleType, "boolean": BooleanType}
    fields = []
    for i, f in enumerate(standard.fields, start=1):
        kind = DateType() if f.format == "date" else types[f.type]()
        fields.append(NestedField(i, f.name, kind, required=f.required and not f.nullable, doc=f.title))
    if with_source:
        fields.append(NestedField(len(fields) + 1, SOURCE_COLUMN, StringType(), required=True, doc="Source id"))
    key_ids = [i for i, f in enumerate(standard.fields, start=1) if f.name in standard.primary_key]
    # The integrated table holds one row per (source, key): its key is not unique alone.
    return Schema(*fields, identifier_field_ids=[] if with_source else key_ids)


def _arrow_schema(table) -> pa.Schema:
    """The table's current schema in Arrow, with the field ids its files must carry. Text stays `string`, as
    harmonization makes it: pyiceberg's default `large_string` would copy every text column on the way to
    Parquet, where both are the same."""
    schema = table.schema().as_arrow()
    return pa.schema([f.with_type(pa.string()) if f.type == pa.large_string() else f for f in schema])


def file_schema(standard) -> pa.Schema:
    """The Arrow schema of a source's data files: the standard's fields as its table stores them (dates as
    dates, text as `string`), without Iceberg field ids, which the table maps from the names."""
    return pa.schema([pa.field(f.name, pa.string() if f.type == pa.large_string() else f.type, nullable=f.nullable)
                      for f in _iceberg_schema(standard, with_source=False).as_arrow()])


def _table(settings, namespace: str, name: str, standard, with_source: bool):
    from pyiceberg.exceptions import NoSuchTableError

    catalog = _catalog(settings)
    identifier = (namespace, name)
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        return catalog.create_table(
            identifier,
            schema=_iceberg_schema(standard, with_source),
            properties={"hub.standard": standard.ref, "format-version": "2"},
        )
    wanted = _iceberg_schema(standard, with_source)
    # Field ids differ once a table has evolved; compare names and types.
    if {(f.name, f.field_type) for f in wanted.fields} - {(f.name, f.field_type) for f in table.schema().fields}:
        # A new standard version: evolve the table in place so old snapshots stay readable.
        with table.update_schema(allow_incompatible_changes=False) as update:
            update.union_by_name(wanted)
    return table


def conform(records: pa.Table, schema: pa.Schema) -> pa.Table:
    """Records in a table's schema: ISO date text becomes dates; fields the records lack (added by a
    later compatible version of the standard) are null."""
    columns = []
    for f in schema:
        if f.name not in records.column_names:
            columns.append(pa.nulls(records.num_rows, f.type))
            continue
        column = records[f.name]
        if pa.types.is_date(f.type) and not pa.types.is_date(column.type):
            # Few distinct dates, so each is parsed once.
            encoded = column.combine_chunks().dictionary_encode()
            column = pc.take(pc.cast(encoded.dictionary, f.type), encoded.indices)
        columns.append(column.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _current(table):
    snapshot = table.current_snapshot()
    return snapshot, (snapshot.summary.additional_properties if snapshot else {})


def commit_source(
    settings, source_id: str, standard, data_file: Path, run_id: str, merge: bool, digest: str
) -> int | None:
    """Publish a run's valid records, a Parquet file in `file_schema`, in one Iceberg commit; return the
    table's snapshot id afterwards.

    merge=False: the records are the whole source (a full extract): the file itself replaces the table's
    files, copied into the table's folder, never read into memory.
    merge=True: the records are what changed; rows whose primary key exists replace the old version. The
    first load adds the file as it is; later ones upsert it a slice at a time, all in one transaction.
    `digest` identifies the file's content: publishing the content of the current snapshot again makes
    no new snapshot, so re-runs are idempotent.
    """
    import pyarrow.parquet as pq

    table = _table(settings, HARMONIZED, source_id, standard, with_source=False)
    snapshot, props = _current(table)
    properties = {_RUN: run_id, _STANDARD: standard.ref}
    if snapshot is not None and props.get(_CONTENT) == digest:
        # The retry of a publish whose commit landed: its file is whole unless the rare case at the end of
        # _replace_with_file failed half-way, which the staged file mends.
        if not _whole(table, _content_file(table, digest), data_file.stat().st_size):
            _copy_into(table, data_file, _content_file(table, digest))
        return snapshot.snapshot_id
    if not merge or snapshot is None:
        _replace_with_file(table, data_file, digest, {**properties, _CONTENT: digest})
    elif pq.read_metadata(data_file).num_rows:
        schema = _arrow_schema(table)
        with table.transaction() as tx:
            for batch in pq.ParquetFile(data_file).iter_batches(batch_size=_UPSERT_ROWS):
                tx.upsert(conform(pa.Table.from_batches([batch]), schema), join_cols=list(standard.primary_key),
                          snapshot_properties=properties)
    table = table.refresh()
    return table.current_snapshot().snapshot_id if table.current_snapshot() else None


def _replace_with_file(table, data_file: Path, digest: str, properties: dict) -> None:
    """Make `data_file` the table's only data file, in one snapshot."""
    target = _content_file(table, digest)
    size = data_file.stat().st_size
    # A whole file of that name is this content, maybe an older version's: rewriting it would put that version
    # at risk for nothing. A shorter one is what a killed copy left.
    if not _whole(table, target, size):
        _copy_into(table, data_file, target)
    _replace(table, properties, file=target)
    # The file found above may be an expired version's that `hub maintain` took for an orphan meanwhile (it puts
    # back what a commit it sees refers to, and this checks for the rest): the new snapshot must not point at
    # nothing, and the staged file is still here.
    if not _whole(table, target, size):
        _copy_into(table, data_file, target)


def _replace(table, properties: dict, *, file: str | None = None,
             data: pa.Table | pa.RecordBatchReader | dict[str, pa.RecordBatchReader] | None = None,
             keep: set[str] = frozenset()) -> None:
    """One snapshot whose data is exactly `file` (a Parquet file in the table's folder), `data` and the current
    files `keep`: the other current files deleted and the new ones added by a single overwrite. `data` as
    {name: records} writes each one's records to files of their own, named after it. pyiceberg's own overwrite
    commits a delete snapshot and then an append, and outside engines reading the history would see an empty
    version between."""
    from pyiceberg.io.pyarrow import parquet_file_to_data_file
    from pyiceberg.table import TableProperties

    live = _live_files(table)
    parts = data.items() if isinstance(data, dict) else [] if data is None else [("00000", data)]
    with table.transaction() as tx:
        if file is not None and tx.table_metadata.name_mapping() is None:
            # The staged file carries no field ids: readers map its columns by name, as `add_files` sets up.
            tx.set_properties(**{TableProperties.DEFAULT_NAME_MAPPING:
                                 tx.table_metadata.schema().name_mapping.model_dump_json()})
        with tx.update_snapshot(snapshot_properties=properties).overwrite() as replace:
            for old in live:
                if old.file_path != file and old.file_path not in keep:  # content already current stays
                    replace.delete_data_file(old)
            if file is not None and file not in {old.file_path for old in live}:
                replace.append_data_file(parquet_file_to_data_file(table.io, tx.table_metadata, file))
            for name, records in parts:
                reader = records.to_reader() if isinstance(records, pa.Table) else records
                for path in _write_files(table, tx.table_metadata, reader, f"{name}-{{}}-{replace.commit_uuid}"):
                    replace.append_data_file(parquet_file_to_data_file(table.io, tx.table_metadata, path))


def _write_files(table, metadata, reader: pa.RecordBatchReader, name: str) -> Iterator[str]:
    """The records of `reader` written as the table's Parquet files (its schema, with its field ids), each named
    `name` with its number in place of {}: a row group every _GROUP_ROWS records, a new file past _FILE_BYTES of
    them; yields each file's path once it is whole. Holds one row group's records, whatever the size of `reader`
    (pyiceberg's own writes hold a whole file's, several files at once)."""
    from pyiceberg.io.pyarrow import ParquetFormatWriter
    from pyiceberg.table.locations import load_location_provider

    schema = _arrow_schema(table)
    locations = load_location_provider(table_location=metadata.location, table_properties=metadata.properties)
    writer, path, written, pending = None, None, 0, []

    def flush():
        nonlocal writer, path, written
        if writer is None:
            path = locations.new_data_location(name.format(next(counter)) + ".parquet")
            writer = ParquetFormatWriter(table.io.new_output(path), metadata.schema(), metadata.properties)
        group = pa.Table.from_batches(pending, reader.schema).cast(schema)  # the same names, with field ids
        writer.write(group)
        written += group.nbytes
        pending.clear()

    counter = itertools.count()
    try:
        for batch in reader:
            if batch.num_rows:
                pending.append(batch)
            if sum(b.num_rows for b in pending) >= _GROUP_ROWS:
                flush()
            if writer is not None and written >= _FILE_BYTES:
                done, writer, written = writer, None, 0
                done.close()
                yield path
        if pending:
            flush()
        if writer is not None:
            done, writer = writer, None
            done.close()
            yield path
    finally:
        if writer is not None:  # a write that failed, or a commit that stopped reading: the file is left unfinished
            with contextlib.suppress(Exception):
                writer.close()


def _live_files(table) -> list:
    """The data files of the table's current snapshot."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return []
    return [entry.data_file for manifest in snapshot.manifests(table.io)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)]


def _content_file(table, digest: str) -> str:
    # Named by content: a retried publish writes the same bytes to the same place.
    return f"{table.location()}/data/hub-{digest[:32]}.parquet"


def _whole(table, target: str, size: int) -> bool:
    existing = table.io.new_input(target)
    return existing.exists() and len(existing) == size


def _copy_into(table, data_file: Path, target: str) -> None:
    try:
        with data_file.open("rb") as staged, table.io.new_output(target).create(overwrite=True) as out:
            shutil.copyfileobj(staged, out, 8 << 20)
    except BaseException:
        # A partial copy is no table's file; left behind it would hold the space the retry needs.
        with contextlib.suppress(OSError):
            table.io.delete(target)
        raise


def commit_integrated(settings, standard, inputs: dict[str, int | None], run_id: str) -> int | None:
    """Bring the standard's integrated table to its sources' snapshots `inputs` (source id -> snapshot).

    The table follows `standard` (the newest version); a source still on an older compatible version
    lacks the fields added since, which are null in its rows. Each data file holds one source's records and is
    named after it: a source whose snapshot the table already holds keeps its files, and only the sources that
    changed are written again (a source's run rewrites its own part, not the other sources'). A new standard
    version, or a file not named after its source (written before files were), rewrites them all.
    """
    table = _table(settings, INTEGRATED, standard.name, standard, with_source=True)
    snapshot, props = _current(table)
    signature = ",".join(f"{s}={inputs[s]}" for s in sorted(inputs)) + f";{standard.ref}"
    if snapshot is not None and props.get(_CONTENT) == signature:
        return snapshot.snapshot_id
    kept = _unchanged_files(table, props.get(_CONTENT), signature)
    schema = _arrow_schema(table)

    def read(source_id: str):
        # A source's files read a batch at a time, columns by name: the integration holds one batch. (A pyarrow
        # dataset scan reads ahead of a slower consumer, and what it holds grows with the source.)
        import pyarrow.parquet as pq

        for path in data_files(settings, f"{HARMONIZED}.{source_id}", inputs[source_id]).files:
            with pq.ParquetFile(path, pre_buffer=False) as file:
                for batch in file.iter_batches(batch_size=_STREAM_ROWS):
                    records = pa.Table.from_batches([batch])
                    records = records.append_column(SOURCE_COLUMN, pa.array([source_id] * batch.num_rows,
                                                                            pa.string()))
                    yield from conform(records, schema).to_batches()

    def read_while_writing(source_id: str):  # the next batch is read while this one is written: one more held
        with ReadAhead(read(source_id)) as batches:
            yield from batches

    changed = {source_id: pa.RecordBatchReader.from_batches(schema, read_while_writing(source_id))
               for source_id in sorted(inputs) if inputs[source_id] is not None and source_id not in kept}
    _replace(table, {_RUN: run_id, _CONTENT: signature, _STANDARD: standard.ref}, data=changed,
             keep={path for paths in kept.values() for path in paths})
    return table.refresh().current_snapshot().snapshot_id


# An integrated table's data file, named after the one source whose records it holds (a source id has no "-").
_SOURCE_FILE = re.compile(r"/(?P<source>[a-z][a-z0-9_]*)-\d+-[0-9a-f-]+\.parquet$")


def _unchanged_files(table, held: str | None, wanted: str) -> dict[str, list[str]]:
    """The current files of each source whose snapshot the integration signature `held` (the table's) and
    `wanted` share, for the same standard version: those files are already what the integration would write.
    None at all if some current file is not named after its source."""
    if not held or ";" not in held:
        return {}
    (held_sources, held_standard), (wanted_sources, wanted_standard) = (
        (dict(item.split("=") for item in sources.split(",") if item), ref)
        for sources, ref in (held.rsplit(";", 1), wanted.rsplit(";", 1)))
    if held_standard != wanted_standard:
        return {}
    files: dict[str, list[str]] = {}
    for data_file in _live_files(table):
        named = _SOURCE_FILE.search(data_file.file_path)
        if named is None:
            return {}
        files.setdefault(named["source"], []).append(data_file.file_path)
    return {source: paths for source, paths in files.items()
            if source in wanted_sources and held_sources.get(source) == wanted_sources[source]}


def commit_indicator(settings, standard, name: str, data: pa.Table, run_id: str) -> int | None:
    """Replace the indicator table `name` with `data` (records shaped like `standard`); return its snapshot id.

    An indicator is small: its content, in key order, is hashed, and a result equal to the current
    snapshot's makes no new snapshot.
    """
    import hashlib

    import pyarrow.parquet as pq

    table = _table(settings, INDICATOR, name, standard, with_source=False)
    records = conform(data, _arrow_schema(table))
    if standard.primary_key:
        records = records.sort_by([(key, "ascending") for key in standard.primary_key])
    content = pa.BufferOutputStream()
    pq.write_table(records, content, compression="none")
    digest = hashlib.sha256(content.getvalue().to_pybytes() + standard.ref.encode()).hexdigest()
    snapshot, props = _current(table)
    if snapshot is not None and props.get(_CONTENT) == digest:
        return snapshot.snapshot_id
    _replace(table, {_RUN: run_id, _CONTENT: digest, _STANDARD: standard.ref}, data=records)
    return table.refresh().current_snapshot().snapshot_id


def commit_public(settings, name: str, rows: pa.RecordBatchReader, rules: str, version: str, standard: str,
                  run_id: str) -> int:
    """Make the public table `name` hold exactly `rows` (what anonymous reads of a dataset's `version`), in one
    snapshot; return its id. `rules` says how each column reaches anonymous: a table written under other rules,
    or with other columns, is purged first, since its past snapshots hold what the new rules no longer show."""
    from pyiceberg.exceptions import NoSuchTableError

    # The rows come from another table's files, whose field ids are not this table's: columns go by name.
    rows = rows.cast(pa.schema([pa.field(f.name, f.type, f.nullable) for f in rows.schema]))
    catalog = _catalog(settings)
    identifier = (PUBLIC, name)
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        table = None
    shape = [(f.name, f.type) for f in rows.schema]
    if table is not None and (table.properties.get(_RULES) != rules
                              or [(f.name, f.type) for f in _arrow_schema(table)] != shape):
        catalog.purge_table(identifier)
        table = None
    if table is None:
        table = catalog.create_table(identifier, schema=rows.schema,
                                     properties={_RULES: rules, "hub.standard": standard, "format-version": "2"})
    snapshot, props = _current(table)
    if snapshot is not None and props.get(_CONTENT) == version:
        return snapshot.snapshot_id
    _replace(table, {_RUN: run_id, _CONTENT: version, _STANDARD: standard}, data=rows)
    return table.refresh().current_snapshot().snapshot_id


def drop_public(settings, name: str) -> bool:
    """Remove the public table `name` and its files, if there is one; True if there was."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        _catalog(settings).purge_table((PUBLIC, name))
    except NoSuchTableError:
        return False
    return True


def read_table(settings, namespace: str, name: str, snapshot_id: int | None = None) -> pa.Table:
    table = _catalog(settings).load_table((namespace, name))
    return table.scan(snapshot_id=snapshot_id).to_arrow()


class SnapshotFiles(NamedTuple):
    """A dataset version as files: its Parquet files, the table's Arrow schema (every column any version had,
    text as `string`) and the standard version it was written with (None if it predates that record)."""

    files: list[str]
    schema: pa.Schema
    standard: str | None


def data_files(settings, identifier: str, snapshot_id: int | None = None) -> SnapshotFiles:
    """The files of a snapshot. The default snapshot is the dataset's current version as the catalog records
    it, which is the table's current snapshot except after a run that died between its Iceberg commit and its
    catalog commit: what it committed stays unseen (no run, quarantine or cursor of the catalog describes it)
    until a run records it."""
    table = _catalog(settings).load_table(identifier)
    schema = _arrow_schema(table)
    if snapshot_id is None:
        snapshot_id = _recorded_snapshot(settings, identifier)
    snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    if table.current_snapshot() is None or snapshot is None:
        return SnapshotFiles([], schema, None)
    tasks = list(table.scan(snapshot_id=snapshot_id).plan_files())
    # The hub writes copy-on-write (no delete files), so the data files are the whole snapshot.
    if any(task.delete_files for task in tasks):
        raise RuntimeError(f"{identifier} has delete files, which the hub's readers do not apply")
    return SnapshotFiles([task.file.file_path.removeprefix("file://") for task in tasks], schema,
                         snapshot.summary.additional_properties.get(_STANDARD))


def _recorded_snapshot(settings, identifier: str) -> int | None:
    from sqlalchemy import select

    from catalog.db import Dataset, session

    with session(settings.catalog_url) as s:
        return s.scalars(select(Dataset.snapshot_id).where(Dataset.table_identifier == identifier)).first()


def snapshot_rows(settings, identifier: str) -> int:
    table = _catalog(settings).load_table(identifier)
    snapshot = table.current_snapshot()
    if snapshot is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-records", 0))
