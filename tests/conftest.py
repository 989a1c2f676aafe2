"""Test setup: one throwaway hub home for Airflow (configured before Airflow is imported) and PostgreSQL."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Airflow reads its configuration once, at import: point it at a private home first.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="hub-test-home-"))
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)  # also when no test asked for it
os.environ["HUB_HOME"] = str(_SESSION_HOME)
os.environ.pop("HUB_CATALOG_URL", None)
os.environ.pop("HUB_REGISTRY", None)

from hub.settings import ROOT, Settings, configure_airflow, load_settings  # noqa: E402

configure_airflow(load_settings())

from _postgres import start_postgres  # noqa: E402
from _served import hub, serve  # noqa: E402


@pytest.fixture(scope="session")
def session_home() -> Path:
    """The hub home Airflow uses in this test session, initialised once (`hub init`)."""
    done = subprocess.run([sys.executable, "-m", "hub.cli", "init", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    yield _SESSION_HOME


@pytest.fixture(scope="session")
def postgres():
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path) -> str:
    """A fresh, empty catalog database of each kind the hub supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    server = request.getfixturevalue("postgres")
    name = f"catalog_{abs(hash(request.node.nodeid)) % 10**8}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def demo_settings(tmp_path, catalog_url) -> Settings:
    """A hub home with small demo agency systems, the real registry, and a fresh catalog."""
    from demo.agencies import build

    build(tmp_path, people_count=480, dinsos_count=120)
    return Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")


@pytest.fixture
def live_demo(demo_settings, monkeypatch) -> str:
    """The demo agencies' live systems (demo/systems.py) serving demo_settings' home, for runs in this process:
    HUB_DEMO_URL set, and the dinkes_api connection given as Airflow's AIRFLOW_CONN_ variable (this process's
    Airflow database is the session's, not the home's). Yields their base URL."""
    import json

    from demo.systems import running

    key = (demo_settings.demo / "dinkes" / "api_key").read_text(encoding="ascii").strip()
    monkeypatch.setenv("AIRFLOW_CONN_DINKES_API", json.dumps({"conn_type": "generic", "password": key}))
    with running(demo_settings.home) as url:
        monkeypatch.setenv("HUB_DEMO_URL", url)
        yield url


@pytest.fixture(scope="session")
def session_demo_systems(session_home) -> str:
    """The demo agencies' live systems serving the session's hub home, for DAG runs in this process: HUB_DEMO_URL
    set here, the dinkes_api connection in the session's Airflow database (its key made now; building the demo
    later keeps it). Yields their base URL."""
    from demo.agencies import ensure_api_key
    from demo.systems import register_connections, running

    ensure_api_key(session_home / "demo" / "dinkes" / "api_key")
    register_connections(load_settings())
    with running(session_home) as url:
        os.environ["HUB_DEMO_URL"] = url
        try:
            yield url
        finally:
            os.environ.pop("HUB_DEMO_URL", None)


@pytest.fixture(scope="session")
def home(tmp_path_factory) -> Path:
    """A hub home with small demo agency systems, used through the `hub` command (read-only for tests)."""
    from demo.agencies import build

    home = tmp_path_factory.mktemp("served-home")
    build(home, people_count=480, dinsos_count=120)
    return home


@pytest.fixture(scope="session")
def published(home) -> dict:
    """Both population sources run with `hub run --json` (which also builds the integrated dataset and the
    indicator on it): their results."""
    import json

    return {s: json.loads(hub(home, "run", s, "--json").stdout) for s in ("disdukcapil_siak", "dinsos_dtks")}


@pytest.fixture(scope="session")
def api(home, published):
    """The published demo catalog served by `hub serve` on loopback: its base URL."""
    server, base = serve(home)
    yield base
    server.terminate()
    server.wait(timeout=30)


# One user of each kind in the served demo catalog: name -> (role, agency code).
PERSONAS = {
    "walidata": ("steward", None),
    "analis": ("analyst", None),
    "dinsos": ("agency", "dinsos"),
    "disdukcapil": ("agency", "disdukcapil"),
    "disdik": ("agency", "disdik"),
}


@pytest.fixture(scope="session")
def tokens(home) -> dict[str, dict]:
    """The request headers of each persona's token in the served demo catalog (`{}` for `anonim`)."""
    import re

    headers = {"anonim": {}}
    for name, (role, agency) in PERSONAS.items():
        created = hub(home, "users", "create", name, "--role", role, *(["--agency", agency] if agency else []))
        headers[name] = {"Authorization": "Bearer " + re.search(r"hub_[0-9a-f]{12}_[\w-]+", created.stdout)[0]}
    return headers


@pytest.fixture(scope="session")
def analyst(tokens) -> dict:
    """The request headers of a government analyst: may read `terbatas` data, sees NIKs as pseudonyms."""
    return tokens["analis"]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, driven by Playwright (`_browser.launch`), for one test module."""
    from playwright.sync_api import sync_playwright

    from _browser import launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()
