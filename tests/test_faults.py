"""Faults injected for real: afterwards nothing half-published is visible, and the next run publishes every record once.

Each test publishes a first version of a real source, changes the source, injects the fault into the next
run, and then checks what the catalog shows (the dataset's snapshot, the Iceberg table, runs, quarantine,
cursor, and the rows SQL gives), what the failed run says, and that a run without the fault recovers.
"""

from __future__ import annotations

import logging
import re

import pytest

from _faults import API_KEY, PG_PASSWORD, FaultyApi, View, changed, register, residents, table_rows, view
from hub.errors import RetriableSourceError
from hub.pipeline import run_source
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


def assert_exactly_once(settings: Settings, source_id: str, records: list[dict], result) -> None:
    """Every record of the source published once, in the catalog and in the Iceberg table, and the cursor at
    the last change."""
    want = expected(records)
    now = view(settings, source_id)
    assert result.status in ("published", "unchanged")
    assert (now.rows, now.row_total, now.row_count) == (want, len(want), len(want))
    assert table_rows(settings, source_id) == want
    assert now.snapshot_id == now.table_snapshot == result.snapshot_id
    assert now.versions[-1] == now.snapshot_id
    assert now.cursor == max(r["updated_at"] for r in records)


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
