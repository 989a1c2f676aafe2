"""The DAG files parse into the right DAGs, and single DAGs run for real (`dag.test()`); the whole hub running
by itself under the scheduler is tests/test_hub_up.py."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from catalog.db import session
from hub.airflow_dags import (
    DELIVERIES_DAG_ID, harmonized_asset, indicator_asset, indicator_dag_id, integrated_asset, source_dag_id, standard_dag_id,
)
from hub.maintenance import MAINTENANCE_DAG_ID
from hub.settings import load_settings


@pytest.fixture(scope="module")
def bag(session_home):
    from _airflow import dag_bag

    return dag_bag()


SOURCES = ("disdukcapil_siak", "dinsos_dtks", "dinsos_bansos", "disdik_dapodik", "dinkes_faskes", "dinkes_sitb",
           "dpmptsp_oss", "satudata_posyandu")
STANDARDS = ("penduduk", "penerima_bantuan_sosial", "satuan_pendidikan", "fasilitas_kesehatan", "kasus_tbc", "umkm",
             "posyandu_kelurahan")
INDICATORS = ("penduduk_umur_jenis_kelamin", "penerima_bansos_kelurahan", "fasilitas_per_penduduk_kecamatan")


def test_dag_bag_has_no_import_errors_and_one_dag_per_source_standard_and_indicator(bag):
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {*map(source_dag_id, SOURCES), *map(standard_dag_id, STANDARDS),
                                *map(indicator_dag_id, INDICATORS), DELIVERIES_DAG_ID, MAINTENANCE_DAG_ID}
    source = bag.get_dag(source_dag_id("dinsos_dtks"))
    assert [t.task_id for t in source.topological_sort()] == ["stage", "publish", "deliver"]
    assert source.get_task("deliver").is_teardown  # runs after a failed publish too, and never fails the run
    assert source.get_task("publish").outlets == [harmonized_asset("dinsos_dtks")]


def test_integration_dag_is_scheduled_on_its_sources_assets(bag):
    dag = bag.get_dag(standard_dag_id("penduduk"))
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"  # any one source publishing refreshes the integrated table
    uris = {a.uri for a in condition.objects}
    assert uris == {harmonized_asset("disdukcapil_siak").uri, harmonized_asset("dinsos_dtks").uri}


def test_indicator_dags_are_scheduled_on_their_inputs_integrated_assets(bag):
    dag = bag.get_dag(indicator_dag_id("fasilitas_per_penduduk_kecamatan"))
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"  # any input changing refreshes the indicator
    assert {a.uri for a in condition.objects} == {
        integrated_asset(s).uri for s in ("penduduk", "satuan_pendidikan", "fasilitas_kesehatan")}
    assert dag.get_task("build").outlets == [indicator_asset("fasilitas_per_penduduk_kecamatan")]
    single = bag.get_dag(indicator_dag_id("penduduk_umur_jenis_kelamin")).timetable.asset_condition
    assert single.uri == integrated_asset("penduduk").uri


def test_pending_subscription_messages_are_retried_every_ten_minutes(bag, session_home):
    import datetime as dt

    from _airflow import run_dag

    dag = bag.get_dag(DELIVERIES_DAG_ID)
    assert dag.timetable.delta == dt.timedelta(minutes=10)
    run_dag(dag, session_home / "airflow" / "logs" / "deliveries.log")


def test_parsing_the_dag_files_is_cheap(session_home):
    """DAG files import no pandas, pyarrow, Great Expectations or pyiceberg at parse time."""
    import subprocess
    import sys

    code = (
        "import sys, runpy; runpy.run_path('dags/hub_dags.py');"
        "heavy = [m for m in ('pandas', 'pyarrow', 'great_expectations', 'pyiceberg', 'duckdb') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    from hub.settings import ROOT

    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1:] in ([], [""]), done.stdout


def test_a_source_dag_delivers_after_its_publish_and_cuts_a_stalling_receiver(bag, session_home, monkeypatch):
    """Through real DAG runs: the publish task only queues; the deliver task after it sends, and a receiver
    that never answers is cut at its timeout while another gets its message. A failed run is told too."""
    import datetime as dt
    import json

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from _webhooks import Receiver
    from catalog.identity import Identity
    from catalog.subscriptions import Delivery, subscribe, unsubscribe
    from demo.agencies import build
    from hub.errors import HubError
    from _airflow import run_dag

    monkeypatch.setenv("HUB_WEBHOOK_ALLOW_PRIVATE", "1")  # the receivers are on loopback
    monkeypatch.setenv("HUB_DELIVERY_TIMEOUT", "1")
    settings = load_settings()
    export = build(settings.home, people_count=480, dinsos_count=120)["dinsos"]
    dag = bag.get_dag(source_dag_id("dinsos_dtks"))
    log = session_home / "airflow" / "logs" / "deliveries.log"
    run_dag(dag, log)  # whatever ran before, the dataset exists now

    def tasks_of(run_id: str) -> dict:
        with create_session() as s:
            return {t.task_id: t for t in s.scalars(select(TaskInstance).where(
                TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run_id))}

    with Receiver() as fast, Receiver(stall=60) as stalling:
        analyst = Identity(name="analis", role="analyst", agency=None)
        hooks = [subscribe(settings, "dinsos_dtks", "webhook", fast.url + "/fast", who=analyst),
                 subscribe(settings, "dinsos_dtks", "webhook", stalling.url + "/slow", ["published"], who=analyst)]
        delays = {task.task_id: task.retry_delay for task in dag.tasks}
        try:
            lines = export.read_bytes().split(b"\r\n")  # one registrant fewer: a new version
            export.write_bytes(b"\r\n".join(lines[:2] + lines[3:]))
            time.sleep(1)  # a distinct logical date
            started = time.monotonic()
            run_id = run_dag(dag, log)
            took = time.monotonic() - started
            tasks = tasks_of(run_id)
            assert {k: t.state for k, t in tasks.items()} == {"stage": "success", "publish": "success",
                                                             "deliver": "success"}
            # Neither receiver heard anything before the publish task had ended.
            [told], [held] = fast.on("/fast"), stalling.on("/slow")
            assert told["wall"] > tasks["publish"].end_date and held["wall"] > tasks["publish"].end_date
            assert told["wall"] >= tasks["deliver"].start_date
            assert json.loads(told["body"])["event"] == "published"
            assert took < 55, took  # the stalling receiver was cut at its 1 s, not waited for (60 s)
            with session(settings.catalog_url) as s:
                waiting = {d.subscription_id: d for d in s.scalars(select(Delivery))}
            assert waiting[hooks[0]["id"]].status == "delivered"
            assert waiting[hooks[1]["id"]].status == "pending" and "timed out" in waiting[hooks[1]["id"]].last_error

            # The agency's file is gone: the run fails, its subscribers are told by the same deliver task, and
            # the DAG run still ends failed.
            export.rename(export.with_suffix(".moved"))
            for task in dag.tasks:  # Airflow's retries of the stage, without their minutes of waiting
                task.retry_delay = dt.timedelta(0)
            time.sleep(1)
            with pytest.raises(HubError, match="ended failed"):
                run_dag(dag, log)
            with create_session() as s:
                failed = s.scalars(select(DagRun).where(DagRun.dag_id == dag.dag_id).order_by(DagRun.id.desc())).first()
            assert {k: t.state for k, t in tasks_of(failed.run_id).items()} == {
                "stage": "failed", "publish": "upstream_failed", "deliver": "success"}
            news = json.loads(fast.on("/fast")[-1]["body"])
            assert news["event"] == "failed" and news["run_id"] == failed.run_id
        finally:
            if export.with_suffix(".moved").exists():
                export.with_suffix(".moved").rename(export)
            for task in dag.tasks:
                task.retry_delay = delays[task.task_id]
            for hook in hooks:  # leave the session's catalog without receivers that are gone
                unsubscribe(settings, hook["unsubscribe_url"].partition("token=")[2])
