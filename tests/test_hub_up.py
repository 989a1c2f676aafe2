"""`hub up` runs the hub by itself: Airflow's real services run the demo on their own, Asset events trigger the
integration and indicator DAGs, a registration dropped into the registry becomes a DAG that runs, a killed
scheduler is restarted, a broken file is reported while everything else keeps running, and Ctrl-C (SIGTERM)
stops every process. Nothing here calls `hub run` or `hub integrate`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import httpx
import pytest

from _served import HUB, free_port, hub
from _up import hub_up, stop_leaves_nothing, wait
from hub.settings import ROOT

SOURCES = sorted(p.stem for p in (ROOT / "connectors" / "registry").glob("*.yaml"))
INDICATORS = sorted(p.stem for p in (ROOT / "indicators").glob("*.yaml"))


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """`hub up --demo` on a fresh home with its own copies of the registry, the standards and the code lists,
    once its first runs are over."""
    home = tmp_path_factory.mktemp("up-home")
    shutil.copytree(ROOT / "schemas" / "standards", home / "standards")
    shutil.copytree(ROOT / "schemas" / "codelists", home / "codelists")
    with hub_up(home, env={"HUB_STANDARDS": str(home / "standards"), "HUB_CODELISTS": str(home / "codelists")}) as up:
        yield up


def test_the_scheduler_runs_every_source_and_asset_events_trigger_integration_and_indicators(running):
    home = running.home
    printed = (home / "up.out").read_text()
    # The summary table, printed once the first wave is over.
    for source in SOURCES:
        assert any(line.startswith(source + " ") and line.rstrip().endswith("published")
                   for line in printed.splitlines()), printed[-4000:]
    assert "integrated dataset penduduk: 599 rows" in printed
    runs = running.airflow_rows("SELECT dag_id, run_type, state FROM dag_run")
    # Every run came from the scheduler: the sources on their schedules, the rest from Asset events.
    assert {run_type for _, run_type, _ in runs} <= {"scheduled", "asset_triggered"}, runs
    succeeded = {(dag_id, run_type) for dag_id, run_type, state in runs if state == "success"}
    for source in SOURCES:
        assert (f"source__{source}", "scheduled") in succeeded
    standards = {dag_id for (dag_id,) in running.airflow_rows(
        "SELECT dag_id FROM dag WHERE dag_id LIKE 'standard__%'")}
    assert {"standard__penduduk", "standard__fasilitas_kesehatan"} <= standards
    for dag_id in standards | {f"indicator__{i}" for i in INDICATORS}:
        assert (dag_id, "asset_triggered") in succeeded, dag_id
    assert not [r for r in runs if r[2] == "failed"], runs
    # The catalog server serves what the scheduler published; Airflow's UI and API want a login.
    datasets = {d["id"] for d in httpx.get(running.catalog + "/api/datasets", timeout=30).json()["datasets"]}
    assert {"penduduk", "fasilitas_per_penduduk_kecamatan", *SOURCES} - datasets == {"dinkes_sitb"}  # rahasia
    assert httpx.get(running.airflow + "/api/v2/monitor/health", timeout=30).status_code == 200
    assert httpx.get(running.airflow + "/api/v2/dags", timeout=30).status_code == 401
    passwords = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
    user, password = next(iter(passwords.items()))
    token = httpx.post(running.airflow + "/auth/token", json={"username": user, "password": password},
                       timeout=30).json()["access_token"]
    dags = httpx.get(running.airflow + "/api/v2/dags", params={"limit": 100},
                     headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert {f"source__{s}" for s in SOURCES} <= {d["dag_id"] for d in dags["dags"]}


def test_status_reports_each_component_and_each_dags_last_and_next_run(running):
    done = hub(running.home, "status", "--json", env=running.env)
    report = json.loads(done.stdout)
    assert report["up"] is True
    assert {c["name"]: c["state"] for c in report["components"]} == {
        "api-server": "up", "demo-systems": "up", "runner": "up", "dag-processor": "up", "scheduler": "up",
        "triggerer": "up", "catalog": "up"}
    dags = {d["dag_id"]: d for d in report["dags"]}
    source = dags["source__dinsos_dtks"]
    assert source["last_run"]["state"] == "success" and source["next_run"] > source["last_run"]["ended"]
    assert dags["standard__penduduk"]["next_run"] == "when one of its inputs changes"
    assert report["problems"] == [] and report["failed_runs"] == []
    # The DAGs' tasks did their work in children of the warm runner, not in their own processes.
    ran = (running.home / "logs" / "runner.log").read_text()
    for work in ("stage", "publish", "integrate", "build"):
        assert f"runner: {work} (pid" in ran
    assert "ended with status 0" in ran and "ended with status 7" not in ran
    text = hub(running.home, "status", env=running.env).stdout
    assert "scheduler        up" in text and "source__dinsos_dtks" in text


def test_a_second_hub_up_on_the_same_home_refuses(running):
    done = subprocess.run([HUB, "up", "--port", str(free_port()), "--airflow-port", str(free_port())],
                          env=running.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"a hub is already running on {running.home}" in done.stderr
    assert str(running.process.pid) in done.stderr


def test_a_new_registration_is_picked_up_run_and_integrated_even_with_the_scheduler_killed_mid_run(running):
    home, registry = running.home, running.registry
    text = (registry / "dinsos_bansos.yaml").read_text(encoding="utf-8")
    (registry / "dinsos_bansos_susulan.yaml").write_text(
        text.replace("id: dinsos_bansos", "id: dinsos_bansos_susulan", 1), encoding="utf-8")
    dropped = time.monotonic()
    dag_id = "source__dinsos_bansos_susulan"
    wait("its DAG", lambda: running.airflow_rows("SELECT 1 FROM dag WHERE dag_id = :dag_id AND NOT is_stale",
                                                 dag_id=dag_id), 120, 1)
    print(f"a new registration was a DAG {time.monotonic() - dropped:.1f} s after it was written")
    # The scheduler starts its run at once (its most recent interval, no backfill); kill the scheduler while
    # the run is going.
    wait("its run to start", lambda: running.airflow_rows(
        "SELECT 1 FROM dag_run WHERE dag_id = :dag_id AND state = 'running'", dag_id=dag_id), 300, 0.5)
    killed = running.pid("scheduler")
    os.kill(killed, signal.SIGKILL)
    wait("the scheduler restarted", lambda: next(
        c for c in running.state()["components"] if c["name"] == "scheduler")["restarts"] >= 1 and
        running.pid("scheduler") != killed, 60, 1)
    events = (home / "logs" / "hub-up.log").read_text()
    assert "scheduler exited with code -9; restarting" in events and "scheduler restarted (restart 1)" in events
    wait("its run to finish", lambda: running.airflow_rows(
        "SELECT state FROM dag_run WHERE dag_id = :dag_id AND state IN ('success', 'failed')", dag_id=dag_id), 900, 3)
    assert running.airflow_rows("SELECT state FROM dag_run WHERE dag_id = :dag_id", dag_id=dag_id) == [("success",)]
    # Its Asset event refreshed the integrated dataset, which now holds both sources' rows.

    def integrated_from_both():
        with sqlite3.connect(home / "catalog.db") as db:
            return db.execute("SELECT row_count FROM hub_datasets WHERE id = 'penerima_bantuan_sosial'").fetchone()[0] \
                == 2 * db.execute("SELECT row_count FROM hub_datasets WHERE id = 'dinsos_bansos'").fetchone()[0]

    wait("the integration to take the new source in", integrated_from_both, 600, 3)
    (registry / "dinsos_bansos_susulan.yaml").unlink()
    wait("its DAG to go", lambda: running.airflow_rows("SELECT 1 FROM dag WHERE dag_id = :dag_id AND is_stale",
                                                       dag_id=dag_id), 300, 2)


def test_a_broken_registration_is_reported_and_every_other_source_keeps_its_dag(running):
    home, registry = running.home, running.registry
    broken = registry / "dinkes_rusak.yaml"
    broken.write_text("id: dinkes_rusak\nkind: file\nschedule: '@daily'\n", encoding="utf-8")
    try:
        report = json.loads(hub(home, "status", "--json", env=running.env, check=False).stdout)
        (problem,) = [p for p in report["problems"] if p["file"] == str(broken)]
        assert problem["what"] == "registration" and "dinkes_rusak.yaml" in problem["error"]
        log = home / "airflow" / "logs" / "dag_processor"
        wait("the DAG processor's error", lambda: any(
            "registration " + str(broken) + " gets no DAG" in p.read_text(errors="replace")
            for p in log.rglob("*.log")), 120, 2)
        time.sleep(15)  # another parse: no DAG of the file went stale
        stale = running.airflow_rows("SELECT dag_id FROM dag WHERE is_stale AND dag_id LIKE 'source__%'")
        assert stale in ([], [("source__dinsos_bansos_susulan",)])
        assert running.airflow_rows("SELECT count(*) FROM import_error") == [(0,)]
    finally:
        broken.unlink()


def test_a_broken_standard_and_code_list_are_reported_and_every_source_keeps_its_dag_and_pages(running):
    home = running.home
    broken_standard = home / "standards" / "rusak-1.0.0.json"
    code_list = home / "codelists" / "skala_usaha.csv"  # umkm's skala_usaha, which dpmptsp_oss publishes
    good = code_list.read_text(encoding="utf-8")
    broken_standard.write_text('{"title": "Rusak",\n  "fields": [\n', encoding="utf-8")
    code_list.write_text(good + "mikro,Usaha mikro lagi,Micro enterprise again,\n", encoding="utf-8")
    try:
        report = json.loads(hub(home, "status", "--json", env=running.env, check=False).stdout)
        errors = {p["file"]: p["error"] for p in report["problems"] if p["what"] == "standard or code list"}
        assert "rusak-1.0.0.json:3:1: not valid JSON" in errors[str(broken_standard)]
        assert "skala_usaha.csv:" in errors[str(code_list)] and "code 'mikro' twice" in errors[str(code_list)]
        log = home / "airflow" / "logs" / "dag_processor"
        wait("the DAG processor's errors", lambda: any(
            "rusak-1.0.0.json:3:1" in text and "code 'mikro' twice" in text
            for text in (p.read_text(errors="replace") for p in log.rglob("*.log"))), 120, 2)
        time.sleep(15)  # another parse: every source keeps its DAG
        stale = running.airflow_rows("SELECT dag_id FROM dag WHERE is_stale AND dag_id LIKE 'source__%'")
        assert stale in ([], [("source__dinsos_bansos_susulan",)])
        assert running.airflow_rows("SELECT count(*) FROM import_error") == [(0,)]
        # The portal keeps the code list's last good version and says one could not be loaded.
        page = httpx.get(running.catalog + "/dataset/dpmptsp_oss", timeout=30)
        assert page.status_code == 200 and "tidak dapat dimuat" in page.text
    finally:
        broken_standard.unlink()
        code_list.write_text(good, encoding="utf-8")
    report = json.loads(hub(home, "status", "--json", env=running.env, check=False).stdout)
    assert [p for p in report["problems"] if p["what"] == "standard or code list"] == []


def test_sigterm_stops_every_component(running):
    process, home = running.process, running.home
    stop_leaves_nothing(process, running.state()["components"])
    assert "stopping every component" in (home / "logs" / "hub-up.log").read_text()
    assert not (home / "run" / "up.json").exists()
    assert json.loads(hub(home, "status", "--json", env=running.env).stdout)["up"] is False
