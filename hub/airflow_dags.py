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
    "EDGE_EXECUTOR", "build_dags", "edge_executor_configured", "harmonized_asset", "indicator_asset",
    "indicator_dag_id", "integrated_asset", "placement_problem", "source_dag_id", "standard_dag_id",
]

log = logging.getLogger(__name__)
_START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
# Errors that a retry cannot fix fail the task at once; others (a source that is down) are retried.
_NOT_RETRIABLE = (ConfigError, FatalSourceError, DataQualityError)
# Airflow's Edge executor (the edge3 provider), by its class name: found whether `[core] executor` names it by its
# module path (airflow.providers.edge3.executors.EdgeExecutor) or with an alias.
EDGE_EXECUTOR = "EdgeExecutor"


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


def _deliver_after(work, relayed_by: str | None = None) -> None:
    """A `deliver` task after `work`: sends the subscription messages its publish (or failure) queued.

    Publishing only queues them, so a slow receiver never holds up a publish or the Asset event after it.
    A teardown task runs whether `work` succeeded or failed (failures are news too), and Airflow leaves it out
    of the DAG run's state: a receiver that is down never fails the run. `relayed_by`: the task whose XCom holds
    records relayed from an Edge worker, deleted first: once the run is over they have no use, and in Airflow's
    metadata database its users could read them.
    """

    @task(task_id="deliver", retries=0)  # what it does not deliver waits for the subscriptions__deliver DAG
    def deliver_task(ti=None) -> dict:
        from catalog.subscriptions import deliver_pending

        if relayed_by:
            _forget_relayed(ti.dag_id, ti.run_id, relayed_by)
        return deliver_pending(load_settings())

    work >> deliver_task().as_teardown()


def _forget_relayed(dag_id: str, run_id: str, task_id: str) -> None:
    """Delete the records `task_id` relayed in this run (its XCom), through the Execution API like any XCom."""
    from airflow.sdk.execution_time.xcom import XCom

    try:
        XCom.delete(key="return_value", task_id=task_id, dag_id=dag_id, run_id=run_id, map_index=-1)
    except Exception as e:  # the subscribers' messages still go; `airflow db clean` removes old XComs too
        log.warning("%s: the records relayed by %s in run %s were not deleted from Airflow's database: %s", dag_id,
                    task_id, run_id, type(e).__name__)


def edge_executor_configured() -> bool:
    """Whether Airflow's `[core] executor` lists the Edge executor, which runs tasks on Edge workers."""
    from airflow.executors.executor_loader import ExecutorLoader

    try:
        ExecutorLoader.lookup_executor_name_by_str(EDGE_EXECUTOR, validate_teams=False)
    except Exception:  # UnknownExecutorException, or a configuration Airflow cannot read (its own error says why)
        return False
    return True


def _fetch_then_stage(source, queue: str, incremental: bool):
    """`fetch` on an Edge worker inside the agency's network, then `stage` here from the records it relayed.

    The Edge worker serving `queue` runs the source's connector and returns what it read as the task's XCom
    (hub.relay): it calls out to Airflow's API server only, and reaches no catalog, warehouse or staging folder.
    An incremental source's `cursor` task reads its committed cursor here first and hands it to `fetch`.
    """

    @task(task_id="cursor")
    def cursor_task() -> dict:
        from hub.pipeline import committed_cursor

        return {"cursor": committed_cursor(load_settings(), source.id)}

    # The records are its return value, one XCom (not one per key, as Airflow does for a dict), never written out
    # in its log (Airflow prints a task's return value).
    @task(task_id="fetch", executor=EDGE_EXECUTOR, queue=queue, multiple_outputs=False,
          show_return_value_in_logs=False)
    def fetch_task(start: dict | None = None, ti=None) -> dict:
        from hub.relay import describe_failure, fetch

        try:
            return fetch(source, (start or {}).get("cursor"))
        except Exception as e:
            # No catalog here: `stage`, on the hub, records the failure once the retries are over.
            ti.xcom_push(key="failure", value=describe_failure(e))
            _fail_fast(e)

    # Runs when `fetch` failed for good too, to record the failed run in the catalog as a local read would.
    @task(task_id="stage", trigger_rule="all_done")
    def stage_task(run_id=None, ti=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from catalog.audit import configuration
        from connectors.secrets import connections_environment
        from hub import runner
        from hub.pipeline import record_failure
        from hub.relay import failure_error

        settings = load_settings()
        relayed = ti.xcom_pull(task_ids="fetch")
        if relayed is None:
            error = failure_error(source.id, ti.xcom_pull(task_ids="fetch", key="failure"))
            record_failure(settings, source.id, run_id, error)
            raise AirflowFailException(str(error))  # retrying `stage` does not fetch again
        try:
            configuration(settings, "airflow", "system", client=f"dag {source_dag_id(source.id)}")
            summary = runner.run(settings, "stage", source.id, run_id, relayed, env=connections_environment(source))
        except Exception as e:
            record_failure(settings, source.id, run_id, e)
            _fail_fast(e)
        return {k: summary[k] for k in ("rows_in", "rows_valid", "rows_quarantined", "rows_repeated")}

    fetched = fetch_task(cursor_task()) if incremental else fetch_task()
    return fetched >> stage_task()


def source_dag(source, edge_queue: str | None = None, incremental: bool = False):
    """The DAG of one source: `stage` then `publish`; with `edge_queue`, `stage` takes what a `fetch` task on an
    Edge worker serving that queue read inside the agency's network (`incremental`: after the committed cursor)."""

    @dag(
        dag_id=source_dag_id(source.id),
        description=source.title,
        schedule=source.schedule,
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=[source.agency_code, source.standard_name, source.kind, *([f"edge:{edge_queue}"] if edge_queue else [])],
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=2), "retry_exponential_backoff": True},
        doc_md=f"Pull **{source.title}** ({source.agency_name}) into standard `{source.standard_ref}`. "
        f"Registered in `{source.path.name}`.",
    )
    def pipeline():
        @task(task_id="stage")
        def stage_task(run_id=None) -> dict:
            from catalog.audit import configuration
            from connectors.secrets import connections_environment
            from hub import runner
            from hub.pipeline import record_failure

            settings = load_settings()
            try:
                configuration(settings, "airflow", "system", client=f"dag {source_dag_id(source.id)}")
                # The connections the source names, read here through the task's channel to Airflow.
                summary = runner.run(settings, "stage", source.id, run_id, env=connections_environment(source))
            except Exception as e:
                record_failure(settings, source.id, run_id, e)
                _fail_fast(e)
            return {k: summary[k] for k in ("rows_in", "rows_valid", "rows_quarantined", "rows_repeated")}

        @task(task_id="publish", outlets=[harmonized_asset(source.id)])
        def publish_task(run_id=None) -> dict:
            from hub import runner
            from hub.pipeline import record_failure

            settings = load_settings()
            try:
                return runner.run(settings, "publish", source.id, run_id)
            except Exception as e:
                record_failure(settings, source.id, run_id, e)
                _fail_fast(e)

        if edge_queue is None:
            _deliver_after(stage_task() >> publish_task())
        else:
            _deliver_after(_fetch_then_stage(source, edge_queue, incremental) >> publish_task(), relayed_by="fetch")

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
            from hub import runner
            from hub.pipeline import record_failure

            settings = load_settings()
            try:
                return runner.run(settings, "integrate", standard, run_id)
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

            from hub import runner
            from hub.errors import NotReady

            try:
                return runner.run(load_settings(), "build", indicator.id, run_id)
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


def placement_problem(source) -> str | None:
    """Why `source` cannot get a DAG where its registration says it runs, or None: one to be read on an Edge
    worker while Airflow has no Edge executor (Airflow would refuse its DAG, and reading it here instead cannot
    reach the agency's network)."""
    if source.edge_queue is None or edge_executor_configured():
        return None
    return (f"field runs_on/edge_queue: it is read on an Edge worker of queue {source.edge_queue!r}, but Airflow's "
            "[core] executor does not list the Edge executor (for example "
            "LocalExecutor,airflow.providers.edge3.executors.EdgeExecutor, with [edge] api_enabled and api_url set; "
            "README, 'An agency's connector inside its own network')")


def _placements(sources: list) -> dict[str, tuple[str | None, bool]]:
    """Where each source's connector runs, by source id: (its Edge queue or None for the hub, incremental).
    A source with a placement problem gets no DAG and an error naming the file."""
    from connectors.kinds import kind_class

    placed = {}
    for source in sources:
        problem = placement_problem(source)
        if problem:
            log.error("registration %s gets no DAG: %s", source.path, problem)
            continue
        queue = source.edge_queue
        # The registry has built the connector once already: its constructor only checks options.
        placed[source.id] = (queue, queue is not None and kind_class(source.kind)(source).incremental)
    return placed


def build_dags() -> dict:
    """Every DAG of the registry and the indicator declarations, by dag id.

    A registration or indicator that does not load gets no DAG and an error in the DAG processor's log (and in
    `hub status`); every other one keeps its DAG. A standard or code list that does not load is logged too: the
    sources of a broken standard lose their DAG until it is mended, every other source keeps its own.
    """
    from hub.indicators import load_indicators
    from hub.maintenance import MAINTENANCE_DAG_ID, maintenance_dag
    from hub.sources import load_registry
    from schemas import load_problems

    for problem in load_problems():
        log.error("standard or code list does not load: %s", problem.located(full=True))
    settings = load_settings()
    sources, problems = load_registry(settings)
    for problem in problems:
        log.error("registration %s gets no DAG: %s", problem["file"], problem["error"])
    placed = _placements(sources)
    sources = [s for s in sources if s.id in placed]
    dags = {source_dag_id(s.id): source_dag(s, *placed[s.id]) for s in sources}
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
