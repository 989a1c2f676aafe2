"""Benchmark: the catalog server under load (search, package_show) and SQL over an N-row integrated dataset.

    .venv/bin/python bench/catalog.py --rows 10000000

Publishes an N-row Dinsos-format source with the pipeline, builds the integrated `penduduk` dataset from it,
and serves the catalog in a child process. Then:
- latency of `/api/search` and the CKAN `package_show` with --clients concurrent clients, each sending
  --requests requests: median and 99th percentile, and requests per second;
- a group-by over the integrated dataset through `POST /api/sql`, against the same query in bare DuckDB on
  the same Parquet files (the current snapshot's), in the same run: the best of --repeat each, and the ratio.
The last line is one JSON object with those figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

GROUP_BY = "SELECT kode_wilayah, jenis_kelamin, count(*) AS penduduk FROM {table} GROUP BY 1, 2 ORDER BY 1, 2"


def latency(base: str, paths: list[str], clients: int, requests: int, headers: dict) -> dict:
    """Every client sends `requests` GETs, cycling through `paths`, with `headers`; milliseconds per request."""
    import httpx

    def client(offset: int) -> list[float]:
        times = []
        with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
            for i in range(requests):
                start = time.perf_counter()
                http.get(paths[(offset + i) % len(paths)]).raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
        return times

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        times = sorted(t for part in pool.map(client, range(clients)) for t in part)
    seconds = time.perf_counter() - start
    return {"requests": len(times), "clients": clients, "median_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
            "requests_per_second": round(len(times) / seconds, 1)}


def main() -> None:
    import duckdb
    import httpx

    from download import served

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=100, help="requests per client and endpoint")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hub-bench-catalog-") as tmp, \
            served(Path(tmp), args.rows, ["integrate", "penduduk"]) as (base, _, env, headers):
        print(f"published, integrated and served {args.rows} rows in {time.perf_counter() - start:.1f} s")
        figures: dict = {"rows": args.rows}
        queries = ["penduduk", "dinas sosial", "nik", "kelurahan", "kependudukan bogor", "tidak ada"]
        figures["search"] = latency(base, [f"/api/search?q={q}" for q in queries], args.clients, args.requests,
                                    headers)
        datasets = [d["id"] for d in httpx.get(base + "/api/datasets", headers=headers).json()["datasets"]]
        figures["package_show"] = latency(base, [f"/api/3/action/package_show?id={d}" for d in datasets],
                                          args.clients, args.requests, headers)
        for name in ("search", "package_show"):
            f = figures[name]
            print(f"{name}: median {f['median_ms']} ms, p99 {f['p99_ms']} ms, {f['requests_per_second']} req/s "
                  f"({f['clients']} clients, {f['requests']} requests)")

        sql = GROUP_BY.format(table="penduduk")
        api_times, result = [], None
        with httpx.Client(base_url=base, timeout=600, headers=headers) as http:
            for _ in range(args.repeat):
                start = time.perf_counter()
                done = http.post("/api/sql", json={"sql": sql, "limit": 10_000})
                api_times.append(time.perf_counter() - start)
                done.raise_for_status()
                result = done.json()["rows"]

        os.environ.clear()  # this process reads the served hub's settings, not the caller's
        os.environ.update(env)
        from catalog import storage
        from hub.settings import load_settings

        files = storage.data_files(load_settings(), f"{storage.INTEGRATED}.penduduk").files
        listing = ", ".join(f"'{f}'" for f in files)
        bare_times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            con = duckdb.connect(":memory:")
            bare = con.sql(GROUP_BY.format(table=f"read_parquet([{listing}])")).fetchall()
            con.close()
            bare_times.append(time.perf_counter() - start)
        assert [tuple(r.values()) for r in result] == bare, "the API and bare DuckDB disagree"
        figures["sql_group_by"] = {
            "result_rows": len(bare), "files": len(files), "api_seconds": round(min(api_times), 3),
            "duckdb_seconds": round(min(bare_times), 3),
            "ratio": round(min(api_times) / min(bare_times), 2),
            "api_seconds_all": [round(t, 3) for t in api_times],
            "duckdb_seconds_all": [round(t, 3) for t in bare_times],
        }
        g = figures["sql_group_by"]
        print(f"group-by over {args.rows} rows: POST /api/sql {g['api_seconds']} s, bare DuckDB "
              f"{g['duckdb_seconds']} s, ratio {g['ratio']}")
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
