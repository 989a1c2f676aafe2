"""Benchmark: the hub pipeline on an N-row agency CSV against the pyarrow floor on the same file.

    .venv/bin/python bench/pipeline.py --rows 1000000

The last line printed is one JSON object: rows, hub_seconds, floor_seconds, ratio, peak_rss_mb.
The hub runs in a child process so its peak memory is its own; imports are done before timing.
Each side is timed --repeat times (the hub on a fresh home each time) and the fastest counts, since a
shared 2-core machine only ever adds time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCE_ID = "bench_penduduk"


def floor_seconds(csv_path: Path, work: Path) -> float:
    """Read the CSV with pyarrow (all columns as text, as the hub does) and write Parquet: no checks."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from demo.agencies import DINSOS_HEADER

    start = time.perf_counter()
    table = pcsv.read_csv(
        csv_path,
        read_options=pcsv.ReadOptions(encoding="cp1252"),
        parse_options=pcsv.ParseOptions(delimiter=";"),
        convert_options=pcsv.ConvertOptions(column_types={h: pa.string() for h in DINSOS_HEADER}),
    )
    pq.write_table(table, work / "floor.parquet")
    return time.perf_counter() - start


def write_registry(csv_path: Path, registry: Path) -> None:
    """The benchmark source is the Dinsos registration pointed at the generated file."""
    import yaml

    spec = yaml.safe_load((ROOT / "connectors" / "registry" / "dinsos_dtks.yaml").read_text())
    spec["id"] = SOURCE_ID
    spec["options"]["path"] = str(csv_path)
    registry.mkdir(parents=True, exist_ok=True)
    (registry / f"{SOURCE_ID}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))


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
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kb / 1024, "result": result.as_dict()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("HOME", "REGISTRY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_hub(Path(args.child[0]), Path(args.child[1]))
        return

    from demo.agencies import write_population_csv

    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        work = Path(tmp)
        csv_path = work / "penduduk.csv"
        start = time.perf_counter()
        write_population_csv(csv_path, args.rows)
        print(f"generated {args.rows} rows ({csv_path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")
        floors = [floor_seconds(csv_path, work) for _ in range(args.repeat)]
        floor = min(floors)
        print(f"floor (pyarrow read + Parquet write): {', '.join(f'{f:.2f}' for f in floors)} s")
        write_registry(csv_path, work / "registry")
        runs = []
        for i in range(args.repeat):
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(work / f"home{i}"), str(work / "registry")],
                capture_output=True, text=True,
            )
            if done.returncode:
                sys.exit(f"hub run failed:\n{done.stderr[-4000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = runs[-1]["result"]
            print(f"hub: {runs[-1]['seconds']:.2f} s, rows in {r['rows_in']}, published {r['rows_published']}, "
                  f"quarantined {r['rows_quarantined']}, peak RSS {runs[-1]['peak_rss_mb']:.0f} MB")
        hub = min(runs, key=lambda run: run["seconds"])
        print(json.dumps({
            "rows": args.rows,
            "hub_seconds": round(hub["seconds"], 3),
            "floor_seconds": round(floor, 3),
            "ratio": round(hub["seconds"] / floor, 2),
            "peak_rss_mb": round(max(run["peak_rss_mb"] for run in runs), 1),
        }))


if __name__ == "__main__":
    main()
