"""Benchmark: the hub pipeline on an N-row agency source against a floor that reads and writes it unchecked.

    .venv/bin/python bench/pipeline.py --rows 1000000
    .venv/bin/python bench/pipeline.py --rows 10000000 --source-kind sql --repeat 1

--source-kind file (default): Dinsos's CSV (cp1252, semicolons); the floor is a pyarrow read of the CSV and a
Parquet write. --source-kind sql: Disdukcapil's SQLite table, read incrementally; the floor is the sqlite3
module fetching every row in batches into Arrow and writing Parquet.

The last line printed is one JSON object: rows, hub_seconds, floor_seconds, ratio, peak_rss_mb.
The hub runs in a child process so its peak memory is its own; imports are done before timing.
Each side is timed --repeat times (the hub on a fresh home each time) and the fastest counts, since a
shared 2-core machine only ever adds time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCE_ID = "bench_penduduk"


def floor_seconds(kind: str, system: Path, work: Path) -> float:
    """Read the source with no checks (all columns as text, as the hub reads them) and write Parquet."""
    import sqlite3

    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from demo.agencies import DINSOS_HEADER

    start = time.perf_counter()
    if kind == "file":
        table = pcsv.read_csv(
            system,
            read_options=pcsv.ReadOptions(encoding="cp1252"),
            parse_options=pcsv.ParseOptions(delimiter=";"),
            convert_options=pcsv.ConvertOptions(column_types={h: pa.string() for h in DINSOS_HEADER}),
        )
        pq.write_table(table, work / "floor.parquet")
    else:
        with sqlite3.connect(system) as conn:
            cursor = conn.execute("SELECT * FROM penduduk ORDER BY updated_at")
            names = [d[0] for d in cursor.description]
            schema = pa.schema([(n, pa.string()) for n in names])
            with pq.ParquetWriter(work / "floor.parquet", schema) as writer:
                while rows := cursor.fetchmany(250_000):
                    writer.write_table(pa.Table.from_arrays([pa.array(c, pa.string()) for c in zip(*rows)], schema=schema))
    return time.perf_counter() - start


def prepare(kind: str, rows: int, work: Path) -> Path:
    """Generate the agency system and register the benchmark source on it (Dinsos's or SIAK's registration)."""
    import yaml

    from demo.agencies import build_disdukcapil, write_population_csv

    if kind == "file":
        system, template = work / "penduduk.csv", "dinsos_dtks.yaml"
        write_population_csv(system, rows)
    else:
        system, template = work / "siak.db", "disdukcapil_siak.yaml"
        build_disdukcapil(system, rows)
    spec = yaml.safe_load((ROOT / "connectors" / "registry" / template).read_text())
    spec["id"] = SOURCE_ID
    spec["options"]["path" if kind == "file" else "url"] = str(system) if kind == "file" else f"sqlite:///{system}"
    registry = work / "registry"
    registry.mkdir(parents=True, exist_ok=True)
    (registry / f"{SOURCE_ID}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return system


def run_hub(home: Path, registry: Path) -> None:
    """Child process: time one run of the pipeline, print its figures as JSON."""
    import great_expectations  # noqa: F401  (imports are not what is measured)
    import pyiceberg.catalog.sql  # noqa: F401
    from hub.pipeline import run_source
    from hub.settings import Settings

    settings = Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}", registry=registry)
    start = time.perf_counter()
    result = run_source(settings, SOURCE_ID)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "result": result.as_dict()}))


def peak_rss_mb() -> float:
    """This process's own peak memory. Linux's ru_maxrss survives exec, so a child started by a big parent
    (the floor holds a whole file) would report the parent's; VmHWM belongs to the running program alone."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source-kind", choices=["file", "sql"], default="file")
    parser.add_argument("--child", nargs=2, metavar=("HOME", "REGISTRY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_hub(Path(args.child[0]), Path(args.child[1]))
        return

    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        system = prepare(args.source_kind, args.rows, work)
        print(f"generated {args.rows} rows ({system.stat().st_size / 1e6:.1f} MB, {args.source_kind}) "
              f"in {time.perf_counter() - start:.1f} s")
        floors = [floor_seconds(args.source_kind, system, work) for _ in range(args.repeat)]
        floor = min(floors)
        print(f"floor (read unchecked + Parquet write): {', '.join(f'{f:.2f}' for f in floors)} s")
        runs = []
        for i in range(args.repeat):
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(work / f"home{i}"), str(work / "registry")],
                capture_output=True, text=True,
                # The generated system is shared by the runs, outside their homes: a folder the hub may read.
                env={**os.environ, "HUB_DATA_DIRS": str(work)},
            )
            if done.returncode:
                sys.exit(f"hub run failed:\n{done.stderr[-4000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = runs[-1]["result"]
            print(f"hub: {runs[-1]['seconds']:.2f} s, rows in {r['rows_in']}, published {r['rows_published']}, "
                  f"quarantined {r['rows_quarantined']}, peak RSS {runs[-1]['peak_rss_mb']:.0f} MB")
        hub = min(runs, key=lambda run: run["seconds"])
        print(json.dumps({
            "source_kind": args.source_kind,
            "rows": args.rows,
            "hub_seconds": round(hub["seconds"], 3),
            "floor_seconds": round(floor, 3),
            "ratio": round(hub["seconds"] / floor, 2),
            "peak_rss_mb": round(max(run["peak_rss_mb"] for run in runs), 1),
        }))


if __name__ == "__main__":
    main()
