"""Throwaway PostgreSQL server for the test suite, started and stopped by the tests."""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from _apt import apt_install

__all__ = ["PostgresServer", "start_postgres"]

USER = "hub"
DATABASE = "hub"
CONNECT_TIMEOUT = 30.0


def _is_root() -> bool:
    return os.geteuid() == 0


def _find_bin_dir() -> Path | None:
    # The real binaries, not /usr/local/bin wrappers, so initdb and pg_ctl
    # always come from the same version; newest version wins.
    def version(bin_dir: str) -> tuple[int, ...]:
        name = Path(bin_dir).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        path = Path(bin_dir)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


def _install_postgres() -> Path:
    apt_install("postgresql", "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin")
    bin_dir = _find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("installed the postgresql package but found no initdb/pg_ctl in /usr/lib/postgresql/*/bin")
    return bin_dir


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A private PostgreSQL cluster in a temp directory, listening on 127.0.0.1 only."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._bin: Path | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `hub` database."""
        return self._url_for(DATABASE)

    def start(self) -> PostgresServer:
        if self._dir is not None:
            return self
        self._bin = _find_bin_dir() or _install_postgres()
        self._dir = Path(tempfile.mkdtemp(prefix="hub-pg-"))
        # Registered before anything runs so a failure or crash half-way still cleans up.
        atexit.register(self.stop)
        try:
            if _is_root():
                # initdb refuses to run as root, so the cluster belongs to the Debian `postgres` user.
                try:
                    owner = pwd.getpwnam("postgres")
                except KeyError:
                    raise RuntimeError("running as root but there is no `postgres` user to own the cluster") from None
                os.chown(self._dir, owner.pw_uid, owner.pw_gid)
            self._run(
                "initdb", "-D", str(self._data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync",
                # A fixed C locale: LANG may name a locale this machine does not have, and sorting stays predictable.
                "--no-locale",
            )
            self.port = _free_port()
            # pg_ctl hands -o to a shell, hence the quoting.
            options = f"-p {self.port} -k {shlex.quote(str(self._dir))} -c listen_addresses=127.0.0.1 -c fsync=off"
            self._run("pg_ctl", "-D", str(self._data), "-l", str(self._log), "-w", "-o", options, "start")
            self._wait_for_connections()
            self.create_database(DATABASE)
        except BaseException:
            # Keep the original error, not one from cleaning up after it.
            with contextlib.suppress(Exception):
                self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._dir is None:
            return
        atexit.unregister(self.stop)
        try:
            # No pid file means no server (never started, or already gone): nothing to stop.
            if (self._data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self.port = None

    def create_database(self, name: str) -> str:
        """Create an empty database `name` (dropping any old one) and return its URL."""
        self._administer(name, create=True)
        return self._url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, closing the connections still open to it: the pools of engines a test left
        cached would otherwise hold the server's connection slots until the session ends."""
        self._administer(name, create=False)

    def _administer(self, name: str, create: bool) -> None:
        engine = create_engine(self._url_for("postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        quoted = engine.dialect.identifier_preparer.quote_identifier(name)
        try:
            with engine.connect() as conn:
                # FORCE: a test that leaked a connection must not block the next test's fresh database.
                conn.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
                if create:
                    conn.execute(text(f"CREATE DATABASE {quoted}"))
        finally:
            engine.dispose()

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def _data(self) -> Path:
        return self._started_dir / "data"

    @property
    def _log(self) -> Path:
        return self._started_dir / "log"

    @property
    def _started_dir(self) -> Path:
        if self._dir is None:
            raise RuntimeError("PostgresServer is not started")
        return self._dir

    def _url_for(self, database: str) -> str:
        if self.port is None:
            raise RuntimeError("PostgresServer is not started")
        url = URL.create("postgresql+psycopg2", username=USER, host="127.0.0.1", port=self.port, database=database)
        return url.render_as_string(hide_password=False)

    def _run(self, program: str, *args: str) -> None:
        cmd = [str(self._bin / program), *args]
        if _is_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        # cwd: the postgres user may not be allowed into the caller's working directory.
        result = subprocess.run(cmd, cwd=self._dir, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"`{shlex.join(cmd)}` failed ({result.returncode}):\n{result.stdout}{result.stderr}{self._log_tail()}"
            )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            tail = self._log.read_text(errors="replace").splitlines()[-lines:]
        except (OSError, RuntimeError):
            return ""
        return "--- server log (tail) ---\n" + "\n".join(tail)

    def _wait_for_connections(self) -> None:
        # pg_ctl -w already waits; this covers a server that is up but not yet accepting TCP connections.
        engine = create_engine(self._url_for("postgres"), poolclass=NullPool)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        try:
            while True:
                try:
                    with engine.connect():
                        return
                except OperationalError as exc:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"PostgreSQL on port {self.port} did not accept connections within "
                            f"{CONNECT_TIMEOUT:.0f} s: {exc}\n{self._log_tail()}"
                        ) from exc
                    time.sleep(0.2)
        finally:
            engine.dispose()


def start_postgres() -> PostgresServer:
    """Start a server and return it; the caller stops it (or leaves it to atexit)."""
    return PostgresServer().start()
