"""`hub serve --workers N`: N processes answering on one port, each with the settings `hub serve` read, the same
request limits, and none of them left running once `hub serve` stops. Real servers on loopback; which process
answers a connection is read from the operating system (the process holding its socket), not from the hub."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import httpx
import psutil
import pytest

from _served import HUB, free_port, hub, hub_env

TOKEN = re.compile(r"hub_[0-9a-f]{12}_[\w-]+")


def _start(home, *args: str, env: dict | None = None, **popen) -> tuple[subprocess.Popen, int]:
    """`hub serve --workers 2` (and `args`) on a free loopback port, once it answers: (process, port)."""
    port = free_port()
    server = subprocess.Popen([HUB, "serve", "--port", str(port), "--workers", "2", *args], env=hub_env(home, env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api", timeout=2)
            return server, port
        except httpx.TransportError:
            if server.poll() is not None:
                break
            time.sleep(0.3)
    server.kill()
    raise RuntimeError(f"hub serve --workers 2 did not start: {server.stdout.read().decode()[-3000:]}")


def _workers(server: subprocess.Popen) -> list[psutil.Process]:
    """The worker processes of `hub serve` (uvicorn spawns them with multiprocessing, beside its resource tracker)."""
    return [p for p in psutil.Process(server.pid).children() if "spawn_main" in " ".join(p.cmdline())]


def _holder(processes: list[psutil.Process], client: tuple[str, int]) -> int | None:
    """The pid of the process holding the server's end of the connection from `client`."""
    for process in processes:
        for c in process.net_connections("tcp"):
            if c.status == psutil.CONN_ESTABLISHED and c.raddr and tuple(c.raddr) == client:
                return process.pid
    return None


def _stopped(server: subprocess.Popen, children: list[psutil.Process], timeout: float = 60) -> None:
    server.wait(timeout=timeout)
    _, alive = psutil.wait_procs(children, timeout=timeout)
    assert not alive, f"left running after `hub serve` stopped: {[(p.pid, p.cmdline()) for p in alive]}"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A hub whose catalog is not where the home would put it by default, with one user: a worker that read other
    settings than `hub serve` would not know the user."""
    home = tmp_path_factory.mktemp("workers-home")
    env = {"HUB_CATALOG_URL": f"sqlite:///{tmp_path_factory.mktemp('elsewhere') / 'catalog.db'}"}
    token = TOKEN.search(hub(home, "users", "create", "walidata", "--role", "analyst", env=env).stdout)[0]
    return home, env, token


@pytest.fixture(scope="module")
def served(home):
    home, env, token = home
    server, port = _start(home, env=env)
    yield server, port, token
    server.terminate()
    server.wait(timeout=60)


def test_two_workers_answer_on_one_port_with_the_settings_hub_serve_read(served):
    server, port, token = served
    workers = _workers(server)
    assert len(workers) == 2
    for worker in workers:  # each listens on the port itself
        assert any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in worker.net_connections("tcp"))
    answered_by: dict[int, int] = {}
    connections = []
    try:
        # New connections, each kept open, until both workers have answered some (the kernel gives a connection
        # to whichever worker accepts it first).
        for _ in range(200):
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
            connections.append(client)
            me = client.get("/api/me")
            assert me.status_code == 200 and me.json()["name"] == "walidata"  # the catalog named by HUB_CATALOG_URL
            stream = me.extensions["network_stream"]
            holder = _holder(workers, stream.get_extra_info("client_addr"))
            assert holder is not None, "no worker holds the connection"
            answered_by[holder] = answered_by.get(holder, 0) + 1
            if len(answered_by) == 2:
                break
        assert set(answered_by) == {w.pid for w in workers}, answered_by
        # The parent only supervises: it holds the listening socket, never a client's connection.
        assert _holder([psutil.Process(server.pid)], stream.get_extra_info("client_addr")) is None
    finally:
        for client in connections:
            client.close()


def test_every_worker_caps_the_request_head_with_431(served):
    import select

    server, port, _ = served
    workers, refused_by = _workers(server), set()
    for _ in range(100):  # a connection each, until both workers have refused a head
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /api HTTP/1.1\r\nHost: hub\r\n\r\n")  # first a request, to see who answers
            answer = b""
            while b"}" not in answer:
                answer += s.recv(65536)
            holder = _holder(workers, s.getsockname())
            s.sendall(b"GET /api HTTP/1.1\r\nHost: hub\r\nX-Huge: ")
            sent, answer = 0, b""
            while sent < 64 << 20 and not select.select([s], [], [], 0)[0]:  # until the server answers
                try:
                    s.sendall(b"x" * 65536)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += 65536
            try:
                while part := s.recv(65536):
                    answer += part
            except ConnectionResetError:
                pass
        assert answer.startswith(b"HTTP/1.1 431 ") and b"HUB_MAX_HEADER_BYTES" in answer, (answer[:300], sent)
        assert sent < 4 << 20, f"a worker read {sent} bytes of one header before refusing it"
        refused_by.add(holder)
        if len(refused_by) == 2:
            break
    assert refused_by == {w.pid for w in workers}


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C", "SIGKILL"])
def test_stopping_hub_serve_stops_its_workers(home, how):
    """SIGTERM (a service manager, `hub up`) and Ctrl-C (SIGINT to the terminal's process group) stop the workers
    by way of their supervisor; killed outright, `hub serve` leaves them to end on their own (Linux)."""
    home, env, _ = home
    server, port = _start(home, env=env, start_new_session=True)
    assert len(_workers(server)) == 2
    children = psutil.Process(server.pid).children(recursive=True)  # the workers, and multiprocessing's helper
    if how == "Ctrl-C":
        os.killpg(server.pid, signal.SIGINT)
    else:
        server.send_signal(getattr(signal, how))
    _stopped(server, children)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/api", timeout=5)


def test_bad_settings_stop_hub_serve_before_it_listens(home):
    """Refused before uvicorn binds the port (which here another socket holds: binding first would fail on that)
    and so before any worker starts."""
    home, env, _ = home
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, extra, message in [
                ([], {"HUB_MAX_HEADER_BYTES": "lots"}, "HUB_MAX_HEADER_BYTES"),
                ([], {"HUB_TRUSTED_PROXIES": "proxy.example"}, "HUB_TRUSTED_PROXIES"),
                ([], {"HUB_QUERY_SLOTS": "none"}, "HUB_QUERY_SLOTS"),
                (["--workers", "0"], {}, "--workers 0"),
                (["--tls-cert", __file__, "--tls-key", __file__], {}, "not a PEM certificate and its private key")]:
            done = subprocess.run([HUB, "serve", "--port", str(port), "--workers", "2", *args],
                                  env=hub_env(home, {**env, **extra}), capture_output=True, text=True, timeout=120)
            assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
            assert "Traceback" not in done.stderr
