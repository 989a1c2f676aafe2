"""Run the registry's DAGs through Airflow in this process (`dag.test()`), as `hub demo` does."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from hub.errors import ConfigError, HubError
from hub.settings import ROOT, Settings

__all__ = ["dag_bag", "run_all_through_airflow", "run_dag"]


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout and stderr (Airflow's task logs) to a file while DAGs run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(ROOT / "dags"))
    if bag.import_errors:
        details = "\n".join(f"{path}: {error}" for path, error in bag.import_errors.items())
        raise ConfigError(f"the DAG files do not import:\n{details}")
    return bag


def run_dag(dag, log: Path) -> str:
    """One real DAG run (recorded in Airflow's database); returns its run id or raises if it failed."""
    with _output_to(log):
        dagrun = dag.test()
    if dagrun.state != "success":
        raise HubError(f"DAG {dag.dag_id} run {dagrun.run_id} ended {dagrun.state}; task logs in {log}")
    return dagrun.run_id


def _triggered_by_assets() -> set[str]:
    """DAGs with Asset events waiting in Airflow's queue: the runs the scheduler would start next."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        return set(s.scalars(select(AssetDagRunQueue.target_dag_id)))


def _consume_asset_events(dag_id: str) -> None:
    """What the scheduler does when it starts an Asset-triggered run: the waiting events are used up."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as s:
        s.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag_id))


def run_all_through_airflow(settings: Settings) -> tuple[list[dict], list[dict], list[dict]]:
    """Every source DAG, then the integration DAGs their Assets triggered, then the indicator DAGs those
    triggered. Returns the catalog's records of the source runs, the integrations and the indicator builds.

    Without a scheduler running, this process plays its part for Asset-triggered DAGs: it runs those
    with waiting Asset events and uses the events up.
    """
    from sqlalchemy import select

    from catalog.db import Run, session
    from connectors import load_sources
    from hub.airflow_dags import indicator_dag_id, source_dag_id, standard_dag_id
    from hub.indicators import load_indicators
    from hub.pipeline import _result

    log = settings.airflow_home / "logs" / "hub-runs.log"
    with _output_to(log):
        bag = dag_bag()
    sources = load_sources(settings.registry, settings.home)
    results, integrated = [], []
    for source in sources:
        run_id = run_dag(bag.dags[source_dag_id(source.id)], log)
        with session(settings.catalog_url) as s:
            run = s.scalars(select(Run).where(Run.run_id == run_id, Run.dataset_id == source.id,
                                              Run.status != "failed")).one()
        results.append(_result(run).as_dict())
    triggered = _triggered_by_assets()
    for standard in sorted({s.standard_name for s in sources}):
        dag_id = standard_dag_id(standard)
        if dag_id not in triggered:
            continue
        run_id = run_dag(bag.dags[dag_id], log)
        _consume_asset_events(dag_id)
        with session(settings.catalog_url) as s:
            run = s.scalars(select(Run).where(Run.run_id == run_id, Run.dataset_id == standard)).one()
            members = sorted(x.id for x in sources if x.standard_name == standard)
        integrated.append({"dataset": standard, "rows": run.rows_published, "snapshot_id": run.snapshot_id,
                           "sources": members})
    indicators = []
    triggered = _triggered_by_assets()
    for indicator in load_indicators():
        dag_id = indicator_dag_id(indicator.id)
        if dag_id not in triggered:
            continue
        run_id = run_dag(bag.dags[dag_id], log)
        _consume_asset_events(dag_id)
        with session(settings.catalog_url) as s:
            run = s.scalars(select(Run).where(Run.run_id == run_id, Run.dataset_id == indicator.id)).one()
        indicators.append({"dataset": indicator.id, "rows": run.rows_published, "snapshot_id": run.snapshot_id,
                           "inputs": sorted(indicator.inputs)})
    return results, integrated, indicators
