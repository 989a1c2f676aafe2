"""Secrets are named in registrations and found in the environment or an Airflow connection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.registry import Source
from connectors.secrets import resolve
from hub.errors import ConfigError

SOURCE = Source(id="api_src", title="API", description="", agency_code="a", agency_name="Agency",
                standard_ref="penduduk@1.0.0", kind="rest", schedule=None, options={}, mapping={},
                path=Path("registry/api_src.yaml"))


def test_an_environment_variable(monkeypatch):
    monkeypatch.setenv("HUB_TEST_TOKEN", "t0ken")
    assert resolve(SOURCE, "auth/token", {"env": "HUB_TEST_TOKEN"}) == "t0ken"


def test_a_missing_variable_names_the_file_and_field(monkeypatch):
    monkeypatch.delenv("HUB_TEST_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"registry/api_src.yaml: field options/auth/token: environment "
                                          r"variable HUB_TEST_TOKEN is not set"):
        resolve(SOURCE, "auth/token", {"env": "HUB_TEST_TOKEN"})


def test_an_airflow_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HUB_TEST_API", json.dumps(
        {"conn_type": "http", "host": "api.example", "login": "hub", "password": "pa55", "extra": {"key": "k3y"}}))
    assert resolve(SOURCE, "auth/password", {"connection": "hub_test_api"}) == "pa55"
    assert resolve(SOURCE, "auth/username", {"connection": "hub_test_api", "field": "login"}) == "hub"
    assert resolve(SOURCE, "auth/key", {"connection": "hub_test_api", "field": "extra.key"}) == "k3y"


def test_a_missing_connection_is_a_config_error():
    with pytest.raises(ConfigError, match="Airflow connection 'hub_no_such_conn' is not defined"):
        resolve(SOURCE, "auth/password", {"connection": "hub_no_such_conn"})


def test_a_connection_in_airflows_database_is_found_outside_a_task(session_home):
    """`hub run` and `hub sources test` are no Airflow task: the Task SDK looks only in environment variables there,
    yet a connection added with `airflow connections add` (or the UI) lives in Airflow's metadata database."""
    from airflow.models.connection import Connection
    from airflow.sdk import BaseHook
    from airflow.utils.session import create_session

    with create_session() as s:
        s.add(Connection(conn_id="hub_test_db_api", conn_type="generic", login="hub", password="db-pa55"))
    try:
        with pytest.raises(Exception):  # what the SDK alone answers outside a task
            BaseHook.get_connection("hub_test_db_api")
        assert resolve(SOURCE, "auth/password", {"connection": "hub_test_db_api"}) == "db-pa55"
        assert resolve(SOURCE, "auth/username", {"connection": "hub_test_db_api", "field": "login"}) == "hub"
    finally:
        with create_session() as s:
            s.query(Connection).filter(Connection.conn_id == "hub_test_db_api").delete()


def test_a_tasks_connections_reach_the_process_doing_its_work_without_airflow(monkeypatch, tmp_path):
    """A task hands the connections its source names to the runner's child (`hub.runner`), which neither
    imports Airflow nor reaches its database: the same values come out there, and only those."""
    import dataclasses
    import subprocess
    import sys

    from connectors.secrets import TASK_CONNECTIONS, connections_environment

    monkeypatch.setenv("AIRFLOW_CONN_HUB_TEST_API", json.dumps(
        {"conn_type": "postgres", "host": "db.example", "login": "hub", "password": "pa55", "schema": "siak",
         "extra": {"key": "k3y"}}))
    source = dataclasses.replace(SOURCE, options={"connection": "hub_no_such_conn",
                                                  "auth": {"key": {"connection": "hub_test_api"}}})
    handed = connections_environment(source)
    assert set(json.loads(handed[TASK_CONNECTIONS])) == {"hub_test_api"}  # the undefined one is left out
    here = [resolve(SOURCE, "o", {"connection": "hub_test_api", "field": f})
            for f in ("password", "login", "host", "schema", "uri", "extra.key")]
    script = """
import json, sys
from pathlib import Path
from connectors.registry import Source
from connectors.secrets import resolve
source = Source(id="api_src", title="", description="", agency_code="a", agency_name="", standard_ref="p@1",
                kind="rest", schedule=None, options={}, mapping={}, path=Path("registry/api_src.yaml"))
print(json.dumps([resolve(source, "o", {"connection": "hub_test_api", "field": f})
                  for f in ("password", "login", "host", "schema", "uri", "extra.key")]))
try:
    resolve(source, "o", {"connection": "hub_no_such_conn"})
except Exception as e:
    print(e)
print("airflow" in sys.modules)
"""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), **handed}  # no AIRFLOW_CONN_ variable
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    values, missing, imported = done.stdout.strip().splitlines()
    assert json.loads(values) == here and here[0] == "pa55" and here[-1] == "k3y"
    assert "Airflow connection 'hub_no_such_conn' is not defined" in missing
    assert imported == "False"
