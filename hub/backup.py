"""Backup and restore of a hub (catalog database, Iceberg warehouse, secrets) as one archive, restorable elsewhere."""

# What is in a backup, and why in this order (a running hub may be backed up):
#
# 1. The secrets (`$HUB_HOME/secrets/`: audit key, pseudonym key, Airflow's keys, the audit witness), first. The
#    witness names the last audit entry an append wrote, after its commit, and only moves forward: taken before
#    the database, it never names an entry the database copy lacks (which `hub audit verify` would call a cut log).
# 2. The catalog database, as one consistent snapshot: SQLite through sqlite3's online backup API; PostgreSQL read
#    in one REPEATABLE READ transaction and written into a SQLite file of the same tables. pyiceberg's SqlCatalog
#    keeps its tables (`iceberg_tables`: each table's current metadata file) in the same database, so the hub's
#    records and the Iceberg pointers are of one moment.
# 3. The warehouse, after the database. Iceberg files are immutable: a commit writes new data, manifest, manifest
#    list and metadata files and then moves the pointer in `iceberg_tables`; pyiceberg deletes no old metadata
#    file, and the hub's own content-named data files are only ever rewritten with the same bytes. So everything the
#    database copy points at is still there when the warehouse is copied later. Only `hub maintain` removes files
#    (orphans older than HUB_ORPHAN_GRACE_HOURS, which may include files of snapshots it expired after the database
#    was copied): every file the database copy refers to is checked to be in the archive, and a backup that misses
#    one fails instead of being written. Files written after the database copy are orphans in the backup, removed by
#    `hub maintain` in the restored hub once the grace period is over.
#
# Iceberg records absolute locations: `iceberg_tables.metadata_location`, and inside the metadata JSON (the table's
# location, each snapshot's manifest list, the metadata log), the manifest lists (each manifest's path and length)
# and the manifests (each data file's path). Restore into another folder rewrites all of them from the old
# warehouse's location to the new one (JSON, and Avro rewritten value by value, schema, metadata and codec kept), so
# the hub, DuckDB through it, and outside Iceberg readers (Spark, Trino) see only files of the new home.

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from hub.errors import ConfigError, HubError

__all__ = ["FORMAT", "MANIFEST", "NOT_INCLUDED", "backup", "restore"]

FORMAT = "interop-hub-backup"
_FORMAT_VERSION = 1
MANIFEST = "manifest.json"  # the last member: what is in the archive, with each member's sha256
_CATALOG = "catalog/catalog.sqlite"
_WAREHOUSE = "warehouse"
_SECRETS = "secrets"
# Made by every `hub` command on a home that lacks them (configure_airflow), so a new home has them before
# `hub restore` starts: the archive's replace them. Any other secret in the home means another hub lives there.
_MADE_BY_EVERY_COMMAND = {"airflow-jwt.key", "airflow-api.key"}
_KEYS_FROM_ENVIRONMENT = ("HUB_AUDIT_KEY", "HUB_PSEUDONYM_KEY")
_SUFFIXES = {".tar.gz": "gz", ".tgz": "gz", ".tar": ""}
_COPY = 8 << 20

# What a home holds besides the backup's parts, and why it is left out (also in each manifest).
NOT_INCLUDED = {
    "changes": "each version's record-level changes, kept for the change feed: computed again from the warehouse's "
               "snapshots when first asked for",
    "airflow": "Airflow's metadata database and task logs: run history is rebuilt as the DAGs run again; its "
               "connections and variables (agency credentials) are not in the backup: export them with "
               "`hub airflow connections export` and keep that file as a secret",
    "staging": "runs in flight; a run not published when the catalog was copied is not in the backup",
    "served": "masked copies of dataset versions, written again on the first read",
    "spill": "DuckDB's temporary files",
    "logs": "the components' logs",
    "run": "live state of the running processes: `hub up`'s process records, the service bus's shared rate limits "
           "and circuit breakers (they start again empty)",
    "demo": "the demo agencies' systems, rebuilt by `hub up --demo`",
    "docs": "data dictionaries written by `hub standards docs`",
}


# ---------------------------------------------------------------------------------------------------- backup


def backup(settings, dest: Path) -> dict:
    """Write the hub's catalog database, warehouse and secrets, with a manifest, to the archive `dest` (a file
    ending in .tar.gz, .tgz or .tar, or an existing folder to write `hub-backup-TIME.tar.gz` in). The hub may be
    running. Returns the manifest without its member list, and the archive's path and size."""
    settings_home = Path(settings.home)
    started = _now()
    dest = _archive_path(Path(dest), started)
    if _inside(dest, settings.warehouse) or _inside(dest, settings_home / _SECRETS):
        raise ConfigError(f"{dest}: a backup cannot be written inside the warehouse or the secrets it copies")
    secrets = _read_secrets(settings_home)  # before the catalog: see the top of this module
    work = Path(tempfile.mkdtemp(prefix=".hub-backup-", dir=dest.parent))
    partial = dest.with_name(dest.name + ".partial")
    try:
        snapshot = work / "catalog.sqlite"
        catalog = _snapshot_catalog(settings.catalog_url, snapshot)
        state = _catalog_state(snapshot)
        warehouse_uri = settings.warehouse.as_uri()
        tables = _referenced(state["iceberg_tables"], warehouse_uri)
        members: dict[str, dict] = {}
        # 0600: the archive holds what the home holds, personal data and keys included.
        partial.unlink(missing_ok=True)  # what a killed backup left
        raw = os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        with raw, tarfile.open(fileobj=raw, mode="w:" + _SUFFIXES[_suffix(dest)], **_level(dest)) as tar:
            _add_file(tar, _CATALOG, snapshot, members, mode=0o600)  # a private file: never short
            files, size, copied = _add_warehouse(tar, settings.warehouse, members)
            _check_complete(tables, copied)
            for name, (content, mtime) in secrets.items():
                _add_bytes(tar, f"{_SECRETS}/{name}", content, members, mode=0o600, mtime=mtime)
            from catalog.audit import witness_path

            manifest = {
                "format": FORMAT, "format_version": _FORMAT_VERSION, "hub_version": _hub_version(),
                "created_at": started.isoformat(timespec="seconds") + "Z",
                "finished_at": _now().isoformat(timespec="seconds") + "Z",
                "source": {"home": str(settings_home), "warehouse": warehouse_uri, "catalog_kind": catalog["kind"],
                           "catalog": _shown_url(settings.catalog_url)},
                "catalog": {"member": _CATALOG, "how": catalog["how"], "rows": state["rows"],
                            "tables_left_out": catalog["left_out"]},
                "datasets": state["datasets"],
                "tables": [{k: v for k, v in t.items() if k != "files"} for t in tables],
                "warehouse": {"files": files, "bytes": size,
                              "unreferenced_files": files - len(set().union(*[t["files"] for t in tables]))},
                "secrets": sorted(secrets), "audit_witness": witness_path(settings).name,
                "keys_from_environment": [k for k in _KEYS_FROM_ENVIRONMENT if os.environ.get(k)],
                "not_included": NOT_INCLUDED,
                "members": members,
            }
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode(), {}, mode=0o600)
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {k: v for k, v in manifest.items() if k != "members"}
    return {"archive": str(dest), "archive_bytes": dest.stat().st_size, "members": len(members) + 1, **summary}


def _archive_path(dest: Path, now: dt.datetime) -> Path:
    if dest.is_dir():
        dest = dest / f"hub-backup-{now:%Y%m%dT%H%M%SZ}.tar.gz"
    if not dest.parent.is_dir():
        raise ConfigError(f"{dest}: the folder {dest.parent} does not exist")
    if _suffix(dest) is None:
        raise ConfigError(f"{dest}: a backup archive's name ends in .tar.gz, .tgz or .tar (or give a folder)")
    if dest.exists():
        raise ConfigError(f"{dest} exists: a backup never overwrites a file; give a new name")
    return dest.resolve()


def _suffix(path: Path) -> str | None:
    return next((s for s in _SUFFIXES if path.name.endswith(s)), None)


def _level(dest: Path) -> dict:
    # Parquet is compressed already: gzip's default level 9 would spend minutes for a few per cent.
    return {"compresslevel": 6} if _SUFFIXES[_suffix(dest)] else {}


def _inside(path: Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _hub_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("interop-hub")
    except PackageNotFoundError:
        return "unknown"


def _shown_url(url: str) -> str:
    """A catalog URL without its password or query (where libpq also takes a password)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.difference_update_query(list(parsed.query)).render_as_string(hide_password=True)


def _read_secrets(home: Path) -> dict[str, tuple[bytes, float]]:
    folder = home / _SECRETS
    found = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_file() and not path.name.endswith(".lock"):  # lock files are made on demand, empty
            found[path.name] = (path.read_bytes(), path.stat().st_mtime)
    return found


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:"):
        raise ConfigError(f"HUB_CATALOG_URL {url!r}: a catalog in memory has nothing to back up or restore into")
    return Path(parsed.database)


def _snapshot_catalog(url: str, target: Path) -> dict:
    """One consistent copy of the catalog database in the SQLite file `target`."""
    path = _sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise HubError(f"there is no catalog database at {path}: nothing to back up")
        source = sqlite3.connect(path, timeout=30)
        copy = sqlite3.connect(target)
        try:
            # One step (pages=-1): the whole database as of one moment, while other processes keep writing.
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            copy.close()
            source.close()
        return {"kind": "sqlite", "how": "sqlite online backup", "left_out": []}
    return {"kind": "postgresql", "how": "tables exported into SQLite", "left_out": _export_catalog(url, target)}


def _known_tables():
    """The catalog's tables in insertion order (foreign keys first), the hub's and pyiceberg's SqlCatalog's."""
    from pyiceberg.catalog.sql import SqlCatalogBaseTable

    from catalog.db import all_tables

    return [*SqlCatalogBaseTable.metadata.sorted_tables, *all_tables()]


def _create_tables(conn) -> None:
    from pyiceberg.catalog.sql import SqlCatalogBaseTable

    from catalog.db import Base

    _known_tables()
    SqlCatalogBaseTable.metadata.create_all(conn)
    Base.metadata.create_all(conn)  # with the search index of the dialect (FTS5 on SQLite, GIN on PostgreSQL)


def _tables_to_copy(conn) -> tuple[list, list[str]]:
    """The known tables the database `conn` has, and the names of those it has that no backup holds (another
    program's). A hub table this code does not know stops the copy: it would be lost."""
    from sqlalchemy import inspect

    present = set(inspect(conn).get_table_names())
    known = {t.name: t for t in _known_tables()}
    search = {"hub_search_fts"} | {n for n in present if n.startswith("hub_search_fts_")}  # SQLite's FTS5 index
    unknown = sorted(n for n in present - set(known) - search if not n.startswith("sqlite_"))
    ours = [n for n in unknown if n.startswith(("hub_", "iceberg_"))]
    if ours:
        raise HubError(f"the catalog database has tables this hub version does not know ({', '.join(ours)}): "
                       "back up and restore with the hub version that made them")
    return [t for t in _known_tables() if t.name in present], unknown


def _copy_rows(source, target, tables) -> dict[str, int]:
    """Every row of `tables` from connection `source` to connection `target`, through the tables' types, so a
    date, JSON or big integer arrives as the target's dialect stores it. A column the source lacks (a backup of an
    older hub) is left to its default; one the target lacks stops the copy."""
    from sqlalchemy import JSON, MetaData, insert, inspect, select
    from sqlalchemy.exc import SQLAlchemyError

    counts = {}
    for table in tables:
        have = {c["name"] for c in inspect(source).get_columns(table.name)}
        extra = have - set(table.columns.keys())
        if extra:
            raise HubError(f"the catalog table {table.name} has columns this hub version does not know "
                           f"({', '.join(sorted(extra))}): restore with the hub version that made the backup")
        columns = [c for c in table.columns if c.name in have]
        written = table.to_metadata(MetaData())
        for column in written.columns:
            if isinstance(column.type, JSON):  # a null stays SQL NULL, not the JSON text 'null'
                column.type = JSON(none_as_null=True)
        counts[table.name] = 0
        try:
            rows = source.execute(select(*columns).execution_options(yield_per=2000))
            for part in rows.partitions(2000):
                target.execute(insert(written), [dict(r._mapping) for r in part])
                counts[table.name] += len(part)
        except SQLAlchemyError as e:
            # The first line only: a constraint's DETAIL line may quote values, and values may be personal data.
            first = str(getattr(e, "orig", None) or type(e).__name__).strip().splitlines()[0]
            raise HubError(f"copying the catalog table {table.name} failed: {first}") from None
    return counts


def _export_catalog(url: str, target: Path) -> list[str]:
    """Every catalog table of the PostgreSQL database `url`, read in one transaction, into a new SQLite catalog at
    `target`, search index included. Returns the tables left out (another program's)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from catalog.db import engine

    copy = create_engine(f"sqlite:///{target}", poolclass=NullPool)
    try:
        with engine(url).connect().execution_options(isolation_level="REPEATABLE READ") as source, source.begin():
            source.exec_driver_sql("SET TRANSACTION READ ONLY")
            tables, left_out = _tables_to_copy(source)
            if not any(t.name == "iceberg_tables" for t in tables):
                raise HubError(f"the database {_shown_url(url)} holds no hub catalog: nothing to back up")
            with copy.begin() as out:
                _create_tables(out)
                _copy_rows(source, out, tables)
                out.execute(text("INSERT INTO hub_search_fts (dataset_id, words) "
                                 "SELECT dataset_id, words FROM hub_search_documents"))
    finally:
        copy.dispose()
    return left_out


def _catalog_state(snapshot: Path) -> dict:
    """What the manifest says of the catalog copy: Iceberg tables, datasets and each table's row count."""
    with contextlib.closing(sqlite3.connect(snapshot)) as db:
        names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                 if not n.startswith(("sqlite_", "hub_search_fts"))]
        rows = {n: db.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        tables = db.execute("SELECT catalog_name, table_namespace, table_name, metadata_location FROM iceberg_tables "
                            "ORDER BY 1, 2, 3").fetchall() if "iceberg_tables" in names else []
        versions = dict(db.execute("SELECT dataset_id, count(*) FROM hub_dataset_versions GROUP BY 1").fetchall()
                        ) if "hub_dataset_versions" in names else {}
        datasets = [{"id": i, "kind": k, "table": t, "snapshot_id": s, "rows": r, "versions": versions.get(i, 0)}
                    for i, k, t, s, r in db.execute("SELECT id, kind, table_identifier, snapshot_id, row_count "
                                                    "FROM hub_datasets ORDER BY id")] if "hub_datasets" in names else []
    return {"rows": rows, "iceberg_tables": tables, "datasets": datasets}


def _referenced(iceberg_tables, warehouse_uri: str) -> list[dict]:
    """Per Iceberg table of the catalog copy: its snapshots and the warehouse files (relative paths) its current
    metadata refers to: that file, every snapshot's manifest list and manifests, and their live data files."""
    from pyiceberg.table import StaticTable

    found = []
    for catalog_name, namespace, name, location in iceberg_tables:
        identifier = f"{namespace}.{name}"
        try:
            table = StaticTable.from_metadata(location)
            files = {location}
            for snapshot in table.metadata.snapshots:
                files.add(snapshot.manifest_list)
                for manifest in snapshot.manifests(table.io):
                    files.add(manifest.manifest_path)
                    files.update(e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io))
        except FileNotFoundError as e:
            raise HubError(f"Iceberg table {identifier}: a file its metadata refers to is missing from the warehouse "
                           f"({Path(e.filename or '?').name}): removed while the backup ran (by `hub maintain`?); "
                           "run the backup again") from None
        outside = sorted(f for f in files if not f.startswith(warehouse_uri + "/"))
        if outside:
            raise HubError(f"Iceberg table {identifier} refers to files outside the warehouse {warehouse_uri} (such as "
                           f"{outside[0]}): a home moved by hand is not restorable; restore it from a backup instead")
        found.append({"catalog": catalog_name, "table": identifier,
                      "metadata": location[len(warehouse_uri) + 1:],
                      "current_snapshot_id": table.metadata.current_snapshot_id,
                      "snapshot_ids": [s.snapshot_id for s in table.metadata.snapshots],
                      "files": {_relative(f, warehouse_uri) for f in files}})
    return found


def _relative(uri: str, warehouse_uri: str) -> str:
    return unquote(uri[len(warehouse_uri) + 1:])


def _add_warehouse(tar, warehouse: Path, members: dict) -> tuple[int, int, set[str]]:
    """Every file of the warehouse; their count and size, and those copied whole."""
    count, size, copied = 0, 0, set()
    if not warehouse.is_dir():
        return count, size, copied
    for folder, dirs, names in os.walk(warehouse):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            relative = path.relative_to(warehouse).as_posix()
            try:
                added, short = _add_file(tar, f"{_WAREHOUSE}/{relative}", path, members, mode=0o644)
            except FileNotFoundError:  # removed while the backup ran: checked below if the catalog refers to it
                continue
            size += added
            count += 1
            if not short:  # a file rewritten meanwhile counts as missing if the catalog refers to it
                copied.add(relative)
    return count, size, copied


def _check_complete(tables: list[dict], copied: set[str]) -> None:
    for t in tables:
        missing = sorted(t["files"] - copied)
        if missing:
            raise HubError(f"Iceberg table {t['table']}: {len(missing)} file(s) its metadata refers to were removed "
                           f"or rewritten while the backup ran (such as {missing[0]}; by `hub maintain`?): run the "
                           "backup again")


class _Exact(io.RawIOBase):
    """The first `size` bytes of a file, read once, their sha256 taken on the way into the archive. A file that
    grows meanwhile (one a publish is still writing) is cut at `size`; one that shrinks (rewritten) is padded with
    zeros and marked `short`: the archive's length and hash then still agree."""

    def __init__(self, f, size: int) -> None:
        self.f, self.left, self.sha256, self.short = f, size, hashlib.sha256(), False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)[:self.left]
        n = self.f.readinto(view) if len(view) else 0
        if not n and len(view):
            self.short = True
            view[:] = bytes(len(view))
            n = len(view)
        self.left -= n
        self.sha256.update(view[:n])
        return n


def _add_file(tar, name: str, path: Path, members: dict, mode: int) -> tuple[int, bool]:
    """Add the file at `path` as `name`; its size, and whether it shrank while it was read."""
    with open(path, "rb") as f:
        status = os.fstat(f.fileno())
        info = _info(name, status.st_size, mode, status.st_mtime)
        exact = _Exact(f, info.size)
        tar.addfile(info, io.BufferedReader(exact, _COPY))
    members[name] = {"sha256": exact.sha256.hexdigest(), "bytes": info.size}
    return info.size, exact.short


def _add_bytes(tar, name: str, content: bytes, members: dict, mode: int, mtime: float | None = None) -> None:
    tar.addfile(_info(name, len(content), mode, mtime), io.BytesIO(content))
    members[name] = {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}


def _info(name: str, size: int, mode: int, mtime: float | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, int(mtime if mtime is not None else _now().timestamp())
    return info


# ---------------------------------------------------------------------------------------------------- restore


def restore(settings, src: Path) -> dict:
    """Restore the archive `src` (made by `backup`) into the new, empty home of `settings`, with its catalog at
    `settings.catalog_url` (SQLite or PostgreSQL, whichever kind the backup came from). Every member is checked
    against its sha256 before anything is put in place; Iceberg's locations are rewritten to the new warehouse; what
    is put in place is removed again if a later step fails. Returns what was restored and checked."""
    src = Path(src)
    if not src.is_file():
        raise ConfigError(f"{src}: no such backup archive")
    home = Path(settings.home)
    _require_empty(settings)
    home.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".hub-restore-", dir=home))
    placed: list = []
    try:
        manifest = _extract(src, work)
        old, new = manifest["source"]["warehouse"], settings.warehouse.as_uri()
        relocation = _Relocation(old, new)
        rewritten = _relocate_warehouse(work / _WAREHOUSE, relocation) if old != new else {"files": 0}
        sqlite_target = _sqlite_path(settings.catalog_url)
        if sqlite_target is not None:
            how = "file"
            _relocate_catalog_file(work / _CATALOG, relocation)
        else:
            how = "tables"
            _load_catalog(settings.catalog_url, work / _CATALOG, relocation)
            placed.append(("catalog", settings.catalog_url))
        _place(work / _WAREHOUSE, settings.warehouse, placed)
        secrets = _place_secrets(work / _SECRETS, home / _SECRETS, manifest, settings, placed)
        if sqlite_target is not None:
            _place(work / _CATALOG, sqlite_target, placed)
        from catalog.db import init_db

        init_db(settings.catalog_url)  # adds the columns a backup from an older hub lacks
        checked = _check_restored(settings, manifest)
    except BaseException:
        _undo(placed)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "archive": str(src.resolve()), "backup_created": manifest["created_at"], "backup_hub_version":
        manifest["hub_version"], "from_home": manifest["source"]["home"], "home": str(home),
        "catalog": {"from": manifest["source"]["catalog_kind"], "to": "sqlite" if sqlite_target else "postgresql",
                    "how": how, "rows": manifest["catalog"]["rows"]},
        "datasets": manifest["datasets"], "warehouse": manifest["warehouse"],
        "relocated": {"from": old, "to": new, "metadata_files_rewritten": rewritten["files"],
                      "locations_rewritten": relocation.count},
        "secrets": secrets, "keys_from_environment": manifest["keys_from_environment"], "checked": checked,
        "not_included": manifest["not_included"],
    }


def _require_empty(settings) -> None:
    """Refuse a home (or catalog database) that holds a hub already: a restore never mixes two hubs."""
    home = Path(settings.home)
    where = "restore into a new, empty home (another HUB_HOME) with an empty catalog database"
    path = _sqlite_path(settings.catalog_url)
    if path is not None:
        if path.exists() and path.stat().st_size:
            raise ConfigError(f"{home} already has a catalog database ({path}): {where}")
    else:
        from sqlalchemy import inspect
        from sqlalchemy.exc import SQLAlchemyError

        from catalog.db import engine

        try:
            names = inspect(engine(settings.catalog_url)).get_table_names()
        except SQLAlchemyError as e:
            raise HubError(f"the catalog database {_shown_url(settings.catalog_url)} cannot be reached: "
                           f"{type(e).__name__}") from None
        ours = [n for n in names if n.startswith(("hub_", "iceberg_"))]
        if ours:
            raise ConfigError(f"the catalog database {_shown_url(settings.catalog_url)} already has a catalog "
                              f"({len(ours)} hub tables): {where}")
    if settings.warehouse.exists() and any(p.is_file() for p in settings.warehouse.rglob("*")):
        raise ConfigError(f"{home} already has a warehouse ({settings.warehouse}): {where}")
    secrets = home / _SECRETS
    others = sorted(p.name for p in secrets.iterdir() if p.is_file() and not p.name.endswith(".lock")
                    and p.name not in _MADE_BY_EVERY_COMMAND) if secrets.is_dir() else []
    if others:
        raise ConfigError(f"{home} already has the secrets of a hub ({', '.join(others)} in {secrets}): {where}")


def _safe_member(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return (bool(parts) and not PurePosixPath(name).is_absolute() and ".." not in parts
            and (name == MANIFEST or parts[0] in ("catalog", _WAREHOUSE, _SECRETS)))


def _extract(src: Path, work: Path) -> dict:
    """Every member of the archive into `work`, each checked against the manifest's sha256 and size; the manifest."""
    seen: dict[str, tuple[str, int]] = {}
    try:
        with tarfile.open(src, "r:*") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isfile() or not _safe_member(member.name) or member.name in seen:
                    raise HubError(f"{src}: the member {member.name!r} is not one a hub backup holds: nothing was "
                                   "restored")
                target = work / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                sha256 = hashlib.sha256()
                with tar.extractfile(member) as f, open(target, "xb") as out:
                    while chunk := f.read(_COPY):
                        sha256.update(chunk)
                        out.write(chunk)
                os.utime(target, (member.mtime, member.mtime))  # the age `hub maintain` measures orphans by
                seen[member.name] = (sha256.hexdigest(), member.size)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise HubError(f"{src} is not a readable hub backup ({type(e).__name__}: {e}): nothing was restored") from None
    try:
        manifest = json.loads((work / MANIFEST).read_text())
        members = manifest["members"]
        assert manifest["format"] == FORMAT
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        raise HubError(f"{src} is not a hub backup (no readable {MANIFEST}): nothing was restored") from None
    if manifest["format_version"] > _FORMAT_VERSION:
        raise HubError(f"{src} was made by a newer hub ({manifest['hub_version']}, backup format "
                       f"{manifest['format_version']}): restore it with that version")
    for name, expected in members.items():
        if name not in seen:
            raise HubError(f"{src}: the member {name} the manifest lists is missing: the archive is incomplete; "
                           "nothing was restored")
        if seen[name] != (expected["sha256"], expected["bytes"]):
            raise HubError(f"{src}: the member {name} does not match its sha256 in the manifest: the archive is "
                           "damaged or was altered; nothing was restored")
    extra = sorted(set(seen) - set(members) - {MANIFEST})
    if extra:
        raise HubError(f"{src}: the member {extra[0]} is not in the manifest: the archive was altered; nothing was "
                       "restored")
    return manifest


def _place(source: Path, target: Path, placed: list) -> None:
    if not source.exists():
        return
    if target.is_dir():
        shutil.rmtree(target)  # an empty warehouse folder: _require_empty found no file in it
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)
    placed.append(("path", target))


def _place_secrets(folder: Path, target: Path, manifest: dict, settings, placed: list) -> list[str]:
    """The archive's secrets into the home (0600 files in a 0700 folder); the audit witness renamed for this
    catalog database (it is named by a hash of the catalog's URL, which a new home changes)."""
    from catalog.audit import witness_path

    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    names = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        name = witness_path(settings).name if path.name == manifest.get("audit_witness") else path.name
        destination = target / name
        existed = destination.exists()
        shutil.move(path, destination)
        os.chmod(destination, 0o600)
        if not existed:
            placed.append(("path", destination))
        names.append(name)
    return names


def _undo(placed: list) -> None:
    for kind, what in reversed(placed):
        with contextlib.suppress(Exception):
            if kind == "catalog":
                from pyiceberg.catalog.sql import SqlCatalogBaseTable

                from catalog.db import Base, engine

                with engine(what).begin() as conn:
                    Base.metadata.drop_all(conn)
                    SqlCatalogBaseTable.metadata.drop_all(conn)
            elif Path(what).is_dir():
                shutil.rmtree(what)
            else:
                Path(what).unlink(missing_ok=True)


def _relocate_catalog_file(path: Path, relocation: _Relocation) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    copy = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with copy.begin() as conn:
            _relocate_rows(conn, relocation)
    finally:
        copy.dispose()


def _load_catalog(url: str, archived: Path, relocation: _Relocation) -> None:
    """The archive's catalog (a SQLite file) into the empty database `url`, in one transaction."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from catalog.db import engine

    source = create_engine(f"sqlite:///{archived}", poolclass=NullPool)
    try:
        with source.connect() as reading, engine(url).begin() as conn:
            tables, _ = _tables_to_copy(reading)
            _create_tables(conn)
            _copy_rows(reading, conn, tables)
            _relocate_rows(conn, relocation)
            if conn.dialect.name == "postgresql":
                _restart_sequences(conn, tables)
    finally:
        source.dispose()


def _restart_sequences(conn, tables) -> None:
    """PostgreSQL's serial columns continue after the ids copied in (else the next insert collides)."""
    from sqlalchemy import text

    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE(MAX({column.name}), 1), "
                          f"MAX({column.name}) IS NOT NULL) FROM {table.name}"), {"t": table.name, "c": column.name})


def _relocate_rows(conn, relocation: _Relocation) -> None:
    """pyiceberg's pointers to each table's metadata file, and any namespace location, in the new warehouse."""
    from pyiceberg.catalog.sql import IcebergNamespaceProperties, IcebergTables
    from sqlalchemy import select, update

    t = IcebergTables.__table__
    key = (t.c.catalog_name, t.c.table_namespace, t.c.table_name)
    for row in conn.execute(select(*key, t.c.metadata_location, t.c.previous_metadata_location)).all():
        conn.execute(update(t).where(*(c == v for c, v in zip(key, row[:3]))).values(
            metadata_location=relocation.string(row[3]), previous_metadata_location=relocation.string(row[4])))
    p = IcebergNamespaceProperties.__table__
    key = (p.c.catalog_name, p.c.namespace, p.c.property_key)
    for row in conn.execute(select(*key, p.c.property_value)).all():
        if relocation.string(row[3]) != row[3]:
            conn.execute(update(p).where(*(c == v for c, v in zip(key, row[:3]))).values(
                property_value=relocation.string(row[3])))


def _check_restored(settings, manifest: dict) -> dict:
    """Read back what was restored: each catalog table's row count; each Iceberg table's current snapshot and every
    snapshot's files, which must all exist in the new warehouse; each dataset's recorded version."""
    from sqlalchemy import func, select

    from catalog.db import engine, session
    from catalog.storage import data_files, iceberg_catalog

    with engine(settings.catalog_url).connect() as conn:
        tables, _ = _tables_to_copy(conn)
    with session(settings.catalog_url) as s:
        for table in tables:
            expected = manifest["catalog"]["rows"].get(table.name)
            if expected is not None and s.scalar(select(func.count()).select_from(table)) != expected:
                raise HubError(f"restored catalog table {table.name} does not have the {expected} rows of the backup")
    catalog = iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri())
    snapshots = files = 0
    for t in manifest["tables"]:
        if t["catalog"] != "hub":  # pyiceberg's catalog name in catalog.storage: the hub's tables are all there
            continue
        table = catalog.load_table(t["table"])
        if table.metadata.current_snapshot_id != t["current_snapshot_id"]:
            raise HubError(f"restored Iceberg table {t['table']} is not at the backup's snapshot")
        for snapshot_id in t["snapshot_ids"]:
            for task in table.scan(snapshot_id=snapshot_id).plan_files():
                path = task.file.file_path
                if not path.startswith(settings.warehouse.as_uri() + "/") or not table.io.new_input(path).exists():
                    raise HubError(f"restored Iceberg table {t['table']}: snapshot {snapshot_id} refers to a file "
                                   "missing from the new warehouse")
                files += 1
            snapshots += 1
    for d in manifest["datasets"]:
        if d["snapshot_id"] is not None:
            data_files(settings, d["table"], d["snapshot_id"])  # the version the portal serves is readable
    return {"catalog_tables": len(tables), "iceberg_tables": len(manifest["tables"]), "snapshots": snapshots,
            "data_files": files, "datasets": len(manifest["datasets"])}


# ------------------------------------------------------------------------------------- relocating Iceberg files


class _Relocation:
    """Rewrites a location in the old warehouse (a file: URI, or a bare path) to the same place in the new one."""

    def __init__(self, old_uri: str, new_uri: str) -> None:
        self.pairs = [(old_uri, new_uri), (unquote(urlsplit(old_uri).path), unquote(urlsplit(new_uri).path))]
        self.lengths: dict[str, int] = {}  # a rewritten manifest's new location -> its new length in bytes
        self.count = 0

    def string(self, value):
        if not isinstance(value, str):
            return value
        for old, new in self.pairs:
            if value == old or value.startswith(old + "/"):
                self.count += 1
                return new + value[len(old):]
        return value

    def long(self, field: str, value: int, record: dict) -> int:
        # A manifest list records each manifest's length, which rewriting the manifest changed.
        if field == "manifest_length" and record.get("manifest_path") in self.lengths:
            return self.lengths[record["manifest_path"]]
        return value


def _relocate_warehouse(root: Path, relocation: _Relocation) -> dict:
    """Rewrite every metadata file of every table under `root`: manifests first (their new lengths go into the
    manifest lists), then manifest lists, then the metadata JSON files."""
    if not root.is_dir():
        return {"files": 0}
    metadata = sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name == "metadata")
    avro = [(p, _avro_header(p)) for p in metadata if p.name.endswith(".avro")]
    # Manifests before the lists that record their lengths.
    done = 0
    for path, header in sorted(avro, key=lambda x: x[1]["record"] == "manifest_file"):
        _rewrite_avro(path, header, relocation)
        done += 1
        if header["record"] == "manifest_entry":
            relocation.lengths[relocation.pairs[0][1] + "/" + path.relative_to(root).as_posix()] = path.stat().st_size
    for path in metadata:
        if path.name.endswith(".metadata.json"):
            _rewrite_json(path, relocation)
            done += 1
    return {"files": done}


def _rewrite_json(path: Path, relocation: _Relocation) -> None:
    raw = path.read_bytes()
    compressed = raw[:2] == b"\x1f\x8b"  # pyiceberg's gzip metadata (write.metadata.compression-codec)

    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return relocation.string(value)

    text = json.dumps(walk(json.loads(gzip.decompress(raw) if compressed else raw)), separators=(",", ":"))
    _write(path, gzip.compress(text.encode()) if compressed else text.encode())


def _write(path: Path, content: bytes) -> None:
    partial = path.with_name(path.name + ".relocating")
    partial.write_bytes(content)
    os.replace(partial, path)


# A minimal Avro object container codec, enough to rewrite Iceberg's manifests and manifest lists value by value:
# the header (schema, Iceberg's metadata, codec, sync marker) is kept byte for byte, every value is re-encoded as
# read, only strings pass through the relocation (and a manifest's length in a manifest list).

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _read_long(buf, pos: int) -> tuple[int, int]:
    b = buf[pos]
    pos += 1
    n, shift = b & 0x7F, 7
    while b & 0x80:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _long(value: int) -> bytes:
    n = value << 1 if value >= 0 else (-value << 1) - 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _resolve(schema, names: dict, namespace: str = ""):
    """The schema with every reference to a named type replaced by that type."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return schema
        return names.get(f"{namespace}.{schema}" if namespace and "." not in schema else schema) or names[schema]
    if isinstance(schema, list):
        return [_resolve(s, names, namespace) for s in schema]
    kind = schema["type"]
    if kind in ("record", "error", "enum", "fixed"):
        name = schema["name"]
        space = name.rpartition(".")[0] if "." in name else schema.get("namespace", namespace)
        node = dict(schema)
        names[f"{space}.{name.rpartition('.')[2]}" if space else name] = node
        names.setdefault(name.rpartition(".")[2], node)
        if kind in ("record", "error"):
            node["fields"] = [dict(f, type=_resolve(f["type"], names, space)) for f in schema["fields"]]
        return node
    if kind == "array":
        return dict(schema, items=_resolve(schema["items"], names, namespace))
    if kind == "map":
        return dict(schema, values=_resolve(schema["values"], names, namespace))
    return _resolve(kind, names, namespace)  # a primitive with a logical type, or {"type": "a.Named"}


def _transcode(schema, buf, pos: int, out: bytearray, relocation: _Relocation, field=None, record=None) -> int:
    if isinstance(schema, str):
        if schema == "null":
            return pos
        if schema == "boolean":
            out.append(buf[pos])
            return pos + 1
        if schema in ("int", "long"):
            value, pos = _read_long(buf, pos)
            out += _long(relocation.long(field, value, record) if record is not None else value)
            return pos
        if schema in ("float", "double"):
            size = 4 if schema == "float" else 8
            out += buf[pos:pos + size]
            return pos + size
        n, pos = _read_long(buf, pos)
        raw = bytes(buf[pos:pos + n])
        if schema == "string":
            text = relocation.string(raw.decode("utf-8"))
            if record is not None:
                record[field] = text
            raw = text.encode("utf-8")
        out += _long(len(raw)) + raw
        return pos + n
    if isinstance(schema, list):
        branch, pos = _read_long(buf, pos)
        out += _long(branch)
        return _transcode(schema[branch], buf, pos, out, relocation, field, record)
    kind = schema["type"]
    if kind in ("record", "error"):
        values: dict = {}
        for f in schema["fields"]:
            pos = _transcode(f["type"], buf, pos, out, relocation, f["name"], values)
        return pos
    if kind == "enum":
        value, pos = _read_long(buf, pos)
        out += _long(value)
        return pos
    if kind == "fixed":
        out += buf[pos:pos + schema["size"]]
        return pos + schema["size"]
    while True:  # array or map: blocks of items, a zero count at the end
        count, pos = _read_long(buf, pos)
        if count == 0:
            out += _long(0)
            return pos
        if count < 0:  # a negative count is followed by the block's size in bytes
            count = -count
            _, pos = _read_long(buf, pos)
        out += _long(count)
        for _ in range(count):
            if kind == "map":
                pos = _transcode("string", buf, pos, out, relocation)
            pos = _transcode(schema["items" if kind == "array" else "values"], buf, pos, out, relocation)


def _avro_header(path: Path) -> dict:
    data = path.read_bytes()
    if data[:4] != b"Obj\x01":
        raise HubError(f"{path.name} is not an Avro file, yet it is in an Iceberg table's metadata folder")
    pos, meta = 4, {}
    while True:
        count, pos = _read_long(data, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = _read_long(data, pos)
        for _ in range(count):
            n, pos = _read_long(data, pos)
            key = data[pos:pos + n].decode()
            pos += n
            n, pos = _read_long(data, pos)
            meta[key] = data[pos:pos + n]
            pos += n
    schema = _resolve(json.loads(meta["avro.schema"]), {})
    codec = meta.get("avro.codec", b"null").decode()
    if codec not in ("null", "deflate"):
        raise HubError(f"{path.name}: Avro codec {codec!r} cannot be rewritten here (null and deflate can)")
    return {"end": pos + 16, "sync": data[pos:pos + 16], "schema": schema, "codec": codec,
            "record": schema.get("name") if isinstance(schema, dict) else None}


def _rewrite_avro(path: Path, header: dict, relocation: _Relocation) -> None:
    data = path.read_bytes()
    pos, sync = header["end"], header["sync"]
    out = bytearray(data[:pos])
    while pos < len(data):
        count, pos = _read_long(data, pos)
        size, pos = _read_long(data, pos)
        block = data[pos:pos + size]
        pos += size
        if data[pos:pos + 16] != sync:
            raise HubError(f"{path.name}: an Avro block does not end with the file's sync marker: the file is damaged")
        pos += 16
        raw = zlib.decompress(block, -15) if header["codec"] == "deflate" else block
        objects, at = bytearray(), 0
        for _ in range(count):
            at = _transcode(header["schema"], raw, at, objects, relocation)
        if at != len(raw):
            raise HubError(f"{path.name}: an Avro block holds more than its {count} objects: the file is damaged")
        if header["codec"] == "deflate":
            packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
            objects = packer.compress(bytes(objects)) + packer.flush()
        out += _long(count) + _long(len(objects)) + objects + sync
    _write(path, bytes(out))
