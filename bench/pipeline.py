"""Benchmark: the hub pipeline on an N-row agency source against a floor that reads and writes it unchecked.

    .venv/bin/python bench/pipeline.py --rows 1000000
    .venv/bin/python bench/pipeline.py --rows 10000000 --source-kind sql --repeat 1 --no-dag

--source-kind file (default): Dinsos's CSV (cp1252, semicolons); the floor is a pyarrow read of the CSV and a
Parquet write. --source-kind sql: Disdukcapil's SQLite table, read incrementally; the floor is the sqlite3
module fetching every row in batches into Arrow and writing Parquet. --all-bad (file only): every row's NIK is
invalid, so the run quarantines every row (memory stays that of a clean run: quarantined rows are written as
they come).

Measured, each on a fresh home, in one run beside the floor:

- the pipeline's own work (`hub_seconds`, `ratio`, `peak_rss_mb`): `run_source` timed in a child process after
  its imports, the child's peak memory its own;
- `hub run SOURCE` as a whole process, start-up included (`hub_process_seconds`, `process_ratio`): through the
  home's warm runner (`hub runner`, which `hub up` starts), as the hub runs; and in its own cold process
  (HUB_RUNNER=off: `cold_process_seconds`, `cold_process_ratio`, `cold_peak_rss_mb`);
- a one-row source, the fixed cost: `tiny_run_seconds` and `tiny_peak_rss_mb` through the runner (the memory the
  run added: the `hub` process's peak plus the runner child's own pages at their sampled peak; the runner's own
  resident memory, paid once per home, is `runner_rss_mb`), `tiny_cold_seconds` and `tiny_cold_peak_rss_mb`
  in a cold process;
- the source's Airflow DAG run end to end under `hub up` (`dag_run_seconds`: from the REST API's trigger to
  the run's success, its tasks' times in `dag_tasks`); --no-dag leaves it out.

The last line printed is one JSON object of them all. Each is timed --repeat times and the fastest counts,
since a shared 2-core machine only ever adds time; memory is the highest seen.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCE_ID = "bench_penduduk"
HUB = Path(sys.executable).parent / "hub"


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


def prepare(kind: str, rows: int, work: Path, name: str = "main", all_bad: bool = False) -> tuple[Path, Path]:
    """Generate the agency system and register the benchmark source on it (Dinsos's or SIAK's registration) in
    a registry folder of its own: (the system, the registry). `all_bad` (file only): every row's NIK is made
    invalid, so every row is quarantined."""
    import yaml

    from demo.agencies import build_disdukcapil, write_population_csv

    if kind == "file":
        system, template = work / f"penduduk-{name}.csv", "dinsos_dtks.yaml"
        write_population_csv(system, rows)
        if all_bad:
            _spoil_niks(system)
    else:
        system, template = work / f"siak-{name}.db", "disdukcapil_siak.yaml"
        build_disdukcapil(system, rows)
    spec = yaml.safe_load((ROOT / "connectors" / "registry" / template).read_text())
    spec["id"] = SOURCE_ID
    spec["schedule"] = None  # runs when the benchmark asks, also under `hub up`
    spec["options"]["path" if kind == "file" else "url"] = str(system) if kind == "file" else f"sqlite:///{system}"
    registry = work / f"registry-{name}"
    registry.mkdir(parents=True, exist_ok=True)
    (registry / f"{SOURCE_ID}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return system, registry


def _spoil_niks(path: Path) -> None:
    """Prefix every record's NIK (the first field) with a letter: it breaks the NIK pattern, keeps it unique."""
    spoilt = path.with_suffix(".spoilt")
    with path.open(encoding="cp1252", newline="") as lines, spoilt.open("w", encoding="cp1252", newline="") as out:
        out.write(next(lines))
        for line in lines:
            out.write("X" + line)
    spoilt.replace(path)


def run_hub(home: Path, registry: Path) -> None:
    """Child process: time one run of the pipeline, print its figures as JSON."""
    import hub  # noqa: F401  (first, as in the `hub` command: it names Arrow's allocator before pyarrow loads)
    import great_expectations  # noqa: F401  (imports are not what is measured)
    import pyiceberg.catalog.sql  # noqa: F401
    from hub.pipeline import run_source
    from hub.settings import Settings

    settings = Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}", registry=registry)
    start = time.perf_counter()
    result = run_source(settings, SOURCE_ID)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "result": result.as_dict()}))


# Runs a command and writes its wall time and peak memory to a file. A small process of its own starts it, so that
# Linux's ru_maxrss (kept across exec) is the command's and not the benchmark's, which holds whole files.
_MEASURE = """
import json, os, subprocess, sys, time
start = time.perf_counter()
process = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
stderr = process.stderr.read()
_, status, usage = os.wait4(process.pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024,
               "status": os.waitstatus_to_exitcode(status), "stderr": stderr.decode(errors="replace")[-4000:]}, out)
"""


def whole_process(argv: list[str], env: dict, work: Path) -> dict:
    """`argv` timed as a whole process: seconds, peak_rss_mb; exits the benchmark if it fails."""
    report = work / "measured.json"
    subprocess.run([sys.executable, "-c", _MEASURE, str(report), *argv], env=env, check=True)
    measured = json.loads(report.read_text())
    if measured["status"]:
        sys.exit(f"{' '.join(argv)} failed:\n{measured['stderr']}")
    return measured


def hub_env(home: Path, registry: Path, work: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))}
    return {**env, "HUB_HOME": str(home), "HUB_REGISTRY": str(registry), "HUB_DATA_DIRS": str(work), **extra}


class Runner:
    """`hub runner` on a home, while in a `with` block: its resident memory and each run's own pages."""

    def __init__(self, env: dict, home: Path) -> None:
        self.env, self.log = env, home / "runner-bench.log"

    def __enter__(self) -> "Runner":
        home = Path(self.env["HUB_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen([str(HUB), "runner"], env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=self.log.open("w"))
        deadline = time.monotonic() + 300
        while "ready in" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"hub runner did not start:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.2)
        return self

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def last_private_mb(self) -> float:
        """The pages of its own the last run's child had at their sampled peak (`hub.runner`)."""
        found = re.findall(r"ended with status \d+ in [\d.]+ s, ([\d.]+) MB of its own", self.log.read_text())
        return float(found[-1])

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def process_runs(registry: Path, work: Path, repeat: int, name: str) -> dict:
    """`hub run SOURCE` as a whole process on fresh homes: through a warm runner, then cold."""
    warm, cold, runner_rss = [], [], 0.0
    for i in range(repeat):
        env = hub_env(work / f"{name}-warm{i}", registry, work)
        with Runner(env, work / f"{name}-warm{i}") as runner:
            measured = whole_process([str(HUB), "run", SOURCE_ID], env, work)
            measured["own_mb"] = measured["peak_rss_mb"] + runner.last_private_mb()
            runner_rss = max(runner_rss, runner.rss_mb())
        warm.append(measured)
        cold.append(whole_process([str(HUB), "run", SOURCE_ID],
                                  hub_env(work / f"{name}-cold{i}", registry, work, HUB_RUNNER="off"), work))
        print(f"{name} hub run: {warm[-1]['seconds']:.2f} s through the runner ({warm[-1]['own_mb']:.0f} MB of its "
              f"own), {cold[-1]['seconds']:.2f} s cold ({cold[-1]['peak_rss_mb']:.0f} MB peak)")
    return {"seconds": min(m["seconds"] for m in warm), "own_mb": max(m["own_mb"] for m in warm),
            "cold_seconds": min(m["seconds"] for m in cold), "cold_mb": max(m["peak_rss_mb"] for m in cold),
            "runner_rss_mb": runner_rss}


def dag_run(registry: Path, work: Path) -> dict:
    """`hub up` on a fresh home with the benchmark source (on demand only); once the runner and the DAG are up,
    its run triggered through Airflow's REST API: seconds from the trigger to success, and each task's."""
    import httpx

    home = work / "dag-home"
    env = hub_env(home, registry, work)
    port, airflow_port = _free_port(), _free_port()
    out = (work / "up.out").open("w")
    process = subprocess.Popen([str(HUB), "up", "--port", str(port), "--airflow-port", str(airflow_port)],
                               env=env, stdout=out, stderr=subprocess.STDOUT)
    airflow, dag_id = f"http://127.0.0.1:{airflow_port}", f"source__{SOURCE_ID}"
    try:
        headers = _wait(lambda: _airflow_headers(home, airflow), "Airflow's API", process)

        def api(method: str, path: str = "", **json) -> httpx.Response:
            # The API server answers in well under a second when idle, but some first answers on a busy 2-core
            # machine (the DAG processor and the scheduler starting beside it) took over httpx's 5 s.
            return httpx.request(method, f"{airflow}/api/v2/dags/{dag_id}{path}", headers=headers, timeout=60,
                                 json=json or None)

        _wait(lambda: api("GET").status_code == 200, "the source's DAG", process)
        _wait(lambda: "ready in" in _read(home / "logs" / "runner.log"), "the runner", process)
        run_id, start = _trigger(api, process)
        run = f"/dagRuns/{run_id}"
        state = _wait(lambda: (s := api("GET", run).json()["state"]) in ("success", "failed") and s,
                      "the DAG run", process, every=0.2)
        seconds = time.perf_counter() - start
        if state != "success":
            sys.exit(f"the DAG run failed; see {home / 'airflow' / 'logs'}")
        tasks = api("GET", f"{run}/taskInstances").json()["task_instances"]
        return {"seconds": seconds, "tasks": {t["task_id"]: round(t["duration"] or 0, 2) for t in tasks}}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
        out.close()


def _trigger(api, process: subprocess.Popen) -> tuple[str, float]:
    """The new run's id and the moment the accepted trigger was sent. Airflow can refuse a trigger for a moment after
    it lists the DAG (the trigger refuses a DAG marked stale, which the DAG's own GET still answers; the scheduler
    beside it may hold the SQLite database): the trigger is sent again each second, and a refusal that lasts two
    minutes is reported with its answer."""
    deadline = time.monotonic() + 120
    while True:
        start = time.perf_counter()
        answer = api("POST", "/dagRuns", logical_date=None)
        if answer.status_code == 200:
            return answer.json()["dag_run_id"], start
        if time.monotonic() > deadline or process.poll() is not None:
            sys.exit(f"Airflow refused the DAG's trigger: {answer.status_code} {answer.text[:500]}")
        time.sleep(1)


def _airflow_headers(home: Path, airflow: str) -> dict | None:
    import httpx

    try:
        passwords = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
        user, password = next(iter(passwords.items()))
        token = httpx.post(f"{airflow}/auth/token", json={"username": user, "password": password}, timeout=10)
    except (OSError, ValueError, StopIteration, httpx.TransportError):
        return None
    return {"Authorization": f"Bearer {token.json()['access_token']}"} if token.status_code in (200, 201) else None


def _wait(condition, what: str, process: subprocess.Popen, timeout: float = 600, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"hub up stopped while waiting for {what}")
        try:
            found = condition()
        except Exception:  # noqa: BLE001  (not up yet)
            found = None
        if found:
            return found
        time.sleep(every)
    sys.exit(f"waited {timeout:.0f} s for {what}")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    parser.add_argument("--no-dag", action="store_true", help="leave out the Airflow DAG run under `hub up`")
    parser.add_argument("--all-bad", action="store_true",
                        help="every row's NIK invalid (file source): every row quarantined")
    parser.add_argument("--child", nargs=2, metavar=("HOME", "REGISTRY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_hub(Path(args.child[0]), Path(args.child[1]))
        return

    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        if args.all_bad and args.source_kind != "file":
            sys.exit("--all-bad is for the file source")
        system, registry = prepare(args.source_kind, args.rows, work, all_bad=args.all_bad)
        print(f"generated {args.rows} rows ({system.stat().st_size / 1e6:.1f} MB, {args.source_kind}) "
              f"in {time.perf_counter() - start:.1f} s")
        floors = [floor_seconds(args.source_kind, system, work) for _ in range(args.repeat)]
        floor = min(floors)
        print(f"floor (read unchecked + Parquet write): {', '.join(f'{f:.2f}' for f in floors)} s")
        runs = []
        for i in range(args.repeat):
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(work / f"home{i}"), str(registry)],
                capture_output=True, text=True,
                # The generated system is shared by the runs, outside their homes: a folder the hub may read.
                env={**os.environ, "HUB_DATA_DIRS": str(work)},
            )
            if done.returncode:
                sys.exit(f"hub run failed:\n{done.stderr[-4000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = runs[-1]["result"]
            print(f"pipeline: {runs[-1]['seconds']:.2f} s, rows in {r['rows_in']}, published {r['rows_published']}, "
                  f"quarantined {r['rows_quarantined']}, peak RSS {runs[-1]['peak_rss_mb']:.0f} MB")
        hub = min(runs, key=lambda run: run["seconds"])
        whole = process_runs(registry, work, args.repeat, "source")
        _, tiny_registry = prepare(args.source_kind, 1, work, "tiny")
        tiny = process_runs(tiny_registry, work, args.repeat, "one-row")
        dag = None if args.no_dag else dag_run(registry, work)
        if dag:
            print(f"DAG run, trigger to success: {dag['seconds']:.2f} s; tasks {dag['tasks']}")
        print(json.dumps({
            "source_kind": args.source_kind,
            "rows": args.rows,
            "all_bad": args.all_bad,
            "hub_seconds": round(hub["seconds"], 3),
            "floor_seconds": round(floor, 3),
            "ratio": round(hub["seconds"] / floor, 2),
            "peak_rss_mb": round(max(run["peak_rss_mb"] for run in runs), 1),
            "hub_process_seconds": round(whole["seconds"], 3),
            "process_ratio": round(whole["seconds"] / floor, 2),
            "process_own_mb": round(whole["own_mb"], 1),
            "cold_process_seconds": round(whole["cold_seconds"], 3),
            "cold_process_ratio": round(whole["cold_seconds"] / floor, 2),
            "cold_peak_rss_mb": round(whole["cold_mb"], 1),
            "dag_run_seconds": round(dag["seconds"], 2) if dag else None,
            "dag_tasks": dag["tasks"] if dag else None,
            "tiny_run_seconds": round(tiny["seconds"], 3),
            "tiny_peak_rss_mb": round(tiny["own_mb"], 1),
            "tiny_cold_seconds": round(tiny["cold_seconds"], 3),
            "tiny_cold_peak_rss_mb": round(tiny["cold_mb"], 1),
            "runner_rss_mb": round(max(whole["runner_rss_mb"], tiny["runner_rss_mb"]), 1),
        }))


if __name__ == "__main__":
    main()
