"""Build Airflow DAGs from the source registry: one per source, one integration DAG per standard.

Parse time is a budget: only YAML and JSON are read here; the pipeline is imported inside tasks.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, task

from hub.errors import ConfigError, DataQualityError, FatalSourceError
from hub.settings import load_settings

__all__ = ["build_dags", "harmonized_asset", "integrated_asset", "source_dag_id", "standard_dag_id"]

_START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
# Errors that a retry cannot fix fail the task at once; others (a source that is down) are retried.
_NOT_RETRIABLE = (ConfigError, FatalSourceError, DataQualityError)


def source_dag_id(source_id: str) -> str:
    return f"source__{source_id}"


def standard_dag_id(standard: str) -> str:
    return f"standard__{standard}"


def harmonized_asset(source_id: str) -> Asset:
    return Asset(name=f"harmonized.{source_id}", uri=f"iceberg://hub/harmonized/{source_id}", group="hub")


def integrated_asset(standard: str) -> Asset:
    return Asset(name=f"integrated.{standard}", uri=f"iceberg://hub/integrated/{standard}", group="hub")


def _fail_fast(error: Exception):
    from airflow.sdk.exceptions import AirflowFailException

    if isinstance(error, _NOT_RETRIABLE):
        raise AirflowFailException(str(error)) from error
    raise error


def source_dag(source):
    @dag(
        dag_id=source_dag_id(source.id),
        description=source.title,
        schedule=source.schedule,
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=[source.agency_code, source.standard_name, source.kind],
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=2), "retry_exponential_backoff": True},
        doc_md=f"Pull **{source.title}** ({source.agency_name}) into standard `{source.standard_ref}`. "
        f"Registered in `{source.path.name}`.",
    )
    def pipeline():
        @task(task_id="stage")
        def stage_task(run_id=None) -> dict:
            from hub.pipeline import record_failure, stage

            settings = load_settings()
            try:
                summary = stage(settings, source.id, run_id)
            except Exception as e:
                record_failure(settings, source.id, run_id, e)
                _fail_fast(e)
            return {k: summary[k] for k in ("rows_in", "rows_valid", "rows_quarantined")}

        @task(task_id="publish", outlets=[harmonized_asset(source.id)])
        def publish_task(run_id=None) -> dict:
            from hub.pipeline import publish, record_failure

            settings = load_settings()
            try:
                return publish(settings, source.id, run_id).as_dict()
            except Exception as e:
                record_failure(settings, source.id, run_id, e)
                _fail_fast(e)

        stage_task() >> publish_task()

    return pipeline()


def standard_dag(standard: str, source_ids: list[str]):
    assets = [harmonized_asset(s) for s in source_ids]
    schedule = assets[0]
    for asset in assets[1:]:
        schedule = schedule | asset

    @dag(
        dag_id=standard_dag_id(standard),
        description=f"Integrated dataset of standard {standard}",
        schedule=schedule,
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=[standard, "integration"],
        doc_md=f"Rebuild `integrated.{standard}` whenever one of its sources publishes: {', '.join(source_ids)}.",
    )
    def integration():
        @task(task_id="integrate", outlets=[integrated_asset(standard)])
        def integrate_task(run_id=None) -> dict:
            from hub.pipeline import integrate

            try:
                return integrate(load_settings(), standard, run_id)
            except Exception as e:
                _fail_fast(e)

        integrate_task()

    return integration()


def build_dags() -> dict:
    """Every DAG of the registry, by dag id."""
    from connectors import load_sources

    settings = load_settings()
    sources = load_sources(settings.registry, settings.home)
    dags = {source_dag_id(s.id): source_dag(s) for s in sources}
    by_standard: dict[str, list[str]] = {}
    for s in sources:
        by_standard.setdefault(s.standard_name, []).append(s.id)
    for standard, ids in sorted(by_standard.items()):
        dags[standard_dag_id(standard)] = standard_dag(standard, ids)
    return dags
