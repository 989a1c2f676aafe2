"""Faults injected for real: afterwards nothing half-published is visible, and the next run publishes every record once.

Each test publishes a first version of a real source, changes the source, injects the fault into the next
run, and then checks what the catalog shows (the dataset's snapshot, the Iceberg table, runs, quarantine,
cursor, and the rows SQL gives), what the failed run says, and that a run without the fault recovers.
"""

from __future__ import annotations

import logging
import re
import signal

import pytest

from _faults import (
    API_KEY, KILL_POINTS, KILLED_PUBLISH, PG_PASSWORD, CsvAgency, FaultyApi, SqliteAgency, View, changed, child,
    register, residents, table_rows, view,
)
from hub.errors import RetriableSourceError
from hub.pipeline import publish, run_source, stage
from hub.settings import Settings

PEOPLE = residents(300)
V1 = PEOPLE[:200]
V2 = changed(V1) + PEOPLE[200:]  # 20 records changed, 100 new
V3 = changed(V2, every=7)  # 43 more changes
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
    for r in PEOPLE:
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
    assert now.cursor == (max(r["updated_at"] for r in records) if incremental else None)


# --- an agency API -------------------------------------------------------------------------------------

API_FAULTS = {  # kind -> what the failed run's error says
    "slow": "no answer within the timeout",
    "500": "HTTP 500 Internal Server Error",
    "429": "HTTP 429 Too Many Requests",
    "drop-length": "RemoteProtocolError",
    "drop-chunked": "RemoteProtocolError",
    "drop-close": "RemoteProtocolError",
}


@pytest.fixture
def api():
    server = FaultyApi(V1)
    yield server
    server.stop()


def register_api(settings: Settings, api: FaultyApi, source_id: str = "api_penduduk") -> str:
    register(settings, source_id, "rest", {
        "url": f"{api.url}/penduduk", "records": "data",
        "pagination": {"type": "page", "page_param": "page", "size_param": "limit"}, "page_size": 25,
        "cursor_field": "updated_at", "since_param": "since",
        "auth": {"type": "api_key", "in": "query", "name": "api_key", "key": {"env": "FAULT_API_KEY"}},
        # Two retries, soon: a fault lasting three requests outlasts them.
        "timeout_seconds": 0.5, "max_retries": 2, "retry_backoff_seconds": 0.05,
        "batch_rows": 25,  # a batch per page: the first is staged before the page that fails
    })
    return source_id


@pytest.mark.parametrize("kind", list(API_FAULTS))
def test_an_agency_api_fault_is_retried_then_fails_the_run_then_the_next_run_recovers(settings, api, kind,
                                                                                      monkeypatch, caplog):
    monkeypatch.setenv("FAULT_API_KEY", API_KEY)
    caplog.set_level(logging.INFO)
    source_id = register_api(settings, api)
    run_source(settings, source_id)

    # A fault on the second page, once: the client's own retry reads it, and the run publishes.
    api.records = V2
    api.fail(2, kind, times=1)
    result = run_source(settings, source_id)
    assert api.served[2] == 2
    assert_exactly_once(settings, source_id, V2, result)
    before = view(settings, source_id)

    # The fault outlasts the client's retries: the run fails, and publishes nothing.
    api.records = V3
    api.fail(2, kind)
    with pytest.raises(RetriableSourceError) as raised:
        run_source(settings, source_id, run_id="faulty")
    assert api.served[2] == 3
    assert_nothing_half_published(settings, source_id, before, "faulty")
    message = assert_failed(settings, source_id, "faulty", RetriableSourceError, API_FAULTS[kind])
    assert re.search(r"GET 127\.0\.0\.1:\d+/penduduk: .*\(gave up after 3 attempts\)$", message), message
    assert_clean(str(raised.value))
    assert not (settings.staging / source_id).exists() or not any((settings.staging / source_id).iterdir())

    # The API answers again: the next run reads from the last committed cursor.
    api.heal()
    result = run_source(settings, source_id)
    assert result.rows_in == sum(1 for r in V3 if r["updated_at"] > before.cursor)
    assert_exactly_once(settings, source_id, V3, result)
    assert_clean(caplog.text)


# --- a publish killed -------------------------------------------------------------------------------------


@pytest.fixture(params=["sql", "file"])
def agency(request, settings):
    """An incremental source (upserted by key) and a full extract (its file replaces the table's)."""
    folder = settings.home / "agency"  # the hub reads local files only under its home
    return SqliteAgency(folder / "siak.db") if request.param == "sql" else CsvAgency(folder / "dtks.csv")


def staged_folders(settings: Settings, source_id: str) -> list[str]:
    folder = settings.staging / source_id
    return sorted(f.name for f in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_publish_killed_at_any_point_leaves_the_previous_version_and_its_retry_publishes_once(settings, agency,
                                                                                                 point):
    """SIGKILL of a child process running the publish step, at each point of KILL_POINTS."""
    killed_then_retried(settings, agency, point)


@pytest.mark.parametrize("point", ["metadata", "catalog_commit"])
def test_a_publish_killed_on_a_postgresql_catalog_leaves_the_previous_version(tmp_path, postgres, point):
    """The same on a PostgreSQL catalog, where the server sees the killed process's connection drop."""
    home = tmp_path / "home"
    settings = Settings(home=home, catalog_url=postgres.create_database(f"faults_kill_{point}"),
                        registry=tmp_path / "registry")
    killed_then_retried(settings, SqliteAgency(home / "agency" / "siak.db"), point)


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

    # Airflow retries the publish task of the same run, from the staged files.
    retried = publish(settings, source_id, "killed")
    assert_exactly_once(settings, source_id, V2, retried, incremental)
    assert staged_folders(settings, source_id) == []

    # The next run finds everything published: nothing new, nothing twice.
    again = run_source(settings, source_id)
    assert again.status == "unchanged"
    if incremental:
        assert again.rows_in == 0
    assert_exactly_once(settings, source_id, V2, again, incremental)
