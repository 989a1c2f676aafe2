"""Real DAG runs in the test process (`dag.test()`), for tests of single DAGs; the hub itself runs them through
the scheduler (`hub up`)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from hub.errors import ConfigError, HubError
from hub.settings import ROOT


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
