"""`hub up`: start every process of the hub on this machine and keep them running until Ctrl-C or SIGTERM.

The components are Airflow's own (API server, scheduler, DAG processor, triggerer), the warm runner that runs
and tasks fork from (`hub.runner`), the catalog server and, in demo mode, the demo agencies' live systems. Each writes its log to `$HUB_HOME/logs/NAME.log`; what the
supervisor does (starts, exits, restarts, stops) goes to `$HUB_HOME/logs/hub-up.log`. Its state is kept in
`$HUB_HOME/run/up.json` for `hub status`, and a lock on `$HUB_HOME/run/up.lock` keeps a second `hub up` off
the same home.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hub.errors import ConfigError, HubError
from hub.settings import ROOT, Settings

__all__ = ["Component", "Supervisor", "components", "held_by", "run_dir"]

# A component that keeps dying is started again after 1, 2, 4 ... seconds, at most this long.
MAX_BACKOFF_SECONDS = 30
# A component that stayed up this long starts its backoff again from 1 second.
STABLE_SECONDS = 60
# How long a component has to stop after SIGTERM before it is killed.
STOP_SECONDS = 30


def run_dir(settings: Settings) -> Path:
    return settings.home / "run"


def log_dir(settings: Settings) -> Path:
    return settings.home / "logs"


@dataclass
class Component:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    state: str = "down"  # up | down | restarting
    restarts: int = 0
    started: float = 0.0
    backoff: float = 1.0
    next_start: float = 0.0
    exit_code: int | None = None

    def describe(self, settings: Settings) -> dict:
        return {"name": self.name, "state": self.state, "pid": self.process.pid if self.process else None,
                "restarts": self.restarts, "last_exit_code": self.exit_code,
                "since": _iso(self.started) if self.started else None,
                "log": str(log_dir(settings) / f"{self.name}.log")}


def components(settings: Settings, *, host: str, port: int, airflow_port: int, demo_port: int | None,
               celery_workers: int = 0, serve_workers: int = 1) -> list[Component]:
    """The processes of one hub, in the order they start (the API server first: tasks report to it)."""
    python = sys.executable
    found = [Component("api-server", [python, "-m", "airflow", "api-server", "--host", host,
                                      "--port", str(airflow_port), "--workers", "1"])]
    if demo_port is not None:
        found.append(Component("demo-systems", [python, "-m", "demo.systems", "--home", str(settings.home),
                                                "--host", "127.0.0.1", "--port", str(demo_port)]))
    found += [
        # Great Expectations, Iceberg and the compiled suites kept warm: runs and tasks fork from it (hub.runner).
        Component("runner", [python, "-m", "hub.cli", "runner"]),
        Component("dag-processor", [python, "-m", "airflow", "dag-processor"]),
        # Every component shares this machine's disk: the API server reads task logs there, no log server needed.
        Component("scheduler", [python, "-m", "airflow", "scheduler", "--skip-serve-logs"]),
        Component("triggerer", [python, "-m", "airflow", "triggerer", "--skip-serve-logs"]),
        Component("catalog", [python, "-m", "hub.cli", "serve", "--host", host, "--port", str(port), "--workers",
                               str(serve_workers)]),
    ]
    found += [Component(f"celery-worker-{i}", [python, "-m", "airflow", "celery", "worker", "--skip-serve-logs",
                                               "--celery-hostname", f"worker{i}@%h", "--concurrency", "2"])
              for i in range(1, celery_workers + 1)]
    return found


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


def _die_with_parent() -> None:
    """In the child before exec: a new session (Ctrl-C reaches the supervisor only), and SIGTERM if the
    supervisor itself dies, so no component outlives it."""
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: Ctrl-C and SIGTERM still stop everything through the supervisor
        pass


def held_by(settings: Settings) -> dict | None:
    """The running `hub up` of this home (its state file), or None when none holds the lock."""
    lock = run_dir(settings) / "up.lock"
    if not lock.exists():
        return None
    with lock.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads((run_dir(settings) / "up.json").read_text())
            except (OSError, ValueError):
                return {"pid": None, "components": []}
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Supervisor:
    """Starts the components, restarts one that dies, and stops them all on SIGINT or SIGTERM."""

    def __init__(self, settings: Settings, parts: list[Component], env: dict[str, str], info: dict) -> None:
        self.settings = settings
        self.parts = parts
        self.env = env
        self.info = info  # addresses and settings shown by `hub status`
        self.stopping = threading.Event()
        self._lock_file = None
        self._events = None

    # -- lifetime ------------------------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the home's lock, or refuse with who holds it."""
        run_dir(self.settings).mkdir(parents=True, exist_ok=True)
        log_dir(self.settings).mkdir(parents=True, exist_ok=True)
        self._lock_file = (run_dir(self.settings) / "up.lock").open("a")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            running = held_by(self.settings) or {}
            raise HubError(f"a hub is already running on {self.settings.home} (hub up, pid {running.get('pid')}, "
                           f"since {running.get('started')}); stop it first with Ctrl-C in its terminal or "
                           f"`kill {running.get('pid')}`, or give this one another home (HUB_HOME)") from None
        self._events = (log_dir(self.settings) / "hub-up.log").open("a", buffering=1)
        self.info.update(pid=os.getpid(), started=_iso(time.time()))

    def event(self, message: str) -> None:
        """One line in hub-up.log (and on stderr): what the supervisor did."""
        line = f"{_iso(time.time())} {message}"
        self._events.write(line + "\n")
        print(f"hub up: {message}", file=sys.stderr, flush=True)

    def start(self, part: Component) -> None:
        log = (log_dir(self.settings) / f"{part.name}.log").open("ab")
        part.process = subprocess.Popen(part.argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        log.close()
        part.state, part.started, part.exit_code = "up", time.time(), None
        self.event(f"{part.name} started (pid {part.process.pid})")
        self.write_state()

    def start_all(self) -> None:
        for part in self.parts:
            self.start(part)

    def watch_once(self) -> None:
        """Restart what died; called about once a second."""
        now = time.time()
        for part in self.parts:
            if part.state == "up" and part.process.poll() is not None:
                part.exit_code = part.process.returncode
                _signal_group(part.process, signal.SIGKILL)  # what it started dies with it (executor workers)
                if now - part.started > STABLE_SECONDS:
                    part.backoff = 1.0
                part.state, part.next_start = "restarting", now + part.backoff
                self.event(f"{part.name} exited with code {part.exit_code}; restarting in {part.backoff:.0f} s "
                           f"(see {log_dir(self.settings) / (part.name + '.log')})")
                part.backoff = min(part.backoff * 2, MAX_BACKOFF_SECONDS)
                self.write_state()
            elif part.state == "restarting" and now >= part.next_start and not self.stopping.is_set():
                part.restarts += 1
                self.start(part)
                self.event(f"{part.name} restarted (restart {part.restarts})")

    def stop_all(self) -> None:
        """SIGTERM to each component's process group, last started first; SIGKILL what is left after
        STOP_SECONDS."""
        self.stopping.set()
        for part in reversed(self.parts):
            if part.process and part.process.poll() is None:
                _signal_group(part.process, signal.SIGTERM)
        deadline = time.time() + STOP_SECONDS
        for part in reversed(self.parts):
            if not part.process:
                continue
            try:
                part.process.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                self.event(f"{part.name} did not stop in {STOP_SECONDS} s; killed")
            # Its own children (task processes, workers) go with it.
            _signal_group(part.process, signal.SIGKILL)
            part.process.wait()
            part.state = "down"
            self.event(f"{part.name} stopped")
        self.write_state()

    def write_state(self) -> None:
        state = {**self.info, "components": [p.describe(self.settings) for p in self.parts]}
        path = run_dir(self.settings) / "up.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

    def close(self) -> None:
        if self._events:
            self._events.close()
        if self._lock_file:
            (run_dir(self.settings) / "up.json").unlink(missing_ok=True)
            self._lock_file.close()

    def run(self, after_start=None) -> None:
        """Start everything, then watch until SIGINT or SIGTERM; `after_start` runs in a thread meanwhile."""
        previous = {sig: signal.signal(sig, lambda *_: self.stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start_all()
            if after_start is not None:
                threading.Thread(target=after_start, name="after-start", daemon=True).start()
            while not self.stopping.wait(1.0):
                self.watch_once()
            self.event("stopping every component")
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def check_ports(host: str, ports: dict[str, int]) -> None:
    for what, port in ports.items():
        if not port_free(host, port):
            raise ConfigError(f"port {port} on {host} is in use; choose another with {what}")


def _client_host(host: str) -> str:
    """The address other processes of this machine reach a server listening on `host` at."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _airflow_users(settings: Settings) -> str:
    """The Airflow UI's users: the hub's stewards, as Airflow admins ("admin" while there is no steward)."""
    from catalog.identity import list_users

    stewards = [u["name"] for u in list_users(settings) if u["role"] == "steward" and u.get("active", True)]
    return ",".join(f"{name}:admin" for name in stewards) or "admin:admin"


def executor_setup(celery_workers: int | None) -> int:
    """How many Celery workers `hub up` starts on this machine, checked against Airflow's configuration:
    `celery_workers` if given, else one under the CeleryExecutor (none under any other)."""
    from airflow.configuration import conf

    executors = [name.strip().split(".")[-1] for name in conf.get("core", "executor").split(",")]
    celery = "CeleryExecutor" in executors
    if celery_workers and not celery:
        raise ConfigError(f"--celery-workers needs the CeleryExecutor, and Airflow's executor is {','.join(executors)}"
                          f"; set AIRFLOW__CORE__EXECUTOR=CeleryExecutor and AIRFLOW__CELERY__BROKER_URL")
    if celery and conf.get("database", "sql_alchemy_conn").startswith("sqlite"):
        raise ConfigError("the CeleryExecutor needs Airflow's database on a server every worker reaches, not SQLite; "
                          "set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN to a PostgreSQL URL (README: Running it for a city)")
    if celery_workers is None:
        return 1 if celery else 0
    return celery_workers


def up(settings: Settings, *, host: str, port: int, airflow_port: int, demo: bool, people: int,
       celery_workers: int | None = None, serve_workers: int = 1, wave_timeout: float = 1800) -> None:
    """`hub up`: lock the home, set it up, start and supervise every component until SIGINT or SIGTERM.

    With `demo`, the demo agency systems are built and served too, and the summary of the first wave of runs
    (every source, then what their Asset events triggered) is printed once the scheduler has finished it.
    """
    from hub.settings import configure_airflow

    configure_airflow(settings)
    client = _client_host(host)
    info = {"catalog_url": f"http://{client}:{port}/", "airflow_url": f"http://{client}:{airflow_port}/"}
    supervisor = Supervisor(settings, [], {}, info)
    supervisor.lock()
    try:
        ports = {"--port": port, "--airflow-port": airflow_port}
        check_ports(host, ports)
        celery_workers = executor_setup(celery_workers)
        from hub.cli import cmd_init

        cmd_init(settings, _Quiet())
        demo_port = None
        if demo:
            from demo.agencies import build
            from demo.systems import register_connections

            build(settings.home, people_count=people, dinsos_count=min(1200, people // 4))
            demo_port = free_port()
            info["demo_url"] = f"http://127.0.0.1:{demo_port}"
            os.environ["HUB_DEMO_URL"] = info["demo_url"]
            register_connections(settings)
        env = {
            **os.environ,
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(airflow_port),
            "AIRFLOW__API__BASE_URL": f"http://{client}:{airflow_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{client}:{airflow_port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": _airflow_users(settings),
            "PYTHONUNBUFFERED": "1",
        }
        supervisor.parts = components(settings, host=host, port=port, airflow_port=airflow_port,
                                      demo_port=demo_port, celery_workers=celery_workers,
                                      serve_workers=serve_workers)
        supervisor.env = env
        from hub.cli import say

        users = ", ".join(u.split(":")[0] for u in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(","))
        say(f"hub up on {settings.home}: portal {info['catalog_url']}, Airflow {info['airflow_url']} (sign in as "
            f"{users}; passwords in {settings.airflow_home}/simple_auth_manager_passwords.json.generated); logs "
            f"in {log_dir(settings)}; Ctrl-C stops everything", flush=True)

        def first_wave() -> None:
            from hub.airflow_dags import source_dag_id
            from hub.sources import load_registry
            from hub.status import wait_until_settled

            sources, _ = load_registry(settings)
            if not wait_until_settled(settings, {source_dag_id(s.id) for s in sources}, wave_timeout,
                                      supervisor.stopping):
                if not supervisor.stopping.is_set():
                    supervisor.event(f"the first runs did not all finish in {wave_timeout:.0f} s; see `hub status`")
                return
            print_summary(settings, [s.id for s in sources])
            supervisor.event("first runs finished; the sources now run on their schedules")

        supervisor.run(first_wave if demo else None)
    finally:
        supervisor.close()


class _Quiet:
    quiet = True


def print_summary(settings: Settings, source_ids: list[str]) -> None:
    """The table of each source's last run, then the integrated and indicator datasets, as `hub up --demo`
    prints it once the first runs are over."""
    from sqlalchemy import select

    from catalog.db import Dataset, Run, session
    from hub.cli import _summary_table, say
    from hub.pipeline import _result

    results, lines = [], []
    with session(settings.catalog_url) as s:
        for source_id in source_ids:
            run = s.scalars(select(Run).where(Run.dataset_id == source_id, Run.kind == "source")
                            .order_by(Run.id.desc())).first()
            if run is not None:
                results.append(_result(run).as_dict())
        for kind in ("integration", "indicator"):
            ids = sorted(set(s.scalars(select(Run.dataset_id).where(Run.kind == kind))))
            for dataset_id in ids:
                run = s.scalars(select(Run).where(Run.dataset_id == dataset_id, Run.kind == kind)
                                .order_by(Run.id.desc())).first()
                dataset = s.get(Dataset, dataset_id)
                label = "integrated" if kind == "integration" else "indicator"
                if run.status == "failed":
                    lines.append(f"{label} dataset {dataset_id}: last run failed: {run.error}")
                else:
                    lines.append(f"{label} dataset {dataset_id}: {dataset.row_count if dataset else run.rows_published}"
                                 f" rows (snapshot {run.snapshot_id})")
    _summary_table(results)
    for line in lines:
        say(line, flush=True)
