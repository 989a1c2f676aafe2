"""Benchmark: where the start-up of `hub run` goes, from `python -X importtime`, on a one-row source.

    .venv/bin/python bench/imports.py

Runs `hub run` on a fresh home twice: in its own cold process (HUB_RUNNER=off), then through a warm runner
(`hub runner`), each under `python -X importtime`. Prints, for each, the whole process's seconds, the total
import time, the number of modules imported and the ten top-level imports that took longest (cumulative); the
last line is one JSON object of those figures.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import SOURCE_ID, Runner, hub_env, prepare  # noqa: E402

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def profile(env: dict, work: Path) -> dict:
    """`hub run` under -X importtime: seconds, import seconds, modules, the slowest top-level imports."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "hub.cli", "run", SOURCE_ID], env=env,
                          capture_output=True, text=True, cwd=work)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"hub run failed:\n{done.stderr[-4000:]}")
    imports = [(int(own), int(total), len(indent), name) for own, total, indent, name in _LINE.findall(done.stderr)]
    top = sorted(((total, name) for _, total, depth, name in imports if depth == 1), reverse=True)[:10]
    return {"seconds": round(seconds, 2), "import_seconds": round(sum(own for own, *_ in imports) / 1e6, 2),
            "modules": len(imports), "slowest": [[name, round(total / 1e6, 3)] for total, name in top]}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hub-imports-") as tmp:
        work = Path(tmp)
        _, registry = prepare("file", 1, work, "tiny")
        cold = profile(hub_env(work / "cold", registry, work, HUB_RUNNER="off"), work)
        env = hub_env(work / "warm", registry, work)
        with Runner(env, work / "warm"):
            warm = profile(env, work)
    for name, figures in (("cold process", cold), ("through the runner", warm)):
        print(f"{name}: {figures['seconds']} s in all, {figures['import_seconds']} s importing "
              f"{figures['modules']} modules; slowest:")
        for module, seconds in figures["slowest"]:
            print(f"  {seconds:7.3f} s  {module}")
    print(json.dumps({"cold": cold, "warm": warm}))


if __name__ == "__main__":
    main()
