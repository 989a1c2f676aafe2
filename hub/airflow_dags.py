"""Build Airflow DAGs: one per registered source, one integration DAG per standard, one per indicator.

Parse time is a budget: only YAML and JSON are read here; the pipeline is imported inside tasks.
"""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import Asset, dag, task

from hub.errors import ConfigError, DataQualityError, FatalSourceError
from hub.settings import load_settings

__all__ = [
    "build_dags", "harmonized_asset", "indicator_asset", "indicator_dag_id", "integrated_asset", "source_dag_id",
    "standard_dag_id",
]

log = logging.getLogger(__name__)
_START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
# Errors that a retry cannot fix fail the task at once; others (a source that is down) are retried.
_NOT_RETRIABLE = (ConfigError, FatalSourceError, DataQualityError)


def source_dag_id(source_id: str) -> str:
    return f"source__{source_id}"


def standard_dag_id(standard: str) -> str:
    return f"standard__{standard}"


def indicator_dag_id(indicator_id: str) -> str:
    return f"indicator__{indicator_id}"


def harmonized_asset(source_id: str) -> Asset:
    return Asset(name=f"harmonized.{source_id}", uri=f"iceberg://hub/harmonized/{source_id}", group="hub")


def integrated_asset(standard: str) -> Asset:
    return Asset(name=f"integrated.{standard}", uri=f"iceberg://hub/integrated/{standard}", group="hub")


def indicator_asset(indicator_id: str) -> Asset:
    return Asset(name=f"indicator.{indicator_id}", uri=f"iceberg://hub/indicator/{indicator_id}", group="hub")


def _fail_fast(error: Exception):
    from airflow.sdk.exceptions import AirflowFailException

    if isinstance(error, _NOT_RETRIABLE):
        raise AirflowFailException(str(error)) from error
    raise error


def _deliver_after(work) -> None:
    """A `deliver` task after `work`: sends the subscription messages its publish (or failure) queued.

    Publishing only queues them, so a slow receiver never holds up a publish or the Asset event after it.
    A teardown task runs whether `work` succeeded or failed (failures are news too), and Airflow leaves it out
    of the DAG run's state: a receiver that is down never fails the run.
    """

    @task(task_id="deliver", retries=0)  # what it does not deliver waits for the subscriptions__deliver DAG
    def deliver_task() -> dict:
        from catalog.subscriptions import deliver_pending

        return deliver_pending(load_settings())

    work >> deliver_task().as_teardown()


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
            from catalog.audit import configuration
            from hub.pipeline import record_failure, stage

            settings = load_settings()
            try:
                configuration(settings, "airflow", "system", client=f"dag {source_dag_id(source.id)}")
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

        _deliver_after(stage_task() >> publish_task())

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
            from hub.pipeline import integrate, record_failure

            settings = load_settings()
            try:
                return integrate(settings, standard, run_id)
            except Exception as e:
                record_failure(settings, standard, run_id, e, kind="integration")
                _fail_fast(e)

        _deliver_after(integrate_task())

    return integration()


def indicator_dag(indicator, assets: list[Asset]):
    schedule = assets[0]
    for asset in assets[1:]:
        schedule = schedule | asset

    @dag(
        dag_id=indicator_dag_id(indicator.id),
        description=f"Indicator dataset {indicator.id}",
        schedule=schedule,
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=[indicator.id, "indicator"],
        doc_md=f"Rebuild `indicator.{indicator.id}` (declared in `indicators/{indicator.path.name}`) whenever one "
        f"of its inputs changes: {', '.join(indicator.inputs)}.",
    )
    def indicator_build():
        @task(task_id="build", outlets=[indicator_asset(indicator.id)])
        def build_task(run_id=None) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from hub.errors import NotReady
            from hub.indicators import build_indicator

            try:
                return build_indicator(load_settings(), indicator.id, run_id)
            except NotReady as e:  # the event of the missing input triggers the next run
                raise AirflowSkipException(str(e)) from None
            except Exception as e:
                _fail_fast(e)

        _deliver_after(build_task())

    return indicator_build()


def _input_asset(dataset_id: str, source_ids: set[str], standards: set[str]) -> Asset | None:
    """The Asset whose events mean an indicator's input changed: an integrated or a harmonized dataset."""
    if dataset_id in standards:
        return integrated_asset(dataset_id)
    if dataset_id in source_ids:
        return harmonized_asset(dataset_id)
    return None


DELIVERIES_DAG_ID = "subscriptions__deliver"


def deliveries_dag():
    """Retry the subscription messages a receiver or mail server did not take in the `deliver` task after their
    publish (backoff per message)."""

    @dag(
        dag_id=DELIVERIES_DAG_ID,
        description="Retry pending subscription messages (webhooks and e-mail)",
        schedule=dt.timedelta(minutes=10),
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=["subscriptions"],
    )
    def deliveries():
        @task(task_id="deliver")
        def deliver_task() -> dict:
            from catalog.subscriptions import deliver_pending

            return deliver_pending(load_settings())

        deliver_task()

    return deliveries()


def build_dags() -> dict:
    """Every DAG of the registry and the indicator declarations, by dag id.

    A registration or indicator that does not load gets no DAG and an error in the DAG processor's log (and in
    `hub status`); every other one keeps its DAG.
    """
    from hub.indicators import load_indicators
    from hub.maintenance import MAINTENANCE_DAG_ID, maintenance_dag
    from hub.sources import load_registry

    settings = load_settings()
    sources, problems = load_registry(settings)
    for problem in problems:
        log.error("registration %s gets no DAG: %s", problem["file"], problem["error"])
    dags = {source_dag_id(s.id): source_dag(s) for s in sources}
    by_standard: dict[str, list[str]] = {}
    for s in sources:
        by_standard.setdefault(s.standard_name, []).append(s.id)
    for standard, ids in sorted(by_standard.items()):
        dags[standard_dag_id(standard)] = standard_dag(standard, ids)
    source_ids = {s.id for s in sources}
    indicator_problems: list[dict] = []
    indicators = load_indicators(problems=indicator_problems)
    for problem in indicator_problems:
        log.error("indicator %s gets no DAG: %s", problem["file"], problem["error"])
    for indicator in indicators:
        assets = {i: _input_asset(i, source_ids, set(by_standard)) for i in indicator.inputs}
        unfed = [i for i, asset in assets.items() if asset is None]
        if unfed:
            # The indicators are the hub's, the registry may be a city's own: one it cannot feed waits, and
            # every other DAG still runs.
            log.warning("indicator %s gets no DAG: no registered source feeds its input %s (%s)", indicator.id,
                        ", ".join(unfed), indicator.path.name)
            continue
        dags[indicator_dag_id(indicator.id)] = indicator_dag(indicator, list(assets.values()))
    dags[DELIVERIES_DAG_ID] = deliveries_dag()
    dags[MAINTENANCE_DAG_ID] = maintenance_dag()
    return dags
