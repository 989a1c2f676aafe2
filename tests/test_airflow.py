"""The DAG files parse, and the demo runs end to end through real Airflow DAG runs (`dag.test()`)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from catalog.db import Dataset, session
from catalog.query import query
from hub.airflow_dags import harmonized_asset, source_dag_id, standard_dag_id
from hub.settings import load_settings


@pytest.fixture(scope="module")
def bag(session_home):
    from hub.orchestrate import dag_bag

    return dag_bag()


def test_dag_bag_has_no_import_errors_and_one_dag_per_source_and_standard(bag):
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        source_dag_id("disdukcapil_siak"), source_dag_id("dinsos_dtks"), standard_dag_id("penduduk"),
    }
    source = bag.get_dag(source_dag_id("dinsos_dtks"))
    assert [t.task_id for t in source.topological_sort()] == ["stage", "publish"]
    assert source.get_task("publish").outlets == [harmonized_asset("dinsos_dtks")]


def test_integration_dag_is_scheduled_on_its_sources_assets(bag):
    dag = bag.get_dag(standard_dag_id("penduduk"))
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"  # any one source publishing refreshes the integrated table
    uris = {a.uri for a in condition.objects}
    assert uris == {harmonized_asset("disdukcapil_siak").uri, harmonized_asset("dinsos_dtks").uri}


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


def test_demo_runs_every_source_through_airflow(session_home):
    from demo.agencies import build
    from hub.orchestrate import run_all_through_airflow

    settings = load_settings()
    build(settings.home, people_count=480, dinsos_count=120)
    results, integrated = run_all_through_airflow(settings)
    by_source = {r["source"]: r for r in results}
    assert set(by_source) == {"disdukcapil_siak", "dinsos_dtks"}
    for r in results:
        assert r["rows_in"] == r["rows_published"] + r["rows_quarantined"]
        assert r["snapshot_id"] is not None
    assert (by_source["disdukcapil_siak"]["rows_in"], by_source["disdukcapil_siak"]["rows_published"]) == (483, 480)
    assert (by_source["dinsos_dtks"]["rows_in"], by_source["dinsos_dtks"]["rows_published"]) == (125, 119)
    assert integrated == [{"dataset": "penduduk", "rows": 599, "snapshot_id": integrated[0]["snapshot_id"],
                           "sources": ["dinsos_dtks", "disdukcapil_siak"]}]
    assert query(settings, "SELECT count(*) AS n FROM penduduk").to_pylist() == [{"n": 599}]

    # Airflow recorded real DAG runs; the publish tasks emitted Asset events, which triggered the integration.
    from airflow.models.asset import AssetDagRunQueue, AssetEvent
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as s:
        states = {(r.dag_id, r.state) for r in s.scalars(select(DagRun))}
        events = {e.asset.uri for e in s.scalars(select(AssetEvent))}
        waiting = s.scalars(select(AssetDagRunQueue)).all()
    assert {(source_dag_id("dinsos_dtks"), "success"), (source_dag_id("disdukcapil_siak"), "success"),
            (standard_dag_id("penduduk"), "success")} <= states
    assert harmonized_asset("dinsos_dtks").uri in events
    assert waiting == []  # the integration run used its Asset events up

    # Running everything again changes nothing in the catalog.
    with session(settings.catalog_url) as s:
        before = {d.id: (d.snapshot_id, d.row_count) for d in s.scalars(select(Dataset))}
    time.sleep(1)  # distinct logical dates for the second set of DAG runs
    run_all_through_airflow(settings)
    with session(settings.catalog_url) as s:
        after = {d.id: (d.snapshot_id, d.row_count) for d in s.scalars(select(Dataset))}
    assert after == before
