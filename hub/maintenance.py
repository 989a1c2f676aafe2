"""Housekeeping (`hub maintain`, the daily maintenance DAG): old snapshots expire by policy, and the files no
snapshot refers to, the staging folders of finished runs and stale masked copies are removed.

Iceberg's own rules, on pyiceberg where it has them:

- Expire snapshots (pyiceberg's `expire_snapshots`, which only edits the metadata): a snapshot that is not a
  published version expires once it is older than `max-age-days` and not among the `keep-last` newest such
  snapshots (HUB_SNAPSHOT_MAX_AGE_DAYS, default 5 days as Iceberg's `history.expire.max-snapshot-age-ms`;
  HUB_SNAPSHOT_KEEP_LAST, default 1, as `min-snapshots-to-keep`). Published versions (rows of
  `hub_dataset_versions`, and snapshots runs record as published) stay readable for ever unless the dataset's
  standard says otherwise in `x-retention` (schemas/retention.py). The table's current snapshot, the catalog's
  current version and branch or tag heads are never expired, nor anything younger than an hour.
- Remove orphan files (pyiceberg 0.12 has no `remove_orphan_files`; written here to Iceberg's rule): a file under
  a table's location that no metadata file of the table's metadata log, no remaining snapshot's manifest list,
  manifest or live manifest entry refers to, once it is older than HUB_ORPHAN_GRACE_HOURS (default 72, the
  3 days of Iceberg's `older_than` default): a publish still writing its files, or killed, is younger. The
  files of snapshots that just expired are such orphans, as Iceberg's expire-snapshots deletes them.
  An orphan is first set aside (renamed with TRASH) and the table's metadata read again: a commit made
  meanwhile that refers to it (a publish reusing an expired version's data file, named by its content) gets it
  back; only then is it deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from urllib.parse import urlsplit

from hub.errors import HubError
from hub.settings import positive_setting

__all__ = [
    "IN_FLIGHT", "MAINTENANCE_DAG_ID", "TRASH", "maintain", "maintenance_dag", "orphan_grace", "positive_setting",
    "report_lines", "snapshot_defaults", "summary",
]

log = logging.getLogger(__name__)

MAINTENANCE_DAG_ID = "hub__maintenance"
_START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)  # as hub.airflow_dags
# Whatever the settings say, nothing this young is expired or removed: a publish may be between its Iceberg
# commit and its catalog commit, or still writing the files it is about to commit.
IN_FLIGHT = dt.timedelta(hours=1)
TRASH = ".hub-orphan"  # the suffix of an orphan set aside until the table's latest metadata confirms it
_PUBLISHED = ("published", "unchanged")


def snapshot_defaults():
    """The snapshots' rule where a standard sets none: HUB_SNAPSHOT_MAX_AGE_DAYS (5) and HUB_SNAPSHOT_KEEP_LAST (1)."""
    from schemas.retention import Rule

    return Rule(positive_setting("HUB_SNAPSHOT_MAX_AGE_DAYS", 5.0), positive_setting("HUB_SNAPSHOT_KEEP_LAST", 1, int))


def orphan_grace() -> dt.timedelta:
    """HUB_ORPHAN_GRACE_HOURS: how old an unreferenced file must be before it is removed (default 72 hours)."""
    return dt.timedelta(hours=positive_setting("HUB_ORPHAN_GRACE_HOURS", 72.0))


def maintain(settings, now: dt.datetime | None = None, dry_run: bool = False) -> dict:
    """Expire snapshots, remove orphan files, staging folders no run will publish and stale masked copies.

    `now` (default: the clock) is the time every age is measured against. With `dry_run`, what would be done is
    reported and nothing changes. One table's failure (a concurrent commit, a standard that does not load) is
    reported in "errors" and the rest goes on; the caller decides whether that fails it.
    """
    from catalog import storage
    from catalog.db import init_db
    from catalog.changes import retire_change_sets
    from catalog.views import retire_stale_copies
    from hub.pipeline import sweep_staging

    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    defaults, grace = snapshot_defaults(), orphan_grace()  # a wrong setting stops everything, before any change
    init_db(settings.catalog_url)
    catalog = storage.iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri())
    result = {"at": now.isoformat(timespec="seconds"), "dry_run": dry_run,
              "grace_hours": grace.total_seconds() / 3600, "tables": [], "staging": [], "copies": [], "change_sets": [],
              "errors": []}

    identifiers = sorted(table for namespace in catalog.list_namespaces()
                         for table in catalog.list_tables(namespace))
    entries = {}
    for identifier in identifiers:
        name = ".".join(identifier)
        entry = entries[name] = {"table": name, "policy": None, "snapshots": None, "expired": [],
                                 "versions_expired": [], "orphans_removed": [], "orphan_bytes": 0,
                                 "orphans_waiting": 0, "restored": []}
        result["tables"].append(entry)
        try:
            _expire(settings, catalog, identifier, entry, now, defaults, dry_run)
        except Exception as e:
            _failed(result, name, "expiring snapshots", e)

    # Every table's references first: a file is an orphan only if no table of the catalog refers to it.
    found = {}
    for identifier in identifiers:
        name = ".".join(identifier)
        try:
            table = catalog.load_table(identifier)
            # A dry run did not expire: the files it would free are not referred to once it does.
            found[identifier] = (table, _references(table, set(entries[name]["expired"]) if dry_run else set()))
        except Exception as e:
            _failed(result, name, "reading its metadata (no file of it is removed)", e)
    referenced = {path: size for _, refs in found.values() for path, size in refs.items()}
    roots = {identifier: _fs_path(table.location()) for identifier, (table, _) in found.items()}
    for identifier, (table, _) in found.items():
        name = ".".join(identifier)
        try:
            _remove_orphans(catalog, identifier, table, roots, referenced, now - max(grace, IN_FLIGHT),
                            entries[name], dry_run)
        except Exception as e:
            _failed(result, name, "removing orphan files", e)

    try:
        result["staging"] = [str(p.relative_to(settings.staging))
                             for p in sweep_staging(settings, now=now.timestamp(), dry_run=dry_run)]
    except Exception as e:
        _failed(result, "staging", "removing staging folders", e)
    try:
        result["copies"] = [str(p.relative_to(settings.home))
                            for p in retire_stale_copies(settings, now=now.timestamp(), dry_run=dry_run)]
    except Exception as e:
        _failed(result, "served", "removing stale masked copies", e)
    try:
        result["change_sets"] = [str(p.relative_to(settings.home))
                                 for p in retire_change_sets(settings, now=now.timestamp(), dry_run=dry_run)]
    except Exception as e:
        _failed(result, "changes", "removing the change sets of expired versions", e)
    return result


def _failed(result: dict, what: str, step: str, error: Exception) -> None:
    message = f"{what}: {step} failed: {type(error).__name__}: {str(error)[:300]}"
    log.warning("maintenance: %s", message)
    result["errors"].append(message)


# --- expiring snapshots -------------------------------------------------------------------------------------


def _expire(settings, catalog, identifier, entry: dict, now: dt.datetime, defaults, dry_run: bool) -> None:
    from sqlalchemy import delete, select

    from catalog import metadata, search
    from catalog.db import Dataset, DatasetVersion, Run, session

    name = entry["table"]
    # The table first, then the catalog: a version committed in between is the table's current snapshot, or
    # younger than IN_FLIGHT, and kept either way.
    table = catalog.load_table(identifier)
    with session(settings.catalog_url) as s:
        dataset = s.scalars(select(Dataset).where(Dataset.table_identifier == name)).first()
        published = set()
        if dataset is not None:
            published |= set(s.scalars(select(DatasetVersion.snapshot_id).where(
                DatasetVersion.dataset_id == dataset.id)))
            published |= {i for i in s.scalars(select(Run.snapshot_id).where(
                Run.dataset_id == dataset.id, Run.status.in_(_PUBLISHED))) if i is not None}
    policy = _policy(dataset, table, defaults)
    entry["policy"] = policy.as_dict()
    md = table.metadata
    entry["snapshots"] = len(md.snapshots)
    kept = {md.current_snapshot_id, dataset.snapshot_id if dataset else None}
    kept |= {ref.snapshot_id for ref in md.refs.values()}  # branch and tag heads, which Iceberg protects too
    newest_first = sorted(md.snapshots, key=lambda x: (x.timestamp_ms, x.sequence_number or 0), reverse=True)

    def old(group: list, rule) -> set[int]:
        cutoff = min(now - dt.timedelta(days=rule.max_age_days), now - IN_FLIGHT)
        ms = cutoff.timestamp() * 1000
        return {x.snapshot_id for x in group[rule.keep_last:] if x.timestamp_ms < ms}

    expire = old([x for x in newest_first if x.snapshot_id not in published], policy.snapshots)
    versions = set()
    if policy.versions is not None:
        versions = old([x for x in newest_first if x.snapshot_id in published], policy.versions)
    expire = (expire | versions) - kept
    versions &= expire
    entry["expired"], entry["versions_expired"] = sorted(expire), sorted(versions)
    if dry_run or not expire:
        return
    if versions and dataset is not None:
        # The catalog stops offering them first: killed after this, the snapshots stay, unlisted, and the next
        # run expires them; the other way round, the portal would list versions nobody can read.
        with session(settings.catalog_url) as s, s.begin():
            s.execute(delete(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id,
                                                   DatasetVersion.snapshot_id.in_(sorted(versions))))
            fresh = s.get(Dataset, dataset.id)
            search.index_dataset(s, metadata.describe(s, fresh))
    table.maintenance.expire_snapshots().by_ids(sorted(expire)).commit()
    log.info("maintenance: %s: %d snapshots expired (%d of them published versions)", name, len(expire),
             len(versions))


def _policy(dataset, table, defaults):
    """The retention of the table's standard (its newest version: a steward's latest word on it), over the
    defaults; the defaults alone for a table of no standard."""
    from schemas import load_standard
    from schemas.retention import Retention, retention_of

    name = dataset.standard if dataset is not None else table.properties.get("hub.standard", "").partition("@")[0]
    if not name:
        return Retention(defaults, None)
    standard = load_standard(name)
    return retention_of(standard.schema, standard.path.name, defaults)


# --- orphan files ---------------------------------------------------------------------------------------------


def _fs_path(uri: str) -> str:
    """A location as pyarrow's file systems name it: a local path, or bucket/key for object storage."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return os.path.normpath(parts.path or uri)
    return f"{parts.netloc}{parts.path}"


def _references(table, leaving_out: set[int] = frozenset()) -> dict[str, int | None]:
    """Every file the table's metadata refers to, with its size where the metadata says it: the current and
    logged metadata files, statistics, and for each snapshot (but those `leaving_out`) its manifest list, its
    manifests and the files of their live entries (a file deleted in a snapshot is read by its parent only)."""
    md = table.metadata
    found: dict[str, int | None] = {_fs_path(table.metadata_location): None}
    found.update({_fs_path(e.metadata_file): None for e in md.metadata_log})
    found.update({_fs_path(f.statistics_path): f.file_size_in_bytes for f in md.statistics})
    found.update({_fs_path(f.statistics_path): f.file_size_in_bytes for f in md.partition_statistics})
    manifests = set()
    for snapshot in md.snapshots:
        if snapshot.snapshot_id in leaving_out:
            continue
        found[_fs_path(snapshot.manifest_list)] = None
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in manifests:
                continue
            manifests.add(manifest.manifest_path)
            found[_fs_path(manifest.manifest_path)] = manifest.manifest_length
            for item in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                found[_fs_path(item.data_file.file_path)] = item.data_file.file_size_in_bytes
    return found


def _remove_orphans(catalog, identifier, table, roots: dict, referenced: dict, cutoff: dt.datetime, entry: dict,
                    dry_run: bool) -> None:
    from pyarrow.fs import FileSelector, FileSystem, FileType

    fs, root = FileSystem.from_uri(table.location())
    root = root.rstrip("/")
    # Another table's folder inside this one (not the hub's layout, but a catalog may hold any) is its own.
    nested = [r for i, r in roots.items() if i != identifier and r.startswith(root + "/")]
    limit = cutoff.timestamp()
    candidates = []  # (the file's name, where it is now)
    for info in fs.get_file_info(FileSelector(root, recursive=True, allow_not_found=True)):
        path = info.path
        if info.type != FileType.File or any(path.startswith(r + "/") for r in nested):
            continue
        original = path.removesuffix(TRASH)
        if path != original and original in referenced and not _exists(fs, original):
            # Set aside by a maintenance run that was killed before it looked again: the table refers to it.
            _put_back(fs, path, original, referenced[original], info.size, entry, dry_run)
            continue
        if path == original and path in referenced:
            continue
        if info.mtime_ns / 1e9 >= limit:
            entry["orphans_waiting"] += 1
            continue
        candidates.append((original, path))
    if dry_run:
        for original, path in candidates:
            entry["orphans_removed"].append(os.path.relpath(original, root))
            entry["orphan_bytes"] += fs.get_file_info(path).size or 0
        return

    aside = []
    for original, path in candidates:
        if path == original:
            fresh = fs.get_file_info(path)
            if fresh.type != FileType.File or fresh.mtime_ns / 1e9 >= limit:
                continue  # written again meanwhile
            try:
                fs.move(path, path + TRASH)
            except (FileNotFoundError, OSError):
                continue  # gone meanwhile (another maintenance run)
            path += TRASH
        aside.append((original, path))
    # Looked at again now that they are set aside: a commit since the first look may refer to one of them.
    latest = _references(catalog.load_table(identifier)) if aside else {}
    for original, path in aside:
        size = fs.get_file_info(path).size or 0
        if original in latest:
            if _exists(fs, original):  # the publish wrote it again
                fs.delete_file(path)
            else:
                _put_back(fs, path, original, latest[original], size, entry, dry_run)
            continue
        fs.delete_file(path)
        entry["orphans_removed"].append(os.path.relpath(original, root))
        entry["orphan_bytes"] += size
    if entry["orphans_removed"]:
        log.info("maintenance: %s: %d orphan files removed (%d bytes)", entry["table"],
                 len(entry["orphans_removed"]), entry["orphan_bytes"])


def _exists(fs, path: str) -> bool:
    from pyarrow.fs import FileType

    return fs.get_file_info(path).type == FileType.File


def _put_back(fs, path: str, original: str, expected: int | None, size: int, entry: dict, dry_run: bool) -> None:
    if expected is not None and expected != size:
        raise HubError(f"{original} is referred to by the table but missing; the file set aside under its name has "
                       f"{size} bytes, not the {expected} the metadata says, so it was left as {path}")
    if not dry_run:
        fs.move(path, original)
    entry["restored"].append(original)
    log.warning("maintenance: %s: %s was set aside as an orphan, but the table refers to it: put back",
                entry["table"], original)


# --- reports ----------------------------------------------------------------------------------------------------


def summary(result: dict) -> dict:
    """The counts of a `maintain` result (what the DAG task returns: no file lists)."""
    tables = result["tables"]
    return {
        "at": result["at"], "dry_run": result["dry_run"], "tables": len(tables),
        "snapshots_expired": sum(len(t["expired"]) for t in tables),
        "versions_expired": sum(len(t["versions_expired"]) for t in tables),
        "orphans_removed": sum(len(t["orphans_removed"]) for t in tables),
        "orphan_bytes": sum(t["orphan_bytes"] for t in tables),
        "orphans_waiting": sum(t["orphans_waiting"] for t in tables),
        "staging_removed": len(result["staging"]), "copies_removed": len(result["copies"]),
        "change_sets_removed": len(result["change_sets"]), "errors": result["errors"],
    }


def report_lines(result: dict) -> list[str]:
    """A `maintain` result for people: one line per table that changed, then staging, copies and errors."""
    would = "would be " if result["dry_run"] else ""
    lines = []
    for t in result["tables"]:
        if t["expired"] or t["orphans_removed"] or t["restored"] or t["orphans_waiting"]:
            line = (f"{t['table']}: {len(t['expired'])} of {t['snapshots']} snapshots {would}expired "
                    f"({len(t['versions_expired'])} published versions), {len(t['orphans_removed'])} orphan files "
                    f"{would}removed ({t['orphan_bytes']} bytes)")
            if t["orphans_waiting"]:
                line += f", {t['orphans_waiting']} unreferenced files younger than the grace period kept"
            if t["restored"]:
                line += f", {len(t['restored'])} files put back"
            lines.append(line)
    lines.append(f"{len(result['tables'])} tables looked at; {len(result['staging'])} staging folders, "
                 f"{len(result['copies'])} stale masked copies and {len(result['change_sets'])} change sets of "
                 f"expired versions {would}removed")
    lines += [f"error: {e}" for e in result["errors"]]
    return lines


# --- Airflow ------------------------------------------------------------------------------------------------------


def maintenance_dag():
    """The daily maintenance DAG: `maintain` once a day; its task fails (after doing the rest) if a table could not
    be maintained. Airflow is imported here only, so importing this module stays cheap."""
    from airflow.sdk import dag, task

    @dag(
        dag_id=MAINTENANCE_DAG_ID,
        description="Expire old snapshots, remove orphan files, finished runs' staging and stale masked copies",
        schedule="@daily",
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=["maintenance"],
        doc_md="Iceberg housekeeping by each standard's `x-retention` (see README, Maintenance and retention): "
               "expire snapshots, then remove files no snapshot refers to once older than "
               "`HUB_ORPHAN_GRACE_HOURS`; remove staging folders no run will publish and stale masked copies.",
    )
    def maintenance():
        @task(task_id="maintain", retries=1, retry_delay=dt.timedelta(minutes=30))
        def maintain_task() -> dict:
            from hub.settings import load_settings

            result = maintain(load_settings())
            if result["errors"]:
                raise HubError("maintenance: " + "; ".join(result["errors"]))
            return summary(result)

        maintain_task()

    return maintenance()
