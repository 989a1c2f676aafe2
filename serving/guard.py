"""What every request and answer of the hub passes through: size and depth limits, the proxy rule, security headers."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import ssl
from functools import cache

import anyio
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from hub.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES", "HSTS", "HeadLimitedProtocol", "MAX_JSON_DEPTH", "MAX_REQUEST_BYTES", "RequestLimits",
    "SecurityHeaders", "TrustedProxies", "client_certificate", "content_security_policy", "install", "json_depth",
    "max_header_bytes", "trusted_proxies",
]

MAX_REQUEST_BYTES = 1 << 20  # a request body larger than this (a form, a SQL text, a CKAN call) is refused: 413
DEFAULT_MAX_HEADER_BYTES = 32 << 10  # the request line and headers together (HUB_MAX_HEADER_BYTES): 431
# No endpoint takes JSON nested deeper than a few levels; Python's parser gives up (RecursionError) near 1000.
MAX_JSON_DEPTH = 64
HSTS = "max-age=31536000"  # a year; no includeSubDomains: the hub cannot speak for the city's other hosts


def _dictionary_style() -> str:
    """The CSP hash of the data dictionary's inline stylesheet (schemas.dictionary): the dictionary is a document
    that must stand alone when saved, so it carries its style inside; the policy allows exactly that text."""
    from schemas.dictionary import _CSS

    text = "\n" + _CSS  # as its template writes it: <style>, a line break, the rules
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


@cache
def content_security_policy() -> str:
    """The one policy of every answer: this origin only, no inline script, no framing by any page."""
    return "; ".join([
        "default-src 'self'", "script-src 'self'", f"style-src 'self' {_dictionary_style()}",
        "img-src 'self' data:",  # Swagger UI's stylesheet draws its icons as data: SVG
        "font-src 'self'", "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def max_header_bytes() -> int:
    """HUB_MAX_HEADER_BYTES: the most bytes a request's line and headers may take (default 32 KiB)."""
    value = (os.environ.get("HUB_MAX_HEADER_BYTES") or "").strip()
    if not value:
        return DEFAULT_MAX_HEADER_BYTES
    if not value.isdigit() or int(value) < 1024:
        raise ConfigError(f"HUB_MAX_HEADER_BYTES: {value!r} is not a number of bytes of at least 1024")
    return int(value)


def trusted_proxies() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """HUB_TRUSTED_PROXIES: the addresses or networks (CIDR), comma-separated, whose X-Forwarded-For and
    X-Forwarded-Proto the hub believes. None by default: any local process could send them."""
    networks = []
    for part in (os.environ.get("HUB_TRUSTED_PROXIES") or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"HUB_TRUSTED_PROXIES: {part.strip()!r} is not an IP address or a network "
                                  "such as 10.0.0.0/24 (names are not looked up)") from None
    return tuple(networks)


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


async def _answer(send, status: int, detail: str, headers: tuple = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def _replay(messages: list, then=None):
    async def receive():
        if messages:
            return messages.pop(0)
        return await then() if then else {"type": "http.disconnect"}
    return receive


# A JSON string, escapes included, or an unterminated one running to the end; possessive, so never backtracking.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.S)
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """How deep JSON text nests its arrays and objects (brackets inside strings aside), without parsing it: the
    highest count of brackets open at once, in linear time. Broken JSON gets a number too (an unclosed bracket
    counts); the parser says what else is wrong with it."""
    import numpy as np

    signs = _STRING.sub(b"", body).translate(_SIGNS, _NOT_BRACKETS)
    return max(0, int(np.frombuffer(signs, dtype=np.int8).cumsum(dtype=np.int64).max())) if signs else 0


def _too_deep(body: bytes) -> bool:
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:  # most bodies end here
        return False
    return json_depth(body) > MAX_JSON_DEPTH


class RequestLimits:
    """ASGI middleware that refuses, before anything reads them: a request line and headers over
    `max_header_bytes` (431), a body over MAX_REQUEST_BYTES, declared or chunked (413), a JSON body nested deeper
    than MAX_JSON_DEPTH (400). Input that still nests too deep for a parser (JSON given as text in a parameter)
    ends in a RecursionError, answered here with 400 for every endpoint at once."""

    def __init__(self, app, max_header_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        head = (len(scope["method"]) + len(scope.get("raw_path") or scope["path"].encode())
                + len(scope["query_string"]) + sum(len(k) + len(v) + 4 for k, v in scope["headers"]))
        if head > self.max_header_bytes:
            return await _answer(send, 431, f"the request line and headers take {head} bytes; at most "
                                            f"{self.max_header_bytes} bytes are accepted (HUB_MAX_HEADER_BYTES)",
                                 ((b"connection", b"close"),))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_REQUEST_BYTES):
            return await _too_large(send)
        # Read the body (at most the limit) before the app does, to measure it, then hand it on as it came.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message]), send)
            chunks.append(message)
            size += len(message.get("body", b""))
            if size > MAX_REQUEST_BYTES:
                return await _too_large(send)
            more = message.get("more_body", False)
        body = b"".join(m.get("body", b"") for m in chunks)
        # Any body that may be JSON: CKAN's actions read theirs as JSON whatever the Content-Type says.
        if body.lstrip()[:1] in (b"[", b"{") and (
                await anyio.to_thread.run_sync(_too_deep, body) if len(body) > 65536 else _too_deep(body)):
            return await _answer(send, 400, f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
        started = False

        async def sending(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _replay(chunks, receive), sending)
        except RecursionError:
            if started:
                raise
            await _answer(sending, 400, f"the request's input is nested too deeply to read (JSON: at most "
                                        f"{MAX_JSON_DEPTH} levels)")


async def _too_large(send) -> None:
    await _answer(send, 413, f"the request body is larger than {MAX_REQUEST_BYTES} bytes")


class SecurityHeaders:
    """ASGI middleware adding to every answer: the Content-Security-Policy (only this origin's scripts, styles
    and images; no framing), nosniff, DENY for older browsers' framing, no Referer to another origin (a URL's
    query may hold what a person typed; same-origin requests keep theirs, so a form post names its Origin), and
    HSTS when the request came over TLS. A header the route set itself is kept (no-referrer on private pages).

    It also answers an exception that no handler took with a plain 500 of its own, so that answer carries the
    headers too (Starlette's last-resort handler sits outside every middleware)."""

    def __init__(self, app) -> None:
        self.app = app
        self.headers = [(b"content-security-policy", content_security_policy().encode()),
                        (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                        (b"referrer-policy", b"same-origin")]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = self.headers + ([(b"strict-transport-security", HSTS.encode())] if scope["scheme"] == "https" else [])
        started = False

        async def sending(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((k, v) for k, v in extra if k not in present)]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if not started:
                body = b"Internal Server Error"
                # The client may be gone already: then the original error is the one to raise, not this one.
                with contextlib.suppress(Exception):
                    await sending({"type": "http.response.start", "status": 500,
                                   "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                               (b"content-length", str(len(body)).encode())]})
                    await sending({"type": "http.response.body", "body": body})
            raise


class TrustedProxies:
    """ASGI middleware taking the client's address from X-Forwarded-For, and the scheme from X-Forwarded-Proto,
    only when the request comes from one of `proxies`. The client is the nearest address in the chain that no
    trusted proxy owns: what the client itself wrote further left is not believed. An entry that is not an IP
    address ends the walk and the last trusted hop stays the client."""

    def __init__(self, app, proxies) -> None:
        self.app = app
        self.proxies = tuple(proxies)

    def _trusted(self, address) -> bool:
        if address is None:
            return False
        address = getattr(address, "ipv4_mapped", None) or address  # ::ffff:127.0.0.1 from a dual-stack socket
        return any(address in network for network in self.proxies)

    async def __call__(self, scope, receive, send):
        client = scope.get("client")
        if scope["type"] == "http" and client and self._trusted(_address(client[0])):
            forwarded = ",".join(v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for")
            host = client[0]
            for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
                address = _address(hop)
                if address is None:
                    break
                host = str(address)
                if not self._trusted(address):
                    break
            scope = {**scope, "client": (host, 0 if host != client[0] else client[1])}
            proto = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-proto"]
            scheme = proto[-1].split(",")[-1].strip().lower() if proto else ""
            if scheme in ("http", "https"):
                scope["scheme"] = scheme
        return await self.app(scope, receive, send)


def install(app) -> None:
    """Put the limits, the proxy rule and the security headers on `app` (a FastAPI or Starlette app), in the
    order they must run: the proxy rule first, so the headers know whether the request came over TLS."""
    app.add_middleware(RequestLimits, max_header_bytes=max_header_bytes())
    app.add_middleware(SecurityHeaders)
    proxies = trusted_proxies()
    if proxies:
        app.add_middleware(TrustedProxies, proxies=proxies)


CLIENT_CERTIFICATE = "tls_client_certificate"


def client_certificate(request) -> tuple[bool, str | None]:
    """(whether the server asks clients for TLS certificates, the SHA-256 of the one this request's connection
    presented, None without one): set by `HeadLimitedProtocol`'s connections, so only `hub serve` can claim it."""
    found = getattr(request.state, CLIENT_CERTIFICATE, None) or {}
    return bool(found.get("required")), found.get("sha256")


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP protocol (its fastest) with each request's head capped at HUB_MAX_HEADER_BYTES,
    answered with 431, and the connection's TLS client certificate handed to its requests (`client_certificate`).

    httptools keeps a header it has not seen the end of in memory, however long it grows; so the parser is given
    at most the limit's worth of a head, counted from the first byte after the previous request over however many
    reads it arrives in, and a head still unfinished there is refused before the parser holds any more of it. The
    one head counted late is one that starts in the same read as the end of the request before it: its bytes in
    that read (at most one read's worth) are not counted, those of the reads after it are. RequestLimits applies
    the limit exactly to every head the parser finishes.

    A module-level class, not one made per limit: `hub serve --workers` names it to the processes it spawns."""

    def __init__(self, config, server_state, app_state, _loop=None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_header_bytes = max_header_bytes()
        self.head: int | None = 0  # bytes of the current request's head given to the parser; None in its body
        self.heads = 0  # request heads the parser has finished on this connection

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        # The connection's TLS client certificate, verified by the handshake, reaches each request of it as
        # `request.state` (uvicorn copies app_state into every request's scope): see `client_certificate`.
        tls = transport.get_extra_info("ssl_object")
        if tls is not None and tls.context.verify_mode != ssl.CERT_NONE:
            der = tls.getpeercert(binary_form=True)
            self.app_state = {**self.app_state, CLIENT_CERTIFICATE: {
                "required": True, "sha256": hashlib.sha256(der).hexdigest() if der else None}}

    def on_headers_complete(self) -> None:
        self.head = None
        self.heads += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.head = 0
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        while self.head is not None and self.head + len(data) > self.max_header_bytes:
            # The read would take the head past the limit: the parser gets what fits, and the rest only if the
            # head ended within that (the rest is then a body, or the next request, counted afresh).
            room, heads = self.max_header_bytes - self.head, self.heads
            self.head = self.max_header_bytes
            super().data_received(data[:room])
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # refused as malformed (400), or handed to another protocol (an upgrade)
            if self.heads == heads:
                return self._refuse_head()
            data = data[room:]
        if self.head is not None:
            self.head += len(data)
        super().data_received(data)

    def _refuse_head(self) -> None:
        body = json.dumps({"detail": f"the request line and headers take more than {self.max_header_bytes} bytes "
                                     "(HUB_MAX_HEADER_BYTES)"}).encode()
        headers = [*self.server_state.default_headers, (b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
                   *SecurityHeaders(None).headers]
        self.transport.write(b"".join([STATUS_LINE[431], *(b"%s: %s\r\n" % h for h in headers), b"\r\n", body]))
        self.transport.close()
