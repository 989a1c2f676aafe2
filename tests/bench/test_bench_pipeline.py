"""The benchmark script keeps working: a tiny run prints its figures as one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hub.settings import ROOT


@pytest.mark.parametrize("kind", ["file", "sql"])
def test_benchmark_prints_its_figures(kind):
    dag = [] if kind == "file" else ["--no-dag"]  # the DAG run under `hub up` once
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "pipeline.py"), "--rows", "3000", "--repeat", "1",
                           "--source-kind", kind, *dag], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(figures) == {
        "source_kind", "rows", "all_bad", "hub_seconds", "floor_seconds", "ratio", "peak_rss_mb", "hub_process_seconds",
        "process_ratio", "process_own_mb", "cold_process_seconds", "cold_process_ratio", "cold_peak_rss_mb",
        "dag_run_seconds", "dag_tasks", "tiny_run_seconds", "tiny_peak_rss_mb", "tiny_cold_seconds",
        "tiny_cold_peak_rss_mb", "runner_rss_mb"}
    assert figures["rows"] == 3000
    assert figures["hub_seconds"] > 0 and figures["floor_seconds"] > 0 and figures["peak_rss_mb"] > 0
    for name in ("hub_process_seconds", "cold_process_seconds", "tiny_run_seconds", "tiny_cold_seconds",
                 "tiny_peak_rss_mb", "tiny_cold_peak_rss_mb", "runner_rss_mb", "process_own_mb"):
        assert figures[name] > 0, name
    if kind == "file":
        assert figures["dag_run_seconds"] > 0 and set(figures["dag_tasks"]) == {"stage", "publish", "deliver"}
    else:
        assert figures["dag_run_seconds"] is None
    # The SIAK table ends with three wrong rows.
    expected = "rows in 3000, published 3000, quarantined 0" if kind == "file" else "rows in 3003, published 3000, quarantined 3"
    assert expected in done.stdout and figures["source_kind"] == kind and figures["all_bad"] is False


def test_benchmark_of_a_file_where_every_row_is_bad():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "pipeline.py"), "--rows", "2000", "--repeat", "1",
                           "--no-dag", "--all-bad"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["all_bad"] is True and figures["peak_rss_mb"] > 0
    assert "rows in 2000, published 0, quarantined 2000" in done.stdout


def test_download_benchmark_prints_its_figures():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "download.py"), "--rows", "3000"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 3000 and set(figures) >= {"csv", "json", "parquet", "server_rss_idle_mb"}
    assert all(figures[f]["bytes"] > 0 and figures[f]["server_peak_rss_mb"] > 0 for f in ("csv", "json", "parquet"))


def test_catalog_benchmark_prints_its_figures():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "catalog.py"), "--rows", "3000", "--clients", "2",
                           "--requests", "5", "--repeat", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 3000
    for name in ("search", "package_show"):
        assert figures[name]["requests"] == 10 and 0 < figures[name]["median_ms"] <= figures[name]["p99_ms"]
    assert figures["sql_group_by"]["result_rows"] > 0 and figures["sql_group_by"]["ratio"] > 0


def test_import_profile_benchmark_prints_its_figures():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "imports.py")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    cold, warm = figures["cold"], figures["warm"]
    assert "great_expectations" in [name for name, _ in cold["slowest"]]  # the cold process imports it
    assert "great_expectations" not in [name for name, _ in warm["slowest"]]  # the runner's child has it
    assert warm["modules"] < cold["modules"] and warm["seconds"] > 0


def test_integration_benchmark_prints_its_figures():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "integrate.py"), "--sources", "3", "--rows", "3000"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["sources"] == 3 and figures["rows"] == 3000
    assert figures["integrate_seconds"] > 0 and figures["integrate_own_mb"] > 0 and figures["runner_rss_mb"] > 0
    assert figures["reintegrate_seconds"] > 0 and figures["reintegrate_own_mb"] > 0
