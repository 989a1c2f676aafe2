"""A source read inside an agency's own network, on Airflow's Edge executor: its `fetch` task runs on an Edge worker
that calls out to Airflow's API server only and relays the records through it (hub.relay); `stage`, `publish` and
every other task run on the hub's LocalExecutor. The first tests check the relay and the DAG without Airflow's
services; the last ones start `hub up --demo` and one `airflow edge worker` of its own, as an agency would."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from _served import HUB, free_port, hub_env
from _up import stop_leaves_nothing, wait
from hub.errors import ConfigError, FatalSourceError, HubError
from hub.settings import ROOT, Settings

SOURCE, QUEUE, WORKER = "dinkes_faskes", "dinkes", "dinkes-edge-1"
EDGE_EXECUTORS = "LocalExecutor,airflow.providers.edge3.executors.EdgeExecutor"
# Airflow purges an Edge job 5 minutes after it succeeded: kept here until the test has read it.
EDGE_HUB_ENV = {"AIRFLOW__CORE__EXECUTOR": EDGE_EXECUTORS, "AIRFLOW__EDGE__API_ENABLED": "True",
                "AIRFLOW__EDGE__JOB_SUCCESS_PURGE": "120"}
# The agency's machine is given no catalog and no Airflow metadata database it could use: any attempt to open
# one fails at once (Airflow's CLI tries to note `edge worker` in its `log` table, and only warns that it cannot).
NO_CATALOG = "postgresql+psycopg2://edge@127.0.0.1:9/no_catalog_on_the_agency_machine"
NO_AIRFLOW_DB = "postgresql+psycopg2://edge@127.0.0.1:9/no_airflow_database_on_the_agency_machine"


def _mark_edge(registry: Path, source_id: str = SOURCE, queue: str = QUEUE) -> None:
    path = registry / f"{source_id}.yaml"
    text = path.read_text(encoding="utf-8")
    assert "\nkind: " in text
    path.write_text(text.replace("\nkind: ", f"\nruns_on: {{edge_queue: {queue}}}\nkind: ", 1), encoding="utf-8")


# --- the relay, without Airflow ---------------------------------------------------------------------------


@pytest.fixture
def demo_home(tmp_path) -> Settings:
    from demo.agencies import build

    build(tmp_path, people_count=480, dinsos_count=120)
    return Settings(home=tmp_path, catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                    registry=ROOT / "connectors" / "registry")


def _read_elsewhere(settings: Settings, source_id: str, cursor=None, batch_rows: int | None = None) -> dict:
    """What a fetch task relays: the source read by its connector, as the Edge worker reads it."""
    import dataclasses

    from hub.pipeline import find_source
    from hub.relay import fetch

    source = find_source(settings, source_id)
    if batch_rows:
        source = dataclasses.replace(source, options={**source.options, "batch_rows": batch_rows})
    return json.loads(json.dumps(fetch(source, cursor)))  # as the XCom travels: JSON


def test_relayed_records_stage_and_publish_as_records_read_by_the_hub(demo_home, tmp_path):
    from catalog.db import SourceState, session
    from hub.pipeline import publish, run_source, stage

    # DTKS has rows the connector cannot split (rejected), in several batches.
    relayed = _read_elsewhere(demo_home, "dinsos_dtks", batch_rows=40)
    assert len(relayed["batches"]) == 4 and relayed["rows"] == 125
    staged = stage(demo_home, "dinsos_dtks", "edge-run", relayed=relayed)
    here = Settings(home=demo_home.home, catalog_url=f"sqlite:///{tmp_path / 'other.db'}", registry=demo_home.registry)
    direct = run_source(here, "dinsos_dtks")
    result = publish(demo_home, "dinsos_dtks", "edge-run")
    assert (result.rows_in, result.rows_published, result.rows_quarantined) == \
        (direct.rows_in, direct.rows_published, direct.rows_quarantined) == (125, 119, 6)
    assert staged["validation"]["reasons"] == {"nik:duplicate_key": 2, "nik:pattern": 1, "nik:scientific_notation": 1,
                                               "tanggal_lahir:unparseable_date": 1, "jenis_kelamin:unmapped_code": 1}
    # An incremental source: the cursor the hub hands to the fetch, and the one its records move it to.
    relayed = _read_elsewhere(demo_home, "disdukcapil_siak", cursor=None)
    stage(demo_home, "disdukcapil_siak", "edge-siak", relayed=relayed)
    publish(demo_home, "disdukcapil_siak", "edge-siak")
    with session(demo_home.catalog_url) as s:
        cursor = s.get(SourceState, "disdukcapil_siak").cursor
    assert cursor == relayed["batches"][-1]["cursor"] and cursor is not None
    again = _read_elsewhere(demo_home, "disdukcapil_siak", cursor=cursor)
    assert again["rows"] == 0 and again["cursor"] == cursor


def test_relayed_records_that_were_altered_or_are_another_sources_are_refused(demo_home):
    import base64

    from hub.pipeline import stage

    relayed = _read_elsewhere(demo_home, "dinsos_dtks")
    altered = json.loads(json.dumps(relayed))
    data = bytearray(base64.b64decode(altered["batches"][0]["parquet"]))
    data[len(data) // 2] ^= 1
    altered["batches"][0]["parquet"] = base64.b64encode(bytes(data)).decode()
    with pytest.raises(HubError, match="do not match their digest"):
        stage(demo_home, "dinsos_dtks", "altered", relayed=altered)
    assert not (demo_home.staging / "dinsos_dtks" / "altered").exists()
    with pytest.raises(ConfigError, match="relayed the records of 'dinsos_dtks'"):
        stage(demo_home, "dinsos_bansos", "mixed-up", relayed=relayed)
    with pytest.raises(HubError, match="in the format"):
        stage(demo_home, "dinsos_dtks", "old-worker", relayed={"rows": 3})


def test_a_fetch_larger_than_the_relay_limit_stops_naming_the_setting_and_the_remedy(demo_home, monkeypatch):
    from hub.pipeline import find_source
    from hub.relay import fetch, max_bytes

    monkeypatch.setenv("HUB_EDGE_RELAY_MAX_MB", "0.001")
    assert max_bytes() == 1048
    with pytest.raises(FatalSourceError) as info:
        fetch(find_source(demo_home, "disdukcapil_siak"))
    assert "HUB_EDGE_RELAY_MAX_MB" in str(info.value) and "XComObjectStorageBackend" in str(info.value)
    monkeypatch.setenv("HUB_EDGE_RELAY_MAX_MB", "lots")
    with pytest.raises(ConfigError, match="HUB_EDGE_RELAY_MAX_MB must be a positive number"):
        max_bytes()


def test_a_failed_fetch_is_recorded_as_the_error_it_reported():
    from hub.errors import RetriableSourceError
    from hub.relay import describe_failure, failure_error

    reported = describe_failure(RetriableSourceError("source x: 10.0.0.5 refused the connection"))
    error = failure_error("x", json.loads(json.dumps(reported)))
    assert type(error) is RetriableSourceError and str(error) == "source x: 10.0.0.5 refused the connection"
    # Another library's error may quote what it read: only its class is kept.
    error = failure_error("x", describe_failure(ValueError("NIK 3271012345678901")))
    assert type(error) is HubError and "3271" not in str(error) and "ValueError" in str(error)
    assert "relayed no records" in str(failure_error("x", None))


def _dag_tasks(registry: Path, home: Path, executors: str | None) -> tuple[dict, str]:
    """The tasks (executor, queue, trigger rule) of each source DAG the DAG file builds, and its log, in a
    process whose Airflow has `executors`."""
    code = ("import json, runpy; d = runpy.run_path('dags/hub_dags.py');"
            "print(json.dumps({k: [[t.task_id, t.executor, t.queue, getattr(t.trigger_rule, 'value', t.trigger_rule)] for t in v.topological_sort()]"
            " for k, v in d.items() if k.startswith('source__')}))")
    env = hub_env(home, {"HUB_REGISTRY": str(registry), "HUB_ROOT": str(ROOT), "AIRFLOW_HOME": str(home / "airflow"),
                         "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg"), "HUB_DEMO_URL": "http://127.0.0.1:9",
                         **({"AIRFLOW__CORE__EXECUTOR": executors} if executors else {})})
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


def test_the_source_dag_fetches_on_the_edge_queue_and_stages_here(tmp_path):
    registry = tmp_path / "registry"
    shutil.copytree(ROOT / "connectors" / "registry", registry)
    _mark_edge(registry)
    _mark_edge(registry, "disdukcapil_siak", "disdukcapil")
    dags, _ = _dag_tasks(registry, tmp_path, EDGE_EXECUTORS)
    assert dags[f"source__{SOURCE}"] == [
        ["fetch", "EdgeExecutor", QUEUE, "all_success"], ["stage", None, "default", "all_done"],
        ["publish", None, "default", "all_success"], ["deliver", None, "default", "all_done_setup_success"]]
    # An incremental source: its committed cursor is read here and handed to the fetch.
    assert [t[:3] for t in dags["source__disdukcapil_siak"]] == [
        ["cursor", None, "default"], ["fetch", "EdgeExecutor", "disdukcapil"], ["stage", None, "default"],
        ["publish", None, "default"], ["deliver", None, "default"]]
    assert [t[0] for t in dags["source__dinsos_dtks"]] == ["stage", "publish", "deliver"]
    # Without the Edge executor in Airflow's configuration, those two get no DAG, with the reason; the rest run.
    dags, log = _dag_tasks(registry, tmp_path, None)
    assert f"source__{SOURCE}" not in dags and "source__disdukcapil_siak" not in dags and len(dags) == 6
    assert f"registration {registry / (SOURCE + '.yaml')} gets no DAG: field runs_on/edge_queue" in log
    assert "does not list the Edge executor" in log


# --- the hub and one Edge worker, running -------------------------------------------------------------------


def _airflow(home: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(home / "airflow" / "airflow.db", timeout=30) as db:
        return db.execute(sql, params).fetchall()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _without(folder: Path) -> list[str]:
    """The start of a command line that runs the rest with `folder` replaced by an empty one, as another machine
    would see it: a mount namespace of its own, with an empty tmpfs over the folder (when the tests may make one,
    as root; otherwise the worker is only given another home and a catalog URL nothing can open)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return []
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode:
        return []
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o size=1m,mode=0 hub-home-hidden "$0" && exec "$@"', str(folder)]


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """`hub up --demo` with the Edge executor, dinkes_faskes registered to run on queue `dinkes`, and one Edge
    worker serving that queue from its own home (no catalog, warehouse or staging folder of the hub), once the
    first runs are over."""
    home = tmp_path_factory.mktemp("edge-hub")
    registry = home / "registry"
    shutil.copytree(ROOT / "connectors" / "registry", registry)
    _mark_edge(registry)
    port, airflow_port = free_port(), free_port()
    api = f"http://127.0.0.1:{airflow_port}"
    env = hub_env(home, {"HUB_REGISTRY": str(registry), **EDGE_HUB_ENV,
                         "AIRFLOW__EDGE__API_URL": f"{api}/edge_worker/v1/rpcapi"})
    out = (home / "up.out").open("w")
    started = time.monotonic()
    process = subprocess.Popen([HUB, "up", "--demo", "--people", "480", "--port", str(port),
                                "--airflow-port", str(airflow_port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    agency = Path(tempfile.mkdtemp(prefix="edge-agency-"))  # not under the hub's home, nor pytest's 0700 folder
    worker, worker_log = None, agency / "worker.log"
    timings = {}
    try:
        wait("Airflow's API server", lambda: process.poll() is not None or _answers(f"{api}/api/v2/monitor/health"),
              300)
        assert process.poll() is None, (home / "up.out").read_text()[-5000:]
        timings["api server up"] = time.monotonic() - started
        demo_url = json.loads((home / "run" / "up.json").read_text())["demo_url"]
        # What the agency's machine is given: the project (code, DAG file, standards), its own copy of the
        # registry, the Edge API's address and the shared JWT secret; nothing else of the hub.
        os.chmod(agency, 0o755)
        shutil.copytree(registry, agency / "registry")
        jwt_secret = (home / "secrets" / "airflow-jwt.key").read_text().strip()
        worker_env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW", "PYTHON"))}
        worker_env.update({
            "HOME": str(agency), "HUB_HOME": str(agency / "home"), "HUB_REGISTRY": str(agency / "registry"),
            "HUB_CATALOG_URL": NO_CATALOG, "HUB_DEMO_URL": demo_url, "PYTHONDONTWRITEBYTECODE": "1",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": NO_AIRFLOW_DB,
            "AIRFLOW__CORE__EXECUTOR": EDGE_EXECUTORS, "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
            "AIRFLOW__EDGE__API_URL": f"{api}/edge_worker/v1/rpcapi",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__EDGE__JOB_POLL_INTERVAL": "1"})
        hidden = _without(home)
        with worker_log.open("w") as log:
            worker = subprocess.Popen([*hidden, HUB, "airflow", "edge", "worker", "--queues", QUEUE, "--edge-hostname",
                                       WORKER, "--concurrency", "1"], cwd=agency, env=worker_env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        timings["worker started"] = time.monotonic() - started
        events = home / "logs" / "hub-up.log"
        wait("the first runs to finish", lambda: process.poll() is not None or worker.poll() is not None or (
            events.exists() and "first runs finished" in events.read_text()), 1200, 3)
        assert process.poll() is None, (home / "up.out").read_text()[-5000:]
        assert worker.poll() is None, worker_log.read_text()[-5000:]
        timings["first wave finished"] = time.monotonic() - started
        yield {"home": home, "process": process, "worker": worker, "worker_log": worker_log, "agency": agency,
               "timings": timings, "env": env, "hidden": bool(hidden), "worker_env": worker_env}
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
        out.close()
        shutil.rmtree(agency, ignore_errors=True)


def test_the_edge_source_is_published_with_the_others(edge):
    home = edge["home"]
    printed = (home / "up.out").read_text()
    for source in sorted(p.stem for p in (ROOT / "connectors" / "registry").glob("*.yaml")):
        assert any(line.startswith(source + " ") and line.rstrip().endswith("published")
                   for line in printed.splitlines()), printed[-4000:]
    with sqlite3.connect(home / "catalog.db") as db:
        runs = db.execute("SELECT status, rows_in, rows_published FROM hub_runs WHERE dataset_id = ?",
                          (SOURCE,)).fetchall()
    assert len(runs) == 1 and runs[0][0] == "published" and runs[0][2] > 0, runs
    assert "integrated dataset fasilitas_kesehatan: " in printed
    assert not _airflow(home, "SELECT dag_id, run_id FROM dag_run WHERE state = 'failed'")
    print("measured:", ", ".join(f"{what} after {seconds:.0f} s" for what, seconds in edge["timings"].items()))


def test_fetch_ran_on_the_edge_worker_and_every_other_task_on_the_local_executor(edge):
    home = edge["home"]
    dag_id = f"source__{SOURCE}"
    tasks = {task: (executor, queue, hostname, state, duration) for task, executor, queue, hostname, state, duration
             in _airflow(home, "SELECT task_id, executor, queue, hostname, state, duration FROM task_instance "
                               "WHERE dag_id = ?", dag_id)}
    assert tasks["fetch"][:4] == ("EdgeExecutor", QUEUE, WORKER, "success"), tasks
    for task in ("stage", "publish", "deliver"):
        executor, queue, hostname, state, _ = tasks[task]
        assert (executor or "LocalExecutor", queue, state) == ("LocalExecutor", "default", "success"), tasks
        assert hostname != WORKER
    others = _airflow(home, "SELECT dag_id, task_id, executor, queue, hostname FROM task_instance "
                            "WHERE NOT (dag_id = ? AND task_id = 'fetch')", dag_id)
    assert len(others) > 20
    assert {(executor or "LocalExecutor", queue) for _, _, executor, queue, _ in others} == {("LocalExecutor", "default")}
    assert WORKER not in {hostname for *_, hostname in others}
    # Airflow's Edge tables: the one job the worker took, and the worker with its queue.
    assert _airflow(home, "SELECT dag_id, task_id, queue, edge_worker, state FROM edge_job") == [
        (dag_id, "fetch", QUEUE, WORKER, "success")]
    (queues,) = _airflow(home, "SELECT queues FROM edge_worker WHERE worker_name = ?", WORKER)[0]
    assert ast.literal_eval(queues) == [QUEUE]  # Airflow keeps the list as its Python text
    # `hub status` shows the worker, its queue and its heartbeat.
    done = subprocess.run([HUB, "status", "--json"], env=edge["env"], capture_output=True, text=True, timeout=120)
    (shown,) = json.loads(done.stdout)["edge_workers"]
    assert shown["name"] == WORKER and shown["queues"] == [QUEUE] and shown["state"] not in ("offline", "unknown")
    assert shown["last_heartbeat"]
    # Its log came to the hub through the API server; the relayed records left Airflow's database after the run.
    logs = list((home / "airflow" / "logs").glob(f"dag_id={dag_id}/run_id=*/task_id=fetch/attempt=1.log"))
    text = logs[0].read_text() if logs else ""
    assert "relaying" in text and "Returned value was" not in text and "'batches'" not in text, logs
    assert not _airflow(home, "SELECT 1 FROM xcom WHERE dag_id = ? AND task_id = 'fetch'", dag_id)
    # Dinkes's API was read once, page by page, with the key of the connection dinkes_api: by the fetch; `stage`
    # took the relayed records and read nothing.
    requests = [line.split(" GET ", 1)[1] for line in (home / "logs" / "demo-systems.log").read_text().splitlines()
                if " GET /dinkes/api/v1/faskes" in line]
    assert requests and len(requests) == len(set(requests)) and all(r.endswith(" 200 key=ok") for r in requests)
    print(f"fetch on the Edge worker took {tasks['fetch'][4]:.1f} s, stage here {tasks['stage'][4]:.1f} s")


def test_the_edge_worker_used_no_catalog_warehouse_staging_or_metadata_database_of_the_hub(edge):
    agency, home = edge["agency"], edge["home"]
    worker_home = agency / "home"
    # It had its own, empty home, and a catalog and an Airflow database URL nothing could open (the fetch
    # succeeded all the same); none of the hub's state appeared in its home.
    assert (worker_home / "airflow").is_dir()
    for made in ("catalog.db", "warehouse", "staging", "airflow/airflow.db"):
        assert not (worker_home / made).exists(), made
    assert "Failed to log action" in edge["worker_log"].read_text()  # Airflow's CLI tried, and went on
    # The API key of the Airflow connection dinkes_api came to the fetch through the Execution API: the worker
    # has it in no variable and no database of its own.
    assert not [k for k in edge["worker_env"] if k.startswith("AIRFLOW_CONN_") or "SECRET" in k and "JWT" not in k]
    assert "relaying" in "".join(p.read_text(errors="replace") for p in (worker_home / "airflow" / "logs").rglob("*.log"))
    if edge["hidden"]:  # the hub's home was an empty folder to it
        mounts = Path(f"/proc/{edge['worker'].pid}/mountinfo").read_text().splitlines()
        assert any(f" {home} " in line and "hub-home-hidden" in line for line in mounts), mounts
    else:
        print("the hub's home was not hidden from the Edge worker (needs root and unshare)")
    # The worker's own log: it took the job from the API server, on the queue it serves.
    assert "Starting worker with API endpoint http://127.0.0.1:" in edge["worker_log"].read_text()


def test_sigterm_stops_the_worker_and_the_hub_with_nothing_left(edge):
    worker, process, home = edge["worker"], edge["process"], edge["home"]
    components = json.loads((home / "run" / "up.json").read_text())["components"]
    stopped = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, edge["worker_log"].read_text()[-3000:]
    with pytest.raises(ProcessLookupError):
        os.killpg(worker.pid, 0)  # nothing of its session (task processes) is left
    assert _airflow(home, "SELECT state FROM edge_worker WHERE worker_name = ?", WORKER) == [("offline",)]
    stop_leaves_nothing(process, components)
    print(f"the worker and the hub stopped {time.monotonic() - stopped:.1f} s after SIGTERM")
