"""The warm runner: one long-lived process per home that has already imported what a run needs (Great
Expectations, pyiceberg, DuckDB, pyarrow, the connectors) and compiled the registered standards' suites, and
runs each piece of work sent to it in a child forked from itself: the child starts warm, and whatever it does
(memory it takes, a crash) ends with it.

Work reaches it over the Unix socket `$HUB_HOME/run/runner.sock` (readable by the hub's own user only; the
runner also checks the caller's user id). The caller sends its environment, working folder and standard streams
(as file descriptors), so the child acts as the caller would have: `hub run` prints to the caller's terminal,
Ctrl-C stops the child. What may be sent is the closed list `TARGETS`; nothing else runs.

`hub run`, `hub integrate`, `hub indicators build`, `hub validate` and `hub sources test` go through the runner
when one is up (`hub up` starts it), as do the Airflow tasks that stage, publish, integrate and build; with no
runner, or one started from code that has changed since (which then stops, for its supervisor to start it
again), or with HUB_RUNNER=off, they run in their own process.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from pathlib import Path

__all__ = ["CLI_COMMANDS", "TARGETS", "Unavailable", "call", "run", "serve", "socket_path", "wanted", "warm"]

# The `hub` commands sent to the runner: those that validate or publish records.
CLI_COMMANDS = {"run", "integrate", "validate", ("indicators", "build"), ("sources", "test")}
_HEADER = struct.Struct("!I")
_MAX_REQUEST = 4 << 20  # bytes: an environment and a few arguments
CHILD_VARIABLE = "HUB_RUNNER_CHILD"  # set in a child: what it runs does not go back to the runner


def _cli(settings, argv: list[str]) -> int:
    from hub.cli import main

    return main(argv)


def _stage(settings, source_id: str, run_id: str, relayed: dict | None = None) -> dict:
    from hub.pipeline import stage

    return stage(settings, source_id, run_id, relayed=relayed)


def _publish(settings, source_id: str, run_id: str) -> dict:
    from hub.pipeline import publish

    return publish(settings, source_id, run_id).as_dict()


def _integrate(settings, standard: str, run_id: str) -> dict:
    from hub.pipeline import integrate

    return integrate(settings, standard, run_id)


def _build(settings, indicator_id: str, run_id: str) -> dict:
    from hub.indicators import build_indicator

    return build_indicator(settings, indicator_id, run_id)


# What a caller may ask the runner to run: name -> function(settings, *args), JSON in and out.
TARGETS = {"cli": _cli, "stage": _stage, "publish": _publish, "integrate": _integrate, "build": _build}


class Unavailable(Exception):
    """No runner serves this home (or it runs other code than the caller's): run the work here."""


def socket_path(home: Path) -> Path:
    return Path(home) / "run" / "runner.sock"


def _here() -> bool:
    """Work stays in this process: it is a runner's child already, or HUB_RUNNER=off asks so (to debug or
    profile a run in one process)."""
    return CHILD_VARIABLE in os.environ or os.environ.get("HUB_RUNNER", "").lower() == "off"


def wanted(argv: list[str]) -> bool:
    """Whether the `hub` command `argv` goes to the runner."""
    return _runs_here(argv) and not _here()


def _runs_here(argv) -> bool:
    """Whether `argv` is one of the `hub` commands the runner does (CLI_COMMANDS)."""
    return isinstance(argv, list) and all(isinstance(a, str) for a in argv) and bool(argv) \
        and (argv[0] in CLI_COMMANDS or tuple(argv[:2]) in CLI_COMMANDS) and "-h" not in argv and "--help" not in argv


# --- the caller's side: no import beyond the standard library ----------------------------------------------------


def call(home: Path, target: str, *args, streams: tuple[int, int, int] = (0, 1, 2), usage: dict | None = None,
         env: dict[str, str] | None = None):
    """`TARGETS[target](settings, *args)` in a child of the runner of `home`, with this process's environment,
    working folder and `streams` (stdin, stdout, stderr): its return value. Its error is raised here again (a hub
    error as its own class, any other as a RuntimeError named like it). Raises `Unavailable` when no runner
    serves the home or the runner's code is not this process's.

    `env` adds to the environment the child gets (secrets only this process could read, for one). `usage`, if
    given, receives what the child cost: `seconds`, `private_peak_mb` (the memory it did not share
    with the runner, its highest sample, taken every 50 ms) and `peak_rss_mb` (its resident peak, the runner's
    pages it inherited included)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(socket_path(home)))
    except OSError:
        conn.close()
        raise Unavailable(f"no runner at {socket_path(home)}") from None
    request = json.dumps({"target": target, "args": list(args), "env": {**os.environ, **(env or {})}, "cwd": os.getcwd(),
                          "python": sys.executable, "code": _code_root()}).encode()
    child: list[int] = []  # the child's pid, once the runner has said it
    caught: list[int] = []  # signals that came before it
    forwarded = _forward_signals(lambda number: _kill(child[0], number) if child else caught.append(number))
    try:
        with conn:
            socket.send_fds(conn, [_HEADER.pack(len(request)) + request], list(streams))
            replies = conn.makefile("rb")
            first = _reply(replies)
            if caught and (first is None or first.get("unavailable")):
                raise KeyboardInterrupt
            if first is None or first.get("unavailable"):
                raise Unavailable((first or {}).get("unavailable", "the runner closed the connection"))
            child.append(first["pid"])
            for number in caught:
                _kill(child[0], number)
            answers = {}
            while (reply := _reply(replies)) is not None:  # the child's answer, then the runner's account
                for key, value in reply.items():
                    answers.setdefault(key, value)
    finally:
        for sig, previous in forwarded.items():
            signal.signal(sig, previous)
    if caught and not child:  # stopped before any work began
        raise KeyboardInterrupt
    if usage is not None:
        usage.update(answers.get("usage", {}))
    last = {k: answers[k] for k in ("result", "error") if k in answers} or None
    if last is None:
        raise RuntimeError("the runner closed the connection before the work finished")
    if "error" in last:
        raise _error(last["error"])
    return last["result"]


def run(settings, target: str, *args, env: dict[str, str] | None = None):
    """`TARGETS[target](settings, *args)`: in a child of the home's runner when one is up (`env` added to its
    environment), else in this process."""
    if not _here():
        try:
            return call(settings.home, target, *args, env=env)
        except Unavailable:
            pass
    return TARGETS[target](settings, *args)


def _reply(replies) -> dict | None:
    line = replies.readline()
    return json.loads(line) if line else None


def _forward_signals(forward) -> dict:
    """Ctrl-C and SIGTERM of the caller go to `forward(number)`, for the child doing the work (only the main
    thread may set handlers); returns the handlers to put back."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda number, frame: forward(number))
    return previous


def _kill(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _error(error: dict) -> BaseException:
    from hub import errors

    cls = getattr(errors, error["type"], None) if error["module"] == "hub.errors" else None
    if isinstance(cls, type) and issubclass(cls, errors.HubError) and cls is not errors.Busy:
        return cls(error["message"])
    if error["type"] == "KeyboardInterrupt":
        return KeyboardInterrupt()
    return type(error["type"], (RuntimeError,), {})(error["message"])


def _code_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


# --- the runner's side ----------------------------------------------------------------------------------------------


def warm(settings) -> list[str]:
    """Import what a run needs and compile the suites of the standards of the registered sources and of the
    indicators (in this process, before any child is forked); returns the standards compiled. No database
    connection, thread or file handle is left open: the children inherit what is here."""
    import getpass  # noqa: F401
    import multiprocessing.synchronize  # noqa: F401  (tqdm's lock, made by each GE validation's progress bar)

    import duckdb  # noqa: F401
    import great_expectations  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import pyiceberg.catalog.sql  # noqa: F401
    import pyiceberg.io.pyarrow  # noqa: F401
    import sqlalchemy.orm  # noqa: F401

    import catalog.audit  # noqa: F401
    import catalog.metadata  # noqa: F401
    import catalog.public  # noqa: F401
    import catalog.query  # noqa: F401
    import catalog.search  # noqa: F401
    import catalog.storage  # noqa: F401
    import catalog.subscriptions  # noqa: F401
    import catalog.views  # noqa: F401
    import connectors.kinds  # noqa: F401
    import exchange.clients  # noqa: F401
    import hub.cli  # noqa: F401
    import hub.indicators  # noqa: F401
    import hub.pipeline  # noqa: F401
    import hub.recent  # noqa: F401
    import schemas.data_docs  # noqa: F401
    import schemas.topics  # noqa: F401
    import transforms.mapping  # noqa: F401
    from hub.indicators import load_indicators
    from hub.sources import load_registry
    from schemas import load_standard
    from schemas.validation import warm_up

    compiled = []
    loaded, _ = load_registry(settings)
    try:
        indicators = load_indicators()
    except Exception:  # a broken indicator is its build's to report
        indicators = []
    for ref in sorted({source.standard_ref for source in loaded} | {i.standard_ref for i in indicators}):
        try:
            warm_up(load_standard(ref))
        except Exception:  # a broken standard is the run's to report, with the file and line
            continue
        compiled.append(ref)
    return compiled


def serve(settings, ready=None) -> None:
    """Serve the home's runner socket until SIGTERM or SIGINT (`hub runner`); `ready(path)` is called once
    the socket accepts work. One runner per home: a second one exits with an error."""
    from hub.errors import HubError

    folder = socket_path(settings.home).parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(folder / "runner.lock", "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise HubError(f"a runner already serves {settings.home}") from None
    started = time.monotonic()
    compiled = warm(settings)
    code = _loaded_code()
    path = socket_path(settings.home)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(0o177)  # the socket is the hub user's alone from the moment it exists
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_mask)
    listener.listen(64)
    listener.setblocking(False)
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: stopping.append(number))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, _Child] = {}  # pidfd -> the child
    print(f"runner: ready in {time.monotonic() - started:.1f} s at {path}; suites compiled: "
          f"{', '.join(compiled) or 'none'}", file=sys.stderr, flush=True)
    if ready is not None:
        ready(path)
    try:
        while not stopping:
            for key, _ in selector.select(timeout=_SAMPLE_SECONDS if children else 1):
                if key.fileobj is listener:
                    _accept(listener, selector, children, code, stopping)
                else:
                    _reap(key.fileobj, selector, children)
            for child in children.values():
                child.sample()
    finally:
        path.unlink(missing_ok=True)
        listener.close()
        for child in list(children.values()):
            _kill(child.pid, signal.SIGTERM)
        for pidfd in list(children):
            _reap(pidfd, selector, children)
        lock.close()


def _accept(listener, selector, children: dict, code: dict, stopping: list) -> None:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return
    conn.setblocking(True)
    conn.settimeout(10)
    fds: list[int] = []
    try:
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid != os.getuid():
            conn.close()
            return
        request, fds = _request(conn)
        why = _refusal(request, code)
        if why:
            _send(conn, {"unavailable": why})
            conn.close()
            for fd in fds:
                os.close(fd)
            if "changed" in why:
                stopping.append("stale")  # whoever supervises the runner starts it again from the new code
            return
    except (OSError, ValueError, KeyError):
        conn.close()
        for fd in fds:
            os.close(fd)
        return
    conn.settimeout(None)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(conn, fds, request)  # never returns
    for fd in fds:
        os.close(fd)
    _send(conn, {"pid": pid})
    pidfd = os.pidfd_open(pid)
    what = request["target"] + "".join(f" {a}" for a in request["args"][0][:2] if not a.startswith("-")) \
        if request["target"] == "cli" and request["args"] and isinstance(request["args"][0], list) \
        else request["target"]
    children[pidfd] = _Child(pid, conn, what)
    selector.register(pidfd, selectors.EVENT_READ)


_SAMPLE_SECONDS = 0.05


class _Child:
    """A forked child at work, and the memory it has not shared with the runner (sampled)."""

    def __init__(self, pid: int, conn: socket.socket, what: str) -> None:
        self.pid, self.conn, self.what, self.started, self.private_peak_kb = pid, conn, what, time.monotonic(), 0

    def sample(self) -> None:
        try:
            with open(f"/proc/{self.pid}/smaps_rollup", "rb") as f:
                private = sum(int(line.split()[1]) for line in f if line.startswith(b"Private_"))
        except (OSError, ValueError, IndexError):
            return
        self.private_peak_kb = max(self.private_peak_kb, private)


def _request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    if len(data) < _HEADER.size:
        raise ValueError("short request")
    size = _HEADER.unpack(data[:_HEADER.size])[0]
    if size > _MAX_REQUEST:
        raise ValueError("request too large")
    body = data[_HEADER.size:]
    while len(body) < size:
        more = conn.recv(size - len(body))
        if not more:
            raise ValueError("request cut short")
        body += more
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ValueError("three streams expected")
    return json.loads(body), fds


def _refusal(request: dict, code: dict) -> str | None:
    if request["target"] not in TARGETS:
        return f"unknown work {request['target']!r}"
    if request["target"] == "cli" and not (len(request["args"]) == 1 and _runs_here(request["args"][0])):
        return "not a command the runner does"
    if request["python"] != sys.executable or request["code"] != _code_root():
        return "the runner serves another installation"
    if _loaded_code() != code:
        return "the hub's code changed since the runner started"
    return None


def _loaded_code() -> dict[str, float]:
    """The modification time of every file of the hub's own code the runner has loaded."""
    root = _code_root() + os.sep
    found = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if path.startswith(root):
            try:
                found[path] = os.stat(path).st_mtime
            except OSError:
                found[path] = -1.0
    return found


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message, default=str).encode() + b"\n")
    except OSError:  # the caller went away
        pass


def _child(conn: socket.socket, fds: list[int], request: dict) -> None:
    """In the forked child: become the caller (streams, folder, environment), run the work, send its outcome."""
    status = 0
    try:
        for sig in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # The runner itself runs inside `hub runner`'s main, which points sys.stdout at stderr.
        sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[CHILD_VARIABLE] = "1"
        from hub.settings import load_settings

        try:
            reply = {"result": TARGETS[request["target"]](load_settings(), *request["args"])}
        except SystemExit as e:
            reply = {"result": e.code if isinstance(e.code, int) else (0 if e.code is None else 1)}
        except BaseException as e:  # noqa: BLE001  (every outcome goes back to the caller)
            reply = {"error": {"type": type(e).__name__, "module": type(e).__module__, "message": str(e)}}
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
        _send(conn, reply)
    except BaseException:  # noqa: BLE001
        status = 70
    finally:
        os._exit(status)


def _reap(pidfd: int, selector, children: dict) -> None:
    child = children.pop(pidfd)
    selector.unregister(pidfd)
    child.sample()
    _, status, rusage = os.wait4(child.pid, 0)
    os.close(pidfd)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:  # the child died before it could answer (killed, out of memory)
        _send(child.conn, {"error": {"type": "RunnerChildDied", "module": __name__,
                                     "message": f"the work ended without an answer (exit status {code})"}})
    usage = {"seconds": round(time.monotonic() - child.started, 3),
             "private_peak_mb": round(child.private_peak_kb / 1024, 1), "peak_rss_mb": round(rusage.ru_maxrss / 1024, 1)}
    _send(child.conn, {"usage": usage})
    child.conn.close()
    # What ran, never its arguments' values beyond the command's name (a path or an id may follow it).
    print(f"runner: {child.what} (pid {child.pid}) ended with status {code} in {usage['seconds']} s, "
          f"{usage['private_peak_mb']} MB of its own", file=sys.stderr, flush=True)
