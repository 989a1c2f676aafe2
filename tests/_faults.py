"""Helpers of the fault tests: agency systems that fail for real, child runs, and what the catalog shows."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml
from sqlalchemy import select

from _postgres import PostgresServer
from hub.settings import ROOT, Settings

__all__ = [
    "API_KEY", "CrashablePostgres", "CsvAgency", "DISK_POINTS", "FULL_DISK", "FaultyApi", "KILLED_PUBLISH",
    "KILLED_RUN", "KILL_POINTS", "PG_PASSWORD", "RUN_KILL_POINTS", "SmallDisk", "SqliteAgency", "View",
    "can_mount_tmpfs", "changed", "child", "register", "residents", "table_rows", "view",
]

API_KEY = "k3y-Gangguan-7f2a"  # the agency API's key, given to the hub through an environment variable
PG_PASSWORD = "pa55-Gangguan-c41e"  # the agency database's password, in the URL an environment variable holds

# An agency's table of residents (SIAK's columns) mapped to penduduk@1.0.0.
MAPPING = {
    "nik": {"from": "nik", "normalize": "nik"},
    "nama": {"from": "nama_lengkap", "normalize": "name"},
    "jenis_kelamin": {"from": "jenis_kelamin"},
    "agama": {"from": "agama"},
    "tanggal_lahir": {"from": "tgl_lahir", "date_formats": ["%Y-%m-%d"]},
    "kode_wilayah": {"from": "kode_kelurahan", "normalize": "kode_wilayah"},
}
COLUMNS = ["nik", "nama_lengkap", "jenis_kelamin", "agama", "tgl_lahir", "kode_kelurahan", "updated_at"]


def residents(n: int) -> list[dict]:
    """n synthetic residents, every one valid, in the agency's columns; `updated_at` grows with the row."""
    from demo.agencies import people

    return [{"nik": p["nik"], "nama_lengkap": p["nama"], "jenis_kelamin": p["jenis_kelamin"], "agama": p["agama"],
             "tgl_lahir": p["tanggal_lahir"].isoformat(), "kode_kelurahan": p["kode_wilayah"],
             "updated_at": str(p["updated_at"])} for p in people(n)]


def changed(records: list[dict], every: int = 10) -> list[dict]:
    """The records after the agency changed every `every`-th one (another religion code); changed last."""
    year = int(max(r["updated_at"] for r in records)[:4]) + 1
    return [{**r, "agama": "2" if r["agama"] == "1" else "1",
             "updated_at": f"{year}-01-01 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"} if i % every == 0 else r
            for i, r in enumerate(records)]


def register(settings: Settings, source_id: str, kind: str, options: dict) -> None:
    """Register an agency source of residents in the settings' registry folder."""
    settings.registry.mkdir(parents=True, exist_ok=True)
    spec = {"id": source_id, "title": f"Penduduk uji gangguan ({kind})",
            "agency": {"code": "disdukcapil", "name": "Dinas Kependudukan dan Pencatatan Sipil Kota Bogor"},
            "standard": "penduduk@1.0.0", "kind": kind, "options": options, "mapping": MAPPING}
    (settings.registry / f"{source_id}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


# --- what the catalog shows ---------------------------------------------------------------------------


@dataclass
class View:
    """A source's dataset as readers and the next run see it."""

    snapshot_id: int | None  # hub_datasets
    row_count: int | None
    versions: list[int]  # hub_dataset_versions
    table_snapshot: int | None  # the Iceberg table's current snapshot
    rows: dict[str, str] | None  # what SQL over the dataset gives: NIK -> agama (None: no dataset)
    row_total: int | None  # count(*) of the same, so a duplicated NIK shows
    runs: list[tuple[str, str, str | None]] = field(default_factory=list)  # (run id, status, error) in order
    quarantined: Counter = field(default_factory=Counter)  # run id -> rows in hub_quarantine
    cursor: object = None  # hub_source_state


def view(settings: Settings, source_id: str) -> View:
    from catalog import storage
    from catalog.db import Dataset, DatasetVersion, QuarantinedRow, Run, SourceState, init_db, session
    from catalog.query import query
    from pyiceberg.exceptions import NoSuchTableError

    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s:
        d = s.get(Dataset, source_id)
        versions = list(s.scalars(select(DatasetVersion.snapshot_id).where(DatasetVersion.dataset_id == source_id)
                                  .order_by(DatasetVersion.id)))
        runs = [(r.run_id, r.status, r.error) for r in
                s.scalars(select(Run).where(Run.dataset_id == source_id).order_by(Run.id))]
        quarantined = Counter(s.scalars(select(QuarantinedRow.run_id).where(QuarantinedRow.dataset_id == source_id)))
        state = s.get(SourceState, source_id)
    try:
        table = storage.iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri()).load_table(
            (storage.HARMONIZED, source_id))
        current = table.current_snapshot()
        table_snapshot = current.snapshot_id if current else None
    except NoSuchTableError:
        table_snapshot = None
    rows = total = None
    if d is not None:
        published = query(settings, f'SELECT nik, agama FROM "{source_id}"').to_pylist()
        rows, total = {r["nik"]: r["agama"] for r in published}, len(published)
    return View(snapshot_id=d.snapshot_id if d else None, row_count=d.row_count if d else None, versions=versions,
                table_snapshot=table_snapshot, rows=rows, row_total=total, runs=runs, quarantined=quarantined,
                cursor=state.cursor if state else None)


def table_rows(settings: Settings, source_id: str, snapshot_id: int | None = None) -> dict[str, str]:
    """NIK -> agama of the Iceberg table's snapshot (default: its current one), read by pyiceberg itself."""
    from catalog import storage

    table = storage.read_table(settings, storage.HARMONIZED, source_id, snapshot_id)
    niks, agama = table["nik"].to_pylist(), table["agama"].to_pylist()
    assert len(set(niks)) == len(niks), "a key appears twice in the Iceberg snapshot"
    return dict(zip(niks, agama))


# --- child runs -----------------------------------------------------------------------------------------


def child(settings: Settings, program: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `program` (Python source; `args` in sys.argv[1:]) in a child process with the hub's settings."""
    env = {**os.environ, "HUB_HOME": str(settings.home), "HUB_CATALOG_URL": settings.catalog_url,
           "HUB_REGISTRY": str(settings.registry), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(program), *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, env=env)


# --- an agency API that fails ------------------------------------------------------------------------


class FaultyApi:
    """An agency's JSON API of residents on loopback, failing as real servers do, for as long as it is told.

    GET /penduduk?page=P&limit=N&since=T&api_key=K: the records changed after T (by `updated_at`), in that
    order, page P (from 1) of N; {"data": [...]}, an empty page after the last. `fail(page, kind, times)`
    makes the next `times` requests for that page (None: all of them, until `heal()`) fail with `kind`, and
    `served` counts the requests per page from then on:
      slow          answers only after the client gave up (it waits for `heal()`)
      500           HTTP 500, its body quoting a record, as some frameworks do
      429           HTTP 429 with Retry-After: 1
      drop-length   sends the headers (with Content-Length) and half the body, then closes the connection
      drop-chunked  the same with Transfer-Encoding: chunked (a first chunk, then the connection closes)
      drop-close    the same with a body delimited by the connection's end (no length, no chunks)
    """

    def __init__(self, records: list[dict]) -> None:
        self.records = list(records)
        self.faults: dict[int, list] = {}
        self.served: Counter = Counter()  # page -> requests answered or failed
        self.released = threading.Event()
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                try:
                    api.answer(self)
                except (ConnectionError, OSError):
                    pass  # the client gave up waiting

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def fail(self, page: int, kind: str, times: int | None = None) -> None:
        with self.lock:
            self.released.clear()
            self.faults[page] = [kind, times]
            self.served.clear()

    def heal(self) -> None:
        with self.lock:
            self.faults.clear()
        self.released.set()

    def stop(self) -> None:
        self.heal()
        self.server.shutdown()
        self.server.server_close()

    def page(self, query: dict) -> tuple[int, bytes]:
        since, size, number = query.get("since", ""), int(query["limit"]), int(query.get("page", 1))
        chosen = sorted((r for r in self.records if r["updated_at"] > since), key=lambda r: r["updated_at"])
        return number, json.dumps({"data": chosen[(number - 1) * size:number * size]}).encode()

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(h.path).query).items()}
        if urlsplit(h.path).path != "/penduduk" or query.get("api_key") != API_KEY:
            return self.send(h, 401, b'{"error": "unauthorized"}')
        number, body = self.page(query)
        with self.lock:
            self.served[number] += 1
            fault = self.faults.get(number)
            kind = None
            if fault is not None:
                kind = fault[0]
                if fault[1] is not None:
                    fault[1] -= 1
                    if fault[1] == 0:
                        del self.faults[number]
        if kind is None:
            return self.send(h, 200, body)
        if kind == "slow":
            self.released.wait(60)
            return self.send(h, 200, body)
        if kind == "500":
            quoted = f"gagal: {self.records[0]['nik']} {self.records[0]['nama_lengkap']}"
            return self.send(h, 500, json.dumps({"error": quoted}).encode())
        if kind == "429":
            return self.send(h, 429, b'{"error": "too many requests"}', {"Retry-After": "1"})
        half = body[:len(body) // 2]
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if kind == "drop-length":
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(half)
        elif kind == "drop-chunked":
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            h.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
        else:
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(half)
        h.wfile.flush()
        # Closed as a crashing server closes it: no more bytes, whatever the headers promised.
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)


# --- an agency database that disappears ---------------------------------------------------------------


class CrashablePostgres(PostgresServer):
    """A throwaway PostgreSQL cluster that can disappear at once (`pg_ctl stop -m immediate`: every backend
    killed, no shutdown checkpoint, as when its machine loses power) and start again on the same port."""

    def crash(self) -> None:
        self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        # The options start_postgres gave it; the server recovers from its WAL as after a real crash.
        options = f"-p {self.port} -k {shlex.quote(str(self._dir))} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self._log), "-w", "-o", options, "start")
        self._wait_for_connections()

    def agency_url(self, database: str) -> str:
        """The URL of `database` with the agency's password in it (trust authentication ignores it)."""
        return self.create_database(database).replace("hub@", f"hub:{PG_PASSWORD}@", 1)


# --- agency systems on this machine ----------------------------------------------------------------------


class SqliteAgency:
    """An agency's SQLite database of residents (a `sql` source, incremental by `updated_at`)."""

    kind = "sql"

    def __init__(self, path: Path) -> None:
        self.path = path

    def options(self) -> dict:
        return {"url": f"sqlite:///{self.path}", "table": "penduduk", "cursor_column": "updated_at",
                "batch_rows": 1000}

    def write(self, records: list[dict]) -> None:
        """The table holds `records` (changed rows replaced in place, as the agency's system updates them)."""
        import sqlite3
        from contextlib import closing

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path)) as conn, conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS penduduk ({', '.join(c + ' TEXT' for c in COLUMNS)}, "
                         "PRIMARY KEY (nik))")
            conn.executemany(f"INSERT OR REPLACE INTO penduduk VALUES ({', '.join('?' * len(COLUMNS))})",
                             [[r[c] for c in COLUMNS] for r in records])


class CsvAgency:
    """An agency's CSV export of every resident (a `file` source: each run reads the whole file)."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def options(self) -> dict:
        return {"path": str(self.path), "delimiter": ",", "encoding": "utf-8", "batch_rows": 1000}

    def write(self, records: list[dict]) -> None:
        import csv

        self.path.parent.mkdir(parents=True, exist_ok=True)
        part = self.path.with_suffix(".part")
        with part.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(records)
        part.replace(self.path)


# --- a publish killed at a point -------------------------------------------------------------------------

#: Where `KILLED_PUBLISH` kills the publish of a staged run, in the order publishing passes them.
KILL_POINTS = {
    "data_file": "while the Iceberg data file is being written (512 bytes of it on disk)",
    "manifest": "while the manifest listing the new data file is being written",
    "metadata": "after the new table metadata is written, before the catalog points the table at it",
    "iceberg_commit": "after the Iceberg commit, before the hub's catalog transaction",
    "catalog_commit": "inside the catalog transaction, all of it sent to the database, before its COMMIT",
    "catalog_committed": "after the catalog commit, before the staging folder is removed",
}

# The part both programs share: die at `point` of the commit of a source's version, once Iceberg committed it
# (iceberg_commit), inside the catalog transaction before its COMMIT (catalog_commit), or after it.
_DIE_AT_COMMIT = """
from sqlalchemy import event
from sqlalchemy.orm import Session

from catalog import storage


def die_at_commit(point):
    commit = storage.commit_source

    def after_commit(*args, **kwargs):
        snapshot = commit(*args, **kwargs)
        if point == "iceberg_commit":
            die()
        elif point == "catalog_commit":
            event.listen(Session, "before_commit", lambda s, *_: (s.flush(), die()))
        else:
            event.listen(Session, "after_commit", lambda s, *_: die())
        return snapshot

    storage.commit_source = after_commit
"""

# argv: source id, run id, kill point. The pipeline runs unchanged; only the point where the process dies is
# chosen, by wrapping the function that passes it.
KILLED_PUBLISH = _DIE_AT_COMMIT + """
import os, signal, sys

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io import pyarrow as iceberg_io

from hub import pipeline
from hub.settings import load_settings

source_id, run_id, point = sys.argv[1:4]


def die():
    os.kill(os.getpid(), signal.SIGKILL)


class Cut:
    # An output stream that lets 512 bytes through, then the process dies: a file half-written.
    def __init__(self, stream):
        self.stream, self.written = stream, 0

    def write(self, data):
        data = bytes(data)
        if self.written + len(data) > 512:
            self.stream.write(data[:512 - self.written])
            self.stream.flush()
            die()
        self.written += len(data)
        return self.stream.write(data)

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stream.close()


def cut_files(matches):
    create = iceberg_io.PyArrowFile.create

    def cut(self, overwrite=False):
        stream = create(self, overwrite)
        return Cut(stream) if matches(self.location) else stream

    iceberg_io.PyArrowFile.create = cut


if point == "data_file":
    cut_files(lambda location: "/data/" in location)
elif point == "manifest":
    cut_files(lambda location: location.endswith(".avro"))
elif point == "metadata":
    owner = next(c for c in SqlCatalog.__mro__ if "_write_metadata" in vars(c))
    write = owner._write_metadata

    def then_die(*args, **kwargs):
        write(*args, **kwargs)
        die()

    owner._write_metadata = staticmethod(then_die)
else:
    die_at_commit(point)

pipeline.publish(load_settings(), source_id, run_id)
print("the publish was not killed")
"""


#: Where `KILLED_RUN` kills `hub run SOURCE`, in the order the run passes them.
RUN_KILL_POINTS = {
    "iceberg_commit": "after the Iceberg commit, before the catalog transaction that records the version",
    "catalog_commit": "inside that catalog transaction, all of it sent to the database, before its COMMIT",
    "catalog_committed": "after that commit (the version and its subscribers' messages), before any is sent",
    "delivered": "after a receiver took its message, before the outbox records it as delivered",
}

# argv: source id, kill point. `hub run SOURCE --json`, as the command line runs it; only the point where the
# process dies is chosen, by wrapping the function that passes it.
KILLED_RUN = _DIE_AT_COMMIT + """
import os, signal, sys

from catalog import subscriptions
from hub.cli import main

source_id, point = sys.argv[1:3]


def die(*args, **kwargs):
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if point == "delivered":
    subscriptions._record = die  # called once a message's round is over, to record what came of it
else:
    die_at_commit(point)

main(["run", source_id, "--json"])
print("the run was not killed")
"""


# --- a full disk ----------------------------------------------------------------------------------------


def can_mount_tmpfs() -> bool:
    """Whether this process may mount a filesystem (root with CAP_SYS_ADMIN; not in most containers)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hub-mount-probe-") as folder:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", folder], capture_output=True)
        if done.returncode != 0:
            return False
        subprocess.run(["umount", folder], check=True)
        return True


class SmallDisk:
    """A real filesystem of `size` mounted on `folder` (tmpfs), unmounted by `close()`."""

    def __init__(self, folder: Path, size: str = "32m") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True,
                       capture_output=True)
        self.folder = folder

    def free(self) -> None:
        (self.folder / "ballast").unlink(missing_ok=True)

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.folder)], check=True, capture_output=True)


#: Where `FULL_DISK` runs out of space, and the function around whose writes it does.
DISK_POINTS = {
    "staging": "while the run's staging files are written (stage_into)",
    "warehouse": "while the Iceberg data and metadata files are written (commit_source)",
    "catalog": "after the Iceberg commit, while the catalog transaction is written (the catalog database)",
}

# argv: source id, mechanism (tmpfs | rlimit), point, the full filesystem's folder, and a run id already staged
# (publish it, as the DAG's publish task does: a failure recorded, then raised) or "-" (`hub run SOURCE`).
# tmpfs: the filesystem mounted on the folder is filled to its last byte with a ballast file (the test removes
# it afterwards). rlimit: RLIMIT_FSIZE of this process drops to 2 KiB, so a write taking any file past that
# fails with EFBIG (SIGXFSZ ignored); it is lifted again after staging or the Iceberg writes, which stand for
# disks other than the catalog's, and kept for the catalog point, as a full catalog disk stays full.
FULL_DISK = """
import os, resource, signal, sys

from catalog import storage
from hub import pipeline
from hub.cli import main
from hub.settings import load_settings

source_id, mechanism, point, folder, run_id = sys.argv[1:6]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)


def fill():
    if mechanism == "rlimit":
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, hard))
        return
    fd = os.open(os.path.join(folder, "ballast"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
        chunk = b"\\0" * size
        try:
            while True:
                os.write(fd, chunk)
        except OSError:
            pass
    os.close(fd)


def lift():
    if mechanism == "rlimit":
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


def full_while(function):
    def run(*args, **kwargs):
        fill()
        try:
            return function(*args, **kwargs)
        finally:
            lift()
    return run


def full_after(function):
    def run(*args, **kwargs):
        result = function(*args, **kwargs)
        fill()
        return result
    return run


if point == "staging":
    pipeline.stage_into = full_while(pipeline.stage_into)
elif point == "warehouse":
    storage.commit_source = full_while(storage.commit_source)
else:
    storage.commit_source = full_after(storage.commit_source)
if run_id == "-":
    sys.exit(main(["run", source_id, "--json"]))
settings = load_settings()
try:
    pipeline.publish(settings, source_id, run_id)
except Exception as e:
    pipeline.record_failure(settings, source_id, run_id, e)
    raise
"""
