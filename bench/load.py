"""Benchmark: the server under a flood of heavy SQL queries: another client's latency, the answers, peak memory.

    .venv/bin/python bench/load.py --rows 1000000 --heavy 45

Publishes an N-row Dinsos-format source and the integrated `penduduk` dataset, and serves the catalog in a
child process with the hub's default limits (HUB_QUERY_*; set them in the environment to try others). Then
--heavy clients each send one heavy query at once through `POST /api/sql` (half run until the time limit
stops them, half need memory: sorts and hash tables over every row), while a probe client asks
`GET /api/datasets` every 50 ms. It prints the probe's latency before and under the load (median, 99th
percentile, worst), how the heavy queries were answered (200, 400 stopped or over memory, 503 queue full),
the server's peak resident memory and the peak size of its spill folder. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

HEAVY = [
    # Runs until the time limit stops it: every pair of residents of the same kelurahan.
    "SELECT a.kode_wilayah, count(*) FROM penduduk a JOIN penduduk b USING (kode_wilayah) GROUP BY 1",
    # Needs memory: every row sorted by a value made for it, and a hash table as big as the dataset.
    "SELECT count(*) FROM (SELECT md5(nik || nama) AS h FROM penduduk ORDER BY h) s",
    "SELECT count(DISTINCT md5(nik || kode_wilayah)) FROM penduduk",
]


def percentiles(times: list[float]) -> dict:
    times = sorted(times)
    return {"probes": len(times), "median_ms": round(statistics.median(times), 1),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1), "max_ms": round(times[-1], 1)}


def probe(base: str, stop: threading.Event, headers: dict) -> list[float]:
    import httpx

    times = []
    with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
        while not stop.is_set():
            start = time.perf_counter()
            http.get("/api/datasets").raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
            stop.wait(0.05)
    return times


def main() -> None:
    import httpx
    import psutil

    from download import served

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--heavy", type=int, default=45, help="heavy queries sent at once")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hub-bench-load-") as tmp, \
            served(Path(tmp), args.rows, ["integrate", "penduduk"]) as (base, server, env, headers):
        print(f"published, integrated and served {args.rows} rows in {time.perf_counter() - start:.1f} s")
        process, spill = psutil.Process(server.pid), Path(env["HUB_HOME"]) / "spill"
        # The first query of each kind makes the analyst's masked copy of the dataset: not part of the load.
        httpx.post(base + "/api/sql", json={"sql": "SELECT count(*) FROM penduduk"}, headers=headers, timeout=600)
        stop = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            idle = pool.submit(probe, base, stop, headers)
            time.sleep(5)
            stop.set()
            idle = percentiles(idle.result())
        print(f"probe alone: median {idle['median_ms']} ms, p99 {idle['p99_ms']} ms, worst {idle['max_ms']} ms")

        peak = {"rss_mb": 0.0, "spill_mb": 0.0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak["rss_mb"] = max(peak["rss_mb"], process.memory_info().rss / 2**20)
                used = sum(f.stat().st_size for f in spill.rglob("*") if f.is_file()) if spill.exists() else 0
                peak["spill_mb"] = max(peak["spill_mb"], used / 2**20)
                time.sleep(0.1)

        def heavy(i: int) -> tuple[int, float]:
            began = time.perf_counter()
            answer = httpx.post(base + "/api/sql", json={"sql": HEAVY[i % len(HEAVY)]}, headers=headers, timeout=600)
            return answer.status_code, time.perf_counter() - began

        sampler = threading.Thread(target=sample)
        sampler.start()
        with ThreadPoolExecutor(args.heavy + 1) as pool:
            probing = pool.submit(probe, base, stop, headers)
            began = time.perf_counter()
            answers = list(pool.map(heavy, range(args.heavy)))
            loaded_for = time.perf_counter() - began
            stop.set()
            loaded = percentiles(probing.result())
        sampler.join()
        statuses = Counter(status for status, _ in answers)
        figures = {"rows": args.rows, "heavy_queries": args.heavy, "load_seconds": round(loaded_for, 1),
                   "heavy_answers": {str(k): v for k, v in sorted(statuses.items())},
                   "probe_alone": idle, "probe_under_load": loaded,
                   "server_peak_rss_mb": round(peak["rss_mb"], 1), "spill_peak_mb": round(peak["spill_mb"], 1)}
        print(f"{args.heavy} heavy queries for {loaded_for:.1f} s answered {dict(statuses)}")
        print(f"probe under load: median {loaded['median_ms']} ms, p99 {loaded['p99_ms']} ms, worst "
              f"{loaded['max_ms']} ms ({loaded['probes']} probes)")
        print(f"server peak memory {peak['rss_mb']:.0f} MB, spill peak {peak['spill_mb']:.0f} MB")
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
