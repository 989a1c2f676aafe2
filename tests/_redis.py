"""Throwaway Redis server for the scale-out tests (the CeleryExecutor's broker), started and stopped by them.

Debian's `redis-server` is installed with apt when it is missing and the tests run as root, as the PostgreSQL
server is (tests/_postgres.py).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from _apt import apt_install

__all__ = ["RedisServer"]

START_TIMEOUT = 30.0


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    apt_install("redis-server", "redis-server not found")
    # The package starts a system-wide server on 6379 where it can; the tests use their own, on a free port.
    subprocess.run(["service", "redis-server", "stop"], capture_output=True)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("installed the redis-server package but found no redis-server on PATH")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private Redis on 127.0.0.1, without persistence, in a temp directory; stopped by its pid."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        program = _redis_server()
        self._dir = Path(tempfile.mkdtemp(prefix="hub-redis-"))
        self.port = _free_port()
        self.process = subprocess.Popen(
            [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self._dir), "--logfile", str(self._dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self._dir / "redis.log").read_text(errors="replace")[-3000:] if (
                    self._dir / "redis.log").exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
