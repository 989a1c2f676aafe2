"""Benchmark: downloading a whole N-row dataset from `hub serve`, in each format, and the server's memory.

    .venv/bin/python bench/download.py --rows 1000000

Publishes an N-row Dinsos-format source with the pipeline, serves the catalog in a child process, downloads
the dataset as CSV, JSON and Parquet while sampling the server's memory, and prints per format the bytes,
seconds and the server's peak memory. The last line is one JSON object with those figures (sizes in bytes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(work: Path, rows: int, *commands: list[str], before_serving=None, workers: int = 1):
    """An N-row Dinsos-format source published (then `commands` run with `hub`, then `before_serving(env)`
    called, which may add to the environment), served by `hub serve --workers N` in a child process: (base URL,
    server process, the hub's environment, the headers of an analyst's token: the data is `terbatas`)."""
    import httpx

    from pipeline import SOURCE_ID, prepare

    _, registry = prepare("file", rows, work)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))},
           "HUB_HOME": str(work / "home"), "HUB_REGISTRY": str(registry),
           "HUB_DATA_DIRS": str(work)}  # the generated source file sits beside the home
    hub = str(Path(sys.executable).parent / "hub")
    for command in (["run", SOURCE_ID], *commands):
        subprocess.run([hub, *command], env=env, check=True, capture_output=True)
    created = subprocess.run([hub, "users", "create", "bench", "--role", "analyst"], env=env, check=True,
                             capture_output=True, text=True).stdout
    headers = {"Authorization": "Bearer " + re.search(r"hub_[0-9a-f]{12}_[\w-]+", created)[0]}
    if before_serving:
        before_serving(env)
    port = free_port()
    server = subprocess.Popen([hub, "serve", "--port", str(port), "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/api/datasets", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, server, env, headers
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    import httpx
    import psutil

    from pipeline import SOURCE_ID

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-download-") as tmp, \
            served(Path(tmp), args.rows) as (base, server, _, headers):
        process = psutil.Process(server.pid)
        figures = {"rows": args.rows, "server_rss_idle_mb": round(process.memory_info().rss / 2**20, 1)}
        for fmt in ("csv", "json", "parquet"):
            peak, done = [0.0], threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], process.memory_info().rss / 2**20)
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            start, size = time.perf_counter(), 0
            with httpx.stream("GET", f"{base}/api/datasets/{SOURCE_ID}/download.{fmt}", headers=headers,
                              timeout=600) as r:
                r.raise_for_status()
                for chunk in r.iter_bytes():
                    size += len(chunk)
            seconds = time.perf_counter() - start
            done.set()
            sampler.join()
            figures[fmt] = {"bytes": size, "seconds": round(seconds, 2),
                            "server_peak_rss_mb": round(peak[0], 1)}
            print(f"{fmt}: {size / 2**20:.1f} MB in {seconds:.2f} s, server peak RSS {peak[0]:.0f} MB")
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
