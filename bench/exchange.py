"""Benchmark: the service bus under 1, 10 and 50 concurrent consumers.

    .venv/bin/python bench/exchange.py --rows 1000000

Publishes an N-row Dinsos-format source with the pipeline, registers a dataset service over it (lookup by NIK),
adds a consumer subsystem with a grant, and serves the hub in a child process (`hub serve`). Then, at each
concurrency, every consumer sends --requests X-Road calls (`GET /r1/{service}/{nik}`, NIKs drawn from the
dataset) and the figures are the median and 99th percentile latency and the calls per second.

The last line printed is one JSON object: rows, and per concurrency the lookup's figures.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

LOOKUP = "BOGOR/GOV/dinsos/dtks/penduduk"
CONSUMER = "BOGOR/GOV/dinsos/siks"  # cleared for penduduk by its x-access: looks up by NIK
PURPOSE = "benchmark"


def figures(times: list[float], seconds: float) -> dict:
    times = sorted(times)
    return {"calls": len(times), "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
            "calls_per_second": round(len(times) / seconds, 1)}


async def _consumer(host: str, port: int, paths: list[str], headers: dict, times: list[float]) -> None:
    """One consumer on its own keep-alive connection: each call written, its answer read whole, timed. A bare
    HTTP/1.1 client: the figures are the server's, not a client library's."""
    import asyncio

    reader, writer = await asyncio.open_connection(host, port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    try:
        for path in paths:
            start = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
            status = await reader.readline()
            length, error = 0, None
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "x-road-error":
                    error = value.strip()
            await reader.readexactly(length)
            times.append((time.perf_counter() - start) * 1000)
            if status.split()[1:2] != [b"200"]:
                raise SystemExit(f"{path}: {status.decode().strip()} {error or ''}")
    finally:
        writer.close()


def _load(base: str, paths: list[str], consumers: int, requests: int, headers: dict) -> dict:
    import asyncio
    from urllib.parse import urlsplit

    url = urlsplit(base)

    async def run() -> list[float]:
        times: list[float] = []
        warm = [_consumer(url.hostname, url.port, paths[i:i + 1], headers, []) for i in range(consumers)]
        await asyncio.gather(*warm)
        start = time.perf_counter()
        await asyncio.gather(*(_consumer(url.hostname, url.port, [paths[(c * requests + i) % len(paths)]
                                                                  for i in range(requests)], headers, times)
                               for c in range(consumers)))
        return times, time.perf_counter() - start

    times, seconds = asyncio.run(run())
    return figures(times, seconds)


def load(base: str, paths: list[str], consumers: int, requests: int, headers: dict) -> dict:
    """`consumers` concurrent consumers, each on its own connection, send `requests` GETs over `paths`; every
    answer must be 200. Run in a child process, so that the client's own work never shares a core's time with
    this process's. Milliseconds per call."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        return pool.submit(_load, base, paths, consumers, requests, headers).result()


def register_lookup(work: Path, env: dict) -> dict:
    """The dataset service over the benchmark's source, a consumer subsystem and its grant: its call headers."""
    from pipeline import SOURCE_ID

    services = work / "services"
    services.mkdir()
    (services / "lookup.yaml").write_text(f"""service: {LOOKUP}
title: Penduduk menurut NIK (benchmark)
provider: Dinas Sosial Kota Bogor
kind: dataset
dataset:
  id: {SOURCE_ID}
  by_key: true
  fields: [nik, nama, jenis_kelamin, tanggal_lahir, kode_wilayah]
""")
    env["HUB_SERVICES"] = str(services)
    hub = str(Path(sys.executable).parent / "hub")
    added = subprocess.run([hub, "exchange", "clients", "add", CONSUMER], env=env, check=True, capture_output=True,
                           text=True).stdout
    token = re.search(r"hubx_[0-9a-f]{12}_[\w-]+", added)[0]
    subprocess.run([hub, "exchange", "grant", LOOKUP, CONSUMER, "--purpose", PURPOSE], env=env, check=True,
                   capture_output=True)
    return {"X-Road-Client": CONSUMER, "Authorization": f"Bearer {token}", "X-Road-Issue": PURPOSE}


def sample_niks(work: Path, count: int) -> list[str]:
    """NIKs of the published dataset (the generated file's first column, as the pipeline normalizes it)."""
    import csv

    with open(work / "penduduk.csv", encoding="cp1252", newline="") as f:
        rows = csv.reader(f, delimiter=";")
        next(rows)
        niks = [re.sub(r"\D", "", row[0]) for _, row in zip(range(count * 20), rows)]
    niks = [n for n in niks if len(n) == 16]
    random.Random(7).shuffle(niks)
    return niks[:count]


def main() -> None:
    from download import served

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="calls per consumer and concurrency")
    parser.add_argument("--consumers", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hub-bench-exchange-") as tmp:
        work = Path(tmp)
        headers: dict = {}
        with served(work, args.rows, before_serving=lambda env: headers.update(register_lookup(work, env))) \
                as (base, _, _, _):
            print(f"published and served {args.rows} rows in {time.perf_counter() - start:.1f} s", flush=True)
            paths = [f"/r1/{LOOKUP}/{nik}" for nik in sample_niks(work, 2000)]
            result: dict = {"rows": args.rows, "lookup": {}}
            load(base, paths[:20], 1, 20, headers)  # the first call builds what later calls reuse
            for consumers in args.consumers:
                f = load(base, paths, consumers, args.requests, headers)
                result["lookup"][str(consumers)] = f
                print(f"lookup by key, {consumers} consumers: p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, "
                      f"{f['calls_per_second']} calls/s", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
