"""What the hub is doing: its components, each DAG's last and next run, failed runs and broken files.

Read from `hub up`'s state file and Airflow's metadata database; Airflow must be configured (configure_airflow)
before this module's functions run.
"""

from __future__ import annotations

import datetime as dt
import os
import time

from hub.settings import Settings

__all__ = ["settled", "status"]

_ACTIVE = ("queued", "running")
# A DAG with no schedule of time runs when an Asset it listens to changes.
_ON_ASSETS = "when one of its inputs changes"
COMPONENT_NAMES = ("api-server", "runner", "dag-processor", "scheduler", "triggerer", "catalog")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def components(settings: Settings) -> tuple[dict | None, list[dict]]:
    from hub.up import held_by

    running = held_by(settings)
    if running is None:
        return None, [{"name": name, "state": "down"} for name in COMPONENT_NAMES]
    parts = []
    for part in running.get("components", []):
        state = part["state"]
        if state == "up" and not _alive(part.get("pid")):
            state = "restarting"  # died since the supervisor last looked; it restarts it within a second
        parts.append({**part, "state": state})
    return running, parts


def problems(settings: Settings) -> list[dict]:
    """Files the hub cannot use now: registrations, indicators, standards and code lists, and DAG files."""
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session

    from hub.airflow_dags import placement_problem
    from hub.indicators import load_indicators
    from hub.sources import load_registry

    found = []
    try:
        sources, registry = load_registry(settings)
        found += [{"what": "registration", **p} for p in registry]
        placements = {s.path: placement_problem(s) for s in sources}
        found += [{"what": "registration", "file": str(path), "error": f"{path}: {problem}"}
                  for path, problem in placements.items() if problem]
    except Exception as e:  # the registry folder itself is missing
        found.append({"what": "registry", "file": str(settings.registry), "error": str(e)})
    indicators: list[dict] = []
    load_indicators(problems=indicators)
    found += [{"what": "indicator", **p} for p in indicators]
    found += [{"what": "standard or code list", **p} for p in _schema_problems()]
    with create_session() as s:
        for error in s.query(ParseImportError).order_by(ParseImportError.filename):
            found.append({"what": "DAG file", "file": error.filename, "error": error.stacktrace.strip()[-2000:]})
    return found


def _schema_problems() -> list[dict]:
    """Standards and code lists that do not load now (a running process keeps their last good version)."""
    from schemas import load_problems
    from schemas.codelists import check_codelists

    found = {(p.path, p.located(full=True)) for p in (*load_problems(), *check_codelists())}
    return [{"file": path, "error": text} for path, text in sorted(found)]


def dags(settings: Settings) -> list[dict]:
    """Every DAG Airflow knows (not the stale ones), with its last run and when it runs next."""
    from airflow.models import DagModel, DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as s:
        models = s.scalars(select(DagModel).where(DagModel.is_stale.is_(False)).order_by(DagModel.dag_id)).all()
        latest = {row.dag_id: row for row in s.scalars(
            select(DagRun).where(DagRun.id.in_(select(func.max(DagRun.id)).group_by(DagRun.dag_id))))}
        found = []
        for m in models:
            last = latest.get(m.dag_id)
            if m.asset_expression and not m.next_dagrun_create_after:
                next_run = _ON_ASSETS
            else:
                next_run = _iso(m.next_dagrun_create_after)
            found.append({
                "dag_id": m.dag_id, "paused": m.is_paused, "schedule": m.timetable_summary,
                "last_run": None if last is None else {
                    "run_id": last.run_id, "state": str(last.state), "type": str(last.run_type),
                    "started": _iso(last.start_date), "ended": _iso(last.end_date)},
                "next_run": next_run,
            })
    return found


def failed_runs(settings: Settings, days: int = 7) -> list[dict]:
    """DAG runs that failed in the last `days` days, newest first, with the hub's own error where it has one."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from catalog.db import Run, session

    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    with create_session() as s:
        runs = [(r.dag_id, r.run_id, r.end_date) for r in s.scalars(
            select(DagRun).where(DagRun.state == "failed", DagRun.end_date >= since).order_by(DagRun.end_date.desc()))]
    errors = {}
    if runs:
        with session(settings.catalog_url) as s:
            for run in s.scalars(select(Run).where(Run.run_id.in_([r[1] for r in runs]), Run.status == "failed")):
                errors[run.run_id] = run.error
    return [{"dag_id": dag_id, "run_id": run_id, "ended": _iso(ended), "error": errors.get(run_id)}
            for dag_id, run_id, ended in runs]


def edge_workers() -> list[dict]:
    """The Edge workers known to Airflow (inside agencies' networks), when its executor lists the Edge executor:
    name, state, queues and last heartbeat."""
    from hub.airflow_dags import edge_executor_configured

    if not edge_executor_configured():
        return []
    from airflow.providers.edge3.models.edge_worker import EdgeWorkerModel
    from airflow.utils.session import create_session

    with create_session() as s:
        return [{"name": w.worker_name, "state": str(getattr(w.state, "value", w.state)), "queues": w.queues or [],
                 "last_heartbeat": _iso(w.last_update), "jobs_active": w.jobs_active}
                for w in s.query(EdgeWorkerModel).order_by(EdgeWorkerModel.worker_name)]


def status(settings: Settings) -> dict:
    running, parts = components(settings)
    return {
        "home": str(settings.home),
        "up": running is not None,
        **({k: running.get(k) for k in ("pid", "started", "catalog_url", "airflow_url", "demo_url")}
           if running else {}),
        "components": parts,
        "edge_workers": edge_workers(),
        "dags": dags(settings),
        "failed_runs": failed_runs(settings),
        "problems": problems(settings),
    }


def settled(settings: Settings, dag_ids: set[str]) -> bool:
    """Whether each of `dag_ids` has finished a run and nothing is running, queued or waiting on an Asset
    event: a wave of runs, with everything it triggered, is over."""
    from airflow.models import DagModel, DagRun
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        known = set(s.scalars(select(DagModel.dag_id).where(DagModel.dag_id.in_(dag_ids),
                                                            DagModel.is_stale.is_(False))))
        finished = set(s.scalars(select(DagRun.dag_id).where(DagRun.dag_id.in_(dag_ids),
                                                             DagRun.state.in_(("success", "failed")))))
        active = s.scalars(select(DagRun.id).where(DagRun.state.in_(_ACTIVE))).first()
        waiting = s.scalars(select(AssetDagRunQueue.target_dag_id)).first()
    return known == dag_ids and finished == dag_ids and active is None and waiting is None


def wait_until_settled(settings: Settings, dag_ids: set[str], timeout: float, stop=None) -> bool:
    """Poll until `settled` holds twice in a row (an Asset event may be between two runs); False on timeout or
    when `stop` (an Event) is set."""
    deadline = time.time() + timeout
    quiet = 0
    while time.time() < deadline and not (stop is not None and stop.is_set()):
        try:
            quiet = quiet + 1 if settled(settings, dag_ids) else 0
        except Exception:  # the database may not be there yet in the first seconds
            quiet = 0
        if quiet >= 2:
            return True
        time.sleep(3)
    return False
