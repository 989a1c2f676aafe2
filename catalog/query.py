"""DuckDB over the published datasets: the operator's plain views, and the sandbox that runs callers' queries.

A caller's query (analysts' SQL, a page of rows) runs in a `sandbox`: an in-memory DuckDB connection whose
file access, extensions and settings are switched off and locked before anything is put in it, and which is
then given only what the caller may see (`catalog.views`, Arrow data read by pyarrow). Whatever the statement,
there is no file, directory, extension or setting for it to reach: the only file DuckDB itself may touch is
the connection's own spill folder, made empty for it and removed with it.

Every sandbox holds one of a fixed number of slots: memory and spill are split between the slots, so all
queries together stay within HUB_QUERY_MEMORY and HUB_QUERY_SPILL, and a request that finds every slot taken
waits a little in a bounded queue, then gets `Busy` (503 with Retry-After) instead of starving other clients.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from catalog import storage
from catalog.db import Dataset, init_db, session
from catalog.identity import Identity
from hub.errors import Busy, ConfigError, QueryError

__all__ = ["Limits", "connect", "hub_connection", "query", "sandbox"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
SPILL = "spill"  # the folder of HUB_HOME under which each sandbox gets its own spill folder
# The memory of the operator's own connection (indicator builds over whole datasets): past it, DuckDB spills.
# Measured on the population indicator over bench/pipeline.py's source, its SQL alone (seconds, process peak): 64 MB
# gives 1,000,000 residents 0.19 s, 125 MB; 3,000,000 0.62 s, 139 MB; 10,000,000 2.2 s, 145 MB. It holds because
# the indicators key people on their NIK as a number (8 bytes, not 16 of text): on the text, 64 MB ran out of memory
# at 10,000,000 and 128 MB took 0.22 s, 161 MB; 0.71 s, 206 MB; 3.0 s, 208 MB.
OPERATOR_MEMORY = "64MB"


def _size(name: str, default: str) -> int:
    text = os.environ.get(name) or default
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"setting {name}={text!r}: write a size such as 512MB or 4GB")
    return int(float(match[1]) * _UNITS[(match[2] or "B").upper()])


def _number(name: str, default: float, kind=int, minimum: float = 1):
    text = os.environ.get(name) or str(default)
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ConfigError(f"setting {name}={text!r}: write a {'whole ' if kind is int else ''}number of at least "
                          f"{minimum:g}")
    return value


@dataclass(frozen=True)
class Limits:
    """The server's limits for callers' queries, from the environment; the defaults suit a 2-core, 24 GB machine."""

    slots: int  # HUB_QUERY_SLOTS: sandboxes open at once (SQL queries and pages of rows)
    queue: int  # HUB_QUERY_QUEUE: requests that may wait for a slot; more are refused at once
    wait_seconds: float  # HUB_QUERY_WAIT_SECONDS: how long one waits before it is refused
    memory_bytes: int  # HUB_QUERY_MEMORY: DuckDB memory of all sandboxes together
    spill_bytes: int  # HUB_QUERY_SPILL: DuckDB spill of all sandboxes together, under HUB_HOME/spill
    timeout_seconds: float  # HUB_QUERY_TIMEOUT_SECONDS: a query still running then is stopped
    answer_bytes: int  # HUB_MAX_ANSWER_BYTES: the most data one answer of SQL or rows carries

    @classmethod
    def from_env(cls) -> Limits:
        return cls(slots=_number("HUB_QUERY_SLOTS", 4), queue=_number("HUB_QUERY_QUEUE", 16, minimum=0),
                   wait_seconds=_number("HUB_QUERY_WAIT_SECONDS", 10.0, float, minimum=0),
                   memory_bytes=_size("HUB_QUERY_MEMORY", "4GB"), spill_bytes=_size("HUB_QUERY_SPILL", "16GB"),
                   timeout_seconds=_number("HUB_QUERY_TIMEOUT_SECONDS", 30.0, float, minimum=0.1),
                   answer_bytes=_size("HUB_MAX_ANSWER_BYTES", "32MB"))


class _Slots:
    """Sandboxes open at once in this process, and the requests waiting for one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.running = 0
        self.waiting = 0

    @contextmanager
    def held(self, limits: Limits) -> Iterator[None]:
        with self._changed:
            if self.running >= limits.slots:
                retry = max(1, round(limits.wait_seconds))
                if self.waiting >= limits.queue:
                    raise Busy(f"the hub is running {self.running} queries and {self.waiting} more are waiting: "
                               f"try again in {retry} s", retry)
                self.waiting += 1
                try:
                    deadline = time.monotonic() + limits.wait_seconds
                    while self.running >= limits.slots:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise Busy(f"no query slot came free within {limits.wait_seconds:g} s: try again in "
                                       f"{retry} s", retry)
                        self._changed.wait(left)
                finally:
                    self.waiting -= 1
            self.running += 1
        try:
            yield
        finally:
            with self._changed:
                self.running -= 1
                self._changed.notify()


_SLOTS = _Slots()


def hub_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for the hub's own statements, never a caller's."""
    return duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                              "autoload_known_extensions": False})


@contextmanager
def connect(settings, versions: dict[str, int] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The operator's connection (`hub query`, indicator builds), on the machine that holds the warehouse: one
    view per dataset, named by its id, over its current snapshot or the one `versions` names; every column,
    plain. Never given a caller's statement: callers get a `sandbox`. Its memory is OPERATOR_MEMORY, spilling to
    a folder of its own under HUB_HOME/spill beyond that, removed with the connection."""
    init_db(settings.catalog_url)
    spill = settings.home / SPILL / f"operator-{uuid.uuid4().hex}"
    spill.mkdir(parents=True, mode=0o700)
    con = hub_connection()
    try:
        con.execute(f"SET memory_limit = '{OPERATOR_MEMORY}'")
        con.execute("SET temp_directory = '" + str(spill).replace("'", "''") + "'")
        with session(settings.catalog_url) as s:
            datasets = s.query(Dataset).order_by(Dataset.id).all()
        for d in datasets:
            if not _NAME.match(d.id):
                continue
            # The version the catalog records, not the table's newest snapshot (see `storage.data_files`).
            files, schema, _ = storage.data_files(settings, d.table_identifier,
                                                  (versions or {}).get(d.id, d.snapshot_id))
            if files:
                listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                # Files written before a compatible schema change lack the new columns: match columns by name.
                source = f"read_parquet([{listing}], union_by_name = true)"
            else:
                con.register(f"_{d.id}_empty", schema.empty_table())
                source = f'"_{d.id}_empty"'
            con.execute(f'CREATE VIEW "{d.id}" AS SELECT * FROM {source}')
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


@contextmanager
def sandbox(settings, who: Identity, versions: dict[str, int | None],
            limits: Limits | None = None) -> Iterator[tuple[duckdb.DuckDBPyConnection, dict]]:
    """A connection for `who`'s query over the datasets `versions` names (dataset id -> snapshot id, None for
    the current one), each a table of that name holding what `who` may see of it; and those `Visible`s by id.

    Raises `Busy` when no slot comes free in time, `AccessDenied` for a dataset `who` may not read.
    """
    limits = limits or Limits.from_env()
    init_db(settings.catalog_url)
    with _SLOTS.held(limits):
        spill = settings.home / SPILL / uuid.uuid4().hex
        spill.mkdir(parents=True, mode=0o700)
        con = hub_connection()
        try:
            # All of it before the connection holds any data or sees any statement; the lock keeps it so.
            for setting, value in (("memory_limit", f"{limits.memory_bytes // limits.slots}B"),
                                   ("max_temp_directory_size", f"{limits.spill_bytes // limits.slots}B"),
                                   ("temp_directory", str(spill)), ("secret_directory", ""),
                                   ("extension_directory", ""), ("home_directory", ""),
                                   ("enable_external_access", False), ("lock_configuration", True)):
                literal = str(value).lower() if isinstance(value, bool) else "'" + value.replace("'", "''") + "'"
                con.execute(f"SET {setting} = {literal}")
            shown = _register(settings, con, who, versions)
            yield con, shown
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)


def _register(settings, con: duckdb.DuckDBPyConnection, who: Identity, versions: dict[str, int | None]) -> dict:
    from catalog.views import visible

    shown = {}
    with session(settings.catalog_url) as s:
        datasets = {d.id: d for d in s.query(Dataset).filter(Dataset.id.in_(list(versions)))}
    for dataset_id, snapshot_id in sorted(versions.items()):
        d = datasets.get(dataset_id)
        if d is None or not _NAME.match(dataset_id):
            raise QueryError(f"unknown dataset {dataset_id!r}")
        shown[dataset_id] = visible(settings, d, who, snapshot_id)
        con.register(dataset_id, shown[dataset_id].data)
    return shown


def query(settings, sql: str) -> pa.Table:
    """The operator's own SQL (`hub query`), on the machine that holds the warehouse: unmasked."""
    with connect(settings) as con:
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.Error as e:
            raise QueryError(str(e)) from None
