"""Benchmark: the integration of many sources of one standard into its integrated dataset.

    .venv/bin/python bench/integrate.py --sources 10 --rows 10000000

Generates one Dinsos-format CSV of rows/sources people and registers `--sources` file sources on it (each its own
source of `penduduk`), publishes each through the warm runner (`hub runner`, `hub run` without its integration),
then times `hub integrate penduduk` as a whole process through the runner: its seconds, and its memory (the
`hub` process's peak plus the runner child's own pages at their sampled peak). Then one source publishes a new
version (its file less its last record) and `hub integrate penduduk` is timed again: what a source's run costs the
integration once the others' parts are written (`reintegrate_seconds`). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import HUB, ROOT, Runner, hub_env, whole_process  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in all, across the sources")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from demo.agencies import write_population_csv

    with tempfile.TemporaryDirectory(prefix="hub-integrate-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        each = args.rows // args.sources
        system = work / "penduduk.csv"
        write_population_csv(system, each)
        registry = work / "registry"
        registry.mkdir()
        template = yaml.safe_load((ROOT / "connectors" / "registry" / "dinsos_dtks.yaml").read_text())
        ids = [f"kelurahan_{i:02d}" for i in range(1, args.sources + 1)]
        for source_id in ids:
            spec = {**template, "id": source_id, "schedule": None, "options": {**template["options"],
                                                                              "path": str(system)}}
            (registry / f"{source_id}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
        print(f"generated {each} rows for each of {args.sources} sources in {time.perf_counter() - start:.1f} s")
        env = hub_env(work / "home", registry, work)
        with Runner(env, work / "home") as runner:
            start = time.perf_counter()
            for source_id in ids:  # the runner's stage and publish, without hub run's integration
                whole_process([sys.executable, "-c", _PUBLISH, source_id, "bench-1"], env, work)
            print(f"published {args.sources} sources in {time.perf_counter() - start:.1f} s")
            measured = whole_process([str(HUB), "integrate", "penduduk"], env, work)
            own = measured["peak_rss_mb"] + runner.last_private_mb()
            print(f"integrate: {measured['seconds']:.2f} s, {own:.0f} MB of its own")

            changed = work / "penduduk-changed.csv"
            lines = system.read_bytes().splitlines(keepends=True)
            changed.write_bytes(b"".join(lines[:-1]))
            spec = yaml.safe_load((registry / f"{ids[0]}.yaml").read_text())
            spec["options"]["path"] = str(changed)
            (registry / f"{ids[0]}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
            whole_process([sys.executable, "-c", _PUBLISH, ids[0], "bench-2"], env, work)
            again = whole_process([str(HUB), "integrate", "penduduk"], env, work)
            again_own = again["peak_rss_mb"] + runner.last_private_mb()
            runner_rss = runner.rss_mb()
        print(f"integrate after {ids[0]} published again: {again['seconds']:.2f} s, {again_own:.0f} MB of its own")
        print(json.dumps({"sources": args.sources, "rows": each * args.sources,
                          "integrate_seconds": round(measured["seconds"], 3), "integrate_own_mb": round(own, 1),
                          "reintegrate_seconds": round(again["seconds"], 3), "reintegrate_own_mb": round(again_own, 1),
                          "runner_rss_mb": round(runner_rss, 1)}))


# Stage and publish one source in a child of the warm runner (`hub run` would integrate after each).
_PUBLISH = """
import sys
from hub import runner
from hub.settings import load_settings
settings = load_settings()
run_id = f"{sys.argv[2]}-{sys.argv[1]}"
runner.call(settings.home, "stage", sys.argv[1], run_id)
runner.call(settings.home, "publish", sys.argv[1], run_id)
"""


if __name__ == "__main__":
    main()
