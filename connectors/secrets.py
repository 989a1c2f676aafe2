"""Credentials of agency systems: named in a registration, never written in it.

A registration names where a secret is: `{"env": "NAME"}`, an environment variable, or
`{"connection": "conn_id"}`, an Airflow connection (with `"field"`: `password` by default, or `login`,
`host`, `schema`, `extra.KEY`, `uri`). Kinds put SECRET in their options schema wherever a secret goes.
"""

from __future__ import annotations

import os

from hub.errors import ConfigError

__all__ = ["SECRET", "resolve"]

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
        connection = _airflow_connection(where["connection"])
    except Exception:  # Airflow raises its own "not defined" error types, which vary by version
        raise ConfigError(f"{source.path}: field options/{option}: Airflow connection "
                          f"{where['connection']!r} is not defined") from None
    field = where.get("field", "password")
    if field == "uri":
        value = connection.get_uri()
    elif field.startswith("extra."):
        value = connection.extra_dejson.get(field.removeprefix("extra."))
    else:
        value = getattr(connection, field)
    if not value:
        raise ConfigError(f"{source.path}: field options/{option}: Airflow connection {where['connection']!r} "
                          f"has no {field}")
    return str(value)


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
