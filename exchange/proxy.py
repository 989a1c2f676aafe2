"""Proxied exchange services: a call forwarded to the provider's own API, its answer mapped to the service's
standard, checked against it and masked for the consumer exactly as a dataset service's answer is.

What happens to `METHOD /r1/{service}/{path}?{query}`, once the server has authenticated the consumer, found the
grant and counted the rate limit (exchange.server):

1. The consumer's clearance for the standard (catalog.access, as for the agency's officers): a consumer that may
   not read the standard's data at all is refused before the provider is asked anything. So is a consumer not
   cleared for the standard's personal data, when the service answers some: it knows people only by the
   pseudonym of their NIK, and a provider knows them by their plain identifiers.
2. The method and path must be an operation of the provider's OpenAPI document (its paths are relative to
   `base_url`); dot segments and encoded slashes are refused, so a path cannot climb out of `base_url`.
3. The circuit breaker of the provider's origin: open after `failures` failed calls in a row, it refuses calls at
   once for `cooldown_seconds`, then lets one call through (half-open) to see whether the provider is back.
4. `{base_url}{path}?{query}`, with the request body for methods that have one, the provider's own credential
   (`auth`, its secrets resolved as connectors resolve theirs), `Accept: application/json` and the X-Road headers
   that name the call (client, message id, user id, issue); never the consumer's Authorization. An answer is
   awaited `timeout_seconds` at most. Connection failures, answers cut short and 5xx answers are tried again
   (MAX_ATTEMPTS in all, short backoff) only for idempotent methods: a POST or PATCH may have acted already.
5. A 2xx answer is JSON: one record, or a list at the `records` path. Each record goes through the connectors'
   own path (connectors.rest.JsonBatches: fields flattened to dotted names, every value text), the mapping engine
   (transforms.harmonize) and the standard's compiled suite evaluated record by record (schemas.record_check: the
   reasons the pipeline's Great Expectations run gives, without its fixed cost per run); a record that fails is an
   invalid answer named by field and reason code, never by value. Only the mapped fields are answered and checked.
6. The records, masked for the consumer by catalog.masking.select_list with catalog.access's verdict per column.

No error message and no log line holds the path after the service id, a query value, a body or an answer.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import re
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import httpx
import yarl
from multidict import CIMultiDictProxy

from exchange.limits import CircuitBreaker, limits_file
from exchange.server import XRoadError, _header_safe
from hub.recent import Recent

__all__ = ["IDEMPOTENT", "MAX_ATTEMPTS", "close_sessions", "consumer_openapi", "forward",
           "openapi_document", "provider_paths"]

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})  # RFC 9110 9.2.2: safe to send twice
MAX_ATTEMPTS = 3  # per call, for idempotent methods; POST and PATCH get one
BACKOFF_SECONDS = 0.1  # before the second attempt; doubled before the third
MAX_ANSWER_BYTES = 16 << 20  # a lookup's answer, not a dump
MAX_OPENAPI_BYTES = 1 << 20  # as a registration file (connectors.registry.MAX_REGISTRATION_BYTES)
OPENAPI_CACHE_SECONDS = 300.0
CREDENTIAL_CACHE_SECONDS = 300.0
# The consumer's request headers passed on to the provider, besides the X-Road headers naming the call (client,
# message id, user id, issue) as the hub checked them. Nothing else: not the consumer's Authorization or cookies,
# nor a header a consumer could use to pass for the hub (its own X-API-Key, say).
FORWARDED_HEADERS = ("accept-language", "content-type")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_JSON = "application/json; charset=utf-8"


def _failed(status: int, reason: str, message: str, headers: dict | None = None) -> XRoadError:
    """A provider failure, typed as X-Road's server proxy types it: Server.ServerProxy.ServiceFailed.REASON."""
    return XRoadError(status, f"Server.ServerProxy.ServiceFailed.{reason}", message, headers)


# --- the circuit breaker ------------------------------------------------------------------------------------------


@functools.cache
def _breaker(path: Path) -> CircuitBreaker:
    """The circuit breakers of the providers, shared by every process of the hub home (exchange.limits)."""
    return CircuitBreaker(path)


# --- the provider's OpenAPI document ------------------------------------------------------------------------------


_DOCUMENTS = Recent(OPENAPI_CACHE_SECONDS)  # URL -> the document fetched from it


def openapi_document(service) -> bytes:
    """The provider's OpenAPI document as written: the file beside the registration, or the one at its http(s) URL,
    fetched with the service's timeout (and the provider's credential when it is on the provider's origin) and kept
    OPENAPI_CACHE_SECONDS."""
    where = service.proxy.openapi
    if not where.startswith(("http://", "https://")):
        return Path(where).read_bytes()
    return _DOCUMENTS.get(where, lambda: _fetch_openapi(service, where))


def consumer_openapi(service) -> dict:
    """The OpenAPI 3 document a consumer of a proxied service is given (getOpenAPI): the provider's operations (its
    paths, methods, path and query parameters and request bodies, from its own document) under the service's
    /r1 address, each answering what the hub answers: the standard's record (the mapped fields), the masking
    lists, X-Road's error. The provider's own answer shapes, field names and security are its business, not the
    consumer's."""
    from exchange.server import answer_components
    from schemas import load_standard

    standard = load_standard(service.standard_ref)
    common = answer_components(service, standard, list(service.proxy.mapping))
    answer = {"type": "object", "properties": {"standard": {"type": "string"}, **common["shown"]}}
    if service.proxy.records:
        answer["properties"]["records"] = {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}
    else:
        answer["properties"]["record"] = {"$ref": "#/components/schemas/Record"}
    paths = {}
    for template, item in provider_paths(service).items():
        operations = {}
        for method in _METHODS:
            given = item.get(method)
            if not isinstance(given, dict):
                continue
            parameters = [p for p in [*(item.get("parameters") or []), *(given.get("parameters") or [])]
                          if isinstance(p, dict) and p.get("in") in ("path", "query")]
            declared = {p.get("name") for p in parameters if p.get("in") == "path"}
            parameters += [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                           for name in re.findall(r"\{([^}/]+)\}", template) if name not in declared]
            operation = {"summary": str(given.get("summary") or ""), "parameters": [*parameters, *common["issue"]],
                         "responses": {"200": {"description": f"the answer in the shape of {standard.ref}",
                                               "content": {"application/json": {"schema": answer}}},
                                       **common["errors"]}}
            if isinstance(given.get("operationId"), str):
                operation["operationId"] = given["operationId"]
            if method not in ("get", "head", "delete") and isinstance(given.get("requestBody"), dict):
                operation["requestBody"] = given["requestBody"]  # forwarded as sent
            operations[method] = operation
        if operations:
            paths[template] = operations
    return {"openapi": "3.0.3",
            "info": {"title": service.title, "description": service.description, "version": standard.version,
                     "x-standard": standard.ref},
            "servers": [{"url": f"/r1/{service.id}"}], "paths": paths,
            "components": {"schemas": {"Record": common["record"], "Error": common["error"]}}}


@dataclass(frozen=True)
class _Parsed:
    """The provider's OpenAPI document as read once per text: its paths, and per path template the pattern of the
    paths it stands for (a `{parameter}` is one path segment) with the methods declared there."""

    text: bytes
    paths: dict
    operations: list[tuple[re.Pattern, frozenset[str]]]


_parsed: dict[str, _Parsed] = {}  # where the document is -> what was read of it
_parsed_lock = threading.Lock()


def _parsed_document(service) -> _Parsed:
    """The provider's document, parsed again only when its text changes."""
    text = openapi_document(service)
    with _parsed_lock:
        cached = _parsed.get(service.proxy.openapi)
    if cached is not None and cached.text == text:
        return cached
    paths = _read_paths(service, text)
    operations = []
    for template, item in paths.items():
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                          for part in re.split(r"(\{[^}/]*\})", template.rstrip("/") or "/"))
        operations.append((re.compile(pattern + "/?"), frozenset(m.upper() for m in _METHODS if m in item)))
    found = _Parsed(text, paths, operations)
    with _parsed_lock:
        _parsed[service.proxy.openapi] = found
    return found


def provider_paths(service) -> dict:
    """The `paths` of the provider's OpenAPI document."""
    return _parsed_document(service).paths


def _read_paths(service, text: bytes) -> dict:
    """The `paths` of an OpenAPI document's text, read with the registry's limits (size, aliases, duplicate keys)."""
    from connectors.registry import read_yaml
    from hub.errors import ConfigError

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "openapi.yaml"
        path.write_bytes(text)
        try:
            document, _ = read_yaml(path)
        except ConfigError:
            document = None
    paths = document.get("paths") if isinstance(document, dict) else None
    if not isinstance(paths, dict):
        raise XRoadError(503, "Server.ServerProxy.MalformedServerConf",
                         f"the OpenAPI document of {service.id} is not an OpenAPI 3 document with paths")
    return {t: item for t, item in paths.items() if isinstance(t, str) and isinstance(item, dict)}


def _fetch_openapi(service, url: str) -> bytes:
    """The document at its URL, fetched as a proxied call is sent; called off the server's event loop."""
    headers = {"Accept": "application/json, application/yaml, text/yaml"}
    what = f"the OpenAPI document of {service.id} (at its provider's URL)"

    async def fetch() -> _Reply:
        target, sent = url, headers
        if _origin(httpx.URL(url)) == _origin(httpx.URL(service.proxy.base_url)):
            target, sent = await _credentials(service).apply(url, headers)
        async with _new_session() as session:
            return await _receive(session, "GET", target, sent, b"", service.proxy.timeout_seconds,
                                  MAX_OPENAPI_BYTES)

    try:
        reply = asyncio.run(fetch())
    except _NoAnswer as e:
        raise (_failed(504, "Timeout", f"{what} did not come within {service.proxy.timeout_seconds:g} s")
               if e.kind == "timeout" else _failed(502, "NetworkError", f"{what} could not be fetched: {e.problem}")) \
            from None
    if reply.status != 200:
        raise _failed(502, "HttpError", f"{what} could not be fetched: HTTP {reply.status}")
    return reply.content


def document_at_hand(service) -> bool:
    """Whether the provider's document can be read without a request to its URL (a file, or a fresh copy)."""
    where = service.proxy.openapi
    return not where.startswith(("http://", "https://")) or _DOCUMENTS.holds(where)


def _check_operation(service, method: str, rest: str) -> None:
    """Refuse a call the provider's OpenAPI document does not declare: an unknown path (400), or a method the path
    does not take (405, with Allow)."""
    segments = rest.split("/")[1:]
    for segment in segments:
        decoded = unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            raise XRoadError(400, "Client.BadRequest", f"a path segment of this call to {service.id} is a dot "
                             "segment or holds an encoded slash, which the hub does not forward")
    path = rest or "/"
    allowed = set()
    for pattern, methods in _parsed_document(service).operations:
        if pattern.fullmatch(path):
            allowed |= methods
    if not allowed:
        raise XRoadError(400, "Client.BadRequest", f"{service.id} has no operation at this path; its OpenAPI "
                         f"document lists them (getOpenAPI?serviceCode={service.id.service_code})")
    if method not in allowed:
        raise XRoadError(405, "Client.InvalidHttpMethod", f"{service.id} takes {', '.join(sorted(allowed))} at "
                         f"this path, not {method}", {"Allow": ", ".join(sorted(allowed))})


@dataclass(frozen=True)
class _Registration:
    """The service as the connectors' code reads a source registration: its id and file (what connectors.secrets
    and connectors.http name in their messages) and its mapping (the mapping engine, connectors.rest.JsonBatches)."""

    id: str
    path: str
    mapping: dict

    @classmethod
    def of(cls, service) -> _Registration:
        return cls(str(service.id), str(service.path), service.proxy.mapping)


# --- the provider's credential ------------------------------------------------------------------------------------


class _Credentials:
    """The provider API's own credential as its registration names it (connectors.http.AUTH), resolved as
    connectors resolve theirs (connectors.secrets: an environment variable or an Airflow connection)."""

    def __init__(self, service) -> None:
        from connectors.http import secret_value

        auth = service.proxy.auth or {}
        self.headers: dict[str, str] = {}
        self.params: dict[str, str] = {}
        self.basic: tuple[str, str] | None = None
        self._oauth2 = None
        owner = _Registration.of(service)

        def secret(name: str, text_allowed: bool = False) -> str:
            value = auth[name]
            return value if text_allowed and isinstance(value, str) else secret_value(owner, f"auth/{name}", value)

        kind = auth.get("type")
        if kind == "api_key":
            (self.headers if auth["in"] == "header" else self.params)[auth["name"]] = secret("key")
        elif kind == "bearer":
            self.headers["Authorization"] = f"Bearer {secret('token')}"
        elif kind == "basic":
            self.basic = (secret("username", text_allowed=True), secret("password"))
        elif kind == "oauth2_client_credentials":
            from connectors.http import HttpClient

            # The token endpoint, its cache and its renewal are the connectors' own.
            self._oauth2 = HttpClient(owner, {"url": service.proxy.base_url, "auth": auth, "max_retries": 1,
                                              "timeout_seconds": service.proxy.timeout_seconds})

    async def apply(self, url: str, headers: dict) -> tuple[str, dict]:
        """The URL and headers with the provider's credential; an OAuth2 token, when it must be fetched or renewed,
        off the event loop (the connectors' client is synchronous)."""
        headers = {**headers, **self.headers}
        if self.basic is not None:
            pair = f"{self.basic[0]}:{self.basic[1]}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        if self._oauth2 is not None:
            headers["Authorization"] = f"Bearer {await asyncio.to_thread(self._oauth2._access_token)}"
        return (str(httpx.URL(url).copy_merge_params(self.params)) if self.params else url), headers


_CREDENTIALS = Recent(CREDENTIAL_CACHE_SECONDS)  # (service, its auth) -> the resolved credential


def _credentials(service) -> _Credentials:
    """The service's resolved credential, kept CREDENTIAL_CACHE_SECONDS (an Airflow connection is a database read)
    while its registration names the same secret; forgotten at once when the provider refuses it, so a rotated
    secret is read again on the next call."""
    return _CREDENTIALS.get(_credentials_key(service), lambda: _resolved_credentials(service))


def _resolved_credentials(service) -> _Credentials:
    from hub.errors import HubError

    try:
        return _Credentials(service)
    except HubError as e:
        # The operator's to fix: which variable or connection is missing goes to the log (it holds no secret).
        log.warning("exchange: the credential of %s is not available: %s", service.id, e)
        raise XRoadError(503, "Server.ServerProxy.MalformedServerConf",
                         f"{service.id}: the hub's credential for its provider is not available; the hub's operator "
                         "finds why in the server's log") from None


def _credentials_key(service) -> tuple[str, str]:
    return str(service.id), json.dumps(service.proxy.auth, sort_keys=True)


def _forget_credentials(service) -> None:
    _CREDENTIALS.forget(_credentials_key(service))


# --- sending ------------------------------------------------------------------------------------------------------


@dataclass
class _Reply:
    status: int
    headers: CIMultiDictProxy
    content: bytes


class _NoAnswer(Exception):
    """No whole answer, of a `kind`: `timeout`, `network` (no connection, or it closed before the answer began),
    `cut_short` (it closed in the middle of the answer), `too_large`."""

    def __init__(self, problem: str, kind: str) -> None:
        super().__init__(problem)
        self.problem, self.kind = problem, kind

    @property
    def transient(self) -> bool:
        """Worth another attempt, and a failure of the provider for the circuit breaker."""
        return self.kind in ("network", "cut_short")


def _new_session() -> aiohttp.ClientSession:
    # No cookie jar (a provider's cookie must not reach another consumer's call), no proxy from the environment,
    # no redirects followed (refused as answers); keep-alive connections to each provider, reused across calls.
    return aiohttp.ClientSession(headers={"User-Agent": "interop-hub exchange"}, cookie_jar=aiohttp.DummyCookieJar(),
                                 connector=aiohttp.TCPConnector(limit=0, limit_per_host=64), trust_env=False)


_sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> its session


def _session() -> aiohttp.ClientSession:
    """The session of the running event loop (an aiohttp session belongs to one loop)."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        _sessions[loop] = session = _new_session()
    return session


async def close_sessions() -> None:
    """Close the running loop's session to the providers (the server's shutdown)."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


async def _receive(session: aiohttp.ClientSession, method: str, url: str, headers: dict, body: bytes,
                   timeout: float, limit: int) -> _Reply:
    """Send the request and read its whole answer within `timeout` seconds (a provider sending slowly does not
    stretch it), at most `limit` bytes of body. `url` is sent as written: its percent-encoding is the consumer's."""
    begun = False
    try:
        async with asyncio.timeout(timeout):
            async with session.request(method, yarl.URL(url, encoded=True), headers=headers, data=body or None,
                                       allow_redirects=False) as response:
                begun = True
                content = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    content += chunk
                    if len(content) > limit:
                        raise _NoAnswer(f"the answer is larger than {limit} bytes", "too_large")
                return _Reply(response.status, response.headers, bytes(content))
    except TimeoutError:
        raise _NoAnswer("no answer within the timeout", "timeout") from None
    except (aiohttp.ClientError, OSError) as e:
        # The exception's type only: its text may quote the URL, whose path holds what the consumer sent.
        if begun:
            raise _NoAnswer("the connection closed before the end of the answer", "cut_short") from None
        raise _NoAnswer(f"the connection failed ({type(e).__name__})", "network") from None


async def _send(service, method: str, url: str, headers: dict, body: bytes, call) -> _Reply:
    """The provider's answer, trying again after a connection failure, an answer cut short or a 5xx when the
    method is idempotent; `_NoAnswer` when none came. A timeout is not tried again: the consumer has waited
    the timeout once already. What reached the provider goes in `call` (the message log's record): the last
    status, the attempts and the milliseconds spent."""
    from hub.errors import HubError

    proxy = service.proxy
    credentials = _credentials(service)
    try:
        url, headers = await credentials.apply(url, headers)
    except HubError:  # the connectors' OAuth2 token request failed; its message names the token URL only
        raise _failed(502, "HttpError", f"the provider of {service.id} gave the hub no access token (OAuth2)") \
            from None
    tries = MAX_ATTEMPTS if method in IDEMPOTENT else 1
    call.attempts = 0
    started = time.monotonic()
    session = _session()
    try:
        while True:
            call.attempts += 1
            try:
                reply = await _receive(session, method, url, headers, body, proxy.timeout_seconds, MAX_ANSWER_BYTES)
                call.provider_status = reply.status
                if reply.status < 500 or call.attempts >= tries:
                    return reply
            except _NoAnswer as e:
                call.provider_status = None
                if not e.transient or call.attempts >= tries:
                    raise
            await asyncio.sleep(BACKOFF_SECONDS * 2 ** (call.attempts - 1))
    finally:
        call.provider_ms = round((time.monotonic() - started) * 1000, 3)


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port or {'http': 80, 'https': 443}.get(url.scheme)}"


# --- the call -----------------------------------------------------------------------------------------------------


_STANDARDS = Recent(1.0)  # the standards of proxied answers, by reference: a steward's change holds within a second


@dataclass(frozen=True)
class _Answered:
    """The proxied answer as catalog.access sees a dataset: the standard's classification, owned by the provider."""

    id: str
    classification: str
    agency_code: str


async def forward(settings, service, call, method: str, rest: str, query: bytes, body: bytes, headers) -> tuple[int, object]:
    """Forward one call to the provider of `service` and answer it: (status, the answer). `call` is the server's
    record of the call for the message log (exchange.server._Call): the consumer, ids, user id and issue come from
    it; what reached the provider, the rows answered and the pseudonym of the key of a single record answered go
    into it. Refusals and failures raise XRoadError."""
    from catalog.access import access_to
    from exchange.clients import officer_of
    from schemas import load_standard

    proxy = service.proxy
    if proxy.unresolved:
        log.warning("exchange: %s cannot be called: %s", service.id, proxy.unresolved)
        raise XRoadError(503, "Server.ServerProxy.MalformedServerConf",
                         f"{service.id}: the hub does not know its provider's address in this setting; the hub's "
                         "operator finds why in the server's log")
    standard = _STANDARDS.get(service.standard_ref, lambda: load_standard(service.standard_ref))
    consumer = call.client
    who = officer_of(consumer)
    access = access_to(who, _Answered(str(service.id), standard.classification, service.id.member_code), standard)
    if not access.readable:
        raise XRoadError(403, "Server.ServerProxy.AccessDenied",
                         f"{service.id} answers {standard.ref} data, which is {standard.classification}: agency "
                         f"{consumer.member_code} is not cleared for it, and a grant does not clear it")
    if not access.cleared and service.personal_data:
        # A dataset service lets such a consumer look people up by the pseudonym of their NIK only; the provider
        # knows people by their plain identifiers, and the hub cannot turn a pseudonym back into one. So the
        # service is closed to it as a whole, whatever the call holds.
        raise XRoadError(403, "Server.ServerProxy.AccessDenied",
                         f"{service.id} answers personal data of {standard.ref} ({', '.join(service.personal_data)}), "
                         f"which agency {consumer.member_code} is not cleared for by the standard's x-access; a "
                         "proxied service asks the provider by plain identifiers, so it is open to cleared agencies "
                         "only, and a grant does not clear")
    if document_at_hand(service):
        _check_operation(service, method, rest)
    else:  # the document is fetched from its URL first: off the event loop
        await asyncio.to_thread(_check_operation, service, method, rest)
    base = httpx.URL(proxy.base_url)
    origin = _origin(base)
    breaker = _breaker(limits_file(settings))
    wait = breaker.admit(origin, proxy.breaker_cooldown_seconds)
    if wait is not None:
        raise _failed(503, "CircuitOpen", f"the provider of {service.id} failed {proxy.breaker_failures} calls in a "
                      "row; the hub does not call it until the cool-down ends",
                      {"Retry-After": str(max(1, int(wait + 0.999)))})
    url = proxy.base_url + rest + ("?" + query.decode("latin-1") if query else "")
    sent = {"Accept": "application/json",
            **{name: headers[name] for name in FORWARDED_HEADERS if headers.get(name) is not None},
            "X-Road-Client": str(consumer), "X-Road-Service": str(service.id), "X-Road-Id": call.message_id,
            **({"X-Road-UserId": _header_safe(call.user_id)} if call.user_id else {}),
            **({"X-Road-Issue": _header_safe(call.issue)} if call.issue else {})}
    try:
        reply = await _send(service, method, url, sent, body if method not in ("GET", "HEAD") else b"", call)
    except _NoAnswer as e:
        if e.transient or e.kind == "timeout":
            breaker.failed(origin, proxy.breaker_failures)
        else:
            breaker.succeeded(origin)
        after = f"after {call.attempts} attempt{'s' if call.attempts > 1 else ''}"
        if e.kind == "timeout":
            raise _failed(504, "Timeout", f"the provider of {service.id} did not answer within "
                          f"{proxy.timeout_seconds:g} s") from None
        if e.kind == "network":
            raise _failed(502, "NetworkError", f"the provider of {service.id} cannot be reached: {e.problem} "
                          f"({after})") from None
        raise _failed(502, "InvalidBody", f"the provider of {service.id}: {e.problem} ({after})") from None
    except BaseException:
        breaker.released(origin)
        raise
    if reply.status >= 500:
        breaker.failed(origin, proxy.breaker_failures)
    else:
        breaker.succeeded(origin)
    _refuse_unless_answered(service, reply, call)
    if reply.status == 204 or method == "HEAD":
        call.rows = 0
        return reply.status, (b"", _JSON)
    return _answer(settings, service, standard, access, reply, call)


def _refuse_unless_answered(service, reply: _Reply, call) -> None:
    """An error answer of the provider as an X-Road error; its body is never passed on (it may quote the call)."""
    status = reply.status
    if status < 300:
        return
    said = f"HTTP {status}"
    if status >= 500:
        raise _failed(502, "HttpError", f"the provider of {service.id} failed: {said} (after {call.attempts} "
                      f"attempt{'s' if call.attempts > 1 else ''})")
    if status < 400:
        raise _failed(502, "HttpError", f"the provider of {service.id} answered a redirect ({said}), which the hub "
                      "does not follow")
    if status in (401, 403, 407):
        _forget_credentials(service)
        log.warning("exchange: the provider of %s refused the hub's credential (%s)", service.id, said)
        raise _failed(502, "HttpError", f"the provider of {service.id} refused the hub's own credential ({said}): "
                      "the hub's registration of the service or the secret it names is wrong, not your call")
    if status == 404:
        raise XRoadError(404, "Server.ServerProxy.NotFound", f"the provider of {service.id} has nothing at this "
                         "path (HTTP 404)")
    if status == 429:
        retry = reply.headers.get("retry-after", "")
        raise _failed(503, "HttpError", f"the provider of {service.id} is limiting the hub's calls (HTTP 429)",
                      {"Retry-After": retry} if retry.isdigit() else None)
    raise _failed(status, "HttpError", f"the provider of {service.id} refused the call ({said})")


def _answer(settings, service, standard, access, reply: _Reply, call) -> tuple[int, dict]:
    """The provider's 2xx answer mapped to the standard, checked, and masked for the consumer."""
    items = _items(service, reply.content)
    table = _harmonized(service, standard, items)
    call.rows = table.num_rows
    if len(standard.primary_key) == 1 and table.num_rows == 1 and standard.primary_key[0] in service.proxy.mapping:
        # The person answered about, findable in the message log by the pseudonym of their NIK, never by the NIK.
        value = table.column(standard.primary_key[0])[0].as_py()
        if value is not None:
            from transforms import pseudonym

            call.key_pseudonym = pseudonym.pseudonym(str(value), pseudonym.key(settings.home))
    records, about = _masked(settings, service, standard, access, table)
    body = {"standard": standard.ref, **about}
    if service.proxy.records:
        body["records"] = records
    else:
        body["record"] = records[0]
    return reply.status, body


def _items(service, content: bytes) -> list:
    """The answer's records as JSON values: the list at the `records` path, or the answer itself as one record."""
    from connectors.rest import _at

    try:
        document = json.loads(content)
    except ValueError:
        raise _failed(502, "InvalidBody", f"the answer of the provider of {service.id} is not JSON") from None
    path = service.proxy.records
    if not path:
        return [document]
    try:
        found = _at(document, path)
    except LookupError:
        raise _failed(502, "InvalidBody", f"the answer of the provider of {service.id} has no {path!r} (its "
                      "registration's proxy/records)") from None
    if found is None:
        return []
    if not isinstance(found, list):
        raise _failed(502, "InvalidBody", f"{path!r} in the answer of the provider of {service.id} is not a list of "
                      "records (its registration's proxy/records)")
    return found


def _harmonized(service, standard, items: list):
    """The records in the standard's shape, mapped and checked as a source's records are (hub.pipeline): an
    InvalidResponse XRoadError naming the record, field and reason code of each failure, never a value."""
    import pyarrow as pa

    from connectors.rest import JsonBatches
    from schemas.record_check import record_check
    from transforms import harmonize

    owner = _Registration.of(service)
    batches = JsonBatches(owner, batch_rows=max(1, len(items)))
    batch = [*batches.add(items), *batches.finish()]
    reasons: dict[int, list[str]] = {}
    for record in batch:
        for row, reason, _ in record.rejected:
            reasons.setdefault(row - 1, []).append(reason)
    records = [b.records for b in batch if b.records.num_rows]
    if reasons:
        _invalid(service, standard, reasons)
    if not records:
        return pa.table({f: pa.array([], pa.string()) for f in service.proxy.mapping})
    harmonized = harmonize(owner, standard, records[0])
    for position, found in harmonized.reasons.items():
        reasons.setdefault(position, []).extend(found)
    # The standard's compiled suite, record by record (schemas.record_check): the reasons GE's run gives, without
    # its fixed cost per run or its lock.
    for position, found in record_check(standard).reasons(harmonized.table.to_pylist()).items():
        already = {r.split(":", 1)[0] for r in reasons.get(position, [])}
        # Unmapped fields are not answered, so not checked; a value harmonization could not read is reported once.
        reasons.setdefault(position, []).extend(
            r for r in found if r.split(":", 1)[0] in service.proxy.mapping and r.split(":", 1)[0] not in already)
    reasons = {p: r for p, r in reasons.items() if r}
    if reasons:
        _invalid(service, standard, reasons)
    return harmonized.table.select([f.name for f in standard.fields if f.name in service.proxy.mapping])


def _invalid(service, standard, reasons: dict[int, list[str]]) -> None:
    shown = "; ".join(f"record {p + 1}: {', '.join(r)}" for p, r in sorted(reasons.items())[:5])
    more = f" and {len(reasons) - 5} more records" if len(reasons) > 5 else ""
    raise _failed(502, "InvalidResponse", f"the answer of the provider of {service.id} does not meet standard "
                  f"{standard.ref} ({shown}{more})")


def _masked(settings, service, standard, access, table) -> tuple[list[dict], dict]:
    """The records as the consumer may see them: catalog.masking.select_list applies catalog.access's verdict per
    column, the rule every path out of the hub applies."""
    from catalog.access import MASKED, PLAIN, PSEUDONYM
    from catalog.masking import select_list
    from transforms import pseudonym

    columns = table.column_names
    about = {"masked_fields": [c for c in columns if access.column(c) == MASKED],
             "pseudonymized_fields": [c for c in columns if access.column(c) == PSEUDONYM],
             "withheld_fields": [c for c in columns if access.column(c) is None]}
    kept = [c for c in columns if access.column(c) is not None]
    if all(access.column(c) == PLAIN for c in kept):  # nothing to mask: the common case, no SQL needed
        return table.select(kept).to_pylist() if kept else [{} for _ in range(table.num_rows)], about
    shown = select_list(columns, access, pseudonym.key(settings.home))
    # A cursor of one connection of the hub's own (opening a connection per answer cost ~15 ms): each call's table
    # is registered on its own cursor, under its own name, and only the hub's own statement runs there.
    cursor = _masking_connection().cursor()
    name = f"answer_{uuid.uuid4().hex}"
    try:
        cursor.register(name, table)
        return cursor.sql(f'SELECT {shown} FROM "{name}"').to_arrow_table().to_pylist(), about
    finally:
        cursor.close()


@functools.cache
def _masking_connection():
    from catalog.query import hub_connection

    return hub_connection()
