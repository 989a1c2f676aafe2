"""`hub up` in a test: started on a fresh home with its own registry copy and ports, waited for until the first
runs of the demo are over, stopped with SIGTERM at the end; and what Airflow's database holds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from _served import HUB, free_port, hub_env
from hub.settings import ROOT

__all__ = ["Up", "hub_up", "stop_leaves_nothing", "wait"]


def wait(what: str, condition, timeout: float, every: float = 2.0):
    """The first true value of `condition()`, asked every `every` seconds, or an AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def stop_leaves_nothing(process: subprocess.Popen, components: list[dict]) -> None:
    """SIGTERM to `hub up`: it exits 0 and no process of its `components` (up.json's) is left."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    time.sleep(1)
    for component in components:
        with pytest.raises(ProcessLookupError):
            os.kill(component["pid"], 0)


@dataclass
class Up:
    home: Path
    registry: Path
    env: dict
    process: subprocess.Popen
    catalog: str  # the catalog server's base URL
    airflow: str  # Airflow's API server's base URL
    airflow_db: str  # SQLAlchemy URL of Airflow's metadata database

    def airflow_rows(self, sql: str, **params) -> list[tuple]:
        """Rows of a query on Airflow's metadata database (named parameters, `:name`)."""
        engine = create_engine(self.airflow_db, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql), params)]
        finally:
            engine.dispose()

    def state(self) -> dict:
        return json.loads((self.home / "run" / "up.json").read_text())

    def pid(self, name: str) -> int:
        return next(c["pid"] for c in self.state()["components"] if c["name"] == name)

    def printed(self) -> str:
        return (self.home / "up.out").read_text()

    def events(self) -> str:
        return (self.home / "logs" / "hub-up.log").read_text()


@contextmanager
def hub_up(home: Path, *args: str, env: dict | None = None, timeout: float = 1200) -> Iterator[Up]:
    """`hub up --demo --people 480 ARGS` on `home` with the settings `env`, yielded once its first runs are over;
    SIGTERM at the end (and it must stop)."""
    registry = home / "registry"
    shutil.copytree(ROOT / "connectors" / "registry", registry)
    port, airflow_port = free_port(), free_port()
    env = hub_env(home, {"HUB_REGISTRY": str(registry), **(env or {})})
    airflow_db = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or f"sqlite:///{home / 'airflow' / 'airflow.db'}"
    out = (home / "up.out").open("w")
    process = subprocess.Popen([HUB, "up", "--demo", "--people", "480", "--port", str(port),
                                "--airflow-port", str(airflow_port), *args],
                               env=env, stdout=out, stderr=subprocess.STDOUT)
    up = Up(home, registry, env, process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{airflow_port}",
            airflow_db)
    started = time.monotonic()
    try:
        wait("the first runs to finish", lambda: process.poll() is not None or (
            (home / "logs" / "hub-up.log").exists() and "first runs finished" in up.events()), timeout, 3)
        assert process.poll() is None, up.printed()[-5000:]
        print(f"first runs finished {time.monotonic() - started:.0f} s after hub up started")
        yield up
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
        out.close()
