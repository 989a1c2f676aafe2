"""The pipeline: stage a source (extract, harmonize, validate), publish it, integrate a standard.

Airflow tasks and the `hub` command line call these same functions.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hub.errors import ConfigError, HubError
from hub.read_ahead import ReadAhead
from hub.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["RunResult", "committed_cursor", "find_source", "integrate", "publish", "run_source", "stage", "new_run_id",
           "staging_retention", "sweep_staging"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    source: str
    run_id: str
    status: str
    rows_in: int
    rows_published: int
    rows_quarantined: int
    quality_score: float | None
    dataset: str
    snapshot_id: int | None
    # Records identical to an earlier record with their key, neither published nor quarantined:
    # rows_in == rows_published + rows_quarantined + rows_repeated.
    rows_repeated: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def new_run_id(prefix: str = "cli") -> str:
    import datetime as dt

    return f"{prefix}__{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%S}__{uuid.uuid4().hex[:8]}"


def find_source(settings: Settings, source_id: str):
    """The source's registration; another registration that does not load never stops this one."""
    from hub.sources import load_registry

    loaded, problems = load_registry(settings)
    sources = {s.id: s for s in loaded}
    if source_id not in sources:
        for problem in problems:
            if Path(problem["file"]).stem == source_id:
                raise ConfigError(problem["error"])
        raise ConfigError(f"unknown source {source_id!r}; registered: {', '.join(sorted(sources)) or 'none'}")
    return sources[source_id]


def _staging_dir(settings: Settings, source_id: str, run_id: str) -> Path:
    return settings.staging / source_id / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def _field_of(reason: str) -> str:
    return reason.split(":", 1)[0]


def stage(settings: Settings, source_id: str, run_id: str, relayed: dict | None = None) -> dict:
    """Extract, harmonize and validate a source, from its committed cursor, into staging files; publish nothing.

    `relayed`: the records a `fetch` task read inside the agency's network (an Edge worker) and relayed through
    Airflow's API server (hub.relay), from the cursor it was given; they are staged instead of reading the source.
    """
    from catalog.db import init_db
    from connectors import connector_for

    init_db(settings.catalog_url)
    source = find_source(settings, source_id)
    batches = None
    if relayed is not None:
        from hub.relay import decode

        cursor, batches = relayed.get("cursor"), decode(relayed, source_id)
    else:
        cursor = committed_cursor(settings, source_id) if connector_for(source).incremental else None
    folder = _staging_dir(settings, source_id, run_id)
    sweep_staging(settings, source_id, keep=folder)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.mkdir(parents=True)
        return stage_into(folder, source, run_id, cursor, batches=batches)
    except BaseException as e:
        # Half-written staging files are never published (a retry stages again): they must not fill the disk.
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            raise _disk_full(source_id, run_id, e, "staging", settings.staging) from None
        raise


def committed_cursor(settings: Settings, source_id: str):
    """Where the next run of an incremental source starts: the cursor its last publish committed (None: the start)."""
    from catalog.db import SourceState, init_db, session

    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s:
        state = s.get(SourceState, source_id)
        return state.cursor if state else None


# A staging folder this old belongs to a run that was killed and never retried (Airflow retries a publish within
# minutes): the default of HUB_STAGING_RETENTION_HOURS.
STALE_STAGING_SECONDS = 24 * 3600
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


@functools.cache
def _return_freed_memory() -> None:
    """Arrow's memory as jemalloc with no decay: what a batch frees goes back to the system at once. With Arrow's
    default (mimalloc) a run kept up to 170 MB more resident at its peak at 1,000,000 rows (bench/pipeline.py).
    Once per process, before the run's batches; a build of pyarrow without jemalloc keeps its default."""
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)
    except (NotImplementedError, pa.ArrowNotImplementedError):
        pass


def staging_retention() -> float:
    """HUB_STAGING_RETENTION_HOURS, in seconds: how long the staging folder of a run that is neither finished
    nor failed for good is kept for a retry of its publish (default 24 hours)."""
    from hub.settings import positive_setting

    return positive_setting("HUB_STAGING_RETENTION_HOURS", STALE_STAGING_SECONDS / 3600) * 3600


def sweep_staging(settings: Settings, source_id: str | None = None, *, keep: Path | None = None,
                  now: float | None = None, dry_run: bool = False) -> list[Path]:
    """Remove the staging folders no publish will ever read, of one source or of all; return them.

    Those are the folders of finished runs: published (a run killed after its catalog commit leaves its
    folder), or failed with an error no retry fixes (a ConfigError, FatalSourceError or DataQualityError,
    which Airflow does not retry); and folders whose newest file is older than HUB_STAGING_RETENTION_HOURS
    (a run killed and never retried). The folder of a run that may still publish (staging now, or failed with
    an error Airflow retries) is never touched before that. `now`: a Unix time instead of the clock's.
    """
    import time

    from sqlalchemy import select

    from catalog.db import Run, session

    if source_id is not None:
        parents = [settings.staging / source_id]
    else:
        parents = sorted(p for p in settings.staging.iterdir() if p.is_dir()) if settings.staging.is_dir() else []
    now = time.time() if now is None else now
    retention = staging_retention()
    removed = []
    for parent in parents:
        folders = sorted(f for f in parent.iterdir() if f.is_dir() and f != keep) if parent.is_dir() else []
        if not folders:
            continue
        runs = {}
        for folder in folders:
            try:
                runs[json.loads((folder / "stage.json").read_text())["run_id"]] = folder
            except (OSError, ValueError, KeyError, TypeError):
                pass  # still being staged, or killed while staging: only its age tells
        finished = set()
        if runs:
            with session(settings.catalog_url) as s:
                for run_id, status, error in s.execute(select(Run.run_id, Run.status, Run.error).where(
                        Run.dataset_id == parent.name, Run.run_id.in_(list(runs)))):
                    if status in ("published", "unchanged") or (status == "failed" and _failed_for_good(error)):
                        finished.add(runs[run_id])
        for folder in folders:
            changed = _newest_change(folder)
            if changed is None:  # removed meanwhile
                continue
            if folder in finished or now - changed > retention:
                log.info("source %s: removing the staging folder %s, which no run will publish", parent.name,
                         folder.name)
                if not dry_run:
                    shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def _newest_change(folder: Path) -> float | None:
    """When the run last wrote to its staging folder; None if the folder is gone. A staged run's summary,
    stage.json, is written last, so the folder's own time; a stage under way keeps writing into files it made
    long ago, so the newest of the folder and its files."""
    try:
        newest = folder.stat().st_mtime
        if (folder / "stage.json").exists():
            return newest
        for entry in os.scandir(folder):
            try:
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
            except OSError:
                pass
        return newest
    except OSError:
        return None


def _failed_for_good(error: str | None) -> bool:
    """Whether a failed run's recorded error (`Class: message`) is one no retry fixes (Airflow fails its task at
    once): its staged files will never be published."""
    from hub import errors

    final = set()
    todo = [errors.ConfigError, errors.FatalSourceError, errors.DataQualityError]
    while todo:
        kind = todo.pop()
        final.add(kind.__name__)
        todo.extend(kind.__subclasses__())
    return (error or "").split(":", 1)[0].strip() in final


def _disk_full(source_id: str, run_id: str, error: OSError, step: str, where: Path) -> HubError:
    return HubError(f"source {source_id}: run {run_id}: {os.strerror(error.errno)} while {step}; nothing was "
                    f"published; free space for {where} and run again")


def stage_into(folder: Path, source, run_id: str, cursor=None, limit: int | None = None,
               batches: Iterator | None = None) -> dict:
    """Read `source` after `cursor` (at most `limit` records), harmonize and validate it into `folder`.

    Every record read ends up in exactly one of data.parquet (valid records, as the table stores them: the
    file publish commits), quarantine.parquet, or the count of identical repeats (a record equal to an earlier
    one with its key, published once: _settle_duplicates); the summary's rows_in is rows_valid +
    rows_quarantined + rows_repeated. rows.parquet has each valid record's row number and key.
    Touches no catalog: `hub sources test` stages a sample this way. `batches`: the records the source's
    connector read after `cursor` elsewhere (relayed from an Edge worker, hub.relay), staged instead of reading.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from catalog import storage
    from connectors import connector_for
    from connectors.base import ROW
    from schemas import load_standard
    from schemas.validation import Unexpected, Validation
    from transforms import Harmonizer

    _return_freed_memory()
    from transforms.mapping import check_mapping

    source_id = source.id
    standard = load_standard(source.standard_ref)
    check_mapping(source, standard)  # a mapping that cannot run stops the source before anything is read
    connector = connector_for(source)
    data_schema = storage.file_schema(standard)
    rows_schema = pa.schema([(ROW, pa.int64()), *(data_schema.field(k) for k in standard.primary_key)])
    quarantine = _Quarantine(folder / "quarantine.parquet")
    checks: dict[str, dict] = {}
    unexpected = Unexpected(standard)
    rows_in = validated = 0
    received = _Received(folder / "received")
    harmonize = Harmonizer(source, standard)

    def harmonized(batches):
        for batch in batches:
            if not batch.records.num_rows:
                yield batch, None
                continue
            if standard.primary_key:  # only a duplicate key quarantines a record after its batch
                received.add(batch.records)
            yield batch, harmonize(batch.records)

    # Reading, harmonizing and validating run as three stages, each on the next batch while the one after it
    # works on this one. rows.parquet lives minutes: compressing it would cost more than the disk it saves.
    if batches is None:
        batches = connector.read(cursor)
    if limit is not None:
        batches = _first(batches, limit)
    with ReadAhead(batches) as read, ReadAhead(harmonized(read)) as batches, \
            pq.ParquetWriter(folder / "data.parquet", data_schema, compression="zstd") as data, \
            pq.ParquetWriter(folder / "rows.parquet", rows_schema, compression="none") as rows:
        # Duplicate keys are decided once the whole run is read (_settle_duplicates), not batch by batch.
        validation = Validation(standard, unique_key=False)
        hashes = _KeyHashes(list(standard.primary_key), folder / "keys")
        for batch, harmonized in batches:
            rows_in += batch.records.num_rows + len(batch.rejected)
            for rejected in batch.rejected:
                row, reason, text = rejected
                details = getattr(rejected, "details", None)  # connectors.base.Rejected
                quarantine.add(row, [reason], {"_line": text}, {reason: details} if details else None)
            if batch.cursor is not None:
                cursor = batch.cursor
            if harmonized is None:
                continue
            validated += batch.records.num_rows
            verdict = validation(harmonized.table)
            reasons = harmonized.reasons  # this batch's own: merged into in place
            for position, found in verdict.reasons.items():
                failed = reasons.get(position)
                if failed is None:
                    reasons[position] = found
                    continue
                # A value harmonization could not read is reported once, by harmonization.
                failed_fields = {_field_of(r) for r in failed}
                failed.extend(r for r in found if _field_of(r) not in failed_fields)
            verdict.count_into(checks)
            unexpected.add(verdict, harmonized.table, batch.records[ROW])
            bad = sorted(reasons)
            log.info("source %s: read %d records up to row %s, %d quarantined", source_id, batch.records.num_rows,
                     batch.records[ROW][-1].as_py(), len(bad) + len(batch.rejected))
            valid = harmonized.table
            if bad:
                kept = pc.invert(pc.is_in(pa.array(np.arange(valid.num_rows)), pa.array(bad, pa.int64())))
                valid = valid.filter(kept)
            data.write_table(storage.conform(valid, data_schema))
            keys = valid.select(rows_schema.names).cast(rows_schema)
            rows.write_table(keys)
            hashes.add(keys.drop_columns([ROW]))
            if bad:
                # As Python values a quarantine row group at a time: a batch of bad rows would be 80 MB of them.
                for start in range(0, len(bad), _Quarantine.GROUP_ROWS):
                    part = bad[start:start + _Quarantine.GROUP_ROWS]
                    raw = batch.records.take(part)
                    for position, row, record in zip(part, raw[ROW].to_pylist(),
                                                     raw.drop_columns([ROW]).to_pylist()):
                        quarantine.add(row, reasons[position], record)
            # A batch's reasons, a list a bad row (tens of MB when every row is bad), go before the next batch is
            # validated, not once its own replace them.
            verdict = reasons = bad = None

    try:
        duplicates = _settle_duplicates(folder, standard, hashes, quarantine, checks, received, validated)
    finally:
        shutil.rmtree(received.folder, ignore_errors=True)
        shutil.rmtree(hashes.folder, ignore_errors=True)
        shutil.rmtree(folder / "duckdb.tmp", ignore_errors=True)
    if duplicates["conflicting"]:
        key_reason = f"{'+'.join(standard.primary_key)}:duplicate_key"
        unexpected.add_rows(key_reason, quarantine.first_rows(key_reason))
    quarantine.close()
    rows_valid = pq.read_metadata(folder / "data.parquet").num_rows
    rows_repeated = duplicates["identical_repeats"]
    summary = {
        "source": source_id,
        "run_id": run_id,
        "standard": standard.ref,
        "merge": connector.incremental,
        "system": connector.describe(),
        "rows_in": rows_in,
        "rows_valid": rows_valid,
        "rows_quarantined": len(quarantine),
        "rows_repeated": rows_repeated,
        "cursor": cursor,
        "validation": {
            "suite": standard.ref,
            "success": not len(quarantine),
            "checks": checks,  # per expectation of the suite, in rows
            "reasons": quarantine.counts(),
            "duplicates": duplicates,
        },
    }
    if rows_valid + summary["rows_quarantined"] + rows_repeated != rows_in:
        raise HubError(f"source {source_id}: {rows_in} rows read but {rows_valid} valid + "
                       f"{summary['rows_quarantined']} quarantined + {rows_repeated} identical repeats; "
                       "refusing to publish")
    (folder / "stage.json").write_text(json.dumps(summary, indent=1))
    (folder / "validation_result.json").write_text(json.dumps(_validation_result(standard, summary, unexpected.found)))
    log.info("source %s: staged run %s: %d in, %d valid, %d quarantined, %d identical repeats published once",
             source_id, run_id, rows_in, rows_valid, summary["rows_quarantined"], rows_repeated)
    return summary


def _validation_result(standard, summary: dict, unexpected: dict) -> dict:
    """The run's validation as Great Expectations' own JSON (an ExpectationSuiteValidationResult): GE's counts
    summed over the run's batches, its first failing rows and (never of personal data) values, and in `meta`
    the run, its source and standard, and the run's quarantine counts."""
    import datetime as dt

    from schemas.data_docs import validation_result

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat() + "Z"
    result = validation_result(standard, summary["validation"], {"run_id": summary["run_id"], "finished_at": now,
                                                                 "dataset": summary["source"]}, unexpected)
    result.meta.update({"source": summary["source"], "standard": standard.ref,
                        "quarantine": {"rows": summary["rows_quarantined"],
                                       "reasons": summary["validation"]["reasons"]}})
    return result.to_json_dict()


def _first(batches: Iterator, limit: int) -> Iterator:
    """The batches up to the record numbered `limit`: a sample from the start of a source."""
    from connectors.base import ROW

    for batch in batches:
        numbers = batch.records[ROW].to_pylist()
        yield dataclasses.replace(batch, records=batch.records.slice(0, sum(1 for n in numbers if n <= limit)),
                                  rejected=[r for r in batch.rejected if r[0] <= limit])
        if max([*numbers, *(r[0] for r in batch.rejected)], default=0) >= limit:
            return


class _Quarantine:
    """The rows a run does not publish: each row's number, reason codes (field:rule), the record as received and,
    for a reason that has them, its details (`{"_record:column_count": {"expected": 5, "found": 7}}`).

    Written to `path` (quarantine.parquet) as they come, a row group every GROUP_ROWS rows, so that a run where
    every row is bad holds no more of them at once than one where none is; `close()` finishes the file."""

    GROUP_ROWS = 10_000
    SHOWN_PER_REASON = 20  # the lowest row numbers kept per reason (a validation result shows that many)

    def __init__(self, path: Path) -> None:
        import msgspec

        # Records as UTF-8 JSON (values JSON cannot hold, as text): msgspec writes one in a seventh of the time
        # json.dumps takes (seconds of a run where a million rows are bad).
        self._json = msgspec.json.Encoder(enc_hook=str).encode
        self.path = path
        self._writer = None
        self._pending: dict[str, list] = {"row": [], "reasons": [], "record": [], "details": []}
        self._count = 0
        self._reasons: Counter = Counter()
        # Per reason: its lowest rows so far, and once SHOWN_PER_REASON are kept the highest of them (a row above
        # it is not kept; rows mostly come in ascending order, so most are not).
        self._first: dict[str, list[int]] = {}
        self._above: dict[str, int] = {}

    def __len__(self) -> int:
        return self._count

    def add(self, row: int, reasons: list[str], record: dict, details: dict | None = None) -> None:
        pending = self._pending
        pending["row"].append(row)
        pending["reasons"].append(reasons)
        pending["record"].append(self._json(record))
        pending["details"].append(self._json(details) if details else None)
        self._count += 1
        counts, above = self._reasons, self._above
        for reason in reasons:
            counts[reason] += 1
            if row < above.get(reason, row + 1):
                first = self._first.setdefault(reason, [])
                first.append(row)
                if len(first) >= 2 * self.SHOWN_PER_REASON:
                    first[:] = sorted(first)[:self.SHOWN_PER_REASON]
                    above[reason] = first[-1]
        if len(pending["row"]) >= self.GROUP_ROWS:
            self._flush()

    def first_rows(self, reason: str) -> list[int]:
        """The lowest row numbers quarantined for `reason`, at most SHOWN_PER_REASON."""
        return sorted(self._first.get(reason, []))[:self.SHOWN_PER_REASON]

    def counts(self) -> dict[str, int]:
        return dict(self._reasons.most_common())

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(self._pending, schema=_quarantine_schema())
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, _quarantine_schema())
        self._writer.write_table(table)
        self._pending = {name: [] for name in self._pending}

    def close(self) -> None:
        self._flush()
        self._writer.close()


def _quarantine_schema():
    import pyarrow as pa

    return pa.schema([("row", pa.int64()), ("reasons", pa.list_(pa.string())), ("record", pa.string()),
                      ("details", pa.string())])


class _KeyHashes:
    """8-byte hashes of the staged records' keys, taken batch by batch while the next batch is read, and kept on
    disk in PARTS files by their highest bits: the repeated ones are found one file at a time, so memory holds a
    PARTS-th of them, not 8 bytes a record (80 MB at 10,000,000 records, and as much again to sort them)."""

    PART_BITS = 4  # a file per value of a hash's highest 4 bits
    PARTS = 1 << PART_BITS

    def __init__(self, key: list[str], folder: Path) -> None:
        import duckdb

        from catalog.masking import quoted

        # DuckDB's hash() is made for its hash tables: alone, it gave 7% of 3,000,000 NIKs the hash of another
        # NIK, and each such record was read back and compared. Through MD5, keys share a hash only by chance.
        columns = ", ".join(f"{quoted(k)}::VARCHAR" for k in key)
        self.hashed = f"hash(md5(concat_ws(chr(31), {columns})))"
        self.folder = folder
        self._con = duckdb.connect() if key else None

    def add(self, records) -> None:
        import numpy as np

        if self._con is None or not records.num_rows:
            return
        hashes = self._con.sql(f"SELECT {self.hashed} AS h FROM records").fetchnumpy()["h"]
        part = hashes >> np.uint64(64 - self.PART_BITS)
        self.folder.mkdir(exist_ok=True)
        for number in np.unique(part):
            with open(self.folder / f"{number:02d}", "ab") as out:
                hashes[part == number].tofile(out)

    def repeated(self):
        """The hashes met more than once (a repeated key, or two keys with one hash), in ascending order."""
        import numpy as np

        found = [np.empty(0, np.uint64)]
        for number in range(self.PARTS):
            path = self.folder / f"{number:02d}"
            if path.exists():
                hashes = np.fromfile(path, np.uint64)
                hashes.sort()
                found.append(np.unique(hashes[1:][hashes[1:] == hashes[:-1]]))
        return np.concatenate(found)


class _Received:
    """The records of a run as the connector gave them, one Arrow IPC file per batch, so that a record
    quarantined once the whole run is read (a conflicting duplicate) is kept as the agency sent it. Written
    while the next batch is validated, and removed once the run is staged: like rows.parquet it lives minutes,
    and compressing it would slow the run more than the disk it saves is worth (about the source's size)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[tuple[Path, int, int]] = []  # file, lowest and highest row number in it

    def add(self, records) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        from connectors.base import ROW

        self.folder.mkdir(exist_ok=True)
        path = self.folder / f"{len(self.files):06d}.arrow"
        with pa.ipc.new_file(path, records.schema) as part:
            part.write_table(records)
        bounds = pc.min_max(records[ROW])
        self.files.append((path, bounds["min"].as_py(), bounds["max"].as_py()))

    def parts(self) -> Iterator[tuple[int, int, pa.Table]]:
        """Each batch's records (mapped from its file, not read into memory) and its lowest and highest row."""
        import pyarrow as pa

        for path, low, high in self.files:
            with pa.memory_map(str(path)) as source:
                yield low, high, pa.ipc.open_file(source).read_all()


# A run's quality lists the row numbers of this many identical repeats (the first ones); a quarantined
# duplicate names this many other rows of its key (the first ones). The counts are always whole.
REPEATED_ROWS_SHOWN = 1000
OTHER_ROWS_SHOWN = 20


def _settle_duplicates(folder: Path, standard, hashes: _KeyHashes, quarantine: _Quarantine, checks: dict,
                       received: _Received, validated: int) -> dict:
    """Decide every repeated key of the run at once, within a batch and across batches; return the run's
    account of them (its quality's `duplicates`).

    Only records that passed every other rule take part: one already quarantined is nobody's copy, and a
    record whose key has an empty part identifies nothing.

    Records sharing a key are identical when they are equal as harmonized: every field of the standard as it
    would be published, so "16/12/2014" and "16 Desember 2014" (one date) do not make two records differ. Of
    identical records the first (lowest row number) is published; the others are dropped, neither published
    nor quarantined, and counted: `identical_repeats`, with the row numbers of the first REPEATED_ROWS_SHOWN
    (`rows`) and how many more there are (`more`).

    A key whose records differ is a conflict no one can settle from the data: every record with that key is
    quarantined as `<key fields joined by +>:duplicate_key`, identical copies among them included (each is a
    row of the conflict), with details naming the key's other rows (the first OTHER_ROWS_SHOWN, and how many
    more): `{"nik:duplicate_key": {"rows": [1, 40], "more": 0}}`. `conflicting` counts them, as does the
    uniqueness expectation's `unexpected_count` in `checks`.

    The keys' hashes are sorted a part at a time (_KeyHashes); of the records whose key's hash repeats, DuckDB
    (which spills to disk) finds those whose key repeats from the keys alone, and compares only these whole. The
    staged files are rewritten without the records dropped or quarantined, when there are any.
    """
    found = {"identical_repeats": 0, "rows": [], "more": 0, "conflicting": 0}
    key = list(standard.primary_key)
    if not key:
        return found
    reason = f"{'+'.join(key)}:duplicate_key"
    twice = hashes.repeated()
    if twice.size:
        found = _settle_repeated(folder, key, twice, hashes.hashed, quarantine, received)
    if validated:
        checks[reason] = {"expectation": "expect_column_values_to_be_unique" if len(key) == 1
                          else "expect_compound_columns_to_be_unique",
                          "element_count": validated, "unexpected_count": found["conflicting"]}
    return found


def _settle_repeated(folder: Path, key: list[str], twice, hashed: str, quarantine: _Quarantine,
                     received: _Received) -> dict:
    """_settle_duplicates for the records whose key's hash (`hashed`, of the key's columns) is among `twice`."""
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from catalog.masking import quoted
    from connectors.base import ROW

    found = {"identical_repeats": 0, "rows": [], "more": 0, "conflicting": 0}
    reason = f"{'+'.join(key)}:duplicate_key"
    data_path, rows_path = folder / "data.parquet", folder / "rows.parquet"
    keys = ", ".join(quoted(k) for k in key)
    fields = ", ".join(quoted(f) for f in pq.read_schema(data_path).names)
    present = " AND ".join(f"{quoted(k)} IS NOT NULL" for k in key)
    with duckdb.connect(config={"memory_limit": "256MB", "temp_directory": str(folder / "duckdb.tmp")}) as con:
        con.register("twice", pa.table({"h": pa.array(twice, pa.uint64())}))
        # The records whose key repeats (two keys may share a hash), with their row number and place in the
        # staged files, found from the keys alone; only these are read whole.
        con.execute(f"""
            CREATE TEMP TABLE repeated AS
            SELECT file_row_number AS __pos, {quoted(ROW)} FROM read_parquet($rows, file_row_number = true)
            WHERE {hashed} IN (SELECT h FROM twice) AND {present}
            QUALIFY count(*) OVER (PARTITION BY {keys}) > 1""", {"rows": str(rows_path)})
        ((repeated,),) = con.execute("SELECT count(*) FROM repeated").fetchall()
        if not repeated:
            return found
        # Per key its first row and how many different records it has; `settled`: the records not published.
        con.execute(f"""
            CREATE TEMP TABLE settled AS
            WITH candidates AS (
                SELECT r.__pos, r.{quoted(ROW)}, d.* EXCLUDE (file_row_number)
                FROM repeated r JOIN read_parquet($data, file_row_number = true) d
                ON d.file_row_number = r.__pos),
            firsts AS (SELECT {keys}, min({quoted(ROW)}) AS __first FROM candidates GROUP BY ALL),
            contents AS (SELECT {keys}, count(*) AS __contents
                         FROM (SELECT DISTINCT {fields} FROM candidates) GROUP BY ALL)
            SELECT c.__pos, c.{quoted(ROW)}, {", ".join(f"c.{quoted(k)}" for k in key)},
                   n.__contents > 1 AS __conflict
            FROM candidates c JOIN firsts f USING ({keys}) JOIN contents n USING ({keys})
            WHERE n.__contents > 1 OR c.{quoted(ROW)} <> f.__first""", {"data": str(data_path)})
        ((repeats, shown, conflicting),) = con.execute(f"""
            SELECT count(*) FILTER (WHERE NOT __conflict),
                   min({quoted(ROW)}, {REPEATED_ROWS_SHOWN}) FILTER (WHERE NOT __conflict),
                   count(*) FILTER (WHERE __conflict)
            FROM settled""").fetchall()
        found = {"identical_repeats": repeats, "rows": sorted(shown or []),
                 "more": repeats - len(shown or []), "conflicting": conflicting}
        if conflicting:
            # Each conflicting record with its key's row count and first rows, in row order; then, one
            # batch of records as received at a time, those among them.
            con.execute(f"""
                CREATE TEMP TABLE conflicts AS
                SELECT s.{quoted(ROW)}, g.__rows, g.__first
                FROM settled s JOIN (SELECT {keys}, count(*) AS __rows,
                                            min({quoted(ROW)}, {OTHER_ROWS_SHOWN + 1}) AS __first
                                     FROM settled WHERE __conflict GROUP BY ALL) g USING ({keys})
                WHERE s.__conflict ORDER BY s.{quoted(ROW)}""")
            added = 0
            for low, high, part in received.parts():
                numbers = part.select([ROW])
                con.register("numbers", numbers)
                here = {row: (count, first) for row, count, first in con.execute(
                    f"SELECT c.* FROM conflicts c JOIN numbers USING ({quoted(ROW)}) "
                    f"WHERE c.{quoted(ROW)} BETWEEN $low AND $high", {"low": low, "high": high}).fetchall()}
                con.unregister("numbers")
                if not here:
                    continue
                hit = part.filter(pc.is_in(part[ROW], pa.array(list(here), pa.int64())))
                for row, record in zip(hit[ROW].to_pylist(), hit.drop_columns([ROW]).to_pylist()):
                    count, first = here[row]
                    others = [r for r in sorted(first) if r != row][:OTHER_ROWS_SHOWN]
                    quarantine.add(row, [reason], record, {reason: {"rows": others,
                                                                    "more": count - 1 - len(others)}})
                added += hit.num_rows
            if added != conflicting:
                raise HubError(f"{conflicting - added} records to quarantine are not among the records read")
        if repeats or conflicting:
            with con.sql("SELECT __pos FROM settled ORDER BY __pos").to_arrow_reader() as dropped:
                _drop_positions(folder, dropped)
    return found


def _drop_positions(folder: Path, positions) -> None:
    """Rewrite data.parquet and rows.parquet without the records at `positions` (ascending, in batches)."""
    import numpy as np
    import pyarrow.parquet as pq

    chunks = (batch.column(0).to_numpy() for batch in positions)
    pending = np.empty(0, np.int64)

    def before(end: int):
        nonlocal pending
        while not pending.size or pending[-1] < end:
            chunk = next(chunks, None)
            if chunk is None:
                break
            pending = np.concatenate([pending, chunk])
        cut = np.searchsorted(pending, end)
        here, pending = pending[:cut], pending[cut:]
        return here

    data_file, rows_file = pq.ParquetFile(folder / "data.parquet"), pq.ParquetFile(folder / "rows.parquet")
    offset = 0
    with pq.ParquetWriter(folder / "data.kept.parquet", data_file.schema_arrow, compression="zstd") as data, \
            pq.ParquetWriter(folder / "rows.kept.parquet", rows_file.schema_arrow, compression="none") as rows:
        # Both files hold the same records in the same order and row groups.
        for records, numbers in zip(data_file.iter_batches(), rows_file.iter_batches(), strict=True):
            if records.num_rows != numbers.num_rows:
                raise HubError(f"staged files out of step in {folder}")
            keep = np.ones(records.num_rows, bool)
            keep[before(offset + records.num_rows) - offset] = False
            offset += records.num_rows
            data.write_batch(records.filter(keep))
            rows.write_batch(numbers.filter(keep))
    (folder / "data.kept.parquet").replace(folder / "data.parquet")
    (folder / "rows.kept.parquet").replace(folder / "rows.parquet")


def publish(settings: Settings, source_id: str, run_id: str) -> RunResult:
    """Commit a staged run: one Iceberg commit, then one catalog transaction with its records, the cursor and
    its subscribers' messages."""
    from sqlalchemy.exc import DBAPIError

    try:
        return _publish(settings, source_id, run_id)
    except OSError as e:
        if e.errno in _DISK_FULL:
            raise _disk_full(source_id, run_id, e, "publishing", settings.warehouse) from None
        raise
    except DBAPIError as e:
        # The driver's first line says what failed; the statement and its parameters (records) stay out.
        reason = str(e.orig).strip().splitlines()[0] if str(e.orig).strip() else type(e.orig).__name__
        raise HubError(f"source {source_id}: run {run_id}: the catalog database failed while publishing "
                       f"({reason}); the run is not published; run it again") from None


def _publish(settings: Settings, source_id: str, run_id: str) -> RunResult:
    import pyarrow.parquet as pq
    from sqlalchemy import select

    from catalog import storage
    from catalog.db import Run, SourceState, init_db, session, utcnow
    from schemas import load_standard

    init_db(settings.catalog_url)
    source = find_source(settings, source_id)
    folder = _staging_dir(settings, source_id, run_id)
    with session(settings.catalog_url) as s:
        done = s.scalars(select(Run).where(Run.run_id == run_id, Run.dataset_id == source_id,
                                           Run.status.in_(["published", "unchanged"]))).first()
        if done is not None:  # a retried publish whose catalog commit already landed
            _publish_public(settings, source_id, run_id)  # which may be all that the killed run had left to do
            shutil.rmtree(folder, ignore_errors=True)
            return _result(done)
    if not (folder / "stage.json").exists():
        raise HubError(f"source {source_id}: run {run_id} has not been staged (run the stage step first)")
    summary = json.loads((folder / "stage.json").read_text())
    standard = load_standard(summary["standard"])
    # The staged file is written deterministically, so its bytes identify the records' content.
    with (folder / "data.parquet").open("rb") as staged:
        digest = hashlib.file_digest(staged, "sha256").hexdigest()
    snapshot_id = storage.commit_source(settings, source_id, standard, folder / "data.parquet", run_id,
                                        summary["merge"], digest)
    quarantine = pq.ParquetFile(folder / "quarantine.parquet")  # inserted a row group at a time
    result = folder / "validation_result.json"  # a run staged by an older hub has none
    now = utcnow()
    identifier = f"{storage.HARMONIZED}.{source_id}"
    # The share of the distinct records sent that was published: a repeat of a published record is no bad record.
    distinct = summary["rows_in"] - summary.get("rows_repeated", 0)
    quality = summary["rows_valid"] / distinct if distinct else None

    with session(settings.catalog_url) as s, s.begin():
        changed = _record_dataset(
            s, source_id, "harmonized", standard, snapshot_id, run_id, now,
            rows=storage.snapshot_rows(settings, identifier), quality_score=quality, table_identifier=identifier,
            title=source.title, description=source.description or standard.description,
            agency_code=source.agency_code, agency_name=source.agency_name,
        )
        _set_lineage(s, source_id, {f"system:{source.agency_code}:{summary['system']}": "harmonized_from"})
        run = Run(run_id=run_id, dataset_id=source_id, kind="source",
                  status="published" if changed else "unchanged", started_at=now, finished_at=now,
                  rows_in=summary["rows_in"], rows_published=summary["rows_valid"],
                  rows_quarantined=summary["rows_quarantined"], quality_score=quality,
                  validation=summary["validation"], snapshot_id=snapshot_id,
                  validation_result=json.loads(result.read_text()) if result.exists() else None)
        s.add(run)
        for group in range(quarantine.num_row_groups):
            _insert_quarantined(s, source_id, run_id, quarantine.read_row_group(group))
        if summary["merge"]:
            state = s.get(SourceState, source_id) or SourceState(source_id=source_id)
            if summary["cursor"] is not None:
                state.cursor = summary["cursor"]
            state.run_id, state.updated_at = run_id, now
            s.add(state)
        if changed:
            _queue_messages(s, source_id, "published", {"run_id": run_id, "snapshot_id": snapshot_id})
    _publish_public(settings, source_id, run_id)
    shutil.rmtree(folder, ignore_errors=True)
    log.info("source %s: run %s %s as snapshot %s", source_id, run_id, run.status, snapshot_id)
    return _result(run)


@functools.lru_cache(maxsize=1024)
def _json_list(reasons: tuple[str, ...]) -> str:
    """A row's reason codes as JSON: a run's rows share a few lists of them, encoded once each."""
    return json.dumps(list(reasons))


# Quarantined rows inserted by one statement: 500 rows of 6 values, below SQLite's limit of 32,766 values.
INSERT_ROWS = 500


def _insert_quarantined(s, source_id: str, run_id: str, rows) -> None:
    """A row group of quarantine.parquet into the catalog. Records and details are JSON text already, inserted as
    they are (a missing details is JSON's null, as the column's type stores None), INSERT_ROWS rows a statement
    in the driver's own parameter style: through SQLAlchemy's insert each row's values are processed one by one
    (inserting 1,000,000 quarantined rows into SQLite took 9 s that way, 1.4 s this way)."""
    import itertools

    from catalog.db import QuarantinedRow

    connection = s.connection()
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}[connection.dialect.paramstyle]
    values = [(source_id, run_id, row, _json_list(tuple(reasons)), record, "null" if details is None else details)
              for row, reasons, record, details in zip(*(rows[c].to_pylist() for c in rows.column_names))]
    into = (f"INSERT INTO {QuarantinedRow.__tablename__} (dataset_id, run_id, row_number, reasons, record, details) "
            "VALUES ")
    one = f"({', '.join([mark] * 6)})"
    for start in range(0, len(values), INSERT_ROWS):
        part = values[start:start + INSERT_ROWS]
        connection.exec_driver_sql(into + ", ".join([one] * len(part)), tuple(itertools.chain.from_iterable(part)))


def _publish_public(settings: Settings, dataset_id: str, run_id: str) -> None:
    """The dataset's table for outside engines (`catalog.public`), after its version is committed: what anonymous
    may read of it then. Failing, the run fails with the version published, and its retry writes the table."""
    from catalog.public import publish_public

    try:
        publish_public(settings, dataset_id, run_id)
    except Exception as e:
        raise HubError(f"dataset {dataset_id}: run {run_id}: the version is published, but its table for outside "
                       f"engines (publik.{dataset_id}) could not be written ({type(e).__name__}); "
                       "run it again") from None


def _queue_messages(s, dataset_id: str, event: str, details: dict) -> None:
    """The subscribers' messages about a version or a failure, queued in the transaction `s` that records it: a
    process killed after that commit leaves them for the delivery step, one per subscriber, and a retry that
    finds the version committed queues none (the subscription outbox)."""
    from catalog.subscriptions import queue

    queue(s, dataset_id, event, details)


def _record_dataset(s, dataset_id: str, kind: str, standard, snapshot_id, run_id: str, now, *, rows: int,
                    **attributes) -> bool:
    """Create or update a dataset's catalog entry; add a version when its snapshot changed. True if it did."""
    from catalog import metadata, search
    from catalog.db import Dataset, DatasetVersion

    dataset = s.get(Dataset, dataset_id) or Dataset(id=dataset_id, kind=kind)
    changed = snapshot_id is not None and snapshot_id != dataset.snapshot_id
    for name, value in attributes.items():
        setattr(dataset, name, value)
    dataset.standard, dataset.standard_version = standard.name, standard.version
    dataset.classification = standard.classification
    dataset.snapshot_id, dataset.row_count, dataset.updated_at = snapshot_id, rows, now
    s.add(dataset)
    s.flush()
    if changed:
        s.add(DatasetVersion(dataset_id=dataset_id, snapshot_id=snapshot_id, run_id=run_id, committed_at=now,
                             row_count=rows))
    search.index_dataset(s, metadata.describe(s, dataset))
    return changed


def _set_lineage(s, dataset_id: str, upstreams: dict[str, str]) -> None:
    from sqlalchemy import delete

    from catalog.db import LineageEdge

    s.execute(delete(LineageEdge).where(LineageEdge.dataset_id == dataset_id))
    s.add_all(LineageEdge(dataset_id=dataset_id, upstream=u, relation=r) for u, r in upstreams.items())


def _result(run) -> RunResult:
    duplicates = (run.validation or {}).get("duplicates") or {}
    return RunResult(source=run.dataset_id, run_id=run.run_id, status=run.status, rows_in=run.rows_in,
                     rows_published=run.rows_published, rows_quarantined=run.rows_quarantined,
                     quality_score=run.quality_score, dataset=run.dataset_id, snapshot_id=run.snapshot_id,
                     rows_repeated=duplicates.get("identical_repeats", 0))


def run_source(settings: Settings, source_id: str, run_id: str | None = None) -> RunResult:
    """Stage then publish; a failure is recorded in the catalog as a failed run and raised again."""
    run_id = run_id or new_run_id()
    try:
        stage(settings, source_id, run_id)
        return publish(settings, source_id, run_id)
    except Exception as e:
        # Unlike Airflow, nothing retries this run's publish: its staged files are of no more use.
        shutil.rmtree(_staging_dir(settings, source_id, run_id), ignore_errors=True)
        record_failure(settings, source_id, run_id, e)
        raise


def record_failure(settings: Settings, dataset_id: str, run_id: str, error: Exception, kind: str = "source") -> None:
    """A failed run in the catalog (`kind`: source, integration or indicator), and its subscribers told once
    per run: Airflow's retries of a task keep its run id."""
    from sqlalchemy import select

    from catalog.db import Run, init_db, session, utcnow

    # Only the error's class and message: hub errors never carry record values.
    message = f"{type(error).__name__}: {error}" if isinstance(error, HubError) else type(error).__name__
    try:
        init_db(settings.catalog_url)
        now = utcnow()
        with session(settings.catalog_url) as s, s.begin():
            told = s.scalars(select(Run.id).where(Run.run_id == run_id, Run.dataset_id == dataset_id,
                                                  Run.status == "failed")).first() is not None
            s.add(Run(run_id=run_id, dataset_id=dataset_id, kind=kind, status="failed", started_at=now,
                      finished_at=now, error=message))
            if not told:
                _queue_messages(s, dataset_id, "failed", {"run_id": run_id, "error": type(error).__name__})
    except Exception as e:
        # The catalog itself may be what failed (a full disk): the run's own error must still reach the caller.
        log.warning("%s %s: run %s failed (%s) and the catalog could not record it: %s", kind, dataset_id, run_id,
                    type(error).__name__, type(e).__name__)
        return


def integrate(settings: Settings, standard_name: str, run_id: str | None = None) -> dict:
    """Bring a standard's integrated dataset to the current snapshots of all its sources (only the sources whose
    snapshot changed are written again: `storage.commit_integrated`)."""
    from catalog import storage
    from catalog.db import Dataset, Run, init_db, session, utcnow
    from hub.sources import load_registry
    from schemas import load_standard

    init_db(settings.catalog_url)
    run_id = run_id or new_run_id()
    standard = load_standard(standard_name)
    loaded, problems = load_registry(settings)
    members = {x.id for x in loaded if x.standard_name == standard.name}
    # A registration that does not load now keeps the data it last published in (a typo is no withdrawal);
    # a deleted one leaves.
    unreadable = {Path(p["file"]).stem for p in problems}
    with session(settings.catalog_url) as s:
        published = {d.id: d for d in s.query(Dataset).filter(
            Dataset.kind == "harmonized", Dataset.id.in_(members | unreadable), Dataset.standard == standard.name)}
    inputs = {source_id: published[source_id].snapshot_id for source_id in sorted(published)}
    snapshot_id = storage.commit_integrated(settings, standard, inputs, run_id)
    identifier = f"{storage.INTEGRATED}.{standard.name}"
    now = utcnow()
    rows = storage.snapshot_rows(settings, identifier)
    scored = [d for d in published.values() if d.quality_score is not None and d.row_count]
    quality = (sum(d.quality_score * d.row_count for d in scored) / sum(d.row_count for d in scored)) if scored else None
    with session(settings.catalog_url) as s, s.begin():
        changed = _record_dataset(
            s, standard.name, "integrated", standard, snapshot_id, run_id, now,
            rows=rows, quality_score=quality, table_identifier=identifier,
            title=f"{standard.title} (terintegrasi)", description=standard.description,
        )
        _set_lineage(s, standard.name, {source_id: "integrated_from" for source_id in inputs})
        s.add(Run(run_id=run_id, dataset_id=standard.name, kind="integration",
                  status="published" if changed else "unchanged", started_at=now, finished_at=now,
                  rows_in=rows, rows_published=rows, rows_quarantined=0, quality_score=quality,
                  validation={"suite": standard.ref, "inputs": inputs}, snapshot_id=snapshot_id))
        if changed:
            _queue_messages(s, standard.name, "published", {"run_id": run_id, "snapshot_id": snapshot_id})
    _publish_public(settings, standard.name, run_id)
    return {"standard": standard.name, "run_id": run_id, "dataset": standard.name, "snapshot_id": snapshot_id,
            "rows": rows, "sources": sorted(inputs)}
