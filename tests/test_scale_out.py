"""The configurations of "Running it for a city" (README), each run through `hub up --demo` to the end of its
first runs: PostgreSQL for Airflow and the catalog with the LocalExecutor running tasks side by side, and the
CeleryExecutor with Redis and two Celery workers that share the warehouse. Nothing calls `hub run`."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from _redis import RedisServer
from _up import hub_up
from hub.settings import ROOT

SOURCES = sorted(p.stem for p in (ROOT / "connectors" / "registry").glob("*.yaml"))
INDICATORS = sorted(p.stem for p in (ROOT / "indicators").glob("*.yaml"))


@pytest.fixture
def databases(postgres, request):
    """An empty Airflow and an empty catalog database on the test PostgreSQL server, as settings."""
    name = request.node.name.split("[")[0][-40:]
    airflow_db = postgres.create_database(f"airflow_{name}")
    catalog_db = postgres.create_database(f"catalog_{name}")
    yield {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db, "HUB_CATALOG_URL": catalog_db}
    postgres.drop_database(f"airflow_{name}")
    postgres.drop_database(f"catalog_{name}")


def _the_demo_ran_through_the_scheduler(up) -> None:
    printed = up.printed()
    for source in SOURCES:
        assert re.search(rf"^{source} .*published\s*$", printed, re.M), printed[-4000:]
    runs = up.airflow_rows("SELECT dag_id, run_type, state FROM dag_run")
    assert {run_type for _, run_type, _ in runs} <= {"scheduled", "asset_triggered"}, runs
    assert not [r for r in runs if r[2] == "failed"], runs
    succeeded = {(dag_id, run_type) for dag_id, run_type, state in runs if state == "success"}
    for source in SOURCES:
        assert (f"source__{source}", "scheduled") in succeeded, source
    for dag_id in ["standard__penduduk", *(f"indicator__{i}" for i in INDICATORS)]:
        assert (dag_id, "asset_triggered") in succeeded, dag_id
    datasets = {d["id"] for d in httpx.get(up.catalog + "/api/datasets", timeout=30).json()["datasets"]}
    assert {"penduduk", *SOURCES} - datasets == {"dinkes_sitb"}  # rahasia: not listed without a login


def _most_at_once(intervals: list[tuple[dt.datetime, dt.datetime]]) -> int:
    """The most intervals that overlap at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                   key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_postgresql_for_airflow_and_the_catalog_with_tasks_side_by_side(tmp_path, databases):
    with hub_up(tmp_path, env=databases) as up:
        _the_demo_ran_through_the_scheduler(up)
        # Both databases are the PostgreSQL ones: nothing of either was written into the home.
        assert not (tmp_path / "catalog.db").exists() and not (tmp_path / "airflow" / "airflow.db").exists()
        engine = create_engine(databases["HUB_CATALOG_URL"], poolclass=NullPool)
        with engine.connect() as conn:
            published = dict(conn.execute(text("SELECT id, row_count FROM hub_datasets")).all())
        engine.dispose()
        assert published["penduduk"] == 599 and set(SOURCES) <= set(published)
        tasks = up.airflow_rows("SELECT start_date, end_date FROM task_instance WHERE state = 'success' "
                                "AND start_date IS NOT NULL AND end_date IS NOT NULL")
        at_once = _most_at_once(tasks)
        print(f"{len(tasks)} tasks, at most {at_once} running at once")
        assert at_once >= 2  # parallelism 4: the sources' tasks ran side by side


def test_celery_with_redis_and_two_workers_sharing_the_warehouse(tmp_path, databases):
    with RedisServer() as redis:
        env = {**databases, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "AIRFLOW__CELERY__BROKER_URL": redis.url}
        with hub_up(tmp_path, "--celery-workers", "2", env=env) as up:
            components = {c["name"]: c["state"] for c in up.state()["components"]}
            assert components["celery-worker-1"] == components["celery-worker-2"] == "up"
            _the_demo_ran_through_the_scheduler(up)
            # Each worker took tasks off the queue: Celery logs every task it receives.
            received = {n: len(re.findall(r"Task \S*execute_workload\S* received",
                                          (tmp_path / "logs" / f"celery-worker-{n}.log").read_text(errors="replace")))
                        for n in (1, 2)}
            tasks = up.airflow_rows("SELECT count(*) FROM task_instance WHERE state IN ('success', 'skipped')")[0][0]
            print(f"tasks received by the Celery workers: {received}; task instances finished: {tasks}")
            assert received[1] >= 1 and received[2] >= 1, received
            assert received[1] + received[2] >= tasks  # every task went through Celery


def test_the_celery_executor_refuses_sqlite_for_airflow(tmp_path):
    from _served import hub

    done = hub(tmp_path, "up", "--port", "0", "--airflow-port", "0", check=False,
               env={"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"})
    assert done.returncode == 2, done.stderr
    assert "the CeleryExecutor needs Airflow's database on a server every worker reaches" in done.stderr
