"""The demo agencies' live systems (demo/systems.py): Dinkes's facility API and the city's CKAN portal, served on
loopback and read by the `rest` and `ckan` kinds through `hub`, as `hub up --demo` runs them."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import select

from _served import demo_systems, hub
from demo.systems import POSYANDU_DATASET, POSYANDU_RESOURCE_ID, running

FASKES = "/dinkes/api/v1/faskes"
ACTION = "/satudata/api/3/action/"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A built demo home served by its live systems, initialised with the dinkes_api connection in its Airflow
    database: {"home", "url", "env" (for hub()), "key", "faskes" (the register's records)}."""
    from demo.agencies import build

    home = tmp_path_factory.mktemp("systems-home")
    paths = build(home, people_count=480, dinsos_count=120)
    with demo_systems(home) as env:
        yield {"home": home, "url": env["HUB_DEMO_URL"], "env": env,
               "key": paths["dinkes_api_key"].read_text().strip(),
               "faskes": json.loads(paths["dinkes"].read_text(encoding="utf-8"))["data"]["faskes"]}


def _json(stdout: str):
    """The JSON a `hub ... --json` command printed. Once a source's secret is read from an Airflow connection the
    process has imported Airflow, whose logging writes to stdout too: its lines come before the JSON (to be
    fixed in the hub CLI, which owns stdout)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "["))
    return json.loads("\n".join(lines[start:]))


def _quarantined(home, dataset_id: str) -> dict[int, list[str]]:
    from catalog.db import QuarantinedRow, session

    with session(f"sqlite:///{home / 'catalog.db'}") as s:
        rows = s.scalars(select(QuarantinedRow).where(QuarantinedRow.dataset_id == dataset_id)
                         .order_by(QuarantinedRow.row_number)).all()
        return {r.row_number: r.reasons for r in rows}


# --- Dinkes's facility API ----------------------------------------------------------------------------------


def test_the_facility_api_answers_pages_of_the_register(live):
    with running(live["home"], rate_limit=1000) as url:  # this test asks faster than the API's 5 a second
        _pages(url, live)


def _pages(url: str, live) -> None:
    key = {"X-API-Key": live["key"]}
    pages, page = [], 1
    while True:
        answer = httpx.get(url + FASKES, params={"page": page, "limit": 40}, headers=key)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
        body = answer.json()
        assert body["status"] == "success"
        assert body["meta"] == {"page": page, "limit": 40, "total": 102, "total_pages": 3}
        if not body["data"]["faskes"]:
            break
        pages.append(body["data"]["faskes"])
        page += 1
    assert [len(p) for p in pages] == [40, 40, 22]
    assert [r for p in pages for r in p] == live["faskes"]  # nested objects as the register holds them
    assert set(pages[0][0]) == {"kode", "nama", "jenis", "wilayah", "koordinat", "tempat_tidur"}
    # A larger page than the API gives is cut down to its maximum, and says so.
    assert httpx.get(url + FASKES, params={"limit": 1000}, headers=key).json()["meta"]["limit"] == 100
    bad = httpx.get(url + FASKES, params={"page": "dua"}, headers=key)
    assert bad.status_code == 400 and bad.json()["status"] == "error"


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "not-the-key"}, {"Authorization": "Bearer x"}])
def test_a_missing_or_wrong_api_key_is_refused_with_401(live, headers):
    answer = httpx.get(live["url"] + FASKES, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["status"] == "error" and "API key" in answer.json()["message"]
    assert live["key"] not in answer.text


class _Kept(logging.Handler):
    """Records of the loggers it is attached to (Airflow's logging setup bypasses pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_rate_limit_answers_429_and_the_rest_kind_still_reads_every_record(live, monkeypatch):
    """A stricter API (2 requests a second) than the registration's pace (4): the connector waits as Retry-After
    says and reads the whole register. Neither the server's log nor the hub's holds the key."""
    import airflow.sdk  # noqa: F401 (Airflow sets up logging when imported: attach the handler after it)

    from connectors import connector_for, load_sources
    from hub.settings import ROOT

    monkeypatch.setenv("AIRFLOW_CONN_DINKES_API", json.dumps({"conn_type": "generic", "password": live["key"]}))
    kept = _Kept()
    loggers = [logging.getLogger(name) for name in ("demo.systems", "connectors.http")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(kept)
        logger.setLevel(logging.INFO)
    try:
        with running(live["home"], rate_limit=2) as url:
            burst = [httpx.get(url + FASKES, headers={"X-API-Key": live["key"]}) for _ in range(4)]
            refused = [a for a in burst if a.status_code == 429]
            assert refused and all(int(a.headers["Retry-After"]) >= 1 for a in refused)
            assert refused[0].json()["status"] == "error"
            time.sleep(1.5)  # the bucket fills again
            monkeypatch.setenv("HUB_DEMO_URL", url)
            source = {s.id: s for s in load_sources(ROOT / "connectors" / "registry", live["home"])}["dinkes_faskes"]
            batches = list(connector_for(source).read())
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(kept)
            logger.setLevel(level)
    records = [r for b in batches for r in b.records.to_pylist()]
    assert len(records) == len(live["faskes"]) == 102
    assert [r["kode"] for r in records] == [f["kode"] for f in live["faskes"]]
    messages = [(r.name, r.getMessage()) for r in kept.records]
    assert any(name == "demo.systems" and f"{FASKES}?limit=25&page=" in m and " 429 " in m for name, m in messages)
    assert any(name == "connectors.http" and "429 Too Many Requests" in m for name, m in messages)
    assert not any(live["key"] in m for _, m in messages)


def test_hub_reads_the_api_with_the_key_from_airflows_database(live):
    """`hub sources test` and `hub run`, plain processes: the key comes from the connection `hub init` made room
    for and register_connections filled in, not from the environment."""
    tried = _json(hub(live["home"], "sources", "test", "dinkes_faskes", "--json", env=live["env"]).stdout)
    assert (tried["rows_read"], tried["would_publish"], tried["would_quarantine"]) == (102, 97, 4)
    assert (tried["identical_repeats"], tried["repeated_rows"]) == (1, [102])
    result = _json(hub(live["home"], "run", "dinkes_faskes", "--json", env=live["env"]).stdout)
    # The last record is the first one sent again, every field the same: published once.
    assert (result["rows_in"], result["rows_published"], result["rows_quarantined"], result["rows_repeated"]) == \
        (102, 97, 4, 1)
    assert _quarantined(live["home"], "dinkes_faskes") == {
        98: ["jenis:unmapped_code"],
        99: ["kode_faskes:pattern"],
        100: ["latitude:range"],  # 106.8 entered as the latitude: the coordinates swapped
        101: ["kode_wilayah:required"],
    }


def test_an_airflow_task_reads_the_api_with_the_key_from_airflows_database(live):
    """The source's DAG run by Airflow's own `dags test`: the task asks the Execution API for the connection."""
    done = hub(live["home"], "airflow", "dags", "test", "source__dinkes_faskes", env=live["env"], check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "state=success" in done.stdout + done.stderr
    assert live["key"] not in done.stdout + done.stderr
    datasets = {d["id"]: d for d in json.loads(hub(live["home"], "catalog", "list", "--json").stdout)}
    assert datasets["dinkes_faskes"]["rows"] == 97


def test_without_the_demo_url_only_the_live_sources_cannot_run(live):
    done = hub(live["home"], "run", "dinkes_faskes", check=False)
    assert done.returncode == 2
    assert "dinkes_faskes.yaml:" in done.stderr and "field options/url" in done.stderr
    assert "HUB_DEMO_URL is not set" in done.stderr and "Traceback" not in done.stderr
    assert json.loads(hub(live["home"], "run", "dinsos_dtks", "--json").stdout)["rows_published"] == 119


def test_the_systems_run_as_a_process_until_sigterm(live):
    process = subprocess.Popen([sys.executable, "-m", "demo.systems", "--home", str(live["home"]), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + FASKES, headers={"X-API-Key": live["key"]}).status_code == 200
        assert httpx.get(url + FASKES, params={"api_key": live["key"]}).status_code == 401
        assert httpx.get(url + ACTION + "status_show").json()["success"] is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log = process.stderr.read()
    assert f"GET {FASKES} 200 key=ok" in log and f"GET {FASKES}?api_key=*** 401 key=missing" in log
    assert live["key"] not in log


# --- the city's CKAN portal ---------------------------------------------------------------------------------


def test_the_portal_answers_as_ckan_does(live):
    site = live["url"] + "/satudata"
    status = httpx.get(site + "/api/3/action/status_show").json()
    assert status["success"] and status["result"]["site_url"] == site and "datastore" in status["result"]["extensions"]
    assert httpx.get(site + "/api/3/action/package_list").json()["result"] == [POSYANDU_DATASET]
    package = httpx.get(site + "/api/3/action/package_show", params={"id": POSYANDU_DATASET}).json()["result"]
    assert package["organization"]["title"] == "Dinas Kesehatan Kota Bogor" and package["num_resources"] == 1
    [resource] = package["resources"]
    assert (resource["id"], resource["format"], resource["datastore_active"]) == (POSYANDU_RESOURCE_ID, "CSV", True)
    download = httpx.get(resource["url"])
    assert download.status_code == 200 and download.headers["content-type"] == "text/csv"
    assert len(download.content) == resource["size"] and download.text.count("\r\n") == 1 + 548

    def search(**params):
        return httpx.get(site + "/api/3/action/datastore_search", params={"resource_id": POSYANDU_RESOURCE_ID,
                                                                           **params})

    first = search(limit=5).json()["result"]
    assert first["total"] == 548 and first["limit"] == 5 and [r["_id"] for r in first["records"]] == [1, 2, 3, 4, 5]
    assert [f["id"] for f in first["fields"]][:2] == ["_id", "tahun"]
    assert {f["type"] for f in first["fields"][1:]} == {"text"}  # XLoader loads every column as text
    assert first["records"][0]["jumlah_posyandu"].isdigit()
    later = search(limit=5, offset=545).json()["result"]
    assert [r["_id"] for r in later["records"]] == [546, 547, 548] and later["offset"] == 545
    assert search(limit=10_000).json()["result"]["limit"] == 250  # the portal's rows_max
    assert "total" not in search(limit=1, include_total="false").json()["result"]
    mandiri = search(filters=json.dumps({"strata_posyandu": "MANDIRI", "tahun": "2024"})).json()["result"]
    # Each kelurahan of the city, and the one of Kabupaten Bogor among the wrong rows.
    assert mandiri["total"] == 69 and {r["strata_posyandu"] for r in mandiri["records"]} == {"MANDIRI"}
    newest = search(sort="_id desc", limit=1).json()["result"]["records"]
    assert newest[0]["_id"] == 548
    unknown = search(filters=json.dumps({"kelurahan": "x"}))
    assert unknown.status_code == 409 and unknown.json()["error"]["__type"] == "Validation Error"
    missing = httpx.get(site + "/api/3/action/datastore_search", params={"resource_id": "nope"})
    assert missing.status_code == 404 and missing.json()["success"] is False
    assert missing.json()["error"] == {"__type": "Not Found Error",
                                       "message": 'Not found: Resource "nope" was not found.'}
    sql = httpx.get(site + "/api/3/action/datastore_search_sql", params={"sql": "SELECT 1"})
    assert sql.status_code == 400 and "Action name not known: datastore_search_sql" in sql.json()["error"]["message"]
    assert httpx.get(site + "/api/3/action/package_show", params={"id": "nope"}).status_code == 404


def test_the_ckan_kind_reads_the_portal_through_hub(live):
    """`hub sources test` and `hub run` read the DataStore page by page (the portal caps a page at 250 rows):
    every row, the good ones published and the wrong ones quarantined with their reasons."""
    tried = _json(hub(live["home"], "sources", "test", "satudata_posyandu", "--json", env=live["env"]).stdout)
    assert (tried["rows_read"], tried["would_publish"], tried["would_quarantine"]) == (548, 544, 3)
    result = _json(hub(live["home"], "run", "satudata_posyandu", "--json", env=live["env"]).stdout)
    # The last row is the first one uploaded a second time: published once.
    assert (result["rows_in"], result["rows_published"], result["rows_quarantined"], result["rows_repeated"]) == \
        (548, 544, 3, 1)
    assert _quarantined(live["home"], "satudata_posyandu") == {
        545: ["kode_wilayah:code_list"],
        546: ["jumlah_posyandu:type"],
        547: ["strata:unmapped_code"],
    }
    rows = json.loads(hub(live["home"], "query", "SELECT tahun, strata, count(*) AS n, sum(jumlah_posyandu) AS total "
                                                 "FROM satudata_posyandu GROUP BY 1, 2 ORDER BY 1, 2",
                          "--format", "json").stdout)
    assert [(r["tahun"], r["strata"], r["n"]) for r in rows] == [
        (year, strata, 68) for year in (2023, 2024) for strata in ("madya", "mandiri", "pratama", "purnama")]
    integrated = json.loads(hub(live["home"], "integrate", "posyandu_kelurahan").stdout)
    assert integrated["rows"] == 544
    public = json.loads(hub(live["home"], "catalog", "list", "--json").stdout)
    assert {d["id"]: d["rows"] for d in public if "posyandu" in d["id"]} == {"satudata_posyandu": 544,
                                                                            "posyandu_kelurahan": 544}


def test_the_ckan_kind_reads_the_datasets_file_too(live, monkeypatch, tmp_path):
    """The same table through package_show and the resource's download URL, as the file kind reads a CSV."""
    import yaml

    from connectors import connector_for, load_source
    from hub.settings import ROOT

    data = yaml.safe_load((ROOT / "connectors" / "registry" / "satudata_posyandu.yaml").read_text())
    data["id"] = "satudata_posyandu_file"
    data["options"] = {"url": "${HUB_DEMO_URL}/satudata", "dataset": POSYANDU_DATASET,
                       "resource": "jumlah posyandu berdasarkan strata per kelurahan"}
    path = tmp_path / "satudata_posyandu_file.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    monkeypatch.setenv("HUB_DEMO_URL", live["url"])
    records = [r for b in connector_for(load_source(path, live["home"])).read() for r in b.records.to_pylist()]
    assert len(records) == 548
    assert records[0]["kemendagri_kode_desa_kelurahan"] == "32.71.01.1001"
    assert records[-1] == {**records[0], "_row": 548}  # the row uploaded twice
