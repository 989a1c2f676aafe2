"""Benchmark: the service bus under 1, 10 and 50 concurrent consumers.

    .venv/bin/python bench/exchange.py --rows 1000000

Publishes an N-row Dinsos-format source with the pipeline, registers two services, adds a consumer subsystem
granted both, and serves the hub in a child process (`hub serve --workers N`, default 2):
- a dataset service over the published source, looked up by NIK (`GET /r1/{service}/{nik}`, NIKs drawn from
  the dataset);
- a proxied service in front of a provider's API (a status check by NIK, SIAK's field names, served by uvicorn in
  a child process of its own), called directly and through the hub, the same NIKs: the difference is what the hub
  adds (authentication, grant, rate limit, forwarding, mapping, the standard's check, masking, the message log);
- the floor beside it: the same calls through a bare pass-through proxy on the same stack (uvicorn, aiohttp's
  client) that does none of that, so what any Python proxy adds on this machine is in the same run.
At each concurrency every consumer sends --requests calls, each consumer on its own keep-alive connection; the
figures are the median and 99th percentile latency and the calls per second.

The last line printed is one JSON object: rows, and per concurrency the figures of `lookup`, `direct`,
`passthrough` and `proxied`, the hub's `added_p50_ms` and `added_p99_ms` and the pass-through's
`passthrough_added_p50_ms` and `passthrough_added_p99_ms`.
"""

from __future__ import annotations

import argparse
import json
import os
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
PROXIED = "BOGOR/GOV/disdukcapil/siak/status"
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


def provider_app():
    """The provider's own API: a person's status by NIK, in its own field names (uvicorn --factory)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def status(request):
        nik = request.path_params["nik"]
        died = int(nik[-1]) % 5 == 0
        return JSONResponse({"NIK": nik, "STATUS_KEPENDUDUKAN": "MATI" if died else "AKTIF",
                             "TGL_PERISTIWA": "12-03-2024" if died else None, "KODE_KEL": "3271011001"})

    return Starlette(routes=[Route("/api/status/{nik}", status)])


def passthrough_app():
    """The floor of a proxy on this stack (uvicorn --factory): each GET forwarded to the provider (`UPSTREAM`) with
    the same HTTP client as the hub's (aiohttp, keep-alive) and its answer passed back, and nothing else: no
    credential, grant, mapping, check, masking or log. What it adds to a direct call is what any Python proxy on
    this machine adds before doing any work."""
    import os

    import aiohttp
    import yarl

    upstream = os.environ["UPSTREAM"]
    sessions = {}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if sessions:
                await sessions.pop("session").close()
            return await send({"type": "lifespan.shutdown.complete"})
        session = sessions.get("session") or sessions.setdefault("session", aiohttp.ClientSession())
        async with session.get(yarl.URL(upstream + scope["raw_path"].decode(), encoded=True)) as answer:
            body = await answer.read()
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


_OPENAPI = {"openapi": "3.0.3", "info": {"title": "Status penduduk", "version": "1"},
            "paths": {"/status/{nik}": {"get": {"parameters": [{"name": "nik", "in": "path", "required": True,
                                                                "schema": {"type": "string"}}],
                                                "responses": {"200": {"description": "the person's status"}}}}}}


def register_services(work: Path, env: dict, provider: str) -> dict:
    """The dataset service over the benchmark's source, the proxied service in front of `provider`, a consumer
    subsystem granted both: the headers of its calls."""
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
    (services / "status.openapi.json").write_text(json.dumps(_OPENAPI))
    (services / "status.yaml").write_text(f"""service: {PROXIED}
title: Status penduduk menurut NIK (benchmark)
provider: Dinas Kependudukan dan Pencatatan Sipil Kota Bogor
kind: proxy
proxy:
  base_url: {provider}/api
  openapi: status.openapi.json
  standard: status_penduduk@1.0.0
  mapping:
    nik: {{from: NIK, normalize: nik}}
    status: {{from: STATUS_KEPENDUDUKAN, crosswalk: {{AKTIF: hidup, MATI: meninggal}}}}
    tanggal_peristiwa: {{from: TGL_PERISTIWA, date_formats: ["%d-%m-%Y"]}}
    kode_wilayah: {{from: KODE_KEL, normalize: kode_wilayah}}
""")
    env["HUB_SERVICES"] = str(services)
    hub = str(Path(sys.executable).parent / "hub")
    added = subprocess.run([hub, "exchange", "clients", "add", CONSUMER], env=env, check=True, capture_output=True,
                           text=True).stdout
    token = re.search(r"hubx_[0-9a-f]{12}_[\w-]+", added)[0]
    for service in (LOOKUP, PROXIED):
        subprocess.run([hub, "exchange", "grant", service, CONSUMER, "--purpose", PURPOSE], env=env, check=True,
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
    from download import free_port, served

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="calls per consumer, concurrency and path")
    parser.add_argument("--consumers", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--workers", type=int, default=2, help="processes of `hub serve` (default 2: this machine's "
                        "cores)")
    args = parser.parse_args()
    start = time.perf_counter()
    port = free_port()
    provider = f"http://127.0.0.1:{port}"
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "exchange:provider_app", "--port",
                            str(port), "--log-level", "warning", "--no-access-log"], cwd=Path(__file__).parent)
    floor_port = free_port()
    floor = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "exchange:passthrough_app", "--port",
                              str(floor_port), "--log-level", "warning", "--no-access-log"],
                             cwd=Path(__file__).parent, env={**os.environ, "UPSTREAM": provider})
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-exchange-") as tmp:
            work = Path(tmp)
            headers: dict = {}
            with served(work, args.rows,
                        before_serving=lambda env: headers.update(register_services(work, env, provider)),
                        workers=args.workers) as (base, _, _, _):
                print(f"published and served {args.rows} rows in {time.perf_counter() - start:.1f} s", flush=True)
                niks = sample_niks(work, 2000)
                lookups = [f"/r1/{LOOKUP}/{nik}" for nik in niks]
                proxied = [f"/r1/{PROXIED}/status/{nik}" for nik in niks]
                direct = [f"/api/status/{nik}" for nik in niks]
                result: dict = {"rows": args.rows, "workers": args.workers}
                # The first lookups build the index later ones use, in each worker.
                load(base, lookups[:40], args.workers * 2, 20, headers)
                load(base, proxied[:20], args.workers * 2, 10, headers)
                for consumers in args.consumers:
                    f = {"lookup": load(base, lookups, consumers, args.requests, headers),
                         "direct": load(provider, direct, consumers, args.requests, {}),
                         "passthrough": load(f"http://127.0.0.1:{floor_port}", direct, consumers, args.requests,
                                             {}),
                         "proxied": load(base, proxied, consumers, args.requests, headers)}
                    for name in ("added", "passthrough_added"):
                        through = f["proxied" if name == "added" else "passthrough"]
                        f[f"{name}_p50_ms"] = round(through["p50_ms"] - f["direct"]["p50_ms"], 2)
                        f[f"{name}_p99_ms"] = round(through["p99_ms"] - f["direct"]["p99_ms"], 2)
                    result[str(consumers)] = f
                    for name in ("lookup", "direct", "passthrough", "proxied"):
                        g = f[name]
                        print(f"{consumers} consumers, {name}: p50 {g['p50_ms']} ms, p99 {g['p99_ms']} ms, "
                              f"{g['calls_per_second']} calls/s", flush=True)
                    print(f"{consumers} consumers, the hub adds p50 {f['added_p50_ms']} ms, p99 "
                          f"{f['added_p99_ms']} ms to a proxied call; a bare pass-through adds p50 "
                          f"{f['passthrough_added_p50_ms']} ms, p99 {f['passthrough_added_p99_ms']} ms", flush=True)
    finally:
        for process in (api, floor):
            process.terminate()
            process.wait(timeout=30)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
