"""Faults injected for real: nothing half-published is visible, and the next run publishes each record once."""

# Each test publishes a first version of a real source, changes the source, injects the fault into the next run,
# then checks what the catalog shows (the dataset's snapshot, the Iceberg table, runs, quarantine, cursor, and the
# rows SQL gives), what the failed run says, and that a run without the fault recovers.

from __future__ import annotations

import logging
import os
import re
import signal
import time
from pathlib import Path

import pytest

from _faults import (
    API_KEY, COLUMNS, FULL_DISK, KILL_POINTS, KILLED_PUBLISH, PG_PASSWORD, CrashablePostgres, CsvAgency, FaultyApi,
    SmallDisk, SqliteAgency, View, can_mount_tmpfs, changed, child, register, residents, table_rows, view,
)
from hub.errors import HubError, RetriableSourceError
from hub.pipeline import STALE_STAGING_SECONDS, publish, run_source, stage
from hub.settings import Settings

EVERYONE = residents(1000)
PEOPLE = EVERYONE[:300]
V1 = PEOPLE[:200]
V2 = changed(V1) + PEOPLE[200:]  # 20 records changed, 100 new
SECRETS = (API_KEY, PG_PASSWORD)


@pytest.fixture
def settings(tmp_path) -> Settings:
    home = tmp_path / "home"
    return Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}", registry=tmp_path / "registry")


def expected(records: list[dict]) -> dict[str, str]:
    return {r["nik"]: r["agama"] for r in records}


def assert_clean(text: str) -> None:
    """No secret and no personal data (a resident's NIK or name) in an error message or a log."""
    for secret in SECRETS:
        assert secret not in text
    for r in EVERYONE:
        assert r["nik"] not in text and r["nama_lengkap"] not in text, text


def assert_nothing_half_published(settings: Settings, source_id: str, before: View, run_id: str,
                                  committed: dict | None = None) -> None:
    """The catalog shows the version `before` showed, and nothing of run `run_id` but its failure.

    `committed`: the run may have made its Iceberg commit before it died; if the table moved, its new snapshot
    must hold exactly these records (a whole version), and still no reader sees it.
    """
    now = view(settings, source_id)
    assert (now.snapshot_id, now.row_count, now.versions) == (before.snapshot_id, before.row_count, before.versions)
    assert (now.rows, now.row_total) == (before.rows, before.row_total)  # what SQL over the dataset gives
    assert now.cursor == before.cursor
    assert now.quarantined == before.quarantined
    assert [r for r in now.runs if r[0] == run_id and r[1] != "failed"] == []
    if now.table_snapshot != before.table_snapshot:
        assert committed is not None, "the Iceberg table moved to a snapshot the catalog does not record"
        assert table_rows(settings, source_id) == committed


def assert_failed(settings: Settings, source_id: str, run_id: str, error: type, says: str) -> str:
    """Run `run_id` is recorded as failed with `error`'s class, naming the source, saying `says`, and clean."""
    runs = [r for r in view(settings, source_id).runs if r[0] == run_id]
    assert runs and {status for _, status, _ in runs} == {"failed"}, runs
    message = runs[-1][2]
    assert message.startswith(f"{error.__name__}: source {source_id}: "), message
    assert says in message, message
    assert_clean(message)
    return message


def assert_exactly_once(settings: Settings, source_id: str, records: list[dict], result=None,
                        incremental: bool = True) -> None:
    """Every record of the source published once, in the catalog and in the Iceberg table, as the run `result`
    says, and an incremental source's cursor at the last change."""
    want = expected(records)
    now = view(settings, source_id)
    assert (now.rows, now.row_total, now.row_count) == (want, len(want), len(want))
    assert table_rows(settings, source_id) == want
    assert now.snapshot_id == now.table_snapshot
    if result is not None:
        assert result.status in ("published", "unchanged") and result.snapshot_id == now.snapshot_id
    assert now.versions[-1] == now.snapshot_id
    # A cursor from a timestamp column is stored in ISO 8601.
    assert (now.cursor and now.cursor.replace("T", " ")) == (max(r["updated_at"] for r in records) if incremental
                                                              else None)


def staged_folders(settings: Settings, source_id: str) -> list[str]:
    folder = settings.staging / source_id
    return sorted(f.name for f in folder.iterdir()) if folder.is_dir() else []


# --- an agency API -------------------------------------------------------------------------------------

API_FAULTS = {  # kind -> what the failed run's error says
    "slow": "no answer within the timeout",
    "500": "HTTP 500 Internal Server Error",
    "429": "HTTP 429 Too Many Requests",
    "drop-length": "RemoteProtocolError",
    "drop-chunked": "RemoteProtocolError",
    "drop-close": "RemoteProtocolError",
}


# Smaller versions: every batch costs its validation.
API_V1 = PEOPLE[:50]
API_V2 = changed(API_V1) + PEOPLE[50:150]  # 5 records changed, 100 new: 5 pages of 25
API_V3 = changed(API_V2, every=4)  # 38 more changes: 2 pages


@pytest.fixture
def api():
    server = FaultyApi(API_V1)
    yield server
    server.stop()


def register_api(settings: Settings, api: FaultyApi, source_id: str = "api_penduduk") -> str:
    register(settings, source_id, "rest", {
        "url": f"{api.url}/penduduk", "records": "data",
        "pagination": {"type": "page", "page_param": "page", "size_param": "limit"}, "page_size": 25,
        "cursor_field": "updated_at", "since_param": "since",
        "auth": {"type": "api_key", "in": "query", "name": "api_key", "key": {"env": "FAULT_API_KEY"}},
        # Two retries, soon: a fault lasting three requests outlasts them.
        "timeout_seconds": 1, "max_retries": 2, "retry_backoff_seconds": 0.05,
        "batch_rows": 25,  # a batch per page: the first is staged before the page that fails
    })
    return source_id


@pytest.mark.parametrize("kind", list(API_FAULTS))
def test_an_agency_api_fault_is_retried_then_fails_the_run_then_the_next_run_recovers(settings, api, kind,
                                                                                      monkeypatch, caplog):
    """A `rest` source on a loopback `http.server` API (FaultyApi) failing on the second page: once, which the
    client's retry absorbs, then for longer than its retries, which fails the run."""
    monkeypatch.setenv("FAULT_API_KEY", API_KEY)
    caplog.set_level(logging.INFO)
    source_id = register_api(settings, api)
    run_source(settings, source_id)

    # A fault on the second page, once: the client's own retry reads it, and the run publishes.
    api.records = API_V2
    api.fail(2, kind, times=1)
    result = run_source(settings, source_id)
    assert api.served[2] >= 2  # more only if a busy machine made a good answer late as well
    assert_exactly_once(settings, source_id, API_V2, result)
    before = view(settings, source_id)

    # The fault outlasts the client's retries: the run fails, and publishes nothing.
    api.records = API_V3
    api.fail(2, kind)
    with pytest.raises(RetriableSourceError) as raised:
        run_source(settings, source_id, run_id="faulty")
    assert api.served[2] == 3
    assert_nothing_half_published(settings, source_id, before, "faulty")
    message = assert_failed(settings, source_id, "faulty", RetriableSourceError, API_FAULTS[kind])
    assert re.search(r"GET 127\.0\.0\.1:\d+/penduduk: .*\(gave up after 3 attempts\)$", message), message
    assert_clean(str(raised.value))
    assert staged_folders(settings, source_id) == []  # the batches staged before the fault are gone

    # The API answers again: the next run reads from the last committed cursor.
    api.heal()
    result = run_source(settings, source_id)
    assert result.rows_in == sum(1 for r in API_V3 if r["updated_at"] > before.cursor)
    assert_exactly_once(settings, source_id, API_V3, result)
    assert_clean(caplog.text)


# --- an agency API, through Airflow's retries ------------------------------------------------------------


def test_an_api_outage_outlasting_the_clients_retries_is_retried_by_airflow_and_a_longer_one_by_the_next_dag_run(
        session_home, settings, api, monkeypatch):
    """Real DAG runs (`dag.test()`) of the source's DAG as `dags/` builds it, with its retries (two) kept and
    only their delay set to zero: a retriable error makes Airflow retry the task within the same DAG run."""
    import datetime as dt

    import airflow.settings  # noqa: F401  (Airflow's database is the session's, configured before the hub's env moves)
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    from hub.airflow_dags import harmonized_asset, source_dag_id
    from _airflow import dag_bag

    for name, value in {"HUB_HOME": str(settings.home), "HUB_CATALOG_URL": settings.catalog_url,
                        "HUB_REGISTRY": str(settings.registry), "FAULT_API_KEY": API_KEY}.items():
        monkeypatch.setenv(name, value)  # what the tasks read (load_settings)
    source_id = register_api(settings, api)
    dag = dag_bag().get_dag(source_dag_id(source_id))
    assert dag.default_args["retries"] == 2
    for task in dag.tasks:
        task.retry_delay, task.retry_exponential_backoff = dt.timedelta(0), 0

    try:
        dag_runs_with_faults(settings, api, dag, source_id)
    finally:
        # What the scheduler would do with the Asset events the publishes emitted: use them up.
        with create_session() as s:
            s.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.asset_id.in_(
                select(AssetModel.id).where(AssetModel.uri == harmonized_asset(source_id).uri))))


def dag_runs_with_faults(settings: Settings, api: FaultyApi, dag, source_id: str) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def dag_run(records: list[dict]):
        api.records = records
        run = dag.test()
        with create_session() as s:
            tries = {ti.task_id: (ti.state, ti.try_number) for ti in
                     s.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id,
                                                          TaskInstance.dag_id == dag.dag_id))}
        return run, tries

    first, _ = dag_run(API_V1)
    assert first.state == "success"

    # 500 for four requests: the first try's three attempts, and the second try's first one.
    api.fail(2, "500", times=4)
    retried, tries = dag_run(API_V2)
    assert retried.state == "success" and tries["stage"] == ("success", 2)
    runs = [(status, error) for run_id, status, error in view(settings, source_id).runs if run_id == retried.run_id]
    assert [status for status, _ in runs] == ["failed", "published"]  # the failed try, then the retry: one run id
    assert runs[0][1].startswith(f"RetriableSourceError: source {source_id}: GET ")
    assert_exactly_once(settings, source_id, API_V2)
    before = view(settings, source_id)

    # 500 for longer than all three tries: the DAG run fails, and publishes nothing.
    api.fail(2, "500")
    failed, tries = dag_run(API_V3)
    assert failed.state == "failed" and tries["stage"] == ("failed", 3) and tries["publish"][0] == "upstream_failed"
    assert_nothing_half_published(settings, source_id, before, failed.run_id)
    assert [st for r, st, _ in view(settings, source_id).runs if r == failed.run_id] == ["failed"] * 3
    assert_failed(settings, source_id, failed.run_id, RetriableSourceError, "HTTP 500 Internal Server Error")

    # The API is back by the next scheduled run, which reads from the last committed cursor.
    api.heal()
    recovered, _ = dag_run(API_V3)
    assert recovered.state == "success"
    assert_exactly_once(settings, source_id, API_V3)


# --- an agency database -------------------------------------------------------------------------------

DB_V1 = EVERYONE[300:500]
DB_V2 = changed(DB_V1) + EVERYONE[500:700]  # 20 records changed, 200 new: 11 batches of 20 to read


@pytest.fixture(scope="module")
def agency_postgres():
    """The agency's own PostgreSQL server: a cluster of its own, since the test crashes it."""
    server = CrashablePostgres().start()
    yield server
    server.stop()


def write_agency_table(url: str, records: list[dict]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "CREATE TABLE IF NOT EXISTS penduduk (nik VARCHAR(16) PRIMARY KEY, nama_lengkap TEXT, "
                "jenis_kelamin TEXT, agama TEXT, tgl_lahir TEXT, kode_kelurahan TEXT, updated_at TIMESTAMP)"))
            conn.execute(sa.text(
                f"INSERT INTO penduduk VALUES ({', '.join(':' + c for c in COLUMNS)}) ON CONFLICT (nik) DO UPDATE "
                f"SET {', '.join(f'{c} = EXCLUDED.{c}' for c in COLUMNS[1:])}"), records)
    finally:
        engine.dispose()


class CrashAfterFirstBatch(logging.Handler):
    """Crashes the agency's server when the pipeline reports the first batch of a run read and validated: the
    connector is then between two fetches of its server-side cursor, with most of the table still to read."""

    def __init__(self, server: CrashablePostgres, source_id: str) -> None:
        super().__init__(logging.INFO)
        self.server, self.prefix, self.crashed = server, f"source {source_id}: read ", False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.crashed and record.getMessage().startswith(self.prefix):
            self.crashed = True
            self.server.crash()


def test_an_agency_database_that_disappears_mid_read_fails_the_run_and_the_run_after_its_restart_recovers(
        settings, agency_postgres, monkeypatch, caplog):
    """`pg_ctl stop -m immediate` on the agency's PostgreSQL while a `sql` source reads it in batches."""
    caplog.set_level(logging.INFO)
    url = agency_postgres.agency_url("agency")
    write_agency_table(url, DB_V1)
    monkeypatch.setenv("FAULT_AGENCY_DB_URL", url)  # the password reaches the hub only this way
    source_id = "db_penduduk"
    register(settings, source_id, "sql", {"url_env": "FAULT_AGENCY_DB_URL", "table": "penduduk",
                                         "cursor_column": "updated_at", "batch_rows": 20})
    run_source(settings, source_id)
    write_agency_table(url, DB_V2)
    before = view(settings, source_id)

    crash = CrashAfterFirstBatch(agency_postgres, source_id)
    logging.getLogger("hub.pipeline").addHandler(crash)
    try:
        with pytest.raises(RetriableSourceError) as raised:
            run_source(settings, source_id, run_id="crashed")
    finally:
        logging.getLogger("hub.pipeline").removeHandler(crash)
    assert crash.crashed
    assert_nothing_half_published(settings, source_id, before, "crashed")
    assert_failed(settings, source_id, "crashed", RetriableSourceError, "database error while reading")
    assert_clean(str(raised.value))
    assert staged_folders(settings, source_id) == []

    # Still down: the next run fails at connecting, and changes nothing either.
    with pytest.raises(RetriableSourceError):
        run_source(settings, source_id, run_id="still-down")
    assert_nothing_half_published(settings, source_id, before, "still-down")
    assert_failed(settings, source_id, "still-down", RetriableSourceError, "cannot connect")

    # Back up after crash recovery: the next run reads everything since the last committed cursor.
    agency_postgres.restart()
    result = run_source(settings, source_id)
    assert result.rows_in == len(DB_V2) - len(DB_V1) + len(DB_V1) // 10
    assert_exactly_once(settings, source_id, DB_V2, result)
    assert_clean(caplog.text)


# --- a publish killed -------------------------------------------------------------------------------------


@pytest.fixture(params=["sql", "file"])
def agency(request, settings):
    """An incremental source (upserted by key) and a full extract (its file replaces the table's)."""
    folder = settings.home / "agency"  # the hub reads local files only under its home
    return SqliteAgency(folder / "siak.db") if request.param == "sql" else CsvAgency(folder / "dtks.csv")


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_publish_killed_at_any_point_leaves_the_previous_version_and_its_retry_publishes_once(settings, agency,
                                                                                                 point):
    """SIGKILL of a child process running the publish step, at each point of KILL_POINTS."""
    killed_then_retried(settings, agency, point)


def test_a_publish_killed_inside_a_postgresql_catalog_transaction_leaves_the_previous_version(tmp_path, postgres):
    """The same on a PostgreSQL catalog, where the server sees the killed process's connection drop."""
    home = tmp_path / "home"
    settings = Settings(home=home, catalog_url=postgres.create_database("faults_kill"), registry=tmp_path / "registry")
    killed_then_retried(settings, SqliteAgency(home / "agency" / "siak.db"), "catalog_commit")


def killed_then_retried(settings: Settings, agency, point: str) -> None:
    source_id = f"{agency.kind}_penduduk"
    incremental = agency.kind == "sql"
    register(settings, source_id, agency.kind, agency.options())
    agency.write(V1)
    run_source(settings, source_id)
    before = view(settings, source_id)

    agency.write(V2)
    stage(settings, source_id, "killed")  # Airflow's stage task, done
    done = child(settings, KILLED_PUBLISH, source_id, "killed", point)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr[-3000:]

    if point == "catalog_committed":
        # The catalog commit landed: the version is whole; only the staging folder was left.
        assert_exactly_once(settings, source_id, V2, incremental=incremental)
        assert view(settings, source_id).runs[-1][:2] == ("killed", "published")
    else:
        assert_nothing_half_published(settings, source_id, before, "killed",
                                      committed=expected(V2) if point in ("iceberg_commit", "catalog_commit") else None)
        assert not [r for r in view(settings, source_id).runs if r[0] == "killed"]
    assert staged_folders(settings, source_id) == ["killed"]

    if point != "catalog_committed":
        # Airflow retries the publish task of the same run, from the staged files.
        retried = publish(settings, source_id, "killed")
        assert_exactly_once(settings, source_id, V2, retried, incremental)
        assert staged_folders(settings, source_id) == []

    # The next run finds everything published: nothing new, nothing twice (and sweeps a committed run's folder).
    again = run_source(settings, source_id)
    assert again.status == "unchanged"
    if incremental:
        assert again.rows_in == 0
    assert_exactly_once(settings, source_id, V2, again, incremental)
    assert staged_folders(settings, source_id) == []


def test_publishing_again_the_content_of_an_older_version_does_not_rewrite_that_versions_file(settings):
    """The agency sends its first export again. Its data file, named by content, is the one version 1 reads:
    the publish (in a child that would be killed while writing any data file) must not write it again."""
    agency = CsvAgency(settings.home / "agency" / "dtks.csv")
    source_id = "file_penduduk"
    register(settings, source_id, agency.kind, agency.options())
    agency.write(V1)
    first = run_source(settings, source_id)
    agency.write(V2)
    run_source(settings, source_id)

    agency.write(V1)
    stage(settings, source_id, "again")
    done = child(settings, KILLED_PUBLISH, source_id, "again", "data_file")
    assert done.returncode == 0 and "the publish was not killed" in done.stdout, done.stderr[-3000:]
    assert_exactly_once(settings, source_id, V1, incremental=False)
    assert table_rows(settings, source_id, first.snapshot_id) == expected(V1)


# --- a full disk ----------------------------------------------------------------------------------------

DISK_CASES = [  # (where the disk is full, the source's kind)
    ("staging", "sql"),  # hub run; the next hub run recovers
    # The publish step of a staged run; Airflow's retry of that step recovers, except for the upserted source,
    # where Airflow's retries ran out and the next run recovers (its stale staging folder is swept later).
    ("warehouse", "sql"),  # pyiceberg writes the upserted data files
    ("warehouse", "file"),  # the hub copies the staged file into the table
    ("catalog", "sql"),
]
# A real filesystem that fills up where mounting one is permitted (root with CAP_SYS_ADMIN), else a real limit
# on the size of files; HUB_TEST_FULL_DISK=rlimit forces the second, to test it where both work.
FULL_DISK_MECHANISM = os.environ.get("HUB_TEST_FULL_DISK") or ("tmpfs" if can_mount_tmpfs() else "rlimit")


def checkpoint(settings: Settings) -> None:
    """Empty the SQLite catalog's write-ahead log, as its checkpoints do: the next transactions must grow the
    file again, so a full disk cannot hide behind log space already allocated."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(settings.catalog_url.removeprefix("sqlite:///"))) as conn:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0


@pytest.mark.parametrize("mechanism", [FULL_DISK_MECHANISM])
@pytest.mark.parametrize(("point", "kind"), DISK_CASES)
def test_a_full_disk_during_a_write_publishes_nothing_and_the_run_after_space_is_freed_recovers(
        tmp_path, mechanism, point, kind):
    """A child process whose disk fills up at a point of DISK_POINTS: `hub run` for staging, the publish step
    of a run staged before for the others.

    mechanism tmpfs: a real 32 MiB tmpfs mounted on the folder that fills up (staging, warehouse, or the
    catalog database's), filled to its last byte by a ballast file at that point, so writes fail with ENOSPC.
    mechanism rlimit, where mounting is not permitted (most containers): RLIMIT_FSIZE of the child drops to
    2 KiB at that point, so every write taking a file past it fails with EFBIG (SIGXFSZ ignored).
    """
    home = tmp_path / "home"
    settings = Settings(home=home, catalog_url=f"sqlite:///{home / 'catalogdb' / 'catalog.db'}",
                        registry=tmp_path / "registry")
    full = {"staging": settings.staging, "catalog": home / "catalogdb"}.get(point, settings.warehouse)
    disk = SmallDisk(full) if mechanism == "tmpfs" else None
    try:
        full_disk_then_recovery(settings, mechanism, point, kind, full, disk)
    finally:
        if disk is not None:
            disk.close()


def full_disk_then_recovery(settings: Settings, mechanism: str, point: str, kind: str, full, disk) -> None:
    import pyarrow.parquet as pq

    from catalog import storage

    agency = SqliteAgency(settings.home / "agency" / "siak.db") if kind == "sql" else CsvAgency(
        settings.home / "agency" / "dtks.csv")
    source_id, incremental = f"{kind}_penduduk", kind == "sql"
    register(settings, source_id, kind, agency.options())
    agency.write(V1)
    run_source(settings, source_id)
    agency.write(V2)
    before = view(settings, source_id)
    checkpoint(settings)

    if point == "staging":
        done = child(settings, FULL_DISK, source_id, mechanism, point, str(full), "-")  # hub run
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    else:
        stage(settings, source_id, "full")  # Airflow's stage task, done
        done = child(settings, FULL_DISK, source_id, mechanism, point, str(full), "full")
        assert done.returncode == 1, done.stdout + done.stderr[-3000:]
        # As the task log shows it: the run's error alone, none of the database's or the driver's.
        assert done.stderr.count("Traceback") == 1, done.stderr[-3000:]
    if disk is not None:
        disk.free()
    assert_clean(done.stderr)
    error = re.search(rf"(?:hub: error|hub\.errors\.HubError): source {source_id}: run (\S+): (.*)", done.stderr)
    assert error, done.stderr[-3000:]
    run_id, says = error.groups()

    assert_nothing_half_published(settings, source_id, before, run_id,
                                  committed=expected(V2) if point == "catalog" else None)
    if point == "catalog":
        # The catalog could take neither the run nor its failure; the hub says so and keeps the run's own error.
        assert says.startswith("the catalog database failed while publishing (")
        assert re.search(r"database or disk is full|disk I/O error", says), says
        assert f"run {run_id} failed (HubError) and the catalog could not record it" in done.stderr
        assert not [r for r in view(settings, source_id).runs if r[0] == run_id]
    else:
        step = "staging" if point == "staging" else "publishing"
        message = assert_failed(settings, source_id, run_id, HubError, f"while {step}; nothing was published")
        assert ("No space left on device" if mechanism == "tmpfs" else "File too large") in message
    # hub run leaves no staged files; a failed publish step keeps them for its retry.
    assert staged_folders(settings, source_id) == ([] if point == "staging" else ["full"])
    if kind == "file":  # no partial copy left in the table's folder
        data = storage.iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri()).load_table(
            (storage.HARMONIZED, source_id)).location().removeprefix("file://") + "/data"
        for path in Path(data).glob("*.parquet"):
            pq.read_metadata(path)

    if point in ("staging", "warehouse") and kind == "sql":
        result = run_source(settings, source_id)
    else:
        result = publish(settings, source_id, "full")
    assert_exactly_once(settings, source_id, V2, result, incremental)
    if point == "warehouse" and kind == "sql":
        # The folder of the run that never published stays while a retry may come; a day later it is swept.
        assert staged_folders(settings, source_id) == ["full"]
        a_day_ago = time.time() - STALE_STAGING_SECONDS - 60
        os.utime(settings.staging / source_id / "full", (a_day_ago, a_day_ago))
        assert run_source(settings, source_id).status == "unchanged"
    assert staged_folders(settings, source_id) == []
