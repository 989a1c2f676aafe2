"""The `rest` kind and the shared HTTP client, against a real agency API served on loopback."""

from __future__ import annotations

import dataclasses

import base64
import email.utils
import json
import logging
import socket
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from jsonschema import Draft202012Validator

from connectors.base import ROW
from connectors.kinds import connector_for
from connectors.registry import Source, load_source
from connectors.rest import RestConnector
from hub.errors import ConfigError, FatalSourceError, RetriableSourceError
from tests.connectors.conformance import IncrementalConformance

API_KEY = "k3y-Rahasia-9d1e"
TOKEN = "t0ken-Rahasia-41c7"
PASSWORD = "pa55-Rahasia-b8f0"
CLIENT_SECRET = "cl1ent-Rahasia-5a2d"
SECRETS = (API_KEY, TOKEN, PASSWORD, CLIENT_SECRET)
FAST = {"max_retries": 2, "retry_backoff_seconds": 0.05, "timeout_seconds": 5}


# --- a loopback HTTP server ------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """Answers through `self.server.app(handler)`; keeps connections alive as HTTP/1.1 servers do."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        try:
            self.server.app(self)
        except ConnectionError:
            pass  # the client gave up waiting (a timeout test)

    do_POST = do_GET

    def answer(self, status: int, body, headers: dict | None = None, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        return {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

    def log_message(self, *args) -> None:
        pass


def serve(app):
    """Serve `app(handler)` on a free loopback port in a thread; returns the server (`.url`, `.stop()`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.app = app
    server.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    server.stop = stop
    return server


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the agency API ------------------------------------------------------------------------------------


class AgencyApi:
    """A small agency API: datasets of records served in each pagination style, behind each kind of
    credentials, an OAuth2 token endpoint, and paths that fail the ways real servers fail.

    GET /{auth}/{dataset}/{style}: auth is open, key-header, key-query, bearer, basic or oauth2; style is
    none (the bare list), page, offset, cursor or link; `since` keeps records with a greater `id`.
    GET /fault/{kind}/{key}: a fault, once per key or always (see `fault`). POST /oauth/token issues tokens.
    """

    def __init__(self) -> None:
        self.datasets: dict[str, list[dict]] = {}
        self.requests: list[dict] = []
        self.hits: Counter = Counter()
        self.tokens: dict[str, float] = {}  # token -> when it expires
        self.token_lifetime = 3600.0
        self.lock = threading.Lock()
        self.server = serve(self)
        self.url = self.server.url

    def dataset(self, records: list[dict]) -> str:
        name = uuid.uuid4().hex[:12]
        self.datasets[name] = list(records)
        return name

    def __call__(self, h: Handler) -> None:
        path = urlsplit(h.path).path
        query = h.query()
        with self.lock:
            self.requests.append({"method": h.command, "path": path, "query": query, "headers": dict(h.headers),
                                  "host": h.headers.get("Host")})
            self.hits[path] += 1
            hits = self.hits[path]
        parts = path.strip("/").split("/")
        if parts[0] == "oauth":
            return self.token(h)
        if parts[0] == "fault":
            return self.fault(h, parts[1], hits)
        auth, name, style = parts
        if not self.authorized(h, auth, query):
            return h.answer(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})
        if name not in self.datasets:
            return h.answer(404, {"error": "not found"})
        records = [r for r in self.datasets[name] if "since" not in query or r["id"] > int(query["since"])]
        self.page(h, records, style, query, path)

    def authorized(self, h: Handler, auth: str, query: dict) -> bool:
        given = h.headers.get("Authorization", "")
        if auth == "key-header":
            return h.headers.get("X-API-Key") == API_KEY
        if auth == "key-query":
            return query.get("api_key") == API_KEY
        if auth == "bearer":
            return given == f"Bearer {TOKEN}"
        if auth == "basic":
            return given == "Basic " + base64.b64encode(f"hub:{PASSWORD}".encode()).decode()
        if auth == "oauth2":
            token = given.removeprefix("Bearer ")
            return self.tokens.get(token, 0) > time.monotonic()
        return auth == "open"

    def page(self, h: Handler, records: list[dict], style: str, query: dict, path: str) -> None:
        if style == "none":
            return h.answer(200, records)
        size = int(query.get("limit") or query.get("per_page"))
        if style == "page":
            page = int(query.get("page", 1))
            return h.answer(200, {"data": {"items": records[(page - 1) * size:page * size]}, "meta": {"page": page}})
        if style == "offset":
            start = int(query.get("offset", 0))
            return h.answer(200, {"data": records[start:start + size], "total": len(records)})
        if style == "cursor":
            start = int(base64.b64decode(query["cursor"])) if "cursor" in query else 0
            more = start + size < len(records)
            following = base64.b64encode(str(start + size).encode()).decode() if more else None
            return h.answer(200, {"results": records[start:start + size], "next": following})
        page = int(query.get("page", 1))
        headers = {}
        if page * size < len(records):
            since = f"&since={query['since']}" if "since" in query else ""
            host = f"http://{query['next_host']}" if "next_host" in query else ""
            following = f"{host}{path}?page={page + 1}&per_page={size}{since}"
            headers["Link"] = f'<{following}>; rel="next", <{path}?page=1>; rel="first"'
        h.answer(200, records[(page - 1) * size:page * size], headers)

    def token(self, h: Handler) -> None:
        form = h.form()
        expected = "Basic " + base64.b64encode(f"hub-client:{CLIENT_SECRET}".encode()).decode()
        if h.headers.get("Authorization") != expected or form.get("grant_type") != "client_credentials":
            return h.answer(401, {"error": "invalid_client"})
        token = uuid.uuid4().hex
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
        h.answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime,
                       "scope": form.get("scope", "")})

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def fault(self, h: Handler, kind: str, hits: int) -> None:
        ok = [{"id": 1, "nama": "Siti Aminah"}]
        if kind == "429-once" and hits == 1:
            return h.answer(429, {"error": "slow down"}, {"Retry-After": "1"})
        if kind == "503-date-once" and hits == 1:
            when = email.utils.formatdate(time.time() + 1.5, usegmt=True)
            return h.answer(503, {"error": "maintenance"}, {"Retry-After": when})
        if kind == "500-once" and hits == 1 or kind == "500-always":
            return h.answer(500, {"error": "internal"})
        if kind == "drop-once" and hits == 1:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "1000")
            h.end_headers()
            h.wfile.write(b'[{"id": 1, "na')
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return None
        if kind == "slow":
            time.sleep(1.0)
        if kind == "404":
            return h.answer(404, {"error": "not found"})
        if kind == "html":
            return h.answer(200, b"<html><body>Sedang pemeliharaan</body></html>", content_type="text/html")
        h.answer(200, ok)


@pytest.fixture(scope="module")
def api():
    server = AgencyApi()
    yield server
    server.server.stop()


def rest_source(tmp_path: Path, url: str, **options) -> Source:
    return Source(
        id="siak_api", title="SIAK API", description="", agency_code="disdukcapil", agency_name="Disdukcapil",
        standard_ref="penduduk@1.0.0", kind="rest", schedule=None, options={"url": url, **FAST, **options},
        mapping={"kode": {"from": "id"}}, path=tmp_path / "siak_api.yaml",
    )


def rows(source: Source, cursor=None) -> list[dict]:
    return [r for b in connector_for(source).read(cursor) for r in b.records.to_pylist()]


PEOPLE = [{"id": i, "nik": f"32710101019000{i:02d}", "nama": f"Warga {i}", "rt": f"{i % 4:03d}"} for i in range(1, 12)]


def people_rows(records=PEOPLE) -> list[dict]:
    return [{"id": str(r["id"]), "nik": r["nik"], "nama": r["nama"], "rt": r["rt"], ROW: n}
            for n, r in enumerate(records, start=1)]


# --- pagination ------------------------------------------------------------------------------------------------


PAGINATIONS = {
    "none": ({"type": "none"}, ""),
    "page": ({"type": "page"}, "data.items"),
    "offset": ({"type": "offset"}, "data"),
    "cursor": ({"type": "cursor", "next_cursor": "next"}, "results"),
    "link": ({"type": "link", "size_param": "per_page"}, ""),
}


@pytest.mark.parametrize("style", PAGINATIONS)
def test_every_pagination_style_reads_every_record_once_in_order(api, tmp_path, style):
    pagination, records = PAGINATIONS[style]
    name = api.dataset(PEOPLE)
    source = rest_source(tmp_path, f"{api.url}/open/{name}/{style}", pagination=pagination, records=records,
                         page_size=3, batch_rows=4)
    batches = list(connector_for(source).read())
    assert [b.records.num_rows for b in batches] == [4, 4, 3]
    assert [r for b in batches for r in b.records.to_pylist()] == people_rows()


def test_page_pagination_sends_its_parameters_and_stops_at_the_first_empty_page(api, tmp_path):
    name = api.dataset(PEOPLE[:4])
    path = f"/open/{name}/page"
    source = rest_source(tmp_path, f"{api.url}{path}", records="data.items", page_size=2, params={"status": "aktif"},
                         pagination={"type": "page", "page_param": "page", "size_param": "per_page", "first_page": 1})
    assert len(rows(source)) == 4
    sent = [r["query"] for r in api.requests if r["path"] == path]
    assert sent == [{"status": "aktif", "per_page": "2", "page": str(p)} for p in (1, 2, 3)]


def test_a_fixed_query_string_in_the_url_is_kept(api, tmp_path):
    name = api.dataset(PEOPLE)
    path = f"/open/{name}/offset"
    source = rest_source(tmp_path, f"{api.url}{path}?wilayah=3271", records="data", pagination={"type": "offset"},
                         page_size=20)
    assert len(rows(source)) == len(PEOPLE)
    assert all(r["query"]["wilayah"] == "3271" for r in api.requests if r["path"] == path)


def test_an_api_ignoring_the_page_parameter_is_fatal_not_an_endless_read(api, tmp_path):
    name = api.dataset(PEOPLE)
    source = rest_source(tmp_path, f"{api.url}/open/{name}/offset", records="data", page_size=3,
                         pagination={"type": "offset", "offset_param": "skip"})
    with pytest.raises(FatalSourceError, match="same page twice"):
        rows(source)


def test_a_wrong_records_path_is_fatal_and_names_it(api, tmp_path):
    name = api.dataset(PEOPLE)
    source = rest_source(tmp_path, f"{api.url}/open/{name}/page", records="data.rows", pagination={"type": "page"})
    with pytest.raises(FatalSourceError, match="'data.rows'"):
        rows(source)


def test_nested_objects_become_dotted_columns_and_arrays_json_text(api, tmp_path):
    name = api.dataset([
        {"id": 1, "nama": "Siti", "alamat": {"rt": "001", "rw": "002", "kelurahan": {"kode": "3271011001"}},
         "telepon": ["0812", "0813"], "aktif": True, "skor": 2.50},
        {"id": 2, "nama": "Agus", "catatan": "pindah", "aktif": False, "skor": 7},
        "not an object",
    ])
    batches = list(connector_for(rest_source(tmp_path, f"{api.url}/open/{name}/none")).read())
    (batch,) = batches
    assert batch.records.column_names == ["id", "nama", "alamat.rt", "alamat.rw", "alamat.kelurahan.kode",
                                          "telepon", "aktif", "skor", "catatan", ROW]
    assert batch.records.to_pylist() == [
        {"id": "1", "nama": "Siti", "alamat.rt": "001", "alamat.rw": "002", "alamat.kelurahan.kode": "3271011001",
         "telepon": '["0812", "0813"]', "aktif": "true", "skor": "2.5", "catatan": None, ROW: 1},
        {"id": "2", "nama": "Agus", "alamat.rt": None, "alamat.rw": None, "alamat.kelurahan.kode": None,
         "telepon": None, "aktif": "false", "skor": "7", "catatan": "pindah", ROW: 2},
    ]
    assert batch.rejected == [(3, "_record:not_object", '"not an object"')]


def test_batches_have_the_mapped_columns_and_every_column_met_so_far(api, tmp_path):
    name = api.dataset([{"id": 1, "a": "x"}, {"id": 2, "b": "y"}, {"id": 3}])
    source = dataclasses.replace(rest_source(tmp_path, f"{api.url}/open/{name}/none", batch_rows=1),
                                 mapping={"kode": {"from": "id"}, "nama": {"from": "b"}})  # b: null until row 2
    batches = list(connector_for(source).read())
    assert [b.records.column_names for b in batches] == [["id", "b", "a", ROW], ["id", "b", "a", ROW],
                                                         ["id", "b", "a", ROW]]


# --- incremental reads ------------------------------------------------------------------------------------------


def test_the_committed_cursor_goes_as_the_since_parameter(api, tmp_path):
    name = api.dataset(PEOPLE)
    path = f"/open/{name}/link"
    source = rest_source(tmp_path, f"{api.url}{path}", pagination={"type": "link", "size_param": "per_page"},
                         page_size=2, cursor_field="id", since_param="since")
    got = list(connector_for(source).read(8))
    assert [r["id"] for b in got for r in b.records.to_pylist()] == ["9", "10", "11"]
    assert got[-1].cursor == 11
    assert all(r["query"].get("since") == "8" for r in api.requests if r["path"] == path)


def test_cursor_values_of_mixed_types_are_fatal(api, tmp_path):
    name = api.dataset([{"id": 1, "diubah": "2024-01-01"}, {"id": 2, "diubah": 20240102}])
    source = rest_source(tmp_path, f"{api.url}/open/{name}/none", cursor_field="diubah", since_param="since")
    with pytest.raises(FatalSourceError, match="'diubah'"):
        rows(source)


# --- credentials ------------------------------------------------------------------------------------------------


@pytest.fixture
def secrets_in_env(monkeypatch):
    monkeypatch.setenv("HUB_TEST_API_KEY", API_KEY)
    monkeypatch.setenv("HUB_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("HUB_TEST_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("AIRFLOW_CONN_HUB_TEST_SIAK", json.dumps({"conn_type": "http", "login": "hub",
                                                                "password": PASSWORD}))
    monkeypatch.setenv("HUB_TEST_WRONG", "wrong-Rahasia-0000")


AUTHS = {
    "key-header": {"type": "api_key", "in": "header", "name": "X-API-Key", "key": {"env": "HUB_TEST_API_KEY"}},
    "key-query": {"type": "api_key", "in": "query", "name": "api_key", "key": {"env": "HUB_TEST_API_KEY"}},
    "bearer": {"type": "bearer", "token": {"env": "HUB_TEST_TOKEN"}},
    "basic": {"type": "basic", "username": {"connection": "hub_test_siak", "field": "login"},
              "password": {"connection": "hub_test_siak"}},
}
SECRET_FIELD = {"key-header": "key", "key-query": "key", "bearer": "token", "basic": "password"}


def oauth2(api, secret_env: str = "HUB_TEST_CLIENT_SECRET") -> dict:
    return {"type": "oauth2_client_credentials", "token_url": f"{api.url}/oauth/token", "client_id": "hub-client",
            "client_secret": {"env": secret_env}, "scope": "penduduk.read"}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("auth", AUTHS)
def test_each_kind_of_credentials_is_accepted_and_never_shown(api, tmp_path, secrets_in_env, caplog, auth):
    caplog.set_level(logging.DEBUG)
    name = api.dataset(PEOPLE)
    source = rest_source(tmp_path, f"{api.url}/{auth}/{name}/page", records="data.items",
                         pagination={"type": "page"}, page_size=5, auth=AUTHS[auth])
    connector = connector_for(source)
    connector.check()
    assert rows(source) == people_rows()
    assert_no_secret(connector.describe() + caplog.text)


@pytest.mark.parametrize("auth", AUTHS)
def test_wrong_credentials_are_fatal_and_the_message_shows_no_secret(api, tmp_path, secrets_in_env, caplog, auth):
    caplog.set_level(logging.DEBUG)
    name = api.dataset(PEOPLE)
    wrong = json.loads(json.dumps(AUTHS[auth]).replace('"HUB_TEST_API_KEY"', '"HUB_TEST_WRONG"')
                       .replace('"HUB_TEST_TOKEN"', '"HUB_TEST_WRONG"').replace('{"connection": "hub_test_siak"}',
                                                                                 '{"env": "HUB_TEST_WRONG"}'))
    source = rest_source(tmp_path, f"{api.url}/{auth}/{name}/none", auth=wrong)
    with pytest.raises(FatalSourceError, match="HTTP 401") as raised:
        rows(source)
    assert "siak_api" in str(raised.value) and name in str(raised.value)
    assert_no_secret(str(raised.value) + caplog.text)
    assert "wrong-Rahasia-0000" not in str(raised.value) + caplog.text


def test_oauth2_tokens_are_cached_and_renewed_when_they_expire(api, tmp_path, secrets_in_env, caplog):
    caplog.set_level(logging.DEBUG)
    api.token_lifetime = 0.5
    try:
        name = api.dataset(PEOPLE)
        source = rest_source(tmp_path, f"{api.url}/oauth2/{name}/page", records="data.items",
                             pagination={"type": "page"}, page_size=2, rate_limit_per_second=10, auth=oauth2(api))
        before = api.hits["/oauth/token"]
        assert rows(source) == people_rows()
    finally:
        api.token_lifetime = 3600.0
    issued = api.hits["/oauth/token"] - before
    # 7 pages (the last one empty) and the token requests, 0.1 s apart: renewed, but not for every page.
    assert 2 <= issued <= 4
    token_requests = [r for r in api.requests if r["path"] == "/oauth/token"]
    assert all(r["method"] == "POST" for r in token_requests)
    assert_no_secret(caplog.text)


def test_a_revoked_oauth2_token_is_renewed_once(api, tmp_path, secrets_in_env):
    name = api.dataset(PEOPLE)
    source = rest_source(tmp_path, f"{api.url}/oauth2/{name}/page", records="data.items",
                         pagination={"type": "page"}, page_size=4, batch_rows=4, auth=oauth2(api))
    before = api.hits["/oauth/token"]
    batches = connector_for(source).read()
    first = next(batches)
    api.revoke_tokens()
    rest = list(batches)
    assert [r for b in [first, *rest] for r in b.records.to_pylist()] == people_rows()
    assert api.hits["/oauth/token"] - before == 2


def test_a_wrong_oauth2_client_secret_is_fatal_without_the_secret(api, tmp_path, secrets_in_env, caplog):
    caplog.set_level(logging.DEBUG)
    name = api.dataset(PEOPLE)
    source = rest_source(tmp_path, f"{api.url}/oauth2/{name}/none", auth=oauth2(api, "HUB_TEST_WRONG"))
    with pytest.raises(FatalSourceError, match="oauth/token: HTTP 401") as raised:
        rows(source)
    assert "wrong-Rahasia-0000" not in str(raised.value) + caplog.text


def test_credentials_go_only_to_the_sources_own_host(api, tmp_path, secrets_in_env):
    """A next-page link to another host (here the same server named `localhost`) gets no credentials."""
    name = api.dataset(PEOPLE[:4])
    elsewhere = f"localhost:{api.server.server_port}"
    source = rest_source(tmp_path, f"{api.url}/bearer/{name}/link", page_size=2, params={"next_host": elsewhere},
                         pagination={"type": "link", "size_param": "per_page"}, auth=AUTHS["bearer"])
    with pytest.raises(FatalSourceError, match="HTTP 401"):
        rows(source)
    sent = [r for r in api.requests if r["path"] == f"/bearer/{name}/link"]
    assert [(r["host"], "Authorization" in r["headers"]) for r in sent] == [(api.url.removeprefix("http://"), True),
                                                                             (elsewhere, False)]


def test_a_secret_written_in_the_registration_is_refused(tmp_path):
    registration = {
        "id": "siak_api", "title": "SIAK API", "agency": {"code": "disdukcapil", "name": "Disdukcapil"},
        "standard": "penduduk@1.0.0", "kind": "rest", "mapping": {"nik": {"from": "nik"}},
        "options": {"url": "https://api.example.go.id/v1/penduduk", "auth": {"type": "bearer", "token": TOKEN}},
    }
    path = tmp_path / "siak_api.yaml"
    path.write_text(yaml.safe_dump(registration), encoding="utf-8")
    with pytest.raises(ConfigError, match="options/auth/token"):
        load_source(path, tmp_path)


def test_a_secret_given_as_text_to_a_source_built_in_code_is_refused_too(api, tmp_path):
    source = rest_source(tmp_path, f"{api.url}/bearer/x/none", auth={"type": "bearer", "token": TOKEN})
    with pytest.raises(ConfigError, match="options/auth/token: name where the secret is") as raised:
        connector_for(source).check()
    assert TOKEN not in str(raised.value)


def test_a_missing_environment_variable_is_a_config_error_naming_the_option(api, tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_TEST_TOKEN", raising=False)
    source = rest_source(tmp_path, f"{api.url}/bearer/x/none", auth=AUTHS["bearer"])
    connector = connector_for(source)  # registrations load without their secrets
    with pytest.raises(ConfigError, match="options/auth/token: environment variable HUB_TEST_TOKEN is not set"):
        connector.check()


def test_the_example_options_of_a_new_registration_are_valid(tmp_path):
    example = RestConnector.example_options("siak_api")
    assert not list(Draft202012Validator(RestConnector.options_schema).iter_errors(example))
    assert example["auth"]["token"] == {"env": "SIAK_API_API_TOKEN"}
    RestConnector(rest_source(tmp_path, **example))


def test_describe_names_host_and_path_only(tmp_path, secrets_in_env):
    source = rest_source(tmp_path, "https://api.example.go.id/v1/penduduk?wilayah=abc", auth=AUTHS["key-query"])
    assert connector_for(source).describe() == "rest api.example.go.id/v1/penduduk"


def test_a_url_with_a_password_or_another_scheme_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="options/url: credentials must not be written in the URL"):
        RestConnector(rest_source(tmp_path, "https://hub:pw@api.example.go.id/v1"))
    with pytest.raises(ConfigError, match="options/url: expected an http"):
        RestConnector(rest_source(tmp_path, "ftp://api.example.go.id/v1"))


# --- failures ----------------------------------------------------------------------------------------------------


def fault(api, tmp_path, kind: str, **options) -> Source:
    return rest_source(tmp_path, f"{api.url}/fault/{kind}/{uuid.uuid4().hex}", **options)


def test_429_waits_at_least_retry_after_then_reads(api, tmp_path, caplog):
    started = time.monotonic()
    assert rows(fault(api, tmp_path, "429-once"))[0]["nama"] == "Siti Aminah"
    assert time.monotonic() - started >= 1.0
    assert "HTTP 429" in caplog.text


def test_retry_after_as_an_http_date_is_honoured(api, tmp_path):
    started = time.monotonic()
    assert len(rows(fault(api, tmp_path, "503-date-once"))) == 1
    assert time.monotonic() - started >= 0.4  # the date has whole seconds: 0.5 to 1.5 s ahead


def test_a_500_is_retried(api, tmp_path):
    assert len(rows(fault(api, tmp_path, "500-once"))) == 1


def test_500_for_ever_is_retriable_after_max_retries(api, tmp_path):
    source = fault(api, tmp_path, "500-always", max_retries=2)
    with pytest.raises(RetriableSourceError, match=r"siak_api: GET 127\.0\.0\.1:\d+/fault/500-always/\w+: "
                                                   r"HTTP 500 Internal Server Error \(gave up after 3 attempts\)"):
        rows(source)
    assert api.hits[urlsplit(source.options["url"]).path] == 3


def test_a_connection_dropped_mid_answer_is_retried(api, tmp_path):
    source = fault(api, tmp_path, "drop-once")
    assert rows(source) == [{"id": "1", "nama": "Siti Aminah", ROW: 1}]
    assert api.hits[urlsplit(source.options["url"]).path] == 2


def test_a_server_slower_than_the_timeout_is_retriable(api, tmp_path):
    with pytest.raises(RetriableSourceError, match="no answer within the timeout"):
        rows(fault(api, tmp_path, "slow", timeout_seconds=0.2, max_retries=1))


def test_404_is_fatal(api, tmp_path):
    with pytest.raises(FatalSourceError, match=r"siak_api: GET 127\.0\.0\.1:\d+/fault/404/\w+: HTTP 404 Not Found"):
        rows(fault(api, tmp_path, "404"))


def test_an_answer_that_is_not_json_is_fatal_without_its_body(api, tmp_path):
    with pytest.raises(FatalSourceError, match=r"not JSON \(text/html\)") as raised:
        rows(fault(api, tmp_path, "html"))
    assert "pemeliharaan" not in str(raised.value)


def test_requests_keep_to_the_rate_limit(api, tmp_path):
    name = api.dataset(PEOPLE[:4])
    source = rest_source(tmp_path, f"{api.url}/open/{name}/page", records="data.items", pagination={"type": "page"},
                         page_size=1, rate_limit_per_second=10)
    started = time.monotonic()
    assert len(rows(source)) == 4
    assert time.monotonic() - started >= 0.4  # 5 requests (the last page is empty), 0.1 s apart


def test_an_api_key_in_the_query_string_stays_out_of_errors_and_logs(api, tmp_path, secrets_in_env, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # Airflow's logging setup quiets httpx; the CLI's may not
    source = fault(api, tmp_path, "500-always", auth=AUTHS["key-query"])
    with pytest.raises(RetriableSourceError) as raised:
        rows(source)
    assert "HTTP Request: GET" in caplog.text  # httpx logged the requests, without their query strings
    assert_no_secret(str(raised.value) + caplog.text)


# --- the connector conformance suite ------------------------------------------------------------------


class TestRestConformance(IncrementalConformance):
    """A paginated JSON API sending numbers, booleans and nulls as JSON types."""

    @pytest.fixture(autouse=True)
    def _api(self, api):
        self.api = api

    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        name = self.api.dataset(records)
        options = {"records": "data.items", "pagination": {"type": "page"}, "page_size": 5, "batch_rows": batch_rows}
        if incremental:
            options.update(cursor_field="id", since_param="since")
        return rest_source(tmp_path, f"{self.api.url}/open/{name}/page", **options)

    def add_records(self, source, records):
        name = urlsplit(source.options["url"]).path.split("/")[2]
        self.api.datasets[name].extend(records)

    def unreachable_source(self, tmp_path):
        return rest_source(tmp_path, f"http://127.0.0.1:{closed_port()}/v1/penduduk", max_retries=1)


@pytest.mark.parametrize("options", [
    {"url": "https://api.kotabogor.go.id/v1/faskes?api_key=abc123"},
    {"url": "https://api.kotabogor.go.id/v1/faskes", "params": {"access_token": "abc123"}},
    {"url": "https://api.kotabogor.go.id/v1/faskes", "params": {"Password": "abc123"}},
])
def test_a_credential_written_as_a_query_parameter_is_refused_without_quoting_it(tmp_path, options):
    with pytest.raises(ConfigError) as info:
        RestConnector(rest_source(tmp_path, **options))
    message = str(info.value)
    assert "looks like a credential" in message and "options/auth" in message and "abc123" not in message


def test_ordinary_query_parameters_are_kept(tmp_path):
    RestConnector(rest_source(tmp_path, url="https://api.kotabogor.go.id/v1/faskes?kecamatan=32.71.01",
                              params={"status": "aktif", "key_field": "kode"}))
