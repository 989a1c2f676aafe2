"""Secrets end to end: no agency credential lands in anything the hub writes, prints, logs or serves."""

# One throwaway hub home and registry. Agency systems on loopback (a JSON API behind each kind of credentials,
# an OAuth2 token endpoint, a CKAN DataStore, a PostgreSQL with password authentication) serve their records,
# then fail the ways real ones do, echoing the credentials they were sent. Every scenario runs for real through
# Airflow DAG runs (`dag.test()` of the DAGs in dags/), and some also through `hub run` in child processes. Then
# every place the hub writes, prints or serves is searched for each planted secret in every form it could take.

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import logging
import secrets
import shlex
import socket
import subprocess
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest
import yaml

from _faults import MAPPING, residents
from _postgres import PostgresServer
from _served import HUB, hub_env, serve

RAND = secrets.token_hex(8)  # in every planted secret and nowhere else: any form of any secret contains it


def planted(what: str) -> str:
    # "/", "+" and "=" change under URL quoting and base64, so each of those forms is a distinct string to find.
    return f"s3cr3t-{what}-{RAND}/+="


API_KEY = planted("api-key")  # env, sent as a header or in the query string
TOKEN = planted("bearer-token")  # Airflow connection (JSON), password field
BASIC_LOGIN, BASIC_PASSWORD = "hub-basic", planted("basic-password")  # Airflow connection (URI)
CLIENT_SECRET = planted("oauth2-client-secret")  # env
ISSUED = f"s3cr3t-issued-{RAND}"  # prefix of the access tokens the OAuth2 endpoint issues
CKAN_KEY = planted("ckan-api-token")  # Airflow connection (JSON), extra field
PG_PASSWORD = planted("pg-password")  # in the URL an env variable holds, and in an Airflow connection (JSON)
WRONG_KEY, WRONG_PG = planted("wrong-api-key"), planted("wrong-pg-password")  # refused ones are secrets too
INLINE = planted("inline-key")  # written into a registration, which must be refused
PLANTED = (API_KEY, TOKEN, BASIC_PASSWORD, CLIENT_SECRET, CKAN_KEY, PG_PASSWORD, WRONG_KEY, WRONG_PG, INLINE)
PG_USER = "agency_siak"


# --- the forms of a secret, and where to look ------------------------------------------------------------


def base64_cores(data: bytes) -> set[str]:
    """The base64 characters that depend on `data` alone, wherever it starts in a longer text (three alignments),
    in the standard and URL-safe alphabets: `Basic base64(login:password)` holds one of them."""
    cores = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode()
        core = encoded[-(-8 * shift // 6):8 * (shift + len(data)) // 6]
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def forms(secret: str) -> set[str]:
    """Every way `secret` may be written: as is, URL-quoted (path, query, form), JSON-escaped, base64."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1],
            secret.replace("/", "\\/"), *base64_cores(secret.encode())}


NEEDLES = sorted({RAND, ISSUED, *(f for s in PLANTED for f in forms(s)),
                  base64.b64encode(f"{BASIC_LOGIN}:{BASIC_PASSWORD}".encode()).decode(),
                  base64.b64encode(f"hub-client:{CLIENT_SECRET}".encode()).decode()}, key=len)


def leaks(content: str | bytes, extra: tuple[str, ...] = ()) -> list[str]:
    """Each secret form found in `content`, with a little context."""
    data = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
    found, places = [], []
    for needle in [*NEEDLES, *extra]:
        at = data.find(needle.encode())
        if at >= 0 and not any(abs(at - p) < 200 for p in places):  # one line per place, not per form
            places.append(at)
            found.append(f"{needle!r} in ...{data[max(0, at - 120):at + len(needle) + 60]!r}...")
    return found


def report(found: dict[str, list[str]]) -> str:
    """Where each secret was found, one line each, for the assertion's message."""
    return "secrets found:\n" + "\n".join(f"{place}: {hit}" for place, hits in found.items() for hit in hits)


def _avro_long(data: bytes, at: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), at


def _avro_blocks(data: bytes) -> bytes:
    """An Avro container file (Iceberg manifests) with its blocks decompressed: their bytes hide deflated."""
    at, meta = 4, {}
    while True:
        count, at = _avro_long(data, at)
        if count == 0:
            break
        if count < 0:
            count, (_, at) = -count, _avro_long(data, at)
        for _ in range(count):
            size, at = _avro_long(data, at)
            key, at = data[at:at + size], at + size
            size, at = _avro_long(data, at)
            meta[key], at = data[at:at + size], at + size
    at += 16  # the sync marker
    codec, out = meta.get(b"avro.codec", b"null"), [data[:at]]
    while at < len(data):
        _, at = _avro_long(data, at)
        size, at = _avro_long(data, at)
        block, at = data[at:at + size], at + size + 16
        out.append(zlib.decompress(block, -15) if codec == b"deflate" else
                   _zstd(block) if codec == b"zstandard" else block)
    return b"".join(out)


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def contents(path: Path) -> bytes:
    """A file's bytes, and what compression and encodings hide in them: Parquet values and metadata (zstd,
    snappy), Avro blocks (deflate), gzip and zstd streams."""
    data = path.read_bytes()
    if data[:4] == b"PAR1" and data[-4:] == b"PAR1":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        metadata = {k: v for k, v in (parquet.schema_arrow.metadata or {}).items()}
        decoded = json.dumps([parquet.read().to_pylist(), str(metadata), str(parquet.metadata.metadata)],
                             default=str, ensure_ascii=False)
        return data + decoded.encode()
    if data[:4] == b"Obj\x01":
        return data + _avro_blocks(data)
    if data[:2] == b"\x1f\x8b":
        return data + gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return data + _zstd(data)
    return data


def scan_tree(folder: Path, extra: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Secrets found in each file under `folder` (relative path -> what was found)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            hits = leaks(contents(path), extra)
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def catalog_dump(catalog_url: str) -> dict[str, list[dict]]:
    """Every row of every table of the catalog database (the Iceberg catalog's tables included)."""
    import sqlalchemy as sa

    engine = sa.create_engine(catalog_url)
    try:
        with engine.connect() as conn:
            return {name: [dict(r._mapping) for r in conn.execute(sa.text(f'SELECT * FROM "{name}"'))]
                    for name in sa.inspect(conn).get_table_names()}
    finally:
        engine.dispose()


# --- the agency systems ----------------------------------------------------------------------------------

RECORDS = residents(40)
AUTHS = ("key-header", "key-query", "bearer", "basic", "oauth2")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        try:
            self.server.app(self)
        except (ConnectionError, OSError):
            pass

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass

    def answer(self, status: int, body, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class AgencyApi:
    """Agency systems over HTTP on loopback, in a mode each (`modes[system]`, "ok" by default).

    GET /{auth}/penduduk -> {"data": [records]}, for auth in AUTHS (key-header: X-API-Key; key-query: api_key;
    bearer; basic; oauth2: a token from POST /oauth/token, basic-authenticated client). GET
    /ckan/api/3/action/datastore_search: a CKAN DataStore resource `penduduk` (Authorization: the API token).
    Every refusal echoes what the client sent (headers, query string, form) in its body and a header, as
    debugging frameworks and careless APIs do. Modes:
      ok       the records (or 401 with the echo, for credentials that are not the right ones)
      401, 403, 500   that status with the echo, whatever the credentials
      moved    301 to /v2/... on the same origin, the query string (an API key in it) copied into Location
      away     302 to the same path on another host (`localhost` for 127.0.0.1), query string copied; that host
               serves the records to anyone, and `seen` shows what reached it
    """

    def __init__(self) -> None:
        self.modes: dict[str, str] = {}
        self.seen: list[dict] = []
        self.issued: set[str] = set()
        self.lock = threading.Lock()
        self.port = 0
        self.up()
        self.url = f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Listen (again, on the same port)."""
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self.server.daemon_threads = True
        self.server.app = self
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        """Stop listening: connections are refused until `up()`."""
        self.server.shutdown()
        self.server.server_close()

    stop = down

    def __call__(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        form = h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode() if h.command == "POST" else ""
        host = h.headers.get("Host", "")
        with self.lock:
            self.seen.append({"host": host, "path": split.path, "query": query, "headers": dict(h.headers)})
        echo = {"path": h.path, "headers": dict(h.headers), "form": form}
        # The echo header: what a server quoting the credentials in WWW-Authenticate or a debug header sends.
        said = h.headers.get("Authorization") or h.headers.get("X-API-Key") or split.query or form
        refuse = (lambda status: h.answer(status, {"error": "ditolak", "request": echo},
                                          {"WWW-Authenticate": f'Bearer error="invalid_token", got="{said}"',
                                           "X-Debug-Request": said}))
        if split.path == "/oauth/token":
            expected = "Basic " + base64.b64encode(f"hub-client:{CLIENT_SECRET}".encode()).decode()
            if h.headers.get("Authorization") != expected or self.modes.get("oauth2-token", "ok") != "ok":
                return refuse(401)
            token = f"{ISSUED}-{secrets.token_hex(4)}"
            with self.lock:
                self.issued.add(token)
            return h.answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        if split.path.startswith("/ckan/"):
            return self.ckan(h, query, refuse)
        parts = split.path.strip("/").split("/")
        moved = parts[0] == "v2"
        auth = parts[1] if moved else parts[0]
        if auth not in AUTHS or parts[-1] != "penduduk":
            return h.answer(404, {"error": "tidak ada"})
        if moved and not host.startswith("127.0.0.1"):  # the other host: serves anyone
            return h.answer(200, {"data": RECORDS})
        mode = "ok" if moved else self.modes.get(auth, "ok")
        if mode in ("401", "403", "500"):
            return refuse(int(mode))
        if mode in ("moved", "away"):
            target = f"/v2{split.path}" + (f"?{split.query}" if split.query else "")
            if mode == "away":
                target = f"http://localhost:{self.port}{target}"
            return h.answer(301 if mode == "moved" else 302, {"moved": target}, {"Location": target})
        if not self.authorized(h, auth, query):
            return refuse(401)
        h.answer(200, {"data": RECORDS})

    def authorized(self, h: _Handler, auth: str, query: dict) -> bool:
        given = h.headers.get("Authorization", "")
        return {
            "key-header": h.headers.get("X-API-Key") == API_KEY,
            "key-query": query.get("api_key") == API_KEY,
            "bearer": given == f"Bearer {TOKEN}",
            "basic": given == "Basic " + base64.b64encode(f"{BASIC_LOGIN}:{BASIC_PASSWORD}".encode()).decode(),
            "oauth2": given.removeprefix("Bearer ") in self.issued,
        }[auth]

    def ckan(self, h: _Handler, query: dict, refuse) -> None:
        given = h.headers.get("Authorization", "")
        mode = self.modes.get("ckan", "ok")
        if given != CKAN_KEY or mode == "403":
            # CKAN's own envelope; its message quoting the token is the portal's doing, the hub must not repeat it.
            return h.answer(403, {"success": False, "error": {
                "__type": "Authorization Error", "message": f"Access denied: token {given!r} may not read penduduk"}})
        if mode == "500":
            return refuse(500)
        fields = [{"id": "_id", "type": "int"}] + [{"id": c, "type": "text"} for c in RECORDS[0]]
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        records = [{"_id": i, **r} for i, r in enumerate(RECORDS, 1)][offset:offset + limit] if limit else []
        h.answer(200, {"success": True, "result": {"fields": fields, "records": records, "limit": limit}})


class AgencyPostgres(PostgresServer):
    """The agency's PostgreSQL: its role PG_USER logs in only with PG_PASSWORD (scram-sha-256 over TCP), unlike
    the trust authentication of the suite's clusters, so a wrong password is refused for real."""

    def start(self) -> AgencyPostgres:
        import sqlalchemy as sa

        super().start()
        self.create_database("siak")
        admin = sa.create_engine(self._url_for("siak"))
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f"CREATE ROLE {PG_USER} LOGIN PASSWORD :pw"), {"pw": PG_PASSWORD})
                conn.execute(sa.text(
                    "CREATE TABLE penduduk (nik TEXT PRIMARY KEY, nama_lengkap TEXT, jenis_kelamin TEXT, agama TEXT, "
                    "tgl_lahir TEXT, kode_kelurahan TEXT, updated_at TEXT)"))
                conn.execute(sa.text("INSERT INTO penduduk VALUES (:nik, :nama_lengkap, :jenis_kelamin, :agama, "
                                     ":tgl_lahir, :kode_kelurahan, :updated_at)"), RECORDS)
                conn.execute(sa.text(f"GRANT SELECT ON penduduk TO {PG_USER}"))
        finally:
            admin.dispose()
        hba = self._data / "pg_hba.conf"
        # The first matching line wins: the agency's role needs its password, the suite's `hub` role keeps trust.
        hba.write_text(f"host all {PG_USER} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        self._run("pg_ctl", "-D", str(self._data), "reload")
        return self

    def agency_url(self, password: str = PG_PASSWORD, port: int | None = None) -> str:
        from sqlalchemy.engine import URL

        return URL.create("postgresql+psycopg2", username=PG_USER, password=password, host="127.0.0.1",
                          port=port or self.port, database="siak").render_as_string(hide_password=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the sources ---------------------------------------------------------------------------------------

FAST = {"timeout_seconds": 5, "max_retries": 1, "retry_backoff_seconds": 0.05}


def registrations(api: AgencyApi) -> dict[str, tuple[str, dict]]:
    """Source id -> (kind, options): each names its secret, never holds it."""
    def rest(auth_path: str, auth: dict) -> tuple[str, dict]:
        return "rest", {"url": f"{api.url}/{auth_path}/penduduk", "records": "data", "auth": auth, **FAST}

    return {
        "api_key_header": rest("key-header", {"type": "api_key", "in": "header", "name": "X-API-Key",
                                              "key": {"env": "HUB_SECRETS_API_KEY"}}),
        "api_key_query": rest("key-query", {"type": "api_key", "in": "query", "name": "api_key",
                                            "key": {"env": "HUB_SECRETS_API_KEY"}}),
        "api_bearer": rest("bearer", {"type": "bearer", "token": {"connection": "secrets_bearer"}}),
        "api_basic": rest("basic", {"type": "basic", "username": {"connection": "secrets_basic", "field": "login"},
                                    "password": {"connection": "secrets_basic"}}),
        "api_oauth2": rest("oauth2", {"type": "oauth2_client_credentials", "token_url": f"{api.url}/oauth/token",
                                      "client_id": "hub-client", "client_secret": {"env": "HUB_SECRETS_CLIENT_SECRET"},
                                      "scope": "penduduk.read"}),
        "ckan_penduduk": ("ckan", {"url": f"{api.url}/ckan", "resource_id": "penduduk",
                                   "api_key": {"connection": "secrets_ckan", "field": "extra.token"}, **FAST}),
        "db_url_env": ("sql", {"url_env": "HUB_SECRETS_DB_URL", "table": "penduduk"}),
        "db_connection": ("sql", {"connection": "secrets_db", "table": "penduduk"}),
    }


def secret_env(api: AgencyApi, db: AgencyPostgres) -> dict[str, str]:
    """Where the registrations' secrets are: environment variables, and Airflow connections as JSON and URI."""
    return {
        "HUB_SECRETS_API_KEY": API_KEY,
        "HUB_SECRETS_CLIENT_SECRET": CLIENT_SECRET,
        "HUB_SECRETS_DB_URL": db.agency_url(),
        "AIRFLOW_CONN_SECRETS_BEARER": json.dumps({"conn_type": "http", "host": "127.0.0.1", "password": TOKEN}),
        "AIRFLOW_CONN_SECRETS_BASIC": f"http://{BASIC_LOGIN}:{quote(BASIC_PASSWORD, safe='')}@127.0.0.1:{api.port}",
        "AIRFLOW_CONN_SECRETS_CKAN": json.dumps({"conn_type": "http", "extra": {"token": CKAN_KEY}}),
        "AIRFLOW_CONN_SECRETS_DB": db_connection(db.port, PG_PASSWORD),
    }


def db_connection(port: int, password: str) -> str:
    return json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": port, "login": PG_USER,
                       "password": password, "schema": "siak"})


@dataclass(frozen=True)
class Scenario:
    """One run of a source while its agency system is in a state: what it does, and how the run ends."""

    name: str
    source: str
    modes: dict = field(default_factory=dict)  # AgencyApi.modes for the run
    env: object = None  # (api, db) -> the environment the run gets instead (a wrong secret, another port)
    down: bool = False  # the agency API is not listening
    error: str | None = None  # the error class the catalog records; None: the run publishes (or is unchanged)
    says: str = ""  # and what its message says
    cli: bool = False  # also run through `hub run` in a child process


SOURCES = ("api_key_header", "api_key_query", "api_bearer", "api_basic", "api_oauth2", "ckan_penduduk", "db_url_env",
           "db_connection")
SCENARIOS = [
    # Each source publishes first, so that its dataset (and the failed runs after) is what `hub serve` shows.
    # `hub run` children are few: each one imports Great Expectations anew, seconds of this machine's two cores.
    *(Scenario("reads", s, cli=s == "api_basic") for s in SOURCES),
    Scenario("a wrong API key, which the 401 echoes", "api_key_query", env=lambda api, db: {
        "HUB_SECRETS_API_KEY": WRONG_KEY}, error="FatalSourceError", says="HTTP 401 Unauthorized"),
    Scenario("a 500 echoing the key header", "api_key_header", modes={"key-header": "500"},
             error="RetriableSourceError", says="HTTP 500 Internal Server Error (gave up after 2 attempts)", cli=True),
    Scenario("a 403 echoing the bearer token", "api_bearer", modes={"bearer": "403"}, error="FatalSourceError",
             says="HTTP 403 Forbidden: the credentials are missing or refused"),
    Scenario("a 401 echoing the basic credentials", "api_basic", modes={"basic": "401"}, error="FatalSourceError",
             says="HTTP 401 Unauthorized"),
    Scenario("the token endpoint's 401 echoing the client secret", "api_oauth2", modes={"oauth2-token": "401"},
             error="FatalSourceError", says="POST 127.0.0.1"),
    Scenario("a move to /v2 with the API key copied into Location", "api_key_query", modes={"key-query": "moved"}),
    Scenario("a redirect to another host (API key header)", "api_key_header", modes={"key-header": "away"}),
    Scenario("a redirect to another host (basic)", "api_basic", modes={"basic": "away"}),
    Scenario("a refused connection", "api_key_query", down=True, error="RetriableSourceError", says="ConnectError"),
    Scenario("CKAN's 403 quoting the API token", "ckan_penduduk", modes={"ckan": "403"}, error="FatalSourceError",
             says="Authorization Error: Access denied", cli=True),
    Scenario("a wrong database password in url_env", "db_url_env", env=lambda api, db: {
        "HUB_SECRETS_DB_URL": db.agency_url(WRONG_PG)}, error="RetriableSourceError",
        says="password authentication failed", cli=True),
    Scenario("a wrong database password in the connection", "db_connection", env=lambda api, db: {
        "AIRFLOW_CONN_SECRETS_DB": db_connection(db.port, WRONG_PG)}, error="RetriableSourceError",
        says="password authentication failed"),
    Scenario("a database refusing connections", "db_url_env", env=lambda api, db: {
        "HUB_SECRETS_DB_URL": db.agency_url(port=closed_port())}, error="RetriableSourceError",
        says="Connection refused"),
]


# --- running them ------------------------------------------------------------------------------------------


class Records(logging.Handler):
    """Every Python log record of this process while the sources run, formatted with its traceback: caplog's
    capture, kept for the module's whole flow (Airflow's DAG runs included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record whose arguments do not format is still looked at
            self.lines.append(f"{record.name}: {record.msg!r} {record.args!r}")


@dataclass
class Outcome:
    scenario: Scenario
    way: str  # airflow | cli
    failed: bool
    said: str  # how the DAG run or the command ended (its error)
    runs: list  # the hub_runs rows the run added: (status, error)


@dataclass
class World:
    home: Path
    registry: Path
    catalog_url: str
    api: AgencyApi
    outcomes: list[Outcome] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)  # child process -> its stdout and stderr
    records: Records = field(default_factory=Records)
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)  # hub serve: path -> (status, body)
    steward_token: str = ""
    inline_check: tuple[int, str] = (0, "")  # `hub sources check` of a registration holding its secret
    file_hits: dict[str, list[str]] = field(default_factory=dict)
    scanned: list[str] = field(default_factory=list)


def new_runs(catalog_url: str, after: int = -1) -> list[tuple]:
    """(id, dataset, status, error) of the catalog's runs after id `after`."""
    import sqlalchemy as sa

    engine = sa.create_engine(catalog_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT id, dataset_id, status, error FROM hub_runs WHERE id > :after ORDER BY id"), {"after": after})]
    finally:
        engine.dispose()


def last_run(catalog_url: str) -> int:
    runs = new_runs(catalog_url)
    return runs[-1][0] if runs else 0


def register_all(registry: Path, api: AgencyApi) -> None:
    registry.mkdir(parents=True, exist_ok=True)
    for source_id, (kind, options) in registrations(api).items():
        write_registration(registry, source_id, kind, options)


def write_registration(registry: Path, source_id: str, kind: str, options: dict) -> None:
    spec = {"id": source_id, "title": f"Penduduk ({source_id})",
            "agency": {"code": "disdukcapil", "name": "Dinas Kependudukan dan Pencatatan Sipil Kota Bogor"},
            "standard": "penduduk@1.0.0", "kind": kind, "options": options, "mapping": MAPPING}
    (registry / f"{source_id}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


class Children:
    """`hub` commands in child processes, as an operator runs them with this hub's home, registry and secrets,
    their output kept in files (several run at once)."""

    def __init__(self, world: World, folder: Path) -> None:
        self.world, self.folder, self.running, self.started = world, folder, [], 0
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, label: str, env: dict, *args: str) -> None:
        self.started += 1
        out = self.folder / f"{self.started}.out"
        with out.open("w") as f:
            process = subprocess.Popen([HUB, *args], env=hub_env(self.world.home, {
                "HUB_REGISTRY": str(self.world.registry), **env}), stdout=f, stderr=subprocess.STDOUT, text=True)
        self.running.append((label, args, process, out))

    def wait(self) -> dict[str, tuple[int, str]]:
        done = {}
        for label, args, process, out in self.running:
            process.wait(timeout=300)
            text = out.read_text()
            self.world.outputs[label] = f"$ hub {shlex.join(args)}\n{text}"
            done[label] = (process.returncode, text)
        self.running = []
        return done


def run_through_airflow(world: World, dag, scenario: Scenario) -> Outcome:
    """A real DAG run of the source's DAG, as `hub demo` runs one: its output goes to the log file under the
    home's airflow/logs (dag.test() runs tasks in this process and prints their logs)."""
    from hub.errors import HubError
    from _airflow import run_dag

    before = last_run(world.catalog_url)
    try:
        run_dag(dag, world.home / "airflow" / "logs" / "dag-runs.log")
        failed, said = False, ""
    except HubError as e:
        failed, said = True, str(e)
    runs = [(status, error) for _, _, status, error in new_runs(world.catalog_url, before)]
    return Outcome(scenario, "airflow", failed, said, runs)


def get(base: str, path: str, token: str) -> tuple[int, str]:
    import httpx

    answer = httpx.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return answer.status_code, answer.text


def served_paths(dataset: str) -> list[str]:
    api = f"/api/datasets/{dataset}"
    return [api, f"{api}/versions", f"{api}/lineage", f"{api}/quality", f"{api}/quarantine", f"{api}/dictionary",
            f"{api}/data-docs.html", f"{api}/access-log", f"{api}/rows?limit=5", f"/dataset/{dataset}",
            f"/api/3/action/package_show?id={dataset}"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, session_home):
    """Every scenario through Airflow, some through `hub run`; then `hub serve`'s answers, and every file."""
    import datetime as dt

    from hub.airflow_dags import harmonized_asset, source_dag_id
    from _airflow import dag_bag

    tmp = tmp_path_factory.mktemp("secrets")
    api = AgencyApi()
    world = World(home=tmp / "home", registry=tmp / "registry", catalog_url=f"sqlite:///{tmp / 'home' / 'catalog.db'}",
                  api=api)
    children = Children(world, tmp / "outputs")
    db = None
    root, level = logging.getLogger(), logging.getLogger().level
    server = None
    try:
        register_all(world.registry, api)
        children.start("hub init", {}, "init")  # while the agency's database starts
        db = AgencyPostgres().start()
        base = secret_env(api, db)
        root.addHandler(world.records)
        root.setLevel(logging.DEBUG)
        dag_log = world.home / "airflow" / "logs" / "dag-runs.log"
        dag_log.parent.mkdir(parents=True, exist_ok=True)
        # run_dag sends file descriptors 1 and 2 to the log, as `hub demo` does; under pytest sys.stdout is not
        # descriptor 1, and Airflow's task logs are written to sys.stdout: sent to the same file here.
        with pytest.MonkeyPatch.context() as mp, dag_log.open("a") as out, \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            # What the tasks read (load_settings, the secrets). Airflow's own database is the session's: Airflow
            # reads its configuration once, at import, before this home existed.
            for name, value in {"HUB_HOME": str(world.home), "HUB_CATALOG_URL": world.catalog_url,
                                "HUB_REGISTRY": str(world.registry), **base}.items():
                mp.setenv(name, value)
            bag = dag_bag()
            dags = {s: bag.get_dag(source_dag_id(s)) for s in SOURCES}
            for dag in dags.values():
                assert dag.default_args["retries"] == 2
                for task in dag.tasks:
                    task.retry_delay, task.retry_exponential_backoff = dt.timedelta(0), 0  # retries, without waits
            (code, text), = children.wait().values()
            assert code == 0, text
            for scenario in SCENARIOS:
                changed = scenario.env(api, db) if scenario.env else {}
                api.modes = dict(scenario.modes)
                if scenario.down:
                    api.down()
                try:
                    with pytest.MonkeyPatch.context() as run_mp:
                        for name, value in changed.items():
                            run_mp.setenv(name, value)
                        world.outcomes.append(run_through_airflow(world, dags[scenario.source], scenario))
                finally:
                    api.modes = {}
                    if scenario.down:
                        api.up()
        root.removeHandler(world.records)
        root.setLevel(level)

        # The same sources through `hub run`, at once: each child with its own scenario's secrets and modes.
        cli = [s for s in SCENARIOS if s.cli]
        assert len({s.source for s in cli if s.modes}) == len([s for s in cli if s.modes])
        api.modes = {k: v for s in cli for k, v in s.modes.items()}
        before = last_run(world.catalog_url)
        for scenario in cli:
            env = {**base, **(scenario.env(api, db) if scenario.env else {})}
            children.start(f"hub run {scenario.source}: {scenario.name}", env, "run", scenario.source, "--json")
        children.start("hub users create", {}, "users", "create", "walidata", "--role", "steward")
        children.start("hub sources check", base, "sources", "check", "api_oauth2", "--json")
        inline = tmp / "inline-registry"  # a registration of its own: one refused file stops a whole registry
        inline.mkdir()
        write_registration(inline, "api_inline", "rest", {
            "url": f"{api.url}/key-header/penduduk", "records": "data",
            "auth": {"type": "api_key", "in": "header", "name": "X-API-Key", "key": INLINE}})
        children.start("hub sources check (a secret written inline)", {"HUB_REGISTRY": str(inline)},
                       "sources", "check", "api_inline")
        done = children.wait()
        api.modes = {}
        added = new_runs(world.catalog_url, before)
        for scenario in cli:
            code, text = done[f"hub run {scenario.source}: {scenario.name}"]
            runs = [(status, error) for _, source, status, error in added if source == scenario.source]
            world.outcomes.append(Outcome(scenario, "cli", code != 0, text, runs))
        code, text = done["hub users create"]
        assert code == 0, text
        world.steward_token = next(line for line in text.splitlines() if line.startswith("hub_"))
        assert done["hub sources check"][0] == 0, done["hub sources check"][1]
        world.inline_check = done["hub sources check (a secret written inline)"]

        # What the catalog serves about each dataset, to a steward (who may see the most).
        server, base_url = serve(world.home, {"HUB_REGISTRY": str(world.registry)})
        for path in ["/api/datasets", "/api/search?q=penduduk", "/agencies", "/agency/disdukcapil", "/catalog.jsonld",
                     *(p for s in SOURCES for p in served_paths(s))]:
            world.answers[path] = get(base_url, path, world.steward_token)
        # Every file while the catalog is open (its write-ahead log exists while a connection does).
        for folder in (world.home, world.registry, session_home / "airflow"):
            world.scanned += [str(p) for p in folder.rglob("*") if p.is_file()]
            world.file_hits.update({f"{folder}/{k}": v for k, v in scan_tree(folder, (world.steward_token,)).items()})
        server.terminate()
        world.outputs["hub serve"] = server.communicate(timeout=30)[0].decode(errors="replace")
        yield world
    finally:
        root.removeHandler(world.records)
        root.setLevel(level)
        if server is not None and server.poll() is None:
            server.kill()
            server.wait(timeout=30)
        api.stop()
        if db is not None:
            db.stop()
        # What the scheduler would do with the Asset events the publishes emitted: use them up.
        from airflow.models.asset import AssetDagRunQueue, AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import delete, select

        with create_session() as s:
            s.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.asset_id.in_(
                select(AssetModel.id).where(AssetModel.uri.in_([harmonized_asset(x).uri for x in SOURCES])))))


# --- what must hold -------------------------------------------------------------------------------------------


def test_each_run_ended_as_its_agency_system_made_it_end(world):
    """The scan means something only if the runs did what they were set up to do."""
    assert sorted((o.scenario.source, o.scenario.name, o.way) for o in world.outcomes) == sorted(
        [*((s.source, s.name, "airflow") for s in SCENARIOS), *((s.source, s.name, "cli") for s in SCENARIOS if s.cli)])
    for o in world.outcomes:
        s, where = o.scenario, f"{o.way}: {o.scenario.source}: {o.scenario.name}: {o.said[-2000:]}"
        assert o.failed == (s.error is not None), where
        assert o.runs, where
        if s.error is None:
            assert [status for status, _ in o.runs] in (["published"], ["unchanged"]), where
            continue
        # Airflow retries a retriable error twice (three tries, each a failed run); a fatal one fails at once.
        tries = 3 if o.way == "airflow" and s.error == "RetriableSourceError" else 1
        assert [status for status, _ in o.runs] == ["failed"] * tries, where
        for _, error in o.runs:
            assert error.startswith(f"{s.error}: source {s.source}: ") and s.says in error, where
        if o.way == "cli":
            assert f"hub: error: source {s.source}: " in o.said, where


def test_credentials_never_follow_a_redirect_to_another_host(world):
    elsewhere = [r for r in world.api.seen if not r["host"].startswith("127.0.0.1")]
    assert {r["path"] for r in elsewhere} == {"/v2/key-header/penduduk", "/v2/basic/penduduk"}
    for r in elsewhere:
        assert not {"x-api-key", "authorization"} & {k.lower() for k in r["headers"]}, r
    # Within the API's own origin the credentials go on: the moved API answered the hub.
    assert [r for r in world.api.seen if r["path"] == "/v2/key-query/penduduk" and r["query"].get("api_key") == API_KEY]


def test_no_secret_in_any_file_under_the_hub_home_nor_in_the_registry(world):
    """Airflow's database and task logs, the catalog database and its WAL, staging, the Iceberg metadata,
    manifests and data files, the registry: all of it, read through its compression."""
    scanned = {Path(p).name for p in world.scanned}
    assert {"catalog.db", "airflow.db", "dag-runs.log"} <= scanned
    # The task logs are there: failures, with their tracebacks and the hub's messages.
    task_logs = (world.home / "airflow" / "logs" / "dag-runs.log").read_text()
    assert "Task failed with exception" in task_logs and "Traceback" in task_logs
    assert "hub.errors.FatalSourceError: source ckan_penduduk: CKAN datastore_search at" in task_logs
    assert any(n.endswith(".metadata.json") for n in scanned) and any(n.endswith(".avro") for n in scanned)
    assert any(n.endswith(".parquet") for n in scanned)
    assert not world.file_hits, report(world.file_hits)


def test_no_secret_in_what_the_hub_printed_or_logged(world):
    """Every child's stdout and stderr (`hub serve`'s too), and every Python log record of the DAG runs (the
    hub's, Airflow's, httpx's and httpcore's, at DEBUG). The task logs dag.test() prints are in dag-runs.log,
    scanned with the files: it writes no task log file that Airflow's log reader could serve."""
    assert world.records.lines and "hub serve" in world.outputs
    found = {}
    for label, text in world.outputs.items():
        # The steward's token is printed once, by the command creating it, by design.
        hits = leaks(text, () if label == "hub users create" else (world.steward_token,))
        if hits:
            found[label] = hits
    for line in world.records.lines:
        if hits := leaks(line):
            found.setdefault("log records", []).extend(hits)
    assert not found, report(found)


def test_no_secret_in_any_table_of_the_catalog(world):
    """Every row of every table, the run errors first among them."""
    errors = [error for _, _, status, error in new_runs(world.catalog_url) if status == "failed"]
    assert len(errors) >= len([s for s in SCENARIOS if s.error])
    assert not [e for e in errors if leaks(e, (world.steward_token,))], report({"hub_runs.error": [
        e for e in errors if leaks(e, (world.steward_token,))]})
    dump = catalog_dump(world.catalog_url)
    assert {"hub_runs", "hub_datasets", "hub_lineage", "hub_audit_log", "hub_tokens"} <= set(dump)
    found = {t: leaks(json.dumps(rows, default=str), (world.steward_token,)) for t, rows in dump.items()}
    found = {t: hits for t, hits in found.items() if hits}
    assert not found, report(found)


def test_no_secret_in_what_hub_serve_answers(world):
    """The datasets' metadata with their runs and errors, lineage, quality, portal pages, CKAN's package_show."""
    for source in SOURCES:
        status, body = world.answers[f"/api/datasets/{source}"]
        assert status == 200, body[:500]
        assert json.loads(body)["runs"], source
    assert any(r["status"] == "failed" and r["error"] for s in SOURCES
               for r in json.loads(world.answers[f"/api/datasets/{s}"][1])["runs"])
    found = {path: leaks(body, (world.steward_token,)) for path, (_, body) in world.answers.items()}
    found = {path: hits for path, hits in found.items() if hits}
    assert not found, report(found)


def test_a_secret_written_in_a_registration_is_refused_without_being_repeated(world):
    """`hub sources check` refuses it, naming the file, the line and the field (the scan of every output above
    shows the secret is not repeated there)."""
    code, text = world.inline_check
    assert code == 2, text
    assert "api_inline.yaml:" in text and "field options/auth/key" in text, text
    assert INLINE not in text and not leaks(text)


def test_the_scan_sees_through_what_the_files_compress(world, tmp_path):
    """The scan finds text inside zstd Parquet data files and deflated Avro manifests, and every encoded form of
    a secret: without that, finding nothing would prove nothing."""
    warehouse = world.home / "warehouse"
    data = next(p for p in warehouse.rglob("*.parquet") if "/data/" in str(p))
    nik = next(r["nik"] for r in RECORDS if r["nik"].encode() in contents(data))
    assert nik.encode() not in data.read_bytes()  # compressed: only the decoded content shows it
    manifest = next(p for p in warehouse.rglob("*.avro") if data.name.encode() in contents(p))
    assert data.name.encode() not in manifest.read_bytes()
    credentials = base64.b64encode(f"{BASIC_LOGIN}:{BASIC_PASSWORD}".encode()).decode()
    for form in [BASIC_PASSWORD, quote(BASIC_PASSWORD, safe=""), quote_plus(BASIC_PASSWORD),
                 json.dumps({"p": BASIC_PASSWORD})]:
        assert leaks(f"... {form} ..."), form
    # Base64 hides the random part: these are found by the encoded forms alone, at each alignment.
    for form in [f"Authorization: Basic {credentials}", base64.b64encode(f"x{TOKEN}y".encode()).decode(),
                 base64.urlsafe_b64encode(f"xy{TOKEN}".encode()).decode(), base64.b64encode(TOKEN.encode()).decode()]:
        assert RAND not in form and leaks(f"... {form} ..."), form
    compressed = tmp_path / "log.gz"
    compressed.write_bytes(gzip.compress(f"x{API_KEY}".encode()))
    assert leaks(contents(compressed)) and not leaks(compressed.read_bytes())
