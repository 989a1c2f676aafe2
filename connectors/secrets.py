"""Credentials of agency systems: named in a registration, never written in it.

A registration names where a secret is: `{"env": "NAME"}`, an environment variable, or
`{"connection": "conn_id"}`, an Airflow connection (with `"field"`: `password` by default, or `login`,
`host`, `schema`, `extra.KEY`, `uri`). Kinds put SECRET in their options schema wherever a secret goes.
"""

from __future__ import annotations

import json
import os

from hub.errors import ConfigError

__all__ = ["SECRET", "TASK_CONNECTIONS", "connections_environment", "resolve"]

# The connections an Airflow task read for work it has another process do (`hub.runner`: that process has no
# channel to Airflow's API server, and does not import Airflow): JSON, connection id -> its fields.
TASK_CONNECTIONS = "HUB_TASK_CONNECTIONS"
_FIELDS = ("password", "login", "host", "schema")

SECRET = {
    "oneOf": [
        {"type": "object", "required": ["env"], "additionalProperties": False,
         "properties": {"env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}}},
        {"type": "object", "required": ["connection"], "additionalProperties": False,
         "properties": {"connection": {"type": "string", "minLength": 1},
                        "field": {"type": "string", "pattern": "^(password|login|host|schema|uri|extra\\.[A-Za-z0-9_]+)$"}}},
    ],
    "description": "Where the secret is: {env: NAME} or {connection: AIRFLOW_CONN_ID, field: password}.",
}


def resolve(source, option: str, where: dict) -> str:
    """The secret `where` points to, for the option `option` of `source`; an error names both, never a value."""
    if "env" in where:
        value = os.environ.get(where["env"])
        if not value:
            raise ConfigError(f"{source.path}: field options/{option}: environment variable {where['env']} is not set")
        return value
    try:
        connection = _connection(where["connection"])
    except Exception:  # Airflow raises its own "not defined" error types, which vary by version
        raise ConfigError(f"{source.path}: field options/{option}: Airflow connection "
                          f"{where['connection']!r} is not defined") from None
    field = where.get("field", "password")
    if field.startswith("extra."):
        value = connection["extra"].get(field.removeprefix("extra."))
    else:
        value = connection[field]
    if not value:
        raise ConfigError(f"{source.path}: field options/{option}: Airflow connection {where['connection']!r} "
                          f"has no {field}")
    return str(value)


def connections_environment(source) -> dict[str, str]:
    """The Airflow connections `source`'s options name, read here (inside a task) for work done in another
    process: TASK_CONNECTIONS, the variable that process reads them from. One not defined is left out: reading
    the system then raises the error that names it, with the file and field."""
    found = {}
    for where in _secrets_in(source.options):
        try:
            found[where["connection"]] = _connection(where["connection"])
        except Exception:  # noqa: BLE001
            continue
    return {TASK_CONNECTIONS: json.dumps(found)}


def _secrets_in(options) -> list[dict]:
    if isinstance(options, dict):
        here = [options] if isinstance(options.get("connection"), str) else []
        return here + [where for value in options.values() for where in _secrets_in(value)]
    if isinstance(options, list):
        return [where for value in options for where in _secrets_in(value)]
    return []


def _connection(conn_id: str) -> dict:
    """The connection's fields (`password`, `login`, `host`, `schema`, `uri`, `extra`): those a task handed
    over when there are (TASK_CONNECTIONS), else Airflow's."""
    handed = os.environ.get(TASK_CONNECTIONS)
    if handed is not None:
        return json.loads(handed)[conn_id]
    connection = _airflow_connection(conn_id)
    return {**{f: getattr(connection, f) for f in _FIELDS}, "uri": connection.get_uri(),
            "extra": connection.extra_dejson}


def _airflow_connection(conn_id: str):
    """An Airflow connection, wherever Airflow keeps it: inside a task, through the Task SDK (environment
    variables, secrets backends, then the API server, which reads Airflow's metadata database); in the hub's own
    processes (`hub run`, `hub sources test`), the SDK looks only in environment variables and secrets backends,
    so a connection added with `airflow connections add` or in the Airflow UI is then read from the metadata
    database, as the scheduler reads it."""
    import sys

    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:
        task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
        if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
            raise  # inside a task, the SDK's answer is the whole answer
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)
