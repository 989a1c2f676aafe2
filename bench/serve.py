"""Benchmark: `hub serve` under many concurrent keep-alive connections, with 1 and with 2 worker processes.

    .venv/bin/python bench/serve.py --workers 1 2 --connections 64 --requests 200

For each --workers N, serves an empty hub (a fresh home) with `hub serve --workers N` in a child process, this
checkout's code, and drives one cheap JSON route (GET /api, the API's index: every middleware of the hub, no
database) from --connections concurrent keep-alive connections, each sending --requests GETs one after another.
The client is a bare asyncio HTTP/1.1 client in a child process of its own (the figures are the server's, not a
client library's); on a machine of two cores it shares them with the server, as a proxy in front of the hub would.
It prints per N the requests per second, the median and 99th percentile latency, and the CPU seconds the server's
processes and the client used (a second worker helps only with a core to run on that the first one and the client
leave idle). The last line printed is one JSON object: per N those figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _connection(host: str, port: int, path: str, requests: int, times: list[float]) -> None:
    """One client on its own keep-alive connection: each GET written, its answer read whole, timed."""
    import asyncio

    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode()
    try:
        for _ in range(requests):
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, _, fields = head.partition(b"\r\n")
            if status.split()[1:2] != [b"200"]:
                raise SystemExit(f"GET {path}: {status.decode().strip()}")
            length = next(int(line.partition(b":")[2]) for line in fields.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        writer.close()


def _drive(port: int, path: str, connections: int, requests: int) -> tuple[list[float], float, float]:
    import asyncio

    async def run() -> tuple[list[float], float, float]:
        await asyncio.gather(*(_connection("127.0.0.1", port, path, 5, []) for _ in range(connections)))  # warm up
        times: list[float] = []
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(_connection("127.0.0.1", port, path, requests, times) for _ in range(connections)))
        return times, time.perf_counter() - start, time.process_time() - cpu

    try:
        import uvloop
    except ImportError:
        return asyncio.run(run())
    return uvloop.run(run())  # the client's own overhead, the less of it the better


def drive(port: int, path: str, connections: int, requests: int) -> dict:
    """`connections` concurrent keep-alive connections each send `requests` GETs of `path`; every answer must be
    200. In a child process, so that the client's work is not this process's. Milliseconds per request."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        times, seconds, cpu = pool.submit(_drive, port, path, connections, requests).result()
    times.sort()
    return {"requests": len(times), "requests_per_second": round(len(times) / seconds, 1),
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2), "seconds": round(seconds, 2),
            "client_cpu_seconds": round(cpu, 2)}


def _cpu_seconds(server) -> float:
    """CPU seconds used so far by `hub serve` and its worker processes."""
    import psutil

    total = 0.0
    for process in [server, *server.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def serve_and_drive(workers: int, path: str, connections: int, requests: int) -> dict:
    import psutil

    with tempfile.TemporaryDirectory(prefix="hub-bench-serve-") as home:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))},
               "HUB_HOME": home, "PYTHONPATH": str(ROOT)}
        port, log = free_port(), Path(home) / "serve.log"
        server = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--port", str(port), "--workers",
                                   str(workers)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=log.open("wb"))
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"hub serve did not start: {log.read_text()[-2000:]}")
                    time.sleep(0.2)
            # Every worker up (each builds its app after the socket listens): a few rounds of connections.
            drive(port, path, max(connections, workers * 4), 2)
            process = psutil.Process(server.pid)
            cpu = _cpu_seconds(process)
            figures = drive(port, path, connections, requests)
            figures["server_cpu_seconds"] = round(_cpu_seconds(process) - cpu, 2)
            return figures
        finally:
            server.terminate()
            server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="`hub serve --workers` to measure")
    parser.add_argument("--connections", type=int, default=64, help="concurrent keep-alive connections")
    parser.add_argument("--requests", type=int, default=200, help="GETs per connection")
    parser.add_argument("--path", default="/api", help="the route to ask (default: the API's index)")
    args = parser.parse_args()
    result: dict = {"path": args.path, "connections": args.connections, "cores": os.cpu_count()}
    for workers in args.workers:
        load = round(os.getloadavg()[0], 2)  # what else ran: the figures are as good as the machine was idle
        f = {**serve_and_drive(workers, args.path, args.connections, args.requests), "load_average_before": load}
        result[f"workers_{workers}"] = f
        print(f"{workers} worker{'s' if workers > 1 else ''}, {args.connections} connections: "
              f"{f['requests_per_second']} requests/s, p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, "
              f"CPU: server {f['server_cpu_seconds']} s, client {f['client_cpu_seconds']} s in {f['seconds']} s",
              flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
