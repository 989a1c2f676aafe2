"""The `hub` command as a newcomer runs it, and a demo catalog it serves: shared by the CLI and catalog tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HUB = str(Path(sys.executable).parent / "hub")


def hub_env(home: Path) -> dict:
    """The environment of a person whose hub lives in `home` (the test session's own hub settings removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))}
    return {**env, "HUB_HOME": str(home)}


def hub(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([HUB, *args], env=hub_env(home), capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def serve(home: Path):
    """`hub serve` on a free loopback port, once it answers: (process, base URL)."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([HUB, "serve", "--port", str(port)], env=hub_env(home),
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
