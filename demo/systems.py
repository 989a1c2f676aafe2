"""The demo agencies' live systems over HTTP: Dinkes's facility API, SIAK's status check and the city's CKAN
open-data portal.

One server (the standard library's threading HTTP server) answers for all, reading what `demo.agencies.build()`
wrote under HUB_HOME/demo, on each request (a rebuilt demo is served at once):

- Dinkes's facility register, `GET /dinkes/api/v1/faskes?page=N&limit=M`: pages of the records of
  demo/dinkes/faskes.json with paging metadata; the API key in the `X-API-Key` header (demo/dinkes/api_key,
  0600), else 401; at most `rate_limit` requests a second per key, else 429 with Retry-After.
- Disdukcapil's SIAK status check, `GET /disdukcapil/siak/api/v1/status/{nik}`: whether a resident is alive, died
  or moved away, the date of the event and the kelurahan (of residence, or the destination of a move within the
  city), in SIAK's own field names (`content.STATUS_KEPENDUDUKAN`, `TGL_PERISTIWA` as DD-MM-YYYY, `KODE_KEL`
  without dots), from demo/disdukcapil/siak.db; its own API key in `X-API-Key` (demo/disdukcapil/api_key), else
  401; 400 for a NIK that is not 16 digits, 404 for one SIAK does not know. The hub offers it as the proxied
  exchange service BOGOR/GOV/disdukcapil/siak/status-penduduk.
- Satu Data Kota Bogor, a CKAN portal under `/satudata`: the Action API's `status_show`, `package_list`,
  `package_show`, `resource_show` and `datastore_search` (limit, offset, filters, sort, fields, `total`), with
  CKAN's envelopes and error shapes, and the resource's file at the download URL CKAN gives
  (`/satudata/dataset/ID/resource/ID/download/NAME.csv`). It publishes the posyandu table of
  demo/satudata/ (DataStore fields all text, as CKAN's XLoader loads a CSV).

`python -m demo.systems --home HOME --host 127.0.0.1 --port PORT` serves until SIGTERM or SIGINT; `running(home)`
serves from a thread for tests. Sources reach it through `${HUB_DEMO_URL}` in their registrations, and read the
API key from the Airflow connection `dinkes_api` (the hub's exchange reads SIAK's from `siak_api`), which
`register_connections(settings)` puts in Airflow's metadata database. Requests are logged (logger `demo.systems`)
without the key, unknown query parameters or a NIK in the path.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hmac
import json
import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["API_KEY_HEADER", "DINKES_CONNECTION", "FASKES_PATH", "PORTAL_PATH", "POSYANDU_DATASET",
           "POSYANDU_RESOURCE_ID", "SIAK_CONNECTION", "SIAK_STATUS_PATH", "main", "make_server", "register_connections",
           "running"]

log = logging.getLogger("demo.systems")

#: The Airflow connection holding the API key of Dinkes's facility API (its password).
DINKES_CONNECTION = "dinkes_api"
#: The Airflow connection holding the API key of SIAK's status API (its password).
SIAK_CONNECTION = "siak_api"
API_KEY_HEADER = "X-API-Key"
FASKES_PATH = "/dinkes/api/v1/faskes"
SIAK_STATUS_PATH = "/disdukcapil/siak/api/v1/status/"  # followed by the NIK
PORTAL_PATH = "/satudata"
DEFAULT_RATE_LIMIT = 5.0  # requests a second per API key, as Dinkes's API documentation would say
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 25, 100
# CKAN's ckan.datastore.search.rows_default and rows_max, as this portal sets them: a larger limit is cut down.
ROWS_DEFAULT, ROWS_MAX = 100, 250
CKAN_VERSION = "2.10.5"

POSYANDU_DATASET = "jumlah-posyandu-berdasarkan-strata-di-kota-bogor"
POSYANDU_DATASET_ID = "4bfafa93-ba1e-501b-805d-0f66109d6e07"
POSYANDU_RESOURCE_ID = "0bb69266-bd59-50d3-9bb8-623ad7a6c291"
_ORGANIZATION = {"id": "7d0c3b4e-2f5a-4c1e-9b8d-6a2e1f0c9d31", "name": "dinas-kesehatan",
                 "title": "Dinas Kesehatan Kota Bogor", "type": "organization", "is_organization": True,
                 "state": "active", "approval_status": "approved"}
# Query parameters logged with their values; any other is logged as NAME=*** (a client may send a key there).
_LOGGED_PARAMETERS = {"page", "limit", "offset", "id", "resource_id", "include_total", "sort", "fields", "name"}


def _paths(home: Path) -> dict[str, Path]:
    demo = Path(home) / "demo"
    return {"faskes": demo / "dinkes" / "faskes.json", "api_key": demo / "dinkes" / "api_key",
            "posyandu": demo / "satudata" / "posyandu_strata_kelurahan.csv",
            "siak": demo / "disdukcapil" / "siak.db", "siak_api_key": demo / "disdukcapil" / "api_key"}


class _Unavailable(Exception):
    """A file the system serves is not built yet."""


class _Files:
    """Files of the home, parsed once per version (size and modification time) of each."""

    def __init__(self, home: Path) -> None:
        self.paths = _paths(home)
        self._parsed: dict[str, tuple[tuple, object]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, parse):
        path = self.paths[name]
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise _Unavailable(name) from None
        version = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._parsed.get(name)
            if cached and cached[0] == version:
                return cached[1]
        value = parse(path)
        with self._lock:
            self._parsed[name] = (version, value)
        return value

    def api_key(self, name: str = "api_key") -> bytes:
        return self.get(name, lambda p: p.read_text(encoding="ascii").strip().encode())

    def faskes(self) -> dict:
        return self.get("faskes", lambda p: json.loads(p.read_text(encoding="utf-8")))

    def posyandu(self) -> dict:
        def parse(path: Path) -> dict:
            content = path.read_bytes()
            reader = csv.reader(content.decode("utf-8").splitlines())
            header = next(reader)
            # XLoader loads every column as text; an empty cell is null.
            records = [{"_id": i, **{k: (v if v != "" else None) for k, v in zip(header, row)}}
                       for i, row in enumerate(reader, start=1)]
            modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).replace(tzinfo=None)
            return {"content": content, "fields": [{"id": "_id", "type": "int"}] +
                    [{"id": name, "type": "text"} for name in header],
                    "records": records, "modified": modified.isoformat()}

        return self.get("posyandu", parse)


class _RateLimit:
    """A token bucket per API key: `rate` requests a second, `rate` at once at most."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, rate)
        self._buckets: dict[bytes, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: bytes) -> float:
        """0 if a request with `key` may go now (and counts it), else the seconds until one may."""
        with self._lock:
            now = time.monotonic()
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, home: Path, rate_limit: float) -> None:
        super().__init__(address, _Handler)
        self.home = Path(home)
        self.files = _Files(self.home)
        self.rate_limit = _RateLimit(rate_limit)
        host, port = self.server_address[:2]
        self.url = f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "demo-systems"

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass  # every answer is logged by _send, without secrets

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        self._route(None)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._route(body)

    def _route(self, body: bytes | None) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        shown = "&".join(f"{k}={quote(v) if k in _LOGGED_PARAMETERS else '***'}" for k, v in query.items())
        status_check = url.path.startswith(SIAK_STATUS_PATH)
        self._logged = (SIAK_STATUS_PATH + "***" if status_check else url.path) + (f"?{shown}" if shown else "")
        self._who = "-"
        try:
            if url.path == FASKES_PATH:
                return self._faskes(query)
            if status_check and self.command == "GET":
                return self._siak_status(url.path.removeprefix(SIAK_STATUS_PATH))
            if url.path.startswith(PORTAL_PATH + "/"):
                return self._portal(url.path.removeprefix(PORTAL_PATH), query, body)
            self._json(404, {"status": "error", "message": "tidak ditemukan"})
        except _Unavailable as e:
            self._json(503, {"status": "error", "message": f"data belum tersedia ({e.args[0]})"}, {"Retry-After": "5"})
        except Exception:  # a bug here must look like a server error to the client, not a dropped connection
            log.exception("%s %s failed", self.command, self._logged)
            self._json(500, {"status": "error", "message": "kesalahan server"})

    # --- answers -------------------------------------------------------------------------------------------

    def _send(self, status: int, content: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)
        log.info("%s %s %d %s", self.command, self._logged, status, self._who)

    def _json(self, status: int, body, headers: dict | None = None) -> None:
        self._send(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8", headers)

    # --- Dinkes's facility API ----------------------------------------------------------------------------

    def _faskes(self, query: dict) -> None:
        sent = self.headers.get(API_KEY_HEADER)
        if not sent:
            self._who = "key=missing"
            return self._json(401, {"status": "error", "message": f"API key diperlukan (header {API_KEY_HEADER})"})
        key = self.server.files.api_key()
        if not hmac.compare_digest(sent.encode(), key):
            self._who = "key=refused"
            return self._json(401, {"status": "error", "message": "API key tidak valid"})
        self._who = "key=ok"
        wait = self.server.rate_limit.wait(key)
        if wait:
            limit = self.server.rate_limit.rate
            return self._json(429, {"status": "error", "message": f"batas {limit:g} permintaan per detik terlampaui"},
                              {"Retry-After": str(max(1, math.ceil(wait))), "X-RateLimit-Limit": f"{limit:g}",
                               "X-RateLimit-Remaining": "0"})
        try:
            page = int(query.get("page", "1"))
            limit = int(query.get("limit", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            page = limit = 0
        if page < 1 or limit < 1:
            return self._json(400, {"status": "error", "message": "page dan limit harus bilangan bulat positif"})
        limit = min(limit, MAX_PAGE_SIZE)
        register = self.server.files.faskes()
        records = register["data"]["faskes"]
        total = len(records)
        self._json(200, {"status": "success", "dihasilkan": register.get("dihasilkan"),
                         "data": {"faskes": records[(page - 1) * limit:page * limit]},
                         "meta": {"page": page, "limit": limit, "total": total,
                                  "total_pages": math.ceil(total / limit)}})

    # --- SIAK's status check -----------------------------------------------------------------------------

    def _siak_status(self, nik: str) -> None:
        """SIAK's answer about one NIK, in SIAK's own envelope and field names."""
        sent = self.headers.get(API_KEY_HEADER)
        if not sent or not hmac.compare_digest(sent.encode(), self.server.files.api_key("siak_api_key")):
            self._who = "key=missing" if not sent else "key=refused"
            return self._json(401, {"respon_code": "401", "respon_msg": "API KEY TIDAK VALID"})
        self._who = "key=ok"
        if not (len(nik) == 16 and nik.isascii() and nik.isdigit()):
            return self._json(400, {"respon_code": "400", "respon_msg": "NIK HARUS 16 DIGIT"})
        path = self.server.files.paths["siak"]
        if not path.is_file():
            raise _Unavailable("siak")
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            found = db.execute("SELECT p.nik, p.nama_lengkap, p.kode_kelurahan, e.jenis, e.tgl_peristiwa, "
                               "e.kode_kelurahan_tujuan FROM penduduk p LEFT JOIN peristiwa e ON e.nik = p.nik "
                               "WHERE p.nik = ?", (nik,)).fetchone()
        if found is None:
            return self._json(404, {"respon_code": "404", "respon_msg": "NIK TIDAK DITEMUKAN"})
        nik, nama, kelurahan, jenis, tanggal, tujuan = found
        status = {None: "AKTIF", "MATI": "MATI", "PINDAH": "PINDAH KELUAR"}[jenis]
        where = tujuan if jenis == "PINDAH" else kelurahan  # unknown for a move out of the city
        self._json(200, {"respon_code": "00", "respon_msg": "DATA DITEMUKAN", "content": {
            "NIK": nik, "NAMA_LGKP": nama, "STATUS_KEPENDUDUKAN": status,
            "TGL_PERISTIWA": dt.date.fromisoformat(tanggal).strftime("%d-%m-%Y") if tanggal else None,
            "KODE_KEL": where.replace(".", "") if where else None}})

    # --- the CKAN portal ----------------------------------------------------------------------------------

    def _portal(self, path: str, query: dict, body: bytes | None) -> None:
        site = self.server.url + PORTAL_PATH
        if path.startswith("/api/3/action/"):
            action = path.removeprefix("/api/3/action/")
            if body:
                try:
                    posted = json.loads(body)
                except ValueError:
                    posted = None
                if not isinstance(posted, dict):
                    return self._ckan_error(400, action, {"message": "Bad request - JSON Error: invalid body"})
                query = {**query, **posted}
            handler = {"status_show": self._status_show, "package_list": self._package_list,
                       "package_show": self._package_show, "resource_show": self._resource_show,
                       "datastore_search": self._datastore_search}.get(action)
            if handler is None:  # datastore_search_sql is off, as by default since CKAN 2.10
                return self._ckan_error(400, action, {"message": f"Bad request - Action name not known: {action}"})
            status, result = handler(query, site)
            if status != 200:
                return self._ckan_error(status, action, result)
            return self._json(200, {"help": f"{site}/api/3/action/help_show?name={action}", "success": True,
                                    "result": result})
        table = self.server.files.posyandu()
        download = f"/dataset/{POSYANDU_DATASET_ID}/resource/{POSYANDU_RESOURCE_ID}/download/"
        if path == download + self.server.files.paths["posyandu"].name:
            return self._send(200, table["content"], "text/csv",
                              {"Content-Disposition": f'attachment; filename="{path.rpartition("/")[2]}"'})
        self._send(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html; charset=utf-8")

    def _ckan_error(self, status: int, action: str, error: dict) -> None:
        site = self.server.url + PORTAL_PATH
        self._json(status, {"help": f"{site}/api/3/action/help_show?name={action}", "success": False, "error": error})

    def _status_show(self, query: dict, site: str):
        return 200, {"site_title": "Satu Data Kota Bogor", "site_description": "Portal data terbuka Pemerintah Kota "
                     "Bogor", "site_url": site, "ckan_version": CKAN_VERSION, "error_emails_to": None,
                     "locale_default": "id", "extensions": ["activity", "datastore", "xloader", "scheming_datasets"]}

    def _package_list(self, query: dict, site: str):
        return 200, [POSYANDU_DATASET]

    def _resource(self, site: str) -> dict:
        table = self.server.files.posyandu()
        name = self.server.files.paths["posyandu"].name
        return {
            "id": POSYANDU_RESOURCE_ID, "package_id": POSYANDU_DATASET_ID,
            "name": "Jumlah Posyandu Berdasarkan Strata per Kelurahan",
            "description": "Jumlah posyandu menurut strata (pratama, madya, purnama, mandiri) per kelurahan dan tahun.",
            "format": "CSV", "mimetype": "text/csv", "size": len(table["content"]), "state": "active",
            "url": f"{site}/dataset/{POSYANDU_DATASET_ID}/resource/{POSYANDU_RESOURCE_ID}/download/{name}",
            "url_type": "upload", "datastore_active": True, "position": 0,
            "created": "2024-02-12T03:15:42.118532", "last_modified": table["modified"],
        }

    def _package(self, site: str) -> dict:
        resource = self._resource(site)
        tags = ["kesehatan", "posyandu", "UKBM", "kelurahan"]
        return {
            "id": POSYANDU_DATASET_ID, "name": POSYANDU_DATASET, "type": "dataset", "state": "active",
            "private": False, "title": "Jumlah Posyandu Berdasarkan Strata di Kota Bogor",
            "notes": "Jumlah pos pelayanan terpadu (posyandu) di Kota Bogor menurut strata pratama, madya, purnama "
                     "dan mandiri, per kelurahan dan tahun. Sumber: Dinas Kesehatan Kota Bogor.",
            "license_id": "cc-by", "license_title": "Creative Commons Attribution",
            "license_url": "http://www.opendefinition.org/licenses/cc-by", "maintainer": "Dinas Kesehatan Kota Bogor",
            "author": "Dinas Kesehatan Kota Bogor", "version": None, "url": "",
            "metadata_created": "2024-02-12T03:14:09.523180", "metadata_modified": resource["last_modified"],
            "owner_org": _ORGANIZATION["id"], "organization": _ORGANIZATION, "groups": [],
            "tags": [{"name": t, "display_name": t, "state": "active", "vocabulary_id": None} for t in tags],
            "num_tags": len(tags), "extras": [{"key": "frekuensi_penerbitan", "value": "Tahunan"},
                                              {"key": "cakupan_wilayah", "value": "Kota Bogor"}],
            "resources": [resource], "num_resources": 1,
        }

    def _package_show(self, query: dict, site: str):
        wanted = query.get("id") or query.get("name_or_id")
        if not wanted:
            return 409, {"__type": "Validation Error", "id": ["Missing value"]}
        if wanted not in (POSYANDU_DATASET, POSYANDU_DATASET_ID):
            return 404, {"__type": "Not Found Error", "message": "Not found"}
        return 200, self._package(site)

    def _resource_show(self, query: dict, site: str):
        if not query.get("id"):
            return 409, {"__type": "Validation Error", "id": ["Missing value"]}
        if query["id"] != POSYANDU_RESOURCE_ID:
            return 404, {"__type": "Not Found Error", "message": "Not found: Resource was not found."}
        return 200, self._resource(site)

    def _datastore_search(self, query: dict, site: str):
        resource_id = query.get("resource_id") or query.get("id")
        if not resource_id:
            return 409, {"__type": "Validation Error", "resource_id": ["Missing value"]}
        if resource_id != POSYANDU_RESOURCE_ID:
            return 404, {"__type": "Not Found Error", "message": f'Not found: Resource "{resource_id}" was not found.'}
        table = self.server.files.posyandu()
        names = [f["id"] for f in table["fields"]]
        problems: dict[str, list[str]] = {}

        def integer(name: str, default: int) -> int:
            value = query.get(name, default)
            try:
                number = int(value)
                if number >= 0:
                    return number
            except (TypeError, ValueError):
                pass
            problems[name] = ["Invalid integer"]
            return default

        limit, offset = integer("limit", ROWS_DEFAULT), integer("offset", 0)
        filters = query.get("filters") or {}
        if isinstance(filters, str):
            try:
                filters = json.loads(filters)
            except ValueError:
                filters = None
        if not isinstance(filters, dict):
            problems["filters"] = ["Not a json object"]
            filters = {}
        for name in filters:
            if name not in names:
                problems.setdefault("filters", []).append(f'field "{name}" not in table')
        fields = query.get("fields") or names
        if isinstance(fields, str):
            fields = [f.strip() for f in fields.split(",") if f.strip()]
        unknown = [f for f in fields if f not in names]
        if unknown:
            problems["fields"] = [f'field "{f}" not in table' for f in unknown]
        order = []
        for part in str(query.get("sort") or "_id").split(","):
            name, _, direction = part.strip().strip('"').partition(" ")
            if name not in names or direction.strip().lower() not in ("", "asc", "desc"):
                problems["sort"] = [f'field "{name}" not in table']
            order.append((name, direction.strip().lower() == "desc"))
        if problems:
            return 409, {"__type": "Validation Error", **problems}

        def matches(record: dict) -> bool:
            for name, wanted in filters.items():
                allowed = wanted if isinstance(wanted, list) else [wanted]
                if record.get(name) not in [str(v) if v is not None else None for v in allowed]:
                    return False
            return True

        records = [r for r in table["records"] if matches(r)]
        for name, descending in reversed(order):  # stable sorts, the last key first
            records.sort(key=lambda r: (r[name] is None, r[name] if r[name] is not None else ""), reverse=descending)
        limit = min(limit, ROWS_MAX)
        page = [{f: r.get(f) for f in fields} for r in records[offset:offset + limit]]
        include_total = str(query.get("include_total", "true")).lower() not in ("false", "0")
        start = f"{PORTAL_PATH}/api/3/action/datastore_search?resource_id={resource_id}"
        result = {"include_total": include_total, "limit": limit, "records_format": "objects",
                  "resource_id": resource_id, "total_estimation_threshold": None, "records": page,
                  "fields": [f for f in table["fields"] if f["id"] in fields],
                  "_links": {"start": start, "next": f"{start}&offset={offset + limit}"}}
        if "offset" in query:
            result["offset"] = offset
        if include_total:
            result.update(total=len(records), total_was_estimated=False)
        return 200, result


def make_server(home: Path, host: str = "127.0.0.1", port: int = 0,
                rate_limit: float = DEFAULT_RATE_LIMIT) -> _Server:
    """The demo systems of `home`, bound to host and port (0: a free port), not yet serving; `.url` is its base."""
    if rate_limit <= 0:
        raise ValueError("rate_limit must be positive")
    return _Server((host, port), home, rate_limit)


@contextmanager
def running(home: Path, host: str = "127.0.0.1", port: int = 0,
            rate_limit: float = DEFAULT_RATE_LIMIT) -> Iterator[str]:
    """Serve the demo systems of `home` from a thread while the block runs: its base URL (HUB_DEMO_URL)."""
    server = make_server(home, host, port, rate_limit)
    thread = threading.Thread(target=server.serve_forever, name="demo-systems", daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def register_connections(settings) -> list[str]:
    """Create or update, in the Airflow metadata database of `settings`' home, the connections the demo's sources
    and services name: `dinkes_api` and `siak_api`, whose passwords are the API keys `demo.agencies.build()` made.
    Needs `hub init` (Airflow's database migrated) and the demo built. Runs in a child process configured for that
    home, since Airflow reads its configuration once per process; a key never appears on a command line. Returns
    the connection ids."""
    from hub.errors import HubError

    env = {**os.environ, "HUB_HOME": str(settings.home), "HUB_CATALOG_URL": settings.catalog_url,
           "HUB_REGISTRY": str(settings.registry)}
    done = subprocess.run([sys.executable, "-m", "demo.systems", "--home", str(settings.home),
                           "--register-connections"], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise HubError(f"the demo's Airflow connections could not be registered: {done.stderr.strip()[-2000:]}")
    return [DINKES_CONNECTION, SIAK_CONNECTION]


def _register_here(home: Path) -> None:
    """register_connections' work, in a process whose Airflow is not configured yet."""
    from hub.errors import HubError
    from hub.settings import configure_airflow, load_settings

    os.environ["HUB_HOME"] = str(home)
    configure_airflow(load_settings())
    try:
        key = _paths(home)["api_key"].read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = ""
    if not key:
        raise HubError(f"no API key in {_paths(home)['api_key']}: build the demo first (demo.agencies.build)")
    from demo.agencies import ensure_api_key

    # Made here too when missing: a demo built before SIAK's status API existed has Dinkes's key only.
    keys = {DINKES_CONNECTION: (key, "API key of Dinkes's facility API in the demo (demo/systems.py)"),
            SIAK_CONNECTION: (ensure_api_key(_paths(home)["siak_api_key"]),
                              "API key of SIAK's status API in the demo (demo/systems.py)")}
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        with create_session() as s:
            for conn_id, (password, description) in keys.items():
                connection = s.scalar(select(Connection).where(Connection.conn_id == conn_id))
                if connection is None:
                    connection = Connection(conn_id=conn_id, conn_type="generic")
                    s.add(connection)
                connection.description = description
                connection.password = password
    except (OperationalError, ProgrammingError):
        raise HubError("Airflow's metadata database is not ready: run `hub init` first") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.systems", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="the hub home whose demo is served (HUB_HOME)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port, printed on the first line")
    parser.add_argument("--rate-limit", type=float, default=DEFAULT_RATE_LIMIT,
                        help="requests a second per API key on Dinkes's API")
    parser.add_argument("--register-connections", action="store_true",
                        help="create or update the Airflow connections dinkes_api and siak_api in the home's Airflow "
                             "database, then exit")
    args = parser.parse_args(argv)
    home = (args.home or Path(os.environ.get("HUB_HOME") or Path(__file__).resolve().parent.parent / "var")).resolve()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.register_connections:
        from hub.errors import HubError

        try:
            _register_here(home)
        except HubError as e:
            print(f"demo.systems: {e}", file=sys.stderr)
            return 1
        print(f"Airflow connections {DINKES_CONNECTION} and {SIAK_CONNECTION} registered for {home}")
        return 0

    server = make_server(home, args.host, args.port, args.rate_limit)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="demo-systems", daemon=True)
    thread.start()
    print(server.url, flush=True)
    log.info("serving the demo systems of %s at %s (Dinkes %s, Satu Data %s)", home, server.url, FASKES_PATH,
             PORTAL_PATH)
    while not stop.wait(1):
        pass
    log.info("stopping")
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
