"""The benchmark script keeps working: a tiny run prints its figures as one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

from hub.settings import ROOT


def test_benchmark_prints_its_figures():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "pipeline.py"), "--rows", "3000", "--repeat", "1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(figures) == {"rows", "hub_seconds", "floor_seconds", "ratio", "peak_rss_mb"}
    assert figures["rows"] == 3000
    assert figures["hub_seconds"] > 0 and figures["floor_seconds"] > 0 and figures["peak_rss_mb"] > 0
    assert "rows in 3000, published 3000, quarantined 0" in done.stdout
