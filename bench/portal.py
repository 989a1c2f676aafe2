"""Benchmark: the portal's pages, each rendered by the server N times: median and max time, and the HTML's bytes.

    PYTHONPATH=. .venv/bin/python bench/portal.py [--home DIR] [--requests 20] [--people 5000 --dinsos 1200]

Builds a demo hub home (demo.agencies.build) with every registered source published: the demo agencies' live
systems (demo.systems.running) serve the rest and CKAN sources while `hub run SOURCE` runs each one, which also
builds the integrated datasets and indicators. With --home DIR, a home whose catalog.db exists is reused as it is
(built there first if it does not). Then the portal is driven in this process with FastAPI's TestClient: no
socket, no network, so a time is the app's own (routing, middleware, catalog queries, the preview, templates),
measured around each whole request. Each page is asked once to warm up, then --requests times.

Pages: home, searches, every dataset page (signed in as an analyst, so the preview shows rows), dataset pages
with a preview filter, and English variants. The table marks each page against the budgets: HTML under 300 KB,
median render under 300 ms. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HUB = str(Path(sys.executable).parent / "hub")

MAX_BYTES = 300_000
MAX_MS = 300.0
SEARCHES = ["penduduk", "bansos", "fasilitas kesehatan"]
# Preview filters per dataset: a FIELD=VALUE the dataset has, so the filtered preview shows rows.
FILTERS = {"disdukcapil_siak": "jenis_kelamin=2", "penduduk": "jenis_kelamin=2", "dinsos_dtks": "jenis_kelamin=2"}


def hub(home: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """The `hub` command of this checkout's environment, for the hub in `home` (the caller's HUB_ settings out)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AIRFLOW"))}
    path = os.pathsep.join([str(ROOT), *filter(None, [base.get("PYTHONPATH")])])  # this checkout's code
    done = subprocess.run([HUB, *args], env={**base, "PYTHONPATH": path, "HUB_HOME": str(home), **(env or {})},
                          capture_output=True, text=True, timeout=1800)
    if check and done.returncode:
        raise SystemExit(f"hub {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def publish_everything(home: Path, people: int, dinsos: int) -> None:
    """Build the demo in `home` and run every registered source against its live systems."""
    from demo.agencies import build
    from demo.systems import register_connections, running
    from hub.settings import Settings

    start = time.perf_counter()
    build(home, people_count=people, dinsos_count=dinsos)
    hub(home, "init", "--quiet")
    register_connections(Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}",
                                  registry=ROOT / "connectors" / "registry"))
    sources = sorted(p.stem for p in (ROOT / "connectors" / "registry").glob("*.yaml"))
    with running(home) as url:
        for source in sources:
            result = json.loads(hub(home, "run", source, "--json", env={"HUB_DEMO_URL": url}).stdout)
            print(f"  {source}: {result['status']}, {result.get('rows_published', '?')} rows published", flush=True)
    print(f"built and published {len(sources)} sources in {time.perf_counter() - start:.0f} s", flush=True)


def analyst_token(home: Path) -> str:
    made = hub(home, "users", "create", "bench_analis", "--role", "analyst", check=False)
    if made.returncode:  # a reused home: the user is there, a new token of it
        made = hub(home, "users", "token", "bench_analis")
    return re.search(r"hub_[0-9a-f]{12}_[\w-]+", made.stdout)[0]


def pages(datasets: list[str]) -> list[tuple[str, str, bool]]:
    """(name, path, signed in as the analyst) of every page measured."""
    found = [("home", "/", False), ("home en", "/?lang=en", False)]
    for word in SEARCHES:
        found += [(f"search {word}", f"/search?q={word.replace(' ', '+')}", False),
                  (f"search {word} en", f"/search?q={word.replace(' ', '+')}&lang=en", False)]
    for d in datasets:
        found += [(f"dataset {d}", f"/dataset/{d}", True), (f"dataset {d} en", f"/dataset/{d}?lang=en", True)]
        if d in FILTERS:
            found.append((f"preview {d} filter", f"/dataset/{d}?filter={FILTERS[d].replace('=', '%3D')}", True))
            found.append((f"preview {d} page 3", f"/dataset/{d}?start=40", True))
    found += [("dataset disdukcapil_siak anonymous", "/dataset/disdukcapil_siak", False),
              ("agencies", "/agencies", False), ("sql", "/sql", True)]
    return found


def measure(client, path: str, cookies: dict | None, requests: int) -> dict:
    client.cookies.clear()
    for name, value in (cookies or {}).items():
        client.cookies.set(name, value)
    first = client.get(path)  # warm up: templates compiled, caches filled
    if first.status_code != 200:
        raise SystemExit(f"GET {path}: {first.status_code}\n{first.text[-2000:]}")
    if 'role="alert"' in first.text:
        raise SystemExit(f"GET {path}: the page shows an error: "
                         f"{re.search(r'role=.alert.>(.*?)</', first.text, re.S)[1].strip()[:500]}")
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return {"bytes": len(first.content), "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a hub home to reuse (or build, if it has no catalog.db)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--people", type=int, default=5000, help="people in the demo population database")
    parser.add_argument("--dinsos", type=int, default=1200, help="rows of the demo DTKS export")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-bench-portal-") as tmp:
        home = (args.home or Path(tmp)).resolve()
        if (home / "catalog.db").exists():
            print(f"reusing the hub home {home}", flush=True)
        else:
            print(f"building a demo hub home in {home} ({args.people} people, {args.dinsos} DTKS rows)", flush=True)
            home.mkdir(parents=True, exist_ok=True)
            publish_everything(home, args.people, args.dinsos)
        token = analyst_token(home)

        # This process reads the home's settings from here on, as `hub serve` would.
        for key in [k for k in os.environ if k.startswith(("HUB_", "AIRFLOW"))]:
            del os.environ[key]
        os.environ["HUB_HOME"] = str(home)
        from fastapi.testclient import TestClient

        from hub.settings import load_settings
        from serving.api import create_app

        client = TestClient(create_app(load_settings()), base_url="http://127.0.0.1")
        client.cookies.set("hub_token", token)
        datasets = sorted(d["id"] for d in client.get("/api/datasets").json()["datasets"])
        rows, figures = [], []
        for name, path, signed_in in pages(datasets):
            f = measure(client, path, {"hub_token": token} if signed_in else None, args.requests)
            figures.append({"page": name, "path": path, "signed_in": signed_in, **f})
            rows.append(f)
            print(f"  measured {name}", file=sys.stderr, flush=True)

    print(f"\nportal pages, rendered in process (FastAPI TestClient, no network), {args.requests} requests each "
          f"after one warm-up; budgets: HTML < {MAX_BYTES // 1000} KB, median < {MAX_MS:.0f} ms")
    width = max(len(f["page"]) for f in figures)
    print(f"{'page':<{width}}  {'as':<7} {'KB':>7} {'size':<4}  {'median ms':>9} {'max ms':>8} {'time':<4}")
    for f in figures:
        size_ok = "OK" if f["bytes"] < MAX_BYTES else "OVER"
        time_ok = "OK" if f["median_ms"] < MAX_MS else "OVER"
        who = "analyst" if f["signed_in"] else "anon"
        print(f"{f['page']:<{width}}  {who:<7} {f['bytes'] / 1000:>7.1f} {size_ok:<4}  {f['median_ms']:>9.1f} "
              f"{f['max_ms']:>8.1f} {time_ok:<4}")
    over = [f["page"] for f in figures if f["bytes"] >= MAX_BYTES or f["median_ms"] >= MAX_MS]
    print(f"{len(figures)} pages, {len(over)} over a budget{': ' + ', '.join(over) if over else ''}")
    print(json.dumps({"requests": args.requests, "max_bytes": MAX_BYTES, "max_ms": MAX_MS, "pages": figures}))


if __name__ == "__main__":
    main()
