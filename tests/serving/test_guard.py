"""The hub as a web citizen: security headers, request limits (header size, body size, JSON depth), and no
third-party asset on any page it serves; against a TestClient app, the served demo catalog and raw sockets."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import select
import socket
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from _served import serve
from serving.api import create_app
from serving.guard import MAX_JSON_DEPTH, MAX_REQUEST_BYTES
from hub.settings import ROOT, Settings

DEEP = "[" * 100_000 + "]" * 100_000  # 200 kB, under the body limit: only its depth is wrong
# Every JSON endpoint, with a body that nests too deep where the endpoint reads an object.
DEEP_BODIES = [
    ("/api/sql", '{"sql": %s}' % DEEP),
    ("/api/sql", DEEP),
    ("/api/3/action/package_search", '{"q": %s}' % DEEP),
    ("/api/3/action/package_search", DEEP),
    ("/api/action/datastore_search", '{"resource_id": "x", "filters": %s}' % DEEP),
    ("/api/datasets/penduduk/subscriptions", '{"channel": "webhook", "target": %s}' % DEEP),
    ("/api/subscriptions/unsubscribe?token=x", DEEP),
]


def _csp(headers) -> dict[str, list[str]]:
    """The Content-Security-Policy header as directive -> sources."""
    policy = {}
    for directive in headers["content-security-policy"].split(";"):
        name, *sources = directive.split()
        policy[name] = sources
    return policy


def _assert_guarded(answer: httpx.Response, tls: bool = False) -> None:
    policy = _csp(answer.headers)
    assert policy["default-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    for directive, sources in policy.items():
        allowed = {"'self'", "'none'"} | ({"data:"} if directive == "img-src" else set())
        hashes = {s for s in sources if directive == "style-src" and re.fullmatch(r"'sha256-[A-Za-z0-9+/]+=*'", s)}
        assert set(sources) - hashes <= allowed, (directive, sources)  # no host, 'unsafe-inline' or 'unsafe-eval'
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    # No Referer to other origins (a URL may hold what a person typed); private pages send none at all.
    assert answer.headers["referrer-policy"] in ("same-origin", "no-referrer")
    if tls:
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
    else:
        assert "strict-transport-security" not in answer.headers


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    home = tmp_path_factory.mktemp("guard-home")
    return Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}",
                    registry=ROOT / "connectors" / "registry")


@pytest.fixture(scope="module")
def app(settings):
    return create_app(settings)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


# --- security headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api", 200), ("GET", "/api/datasets", 200), ("GET", "/", 200), ("GET", "/login", 200),
    ("GET", "/docs", 200), ("GET", "/openapi.json", 200), ("GET", "/static/portal.css", 200),
    ("GET", "/api/datasets/nope", 404), ("GET", "/dataset/nope", 404), ("POST", "/api/sql", 422),
    ("GET", "/api/me", 401),
])
def test_every_answer_carries_the_security_headers(client, method, path, status):
    headers = {"Authorization": "Bearer hub_000000000000_" + "x" * 30} if path == "/api/me" else {}
    answer = client.request(method, path, headers=headers, json={} if method == "POST" else None)
    assert answer.status_code == status
    _assert_guarded(answer)


def test_refusals_and_crashes_carry_them_too(client, app):
    _assert_guarded(client.post("/api/sql", content=b"x" * (MAX_REQUEST_BYTES + 1)))  # 413
    _assert_guarded(client.get("/api", headers={"X-Big": "x" * 100_000}))  # 431
    _assert_guarded(client.post("/api/sql", content=DEEP))  # 400

    @app.get("/test-guard-crash")  # a bug in a route: the last-resort 500 is guarded as well
    def crash() -> None:
        raise RuntimeError("a bug")

    crashed = client.get("/test-guard-crash")
    assert crashed.status_code == 500
    _assert_guarded(crashed)


def test_hsts_only_over_tls(app):
    with TestClient(app, base_url="https://hub.example") as tls:
        _assert_guarded(tls.get("/api"), tls=True)
    with TestClient(app, base_url="http://hub.example") as plain:
        _assert_guarded(plain.get("/api"), tls=False)


def test_the_sign_in_cookie_is_secure_under_tls(app, settings):
    from catalog.identity import create_user

    _, token = create_user(settings, "guard-tls", "analyst")
    with TestClient(app, base_url="https://hub.example") as tls:
        signed_in = tls.post("/login", data={"token": token, "next": "/"}, headers={"Origin": "https://hub.example"},
                             follow_redirects=False)
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        # The same host over plain HTTP is another origin.
        assert tls.post("/login", data={"token": token}, headers={"Origin": "http://hub.example"}).status_code == 403


def test_a_route_may_keep_its_own_referrer_policy_and_cache_control(client):
    assert client.get("/api").headers["referrer-policy"] == "same-origin"
    private = client.get("/subscriptions/unsubscribe", params={"token": "x"})  # a page with a token in its URL
    assert private.headers["cache-control"] == "no-store" and private.headers["referrer-policy"] == "no-referrer"
    login = client.get("/login")
    assert login.headers["cache-control"] == "no-store" and login.headers["referrer-policy"] == "same-origin"


# --- request header size: 431 ----------------------------------------------------------------------------


def test_headers_over_the_limit_get_431(client):
    from serving.guard import max_header_bytes

    limit = max_header_bytes()
    assert client.get("/api", headers={"X-Fill": "x" * (limit // 2)}).status_code == 200
    refused = client.get("/api", headers={"X-Fill": "x" * limit})
    assert refused.status_code == 431
    assert f"at most {limit} bytes" in refused.json()["detail"] and "HUB_MAX_HEADER_BYTES" in refused.json()["detail"]
    assert client.get("/api?" + "q=" + "x" * limit).status_code == 431  # the request line counts too


def test_a_header_limit_setting_that_is_not_a_number_is_a_configuration_error(monkeypatch):
    from serving.guard import max_header_bytes
    from hub.errors import ConfigError

    monkeypatch.setenv("HUB_MAX_HEADER_BYTES", "lots")
    with pytest.raises(ConfigError, match="HUB_MAX_HEADER_BYTES"):
        max_header_bytes()
    monkeypatch.setenv("HUB_MAX_HEADER_BYTES", "65536")
    assert max_header_bytes() == 65536


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _send_huge_head(base: str, megabytes: int) -> tuple[bytes, int]:
    """A request whose one header grows to `megabytes` MB, sent 64 KiB at a time over a raw socket until the
    server answers or hangs up: (what it answered, how many bytes it took)."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    chunk, sent, answer = b"x" * 65536, 0, b""
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"GET /api HTTP/1.1\r\nHost: hub\r\nX-Huge: ")
        while sent < megabytes << 20:
            if select.select([s], [], [], 0)[0]:  # the server answered before the head ended
                break
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        else:
            s.sendall(b"\r\n\r\n")
        s.settimeout(30)
        try:
            while part := s.recv(65536):
                answer += part
                if b"\r\n\r\n" in answer and answer.startswith(b"HTTP/1.1 200"):
                    break  # served (today's bug): a kept-alive connection never ends
        except ConnectionResetError:
            pass
    return answer, sent


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`hub serve` on an empty catalog: (process, base URL)."""
    server, base = serve(tmp_path_factory.mktemp("guard-served"))
    yield server, base
    server.terminate()
    server.wait(timeout=30)


def test_the_real_server_refuses_a_200_mb_header_with_431_without_holding_it(served):
    server, base = served
    before = _rss_kib(server.pid)
    answer, sent = _send_huge_head(base, 200)
    assert answer.startswith(b"HTTP/1.1 431 "), (answer[:300], sent)
    assert b"HUB_MAX_HEADER_BYTES" in answer
    assert sent < 20 << 20, f"the server read {sent} bytes of one header before refusing it"
    assert _rss_kib(server.pid) - before < 50_000, "the server held the header in memory"
    # A head over the limit that is one read's worth is refused too.
    big = httpx.get(base + "/api", headers={"X-Fill": "x" * 40_000})
    assert big.status_code == 431 and "HUB_MAX_HEADER_BYTES" in big.text
    assert httpx.get(base + "/api", headers={"X-Fill": "x" * 8_000}).status_code == 200
    assert httpx.get(base + "/api/datasets").status_code == 200  # and it serves the others


def _answers(data: bytes) -> list[tuple[int, bytes]]:
    """The complete HTTP/1.1 answers in `data`, as (status, body)."""
    answers = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head)[1])
        if len(rest) < length:
            break
        answers.append((int(head.split()[1]), rest[:length]))
        data = rest[length:]
    return answers


def _talk(base: str, *writes: bytes, answers: int, pause: float = 0.1) -> list[tuple[int, bytes]]:
    """Send `writes` on one raw connection, `pause` seconds apart (each its own read on the server), stopping
    early if the server closes the connection (or says it will); then read until `answers` answers came or the
    server hangs up."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    received = b""
    with socket.create_connection((host, port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for data in writes:
            time.sleep(pause)
            if select.select([s], [], [], 0)[0]:
                waiting = s.recv(1 << 20, socket.MSG_PEEK)
                if not waiting or b"connection: close" in waiting.lower():
                    break
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break
        try:
            while len(_answers(received)) < answers and (part := s.recv(65536)):
                received += part
        except ConnectionResetError:
            pass
    return _answers(received)


def _get(fill: int) -> bytes:
    return b"GET /api HTTP/1.1\r\nHost: hub\r\nX-Fill: " + b"x" * fill + b"\r\n\r\n"


@pytest.mark.parametrize("before", [0, 1, 3], ids=["first", "after a request", "after three"])
@pytest.mark.parametrize("pieces", [1, 40, 1000], ids=["whole", "in 40 reads", "in 1000 reads"])
def test_the_server_refuses_a_head_over_the_limit_however_it_arrives(served, pieces, before):
    """The server's own refusal (not the app's, which needs the whole head parsed first), from the limit's worth
    of bytes on, whether the head comes in one read or in many small ones, first on its connection or after
    other requests."""
    _, base = served
    head = _get(40_000)
    size = -(-len(head) // pieces)
    answers = _talk(base, *[_get(10)] * before, *(head[i:i + size] for i in range(0, len(head), size)),
                    answers=before + 1, pause=0.1 if pieces < 100 else 0.001)
    assert [status for status, _ in answers] == [200] * before + [431]
    assert json.loads(answers[-1][1]) == {"detail": "the request line and headers take more than 32768 bytes "
                                                    "(HUB_MAX_HEADER_BYTES)"}


def test_heads_under_the_limit_are_each_counted_afresh(served):
    """The limit is each request's: keep-alive requests and pipelined ones, and bodies, together far over it."""
    _, base = served
    assert [status for status, _ in _talk(base, *[_get(20_000)] * 4, answers=4)] == [200] * 4
    assert [status for status, _ in _talk(base, _get(20_000) * 3, answers=3)] == [200] * 3  # one read
    body = b'{"q": "x"}' + b" " * 100_000
    post = (b"POST /api/3/action/package_search HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    assert [status for status, _ in _talk(base, post + body + _get(20_000), _get(20_000), answers=3)] == [200] * 3
    # A head that ends in the read that crosses the limit, its body after it in that read.
    filled = post.replace(b"Host: hub\r\n", b"Host: hub\r\nX-Fill: " + b"x" * 30_000 + b"\r\n")
    assert [status for status, _ in _talk(base, filled[:-4], filled[-4:] + body, answers=1)] == [200]


def test_a_pipelined_head_over_the_limit_is_refused_too(served):
    """A head behind another request in one read: the server counts it from its next read on, and the app counts
    it exactly (RequestLimits)."""
    _, base = served
    answers = _talk(base, _get(10) + _get(40_000), answers=2)
    assert [status for status, _ in answers] == [200, 431]
    assert b"HUB_MAX_HEADER_BYTES" in answers[1][1]


# --- deep input: 400 -------------------------------------------------------------------------------------


def test_json_depth_counts_brackets_outside_strings():
    from serving.guard import json_depth

    assert json_depth(b'{"a": [1, {"b": []}]}') == 4
    assert json_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == 1
    assert json_depth(b'["\\"[[[", [[]]]') == 3  # an escaped quote does not end the string
    assert json_depth(b'"' + b'\\"' * 100_000) == 0  # an unterminated string: linear, not a catastrophe
    assert json_depth(DEEP.encode()) > MAX_JSON_DEPTH


@pytest.mark.parametrize("path, body", DEEP_BODIES)
def test_deeply_nested_json_is_a_400_naming_the_limit(client, path, body):
    answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text[:500]
    assert answer.json() == {"detail": f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels"}


def test_json_nested_inside_a_text_or_a_query_parameter_is_a_400_too(client):
    # CKAN reads a list or a dict given as JSON text (a GET parameter, or a string in the body) itself.
    inside = client.post("/api/3/action/package_search", json={"facet.field": DEEP})
    assert inside.status_code == 400 and "nested too deeply" in inside.json()["detail"]
    query = client.get("/api/3/action/package_search", params={"facet.field": "[" * 4000 + "]" * 4000})
    assert query.status_code == 400 and "nested too deeply" in query.json()["detail"]
    assert client.post("/api/3/action/package_search", json={"q": [[["x"]]]}).status_code != 500
    assert client.get("/api/datasets").status_code == 200


def test_the_real_server_answers_deep_json_with_400_and_keeps_serving(served):
    _, base = served
    for path, body in DEEP_BODIES:
        answer = httpx.post(base + path, content=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert answer.status_code == 400, (path, answer.text[:300])
        assert f"deeper than {MAX_JSON_DEPTH} levels" in answer.json()["detail"]
    query = httpx.get(base + "/api/3/action/package_search", params={"facet.field": "[" * 3000 + "]" * 3000})
    assert query.status_code == 400 and "nested too deeply" in query.json()["detail"]
    assert httpx.get(base + "/api/datasets").status_code == 200


def test_the_body_limit_still_holds(client):
    too_big = client.post("/api/sql", content=b" " * (MAX_REQUEST_BYTES + 1))
    assert too_big.status_code == 413 and str(MAX_REQUEST_BYTES) in too_big.json()["detail"]

    def chunked():
        for _ in range(MAX_REQUEST_BYTES // 65536 + 2):
            yield b" " * 65536

    assert client.post("/api/sql", content=chunked()).status_code == 413
    fine = client.post("/api/sql", content=json.dumps({"sql": "SELECT 1"}),
                       headers={"Content-Type": "application/json"})
    assert fine.status_code != 413


# --- no third-party asset --------------------------------------------------------------------------------


class _Assets(HTMLParser):
    """What a page loads: the URLs of its scripts, stylesheets, images, frames and objects."""

    LOADS = {"script": "src", "img": "src", "iframe": "src", "frame": "src", "embed": "src", "source": "src",
             "audio": "src", "video": "src", "object": "data", "input": "src", "track": "src"}

    def __init__(self, html: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.styles: list[str] = []  # the text of each inline <style>
        self.style_attributes = 0
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link":
            self.urls.append(attrs.get("href") or "")
        elif tag in self.LOADS and attrs.get(self.LOADS[tag]):
            self.urls.append(attrs[self.LOADS[tag]])
        if attrs.get("srcset"):
            self.urls += [part.split()[0] for part in attrs["srcset"].split(",")]
        if tag == "script" and not attrs.get("src"):
            self.inline_scripts += 1
        if tag == "style":
            self._in_style = True
            self.styles.append("")
        if "style" in attrs or any(name.startswith("on") for name in attrs):
            self.style_attributes += 1

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles[-1] += data


SERVED_PAGES = ["/", "/dataset/penduduk", "/dataset/dinsos_dtks", "/sql", "/agencies", "/agency/dinsos", "/login",
                "/subscriptions/confirm?token=x", "/api/datasets/dinsos_dtks/dictionary.html",
                "/api/datasets/dinsos_dtks/data-docs.html", "/docs"]


def _off_origin(base: str, url: str) -> bool:
    return urlsplit(urljoin(base + "/", url)).netloc != urlsplit(base).netloc


@pytest.mark.parametrize("path", SERVED_PAGES)
def test_no_served_page_loads_anything_from_another_origin(api, analyst, path):
    page = httpx.get(api + path, cookies={"hub_token": analyst["Authorization"].removeprefix("Bearer ")}, timeout=120)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = _Assets(page.text)
    elsewhere = [u for u in assets.urls if _off_origin(api, u)]
    assert not elsewhere, f"{path} loads {elsewhere}"
    # Inline script, style attributes and event handlers: none. Inline style: only what the policy names by hash.
    assert assets.inline_scripts == 0 and assets.style_attributes == 0
    hashes = _csp(page.headers)["style-src"]
    for style in assets.styles:
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in hashes, f"{path} has an inline style the policy does not name"
    for url in assets.urls:  # and what it loads is there, from this origin
        loaded = httpx.get(urljoin(api + path, url))
        assert loaded.status_code == 200, (path, url)
        assert "url(http" not in loaded.text and "@import" not in loaded.text


def test_redoc_is_not_served_and_the_api_index_names_only_what_is(api):
    assert httpx.get(api + "/redoc").status_code == 404
    assert httpx.get(api + "/docs/oauth2-redirect").status_code == 404


def test_vendored_assets_come_with_their_licences():
    vendor = ROOT / "serving" / "static" / "docs" / "swagger-ui"
    assert "Apache License" in (vendor / "LICENSE").read_text()
    assert (vendor / "NOTICE").is_file() and (vendor / "swagger-ui-bundle.js").is_file()
    assert "swagger-ui-dist" in (vendor / "VERSION").read_text()


# --- in a browser: the pages work under the policy -------------------------------------------------------


def _watched(browser, api: str):
    """A page with JavaScript on that records every request to another origin and every console complaint."""
    context = browser.new_context()
    page = context.new_page()
    seen = {"elsewhere": [], "console": []}
    page.on("request", lambda r: _off_origin(api, r.url) and not r.url.startswith("data:")
            and seen["elsewhere"].append(r.url))
    page.on("console", lambda m: m.type in ("error", "warning") and seen["console"].append(m.text))
    return context, page, seen


def test_swagger_ui_renders_under_the_policy_in_chromium(api, browser):
    context, page, seen = _watched(browser, api)
    try:
        page.goto(api + "/docs")
        page.locator(".opblock").first.wait_for(timeout=30_000)
        assert page.locator(".opblock").count() > 10
        assert "interop-hub catalog" in page.locator(".info .title").inner_text()
        page.locator(".opblock-summary", has_text="/api/datasets").first.click()
        page.get_by_role("button", name="Try it out").first.click()
        page.get_by_role("button", name="Execute").first.click()
        page.locator(".live-responses-table tr.response .response-col_status").first.wait_for(timeout=30_000)
        assert "200" in page.locator(".live-responses-table tr.response .response-col_status").first.inner_text()
    finally:
        context.close()
    assert not seen["elsewhere"], seen["elsewhere"]
    assert not [m for m in seen["console"] if "Content Security Policy" in m or "Refused" in m], seen["console"]


@pytest.mark.parametrize("path", ["/api/datasets/dinsos_dtks/data-docs.html", "/api/datasets/penduduk/dictionary.html",
                                  "/dataset/dinsos_dtks", "/"])
def test_pages_break_no_rule_of_the_policy_in_chromium(api, browser, path):
    context, page, seen = _watched(browser, api)
    try:
        page.goto(api + path)
        page.wait_for_load_state("networkidle")
        if "data-docs" in path:
            assert "Expectation Validation Result" in page.locator("body").inner_text()
            icon = page.locator("i.fa-times").first
            assert icon.evaluate("e => getComputedStyle(e, '::before').content") not in ("none", "normal", '""')
        if "dictionary" in path:  # its own stylesheet applies: the tables have borders
            cell = page.locator(".data-dictionary th").first
            assert cell.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
    finally:
        context.close()
    assert not seen["elsewhere"], seen["elsewhere"]
    assert not [m for m in seen["console"] if "Content Security Policy" in m or "Refused" in m], seen["console"]


def test_time_to_refuse_deep_json_is_small(client):
    start = time.perf_counter()
    client.post("/api/sql", content=b"[" * (MAX_REQUEST_BYTES - 10))
    assert time.perf_counter() - start < 2
