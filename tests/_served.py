"""The `hub` command as a newcomer runs it, and a demo catalog it serves: shared by the CLI and catalog tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HUB = str(Path(sys.executable).parent / "hub")


def hub_env(home: Path, extra: dict | None = None) -> dict:
    """The environment of a person whose hub lives in `home` (the test session's own hub settings removed),
    with their `extra` settings (e.g. HUB_CATALOG_URL, HUB_SMTP_HOST)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))}
    return {**env, "HUB_HOME": str(home), **(extra or {})}


def hub(home: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([HUB, *args], env=hub_env(home, env), capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(home: Path, env: dict | None = None, port: int | None = None):
    """`hub serve` on `port` (default: a free loopback port), once it answers: (process, base URL)."""
    import httpx

    port = port or free_port()
    server = subprocess.Popen([HUB, "serve", "--port", str(port)], env=hub_env(home, env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/api/datasets", timeout=2)
            return server, base
        except httpx.TransportError:
            time.sleep(0.3)
    server.kill()
    raise RuntimeError(f"hub serve did not start: {server.stdout.read().decode()[-2000:]}")


@contextmanager
def demo_systems(home: Path, **options) -> Iterator[dict]:
    """The demo agencies' live systems (demo/systems.py) serving `home`, whose demo is built, as `hub up --demo`
    sets them up: the home initialised (`hub init`), the Airflow connection dinkes_api registered in its Airflow
    database. Yields the environment `hub()` needs to reach them ({"HUB_DEMO_URL": ...})."""
    from demo.systems import register_connections, running
    from hub.settings import ROOT, Settings

    hub(home, "init", "--quiet")
    register_connections(Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}",
                                  registry=ROOT / "connectors" / "registry"))
    with running(home, **options) as url:
        yield {"HUB_DEMO_URL": url}


def elsewhere(**options):
    """An HTTP client calling from another loopback address (127.0.0.2). A test of refused credentials sends them
    from there: the hub counts failed authentications per address (catalog.identity.MAX_FAILURES), so they never
    lock out the other tests' calls from 127.0.0.1 to the same server."""
    import httpx

    return httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=60, **options)
