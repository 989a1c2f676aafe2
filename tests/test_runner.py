"""The warm runner (`hub runner`): runs and tasks done by children forked from one process that has Great
Expectations, Iceberg and the compiled suites loaded, as the caller would have done them in its own process."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _served import HUB, hub, hub_env
from hub import runner
from hub.errors import ConfigError

OFF = {"HUB_RUNNER": "off"}


def _start(home: Path, log: Path) -> subprocess.Popen:
    process = subprocess.Popen([HUB, "runner"], env=hub_env(home), stdout=subprocess.DEVNULL,
                               stderr=log.open("w"))
    deadline = time.monotonic() + 120
    while "ready in" not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the runner did not start"
        time.sleep(0.2)
    return process


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    from demo.agencies import build

    home = tmp_path_factory.mktemp("runner-home")
    build(home, people_count=300, dinsos_count=80)
    hub(home, "init", "--quiet")
    return home


@pytest.fixture(scope="module")
def warm(home):
    log = home / "runner-test.log"
    process = _start(home, log)
    yield log
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not runner.socket_path(home).exists()


def test_a_run_is_done_by_a_warm_child_as_it_would_be_in_its_own_process(home, warm):
    assert "suites compiled: " in warm.read_text() and "penduduk@" in warm.read_text()
    done = hub(home, "run", "dinsos_dtks", "--json")
    result = json.loads(done.stdout)
    assert result["status"] == "published" and result["rows_in"] == result["rows_published"] + result["rows_quarantined"] > 80
    assert "runner: cli run dinsos_dtks (pid" in warm.read_text()
    # The same command in its own process: the same answer (nothing new to publish, the same counts).
    again_warm = json.loads(hub(home, "run", "dinsos_dtks", "--json").stdout)
    again_here = json.loads(hub(home, "run", "dinsos_dtks", "--json", env=OFF).stdout)
    assert warm.read_text().count("runner: cli run dinsos_dtks (pid") == 2
    keys = ("status", "rows_in", "rows_published", "rows_quarantined", "dataset", "snapshot_id")
    assert [again_warm[k] for k in keys] == [again_here[k] for k in keys]
    assert again_here["status"] == "unchanged"


def test_output_and_exit_status_are_the_callers(home, warm, tmp_path):
    records = tmp_path / "penduduk.csv"
    records.write_text("nik,nama\n12,X\n", encoding="utf-8")
    through = hub(home, "validate", "penduduk", str(records), "--json", check=False)
    alone = hub(home, "validate", "penduduk", str(records), "--json", check=False, env=OFF)
    assert through.returncode == alone.returncode != 0
    assert json.loads(through.stdout) == json.loads(alone.stdout)
    assert through.stderr == alone.stderr
    assert "runner: cli validate penduduk (pid" in warm.read_text()
    unknown = hub(home, "run", "no_such_source", check=False)
    assert unknown.returncode == hub(home, "run", "no_such_source", check=False, env=OFF).returncode == 2
    assert "no_such_source" in unknown.stderr


def test_a_tasks_error_comes_back_as_its_own_class(home, warm, monkeypatch):
    monkeypatch.setenv("HUB_HOME", str(home))
    for key in [k for k in os.environ if k.startswith("HUB_") and k != "HUB_HOME"]:
        monkeypatch.delenv(key)
    usage = {}
    with pytest.raises(ConfigError, match="no_such_source"):
        runner.call(home, "stage", "no_such_source", "manual__1", None, usage=usage)
    assert usage["seconds"] > 0 and usage["private_peak_mb"] >= 0 and usage["peak_rss_mb"] > 0
    with pytest.raises(runner.Unavailable, match="unknown work"):
        runner.call(home, "shell", "rm -rf /")
    with pytest.raises(runner.Unavailable, match="not a command the runner does"):
        runner.call(home, "cli", ["users", "create", "someone", "--role", "steward"])
    assert "shell" not in warm.read_text() and "cli users" not in warm.read_text()


def test_ctrl_c_stops_the_child_doing_the_work(home, warm, tmp_path):
    records = tmp_path / "records.csv"
    records.write_bytes(b"nik,nama\n" + b"3271010101900001,Budi\n" * 3_000_000)  # seconds of work
    waiting = subprocess.Popen([HUB, "validate", "penduduk", str(records)], env=hub_env(home),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not _children_of_runner(home):
        assert waiting.poll() is None, waiting.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)
    waiting.send_signal(signal.SIGINT)
    assert waiting.wait(timeout=30) == 130
    deadline = time.monotonic() + 10
    while _children_of_runner(home):
        assert time.monotonic() < deadline, "the child outlived Ctrl-C"
        time.sleep(0.1)
    waiting.stdin.close()


def _children_of_runner(home: Path) -> list[int]:
    server = int(subprocess.run(["pgrep", "-f", f"{HUB} runner"], capture_output=True, text=True).stdout.split()[0])
    found = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    return [int(pid) for pid in found]


def test_only_the_hubs_own_user_may_send_work(home, warm):
    mode = runner.socket_path(home).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600 and stat.S_IMODE(runner.socket_path(home).parent.stat().st_mode) == 0o700
    if os.getuid() != 0:
        pytest.skip("another user can only be tried as root")
    other = subprocess.run([sys.executable, "-c", f"""
import os, socket
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX)
try:
    s.connect({str(runner.socket_path(home))!r})
except PermissionError:
    print("refused")
"""], capture_output=True, text=True, timeout=30)
    assert other.stdout.strip() == "refused", other.stderr


def test_changed_code_is_never_run_warm_and_stops_the_runner(tmp_path):
    """After an upgrade the runner would run the old code: the work runs in its own process, and the runner
    stops for its supervisor (`hub up`) to start it again from the new code."""
    from demo.agencies import build

    home = tmp_path / "home"
    build(home, people_count=50, dinsos_count=20)
    hub(home, "init", "--quiet")
    log = tmp_path / "runner.log"
    process = _start(home, log)
    source = Path(runner.__file__)
    before = source.stat()
    try:
        os.utime(source, (before.st_atime, before.st_mtime + 5))
        done = hub(home, "run", "dinsos_dtks", "--json")
        assert json.loads(done.stdout)["status"] in ("published", "unchanged")
        assert process.wait(timeout=30) == 0
    finally:
        os.utime(source, (before.st_atime, before.st_mtime))
        if process.poll() is None:
            process.kill()
    assert "runner: cli run" not in log.read_text()
