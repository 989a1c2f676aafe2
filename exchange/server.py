"""The service bus's HTTP door: X-Road PR-REST calls (`METHOD /r1/{service id}/{path}`) and the metadata services.

What a call goes through, in order, each refusal an X-Road error (`X-Road-Error` header, JSON `type`, `message`,
`detail`; `detail` is the message's X-Road-Id, to find it in the message log):

1. The calling system: its `X-Road-Client` header and its client token (`Authorization: Bearer hubx_...`, as users
   send theirs), and, where `hub serve` runs mutual TLS (`--tls-client-ca`), the certificate its connection
   presented, checked by `exchange.clients.authenticate`; failures count against the caller's address under the
   same limit as users' tokens (`catalog.identity.refuse_if_locked`).
2. The service, from the registry; a registration that does not load is `Server.ServerProxy.MalformedServerConf`.
3. The grant (`exchange.clients.allowed`), then `X-Road-Issue` when the service returns personal data, then the
   service's rate limit per consumer subsystem (exchange.limits: shared by every process of the hub home).
4. The answer. A dataset service reads the provider's dataset at its current version through `catalog.rows.page`
   as the consumer may see it: the consumer subsystem is taken as a user of its member's agency (an `agency`
   Identity with the member code), so `catalog.access` and `catalog.masking` decide its columns exactly as for that
   agency's officers (cleared by the standard's x-access: personal data plain; not cleared: NIK pseudonymized,
   other personal data masked, stricter fields left out). The grant opens the service, it never clears more than
   that; the answer holds only the fields the service declares. A proxied service forwards the call to its
   provider's own API (exchange.proxy): only operations its OpenAPI document declares, with the provider's own
   credential and never the consumer's token, within the service's timeout, tried again only for idempotent
   methods, behind a circuit breaker per provider origin; the answer is mapped to the standard by the connectors'
   mapping engine, checked against the standard and masked for the consumer by the same rule as a dataset's.

The provider's failures are typed as X-Road's server proxy types them (Server.ServerProxy.ServiceFailed.X, X one of
ErrorCodes' NetworkError, HttpError, InvalidBody, InvalidResponse, or the hub's own Timeout and CircuitOpen) with
the status that says what the consumer can do:

    no connection to the provider (refused, reset, unknown host)   502 ServiceFailed.NetworkError
    no answer within the service's timeout_seconds                  504 ServiceFailed.Timeout
    the provider's 5xx (after the retries), a redirect              502 ServiceFailed.HttpError
    the provider's 401/403 (the hub's credential is wrong)          502 ServiceFailed.HttpError
    the provider's 404                                              404 Server.ServerProxy.NotFound
    the provider's 429                                              503 ServiceFailed.HttpError (its Retry-After)
    the provider's other 4xx                                        the same status, ServiceFailed.HttpError
    an answer that is not JSON, cut short, or lacks its records     502 ServiceFailed.InvalidBody
    an answer whose records fail the standard (field:reason named)  502 ServiceFailed.InvalidResponse
    the provider's circuit is open                                  503 ServiceFailed.CircuitOpen (Retry-After)
    a method or path the OpenAPI document does not declare          405 Client.InvalidHttpMethod / 400 Client.BadRequest
    the provider's address or credential is not configured         503 Server.ServerProxy.MalformedServerConf

A provider's error body is never passed on: it may quote what the consumer sent.

Every call, answered or refused, is one `exchange.call` entry in the audit log's keyed chain (the message log):
ids, consumer, provider, service, user id, purpose, status, duration and the SHA-256 of the request and of the
answer; a looked-up key only as its pseudonym; for a call sent to a provider, the provider's last status, the
milliseconds spent on it and the attempts made. No error message and no log line holds the path after the service
id, the query's values or an answer: they may hold a NIK.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request

from exchange.identifiers import METADATA_SERVICES, ClientId, IdentifierError, ServiceId, split_service_path
from exchange.limits import RateLimiter, limits_file
from hub.recent import Recent
from serving.guard import client_certificate

__all__ = ["Door", "XRoadError", "answer_components", "field_schema", "openapi_of"]

log = logging.getLogger(__name__)

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")  # a client's X-Road-Id we echo
_TEXT_LIMIT = 500  # the most characters of X-Road-UserId and X-Road-Issue kept


class XRoadError(Exception):
    """A refusal or failure answered as PR-REST 4.6 says: `type` is X-Road's error code, `status` the HTTP status."""

    def __init__(self, status: int, type_: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.headers = status, type_, message, headers or {}


def _denied(message: str) -> XRoadError:
    return XRoadError(403, "Server.ServerProxy.AccessDenied", message)


def _bad(message: str) -> XRoadError:
    return XRoadError(400, "Client.BadRequest", message)


@dataclass
class _Call:
    """What the message log keeps of one call."""

    message_id: str
    request_id: str
    request_hash: str  # PR-REST's X-Road-Request-Hash (base64 SHA-512)
    request_sha256: str
    method: str
    address: str | None
    started: float = field(default_factory=time.monotonic)
    claimed_client: str | None = None
    client: ClientId | None = None
    service: ServiceId | None = None
    user_id: str | None = None
    issue: str | None = None
    dataset: str | None = None  # set once the call reached the data
    key_pseudonym: str | None = None
    rows: int | None = None
    # A proxied call, once sent to the provider (exchange.proxy): its last HTTP status (None: no answer), the
    # milliseconds spent on it and the attempts made.
    provider_status: int | None = None
    provider_ms: float | None = None
    attempts: int | None = None


def _canonical_request(method: str, target: bytes, headers, body: bytes) -> tuple[bytes, bytes]:
    """The request's head (request line and every header, lower-cased names, sorted) and body, as hashed."""
    lines = [f"{method} {target.decode('latin-1')}"]
    lines += sorted(f"{k.decode('latin-1').lower()}: {v.decode('latin-1')}" for k, v in headers)
    return "\n".join(lines).encode("latin-1"), body


def _request_hash(head: bytes, body: bytes) -> str:
    """PR-REST 4.3: base64 SHA512(SHA512(headers) + SHA512(body)), or base64 SHA512(headers) without a body. The
    head includes the Authorization header: only who holds the whole request can recompute it, so a hash of a
    request naming a NIK cannot be reversed by trying NIKs."""
    digest = (hashlib.sha512(hashlib.sha512(head).digest() + hashlib.sha512(body).digest()).digest() if body
              else hashlib.sha512(head).digest())
    return base64.b64encode(digest).decode()


def _service_json(service) -> dict:
    """One service as PR-MREST's listMethods / allowedMethods list it."""
    sid = service.id
    if service.kind == "dataset":
        lookup = service.dataset
        endpoints = ([{"method": "GET", "path": "/*"}] if lookup.key else []) + (
            [{"method": "GET", "path": "/"}] if lookup.filters else [])
        kind = "REST"
    elif service.kind == "changes":
        endpoints, kind = [{"method": "GET", "path": "/"}], "REST"
    else:
        endpoints = _proxy_endpoints(service)
        kind = "OPENAPI"
    return {"xroad_instance": sid.instance, "member_class": sid.member_class, "member_code": sid.member_code,
            "subsystem_code": sid.subsystem, "service_code": sid.service_code, "object_type": "SERVICE",
            "service_type": kind, "endpoint_list": endpoints}


def _proxy_endpoints(service) -> list[dict]:
    """The operations of a proxied service's OpenAPI document (a document at a URL fetched and kept a while, as
    getOpenAPI does); none when it cannot be had now: one provider's trouble does not fail listMethods."""
    from exchange.proxy import provider_paths

    methods = ("get", "put", "post", "delete", "patch", "head", "options")
    try:
        paths = provider_paths(service)
    except XRoadError:
        return []
    return [{"method": m.upper(), "path": re.sub(r"\{[^}]*\}", "*", path)}
            for path, item in sorted(paths.items()) for m in methods if m in item]


_OPENAPI_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
                  "date": "string", "date-time": "string"}


def field_schema(field) -> dict:
    """An OpenAPI 3.0 schema of one standard field, as the hub answers it."""
    out = {"type": _OPENAPI_TYPES.get(field.type, "string"), "description": field.description or field.title}
    if field.format or field.type in ("date", "date-time"):
        out["format"] = field.format or field.type
    if field.personal_data:
        out["x-personal-data"] = field.personal_data
    return out


def answer_components(service, standard, fields) -> dict:
    """What every answer of `service` shares, for a getOpenAPI document: the record of `fields` (of `standard`),
    the masking lists, the X-Road-Issue header a personal-data service needs, and the X-Road error."""
    by_name = {f.name: f for f in standard.fields}
    return {
        "record": {"type": "object", "properties": {n: {**field_schema(by_name[n]), "nullable": True}
                                                     for n in fields if n in by_name}},
        "shown": {"masked_fields": {"type": "array", "items": {"type": "string"}},
                  "pseudonymized_fields": {"type": "array", "items": {"type": "string"}},
                  "withheld_fields": {"type": "array", "items": {"type": "string"}}},
        "issue": [{"name": "X-Road-Issue", "in": "header", "required": True,
                   "description": "the case or purpose of the call (this service returns personal data: "
                                  + ", ".join(service.personal_data) + ")", "schema": {"type": "string"}}
                  ] if service.requires_issue else [],
        "errors": {"default": {"description": "an X-Road error (X-Road-Error header)", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        "error": {"type": "object", "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                                                   "detail": {"type": "string"}}},
    }


def openapi_of(service) -> dict:
    """An OpenAPI 3 document of a dataset service's lookups, from its standard's fields: what getOpenAPI serves."""
    from schemas import load_standard

    standard = load_standard(service.standard_ref)
    lookup = service.dataset
    by_name = {f.name: f for f in standard.fields}
    common = answer_components(service, standard, lookup.fields)

    def schema(name: str) -> dict:
        return field_schema(by_name[name])

    record = common["record"]
    shown = {"dataset": {"type": "string"}, "snapshot_id": {"type": "integer"}, **common["shown"]}
    issue, errors = common["issue"], common["errors"]
    paths = {}
    if lookup.key:
        paths["/{" + lookup.key + "}"] = {"get": {
            "operationId": "getByKey", "summary": f"one record by {lookup.key}",
            "parameters": [{"name": lookup.key, "in": "path", "required": True, "schema": schema(lookup.key)},
                           *issue],
            "responses": {"200": {"description": "the record", "content": {"application/json": {"schema": {
                "type": "object", "properties": {**shown, "record": {"$ref": "#/components/schemas/Record"}}}}}},
                "404": {"description": "no record with this key"}, **errors}}}
    if lookup.filters:
        paths["/"] = {"get": {
            "operationId": "find", "summary": f"records matching every filter given (at most {lookup.max_rows})",
            "parameters": [*({"name": n, "in": "query", "required": False, "schema": schema(n)}
                             for n in lookup.filters), *issue],
            "responses": {"200": {"description": "the records", "content": {"application/json": {"schema": {
                "type": "object", "properties": {**shown, "total": {"type": "integer"}, "records": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Record"}}}}}}}, **errors}}}
    return {"openapi": "3.0.3",
            "info": {"title": service.title, "description": service.description, "version": standard.version,
                     "x-standard": service.standard_ref},
            "servers": [{"url": f"/r1/{service.id}"}], "paths": paths,
            "components": {"schemas": {"Record": record, "Error": common["error"]}}}


class Door:
    """ASGI middleware in front of the catalog's app: `/r1/...` and `/listClients` are answered here, on the server's
    event loop, everything else goes on to the app.

    A call is mostly the hub's own quick work (credential, grant, rate limit, an index lookup, the message log) and,
    for a proxied service, a wait for the provider: on the loop, that wait holds no thread, and no call waits for a
    worker thread or for the interpreter behind other threads. What may take long (a filter over a dataset, an index
    built for the first time, the change feed, a metadata answer that may fetch a document) runs in a thread."""

    def __init__(self, app, settings) -> None:
        from catalog.db import init_db

        init_db(settings.catalog_url)
        self.app, self.settings = app, settings
        self.limiter = RateLimiter(limits_file(settings))  # shared by the server's processes (exchange.limits)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, self._closing(receive), send)
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path.startswith("/r1/") or path == "/listClients"):
            return await self.app(scope, receive, send)
        request = Request(scope, receive)
        body = await request.body()
        raw_path = scope.get("raw_path") or path.encode()
        query = scope.get("query_string") or b""
        target = raw_path + (b"?" + query if query else b"")
        head, body = _canonical_request(request.method, target, scope.get("headers") or [], body)
        sent_id = request.headers.get("X-Road-Id")
        call = _Call(message_id=sent_id if sent_id and _SANE_ID.match(sent_id) else str(uuid.uuid4()),
                     request_id=str(uuid.uuid4()), request_hash=_request_hash(head, body),
                     request_sha256=hashlib.sha256(head + b"\n\n" + body).hexdigest(), method=request.method,
                     address=request.client.host if request.client else None)
        status, headers, content = await _answer(self.settings, self.limiter, request, call, raw_path, query,
                                                 path == "/listClients", body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    @staticmethod
    def _closing(receive):
        """The lifespan's `receive`, closing the connections to providers when the server shuts down."""
        async def received():
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                from exchange.proxy import close_sessions

                await close_sessions()
            return message

        return received


def _headers(media: str, content: bytes, out: dict) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", media.encode()), (b"content-length", str(len(content)).encode()),
            *((k.lower().encode(), v.encode("latin-1")) for k, v in out.items())]


async def _answer(settings, limiter: RateLimiter, request: Request, call: _Call, raw_path: bytes, query: bytes,
                  metadata_root: bool, body: bytes = b"") -> tuple[int, list, bytes]:
    headers = request.headers
    call.claimed_client = headers.get("X-Road-Client")
    call.user_id = (headers.get("X-Road-UserId") or "").strip()[:_TEXT_LIMIT] or None
    call.issue = " ".join((headers.get("X-Road-Issue") or "").split())[:_TEXT_LIMIT] or None
    try:
        call.client = _authenticated(settings, headers, call.address, client_certificate(request))
        if metadata_root:
            if request.method not in ("GET", "HEAD"):
                raise XRoadError(405, "Client.InvalidHttpMethod", "listClients answers GET only", {"Allow": "GET"})
            status, payload = 200, await asyncio.to_thread(_list_clients, settings)
        else:
            status, payload = await _route(settings, limiter, request.method, call, raw_path, query, body, headers)
        content, media = payload if isinstance(payload, tuple) else (
            json.dumps(payload, ensure_ascii=False, default=str).encode(), "application/json; charset=utf-8")
        error = None
        extra = {}
    except XRoadError as e:
        status, error, extra = e.status, e.type, e.headers
        content = json.dumps({"type": e.type, "message": e.message, "detail": call.message_id},
                             ensure_ascii=False).encode()
        media = "application/json; charset=utf-8"
    except Exception as e:
        # The message id, the exception's type and where it was raised: never its text, which may quote a value.
        log.error("exchange call %s failed: %s\n%s", call.message_id, type(e).__name__,
                  "".join(traceback.format_tb(e.__traceback__)))
        status, error, extra = 500, "Server.ServerProxy.InternalError", {}
        content = json.dumps({"type": error, "message": "the hub failed to answer; the operator can find this "
                              "call in the server's log by its detail", "detail": call.message_id}).encode()
        media = "application/json; charset=utf-8"
    out = {"X-Road-Id": call.message_id, "X-Road-Request-Id": call.request_id,
           "X-Road-Request-Hash": call.request_hash, **extra}
    if call.client is not None:
        out["X-Road-Client"] = str(call.client)
    if call.service is not None:
        out["X-Road-Service"] = str(call.service)
    if call.user_id:
        out["X-Road-UserId"] = _header_safe(call.user_id)
    if call.issue:
        out["X-Road-Issue"] = _header_safe(call.issue)
    if error:
        out["X-Road-Error"] = error
    answer_head = "\n".join([str(status), *(f"{k.lower()}: {v}" for k, v in sorted(out.items()))]).encode()
    try:
        await _log(settings, call, status, error, hashlib.sha256(answer_head + b"\n\n" + content).hexdigest())
    except Exception as e:
        # X-Road answers nothing it could not log (LoggingFailed): neither does the hub.
        log.error("exchange call %s could not be written to the message log: %s\n%s", call.message_id,
                  type(e).__name__, "".join(traceback.format_tb(e.__traceback__)))
        error = "Server.ServerProxy.LoggingFailed"
        content = json.dumps({"type": error, "message": "the call could not be recorded in the message log, so it "
                              "is not answered", "detail": call.message_id}).encode()
        return 500, _headers("application/json; charset=utf-8", content,
                             {"X-Road-Id": call.message_id, "X-Road-Error": error}), content
    return status, _headers(media, content, out), content


def _header_safe(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


async def _log(settings, call: _Call, status: int, error: str | None, response_sha256: str) -> None:
    from exchange import messagelog

    details = {
        "message_id": call.message_id, "request_id": call.request_id,
        "consumer": str(call.client) if call.client else None,
        "claimed_consumer": None if call.client else _claimed(call.claimed_client),
        "provider": str(call.service.provider) if call.service else None,
        "service": str(call.service) if call.service else None, "method": call.method,
        "user_id": call.user_id, "purpose": call.issue, "status": status, "error": error,
        "duration_ms": round((time.monotonic() - call.started) * 1000, 3),
        "request_sha256": call.request_sha256, "response_sha256": response_sha256,
    }
    if call.key_pseudonym:
        details["key_pseudonym"] = call.key_pseudonym
    if call.rows is not None:
        details["rows"] = call.rows
    if call.attempts:
        details.update(provider_status=call.provider_status, provider_ms=call.provider_ms, attempts=call.attempts)
    # The actor column holds 200 characters; the details keep the whole identifier.
    await messagelog.append(settings, str(call.client)[:200] if call.client else "unauthenticated", "exchange",
                            "exchange.call", dataset=call.dataset, details=details, client=call.address)


def _claimed(header: str | None) -> str | None:
    """The X-Road-Client an unauthenticated call named, when it is an identifier (nothing else is kept)."""
    try:
        return str(ClientId.parse(header or ""))
    except IdentifierError:
        return None


# Addresses found not locked out (catalog.identity), asked again after a second, or at once after a failure here:
# a lock set by failures in another server process holds here within a second.
_UNLOCKED = Recent(1.0)
# The catalog rows of the datasets that dataset services answer from: a new version is answered within a second of
# its publication.
_PUBLISHED = Recent(1.0)


def _authenticated(settings, headers, address: str | None, certificate: tuple[bool, str | None]) -> ClientId:
    from catalog.identity import TooManyAttempts, count_failure, refuse_if_locked
    from exchange.clients import ClientAuthenticationError, authenticate

    claimed = headers.get("X-Road-Client")
    if not claimed:
        raise _bad("the X-Road-Client header is missing: name the calling subsystem, INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    try:
        ClientId.parse(claimed)
    except IdentifierError as e:
        raise _bad(f"X-Road-Client: {e}") from None
    address = address or "unknown"
    try:
        _UNLOCKED.get((settings.catalog_url, address), lambda: refuse_if_locked(settings, address))
    except TooManyAttempts as e:
        raise XRoadError(429, "Server.ClientProxy.SslAuthenticationFailed", str(e),
                         {"Retry-After": str(e.retry_after)}) from None
    scheme, _, token = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        token = ""
    try:
        return authenticate(settings, claimed, token, certificate_required=certificate[0],
                            certificate_sha256=certificate[1])
    except ClientAuthenticationError as e:
        _UNLOCKED.forget((settings.catalog_url, address))
        count_failure(settings, address)
        raise XRoadError(401, "Server.ClientProxy.SslAuthenticationFailed",
                         f"{e}; send the client's token as Authorization: Bearer hubx_...",
                         {"WWW-Authenticate": "Bearer"}) from None


def _services(settings) -> tuple[list, list]:
    from exchange.registry import current_services

    return current_services(settings)


def _broken(problems: list, service: ServiceId) -> bool:
    """Whether one of the registrations that did not load names `service`."""
    from connectors.registry import read_yaml

    for problem in problems:
        try:
            data, _ = read_yaml(Path(problem["file"]))
        except Exception:
            continue
        if isinstance(data, dict) and str(data.get("service", "")).strip() == str(service):
            return True
    return False


async def _route(settings, limiter: RateLimiter, method: str, call: _Call, raw_path: bytes, query: bytes,
                 body: bytes = b"", headers=None):
    path = raw_path.decode("latin-1").removeprefix("/r1")
    if "/" not in path.strip("/") and path.strip("/") == "listClients":
        return 200, await asyncio.to_thread(_list_clients, settings)
    try:
        parts = path.removeprefix("/").split("/")
        if len(parts) == 5 and parts[4] in METADATA_SERVICES:
            provider = ClientId.parse("/".join(parts[:4]))
            call.service = ServiceId(provider.instance, provider.member_class, provider.member_code,
                                     provider.subsystem, parts[4])
            return await asyncio.to_thread(_metadata, settings, method, call, provider, parts[4], query)
        service_id, rest = split_service_path(path)
    except IdentifierError as e:
        raise _bad(f"the request path is not /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/path]: {e}") from None
    call.service = service_id
    services, problems = _services(settings)
    service = next((s for s in services if s.id == service_id), None)
    if service is None:
        if _broken(problems, service_id):
            log.warning("exchange: the registration of %s does not load (`hub exchange services check`)", service_id)
            raise XRoadError(503, "Server.ServerProxy.MalformedServerConf",
                             f"service {service_id} is registered but its registration does not load; the hub's "
                             "operator can see why with `hub exchange services check`")
        raise XRoadError(404, "Server.ServerProxy.UnknownService", f"no service {service_id} is registered "
                         f"(listMethods of {service_id.provider} lists its services)")
    grant = _allowed(settings, service_id, call.client)
    if grant is None:
        raise _denied(f"{call.client} holds no grant of {service_id}; its provider or a steward grants it "
                      f"(hub exchange grant {service_id} {call.client} --purpose TEXT)")
    if service.requires_issue and not call.issue:
        raise XRoadError(400, "Client.MissingHeader",
                         f"{service_id} returns personal data ({', '.join(service.personal_data)}): send "
                         "X-Road-Issue naming the case or purpose of this call (UU 27/2022, purpose limitation)")
    if service.rate_limit:
        requests, seconds = service.rate_limit
        wait = limiter.admit(str(call.client), str(service_id), requests, seconds)
        if wait is not None:
            raise XRoadError(429, "Server.ServerProxy.RateLimitExceeded",
                             f"{call.client} may call {service_id} {requests} times in {seconds:g} s",
                             {"Retry-After": str(max(1, int(wait + 0.999)))})
    if service.kind == "proxy":
        from exchange.proxy import forward

        return await forward(settings, service, call, method, rest, query, body, headers or {})
    if method not in ("GET", "HEAD"):
        raise XRoadError(405, "Client.InvalidHttpMethod", f"{service_id} answers GET only", {"Allow": "GET"})
    if service.kind == "changes":  # the change feed (exchange.events)
        from exchange.events import feed_answer

        return await asyncio.to_thread(feed_answer, settings, call, service, rest, query)
    return await _lookup(settings, call, service, rest, query)


def _allowed(settings, service_id, client):
    from exchange.clients import allowed

    return allowed(settings, service_id, client)


def query_pairs(service_id, query: bytes, known, noun: str, kind: str) -> list[tuple[str, str]]:
    """The query's (name, value) pairs, each name one of `known` (the service's `noun`s) and none given twice (HTTP
    parameter pollution, PR-REST 4.2); refusals name no value, and a name only when it is one (`kind`)."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    names = [n for n, _ in pairs]
    for name in names:
        if name not in known:
            shown = name if re.fullmatch(r"[A-Za-z0-9_]{1,64}", name) else f"(not a {kind})"
            raise _bad(f"{service_id} has no {noun} {shown}; its {noun}s: {', '.join(known) or 'none'}")
    if len(set(names)) != len(names):
        raise _bad(f"a {noun} is given twice")
    return pairs


def _published(settings, dataset_id: str):
    from catalog.db import dataset_row

    return _PUBLISHED.get((settings.catalog_url, dataset_id), lambda: dataset_row(settings.catalog_url, dataset_id))


async def _lookup(settings, call: _Call, service, rest: str, query: bytes):
    """A dataset service's answer: one record by key (`/{key}`) or the records matching the filters (`?f=v`)."""
    from catalog.access import AccessDenied
    from catalog.lookup import by_key, indexed
    from catalog.rows import Condition, page
    from exchange.clients import officer_of
    from hub.errors import Busy, QueryError
    from transforms import pseudonym

    lookup = service.dataset
    segments = [s for s in rest.split("/") if s] if rest else []
    if len(segments) > 1:
        raise _bad(f"{service.id} takes at most one path segment, the {lookup.key or 'key'}")
    pairs = query_pairs(service.id, query, lookup.filters, "filter", "field name")
    where = [Condition(n, "=", (v,)) for n, v in pairs]
    key = None
    if segments:
        if not lookup.key:
            raise _bad(f"{service.id} is not looked up by key; its filters: {', '.join(lookup.filters)}")
        try:
            key = unquote(segments[0], errors="strict")
        except UnicodeDecodeError:
            raise _bad(f"the {lookup.key} in the path is not percent-encoded UTF-8") from None
        call.key_pseudonym = pseudonym.pseudonym(key, pseudonym.key(settings.home))
        where.append(Condition(lookup.key, "=", (key,)))
    if not where:
        raise _bad(f"{service.id} answers a lookup: give the {lookup.key} in the path" if lookup.key and not
                   lookup.filters else f"{service.id} answers a lookup: give "
                   + " or ".join(filter(None, [f"the {lookup.key} in the path" if lookup.key else None,
                                               f"a filter ({', '.join(lookup.filters)})" if lookup.filters else None])))
    dataset = _published(settings, lookup.dataset)
    if dataset is None or dataset.snapshot_id is None:
        raise XRoadError(503, "Server.ServerProxy.ServiceFailed",
                         f"{service.id} answers from dataset {lookup.dataset}, which is not published yet")
    consumer = officer_of(call.client)
    try:
        if key is not None and not pairs:  # the counter's lookup: from an index of what the consumer may see
            if indexed(settings, dataset, consumer, lookup.key, lookup.fields):
                found = by_key(settings, dataset, consumer, lookup.key, key, lookup.fields)
            else:  # the index is built first (seconds, for a large dataset): off the loop
                found = await asyncio.to_thread(by_key, settings, dataset, consumer, lookup.key, key, lookup.fields)
        else:
            found = await asyncio.to_thread(page, settings, dataset, consumer, call.address, where=where,
                                            limit=2 if key else lookup.max_rows, audited=False)
    except AccessDenied:
        raise _denied(f"dataset {lookup.dataset} is {dataset.classification}: agency {call.client.member_code} is "
                      "not cleared for it, and a grant does not clear it") from None
    except Busy as e:
        raise XRoadError(503, "Server.ServerProxy.ServiceFailed", str(e), {"Retry-After": str(e.retry_after)}) \
            from None
    except QueryError:
        raise _bad(f"a value given to {service.id} is not of its field's type, or the field is masked for "
                   f"{call.client}") from None
    call.dataset = lookup.dataset
    records = [{f: row[f] for f in lookup.fields if f in row} for row in found["rows"]]
    call.rows = len(records)
    about = {"dataset": lookup.dataset, "snapshot_id": found["snapshot_id"],
             "masked_fields": [f for f in found["masked_fields"] if f in lookup.fields],
             "pseudonymized_fields": [f for f in found["pseudonymized_fields"] if f in lookup.fields],
             "withheld_fields": [f for f in found["withheld_fields"] if f in lookup.fields]}
    if key is not None:
        if not records:
            raise XRoadError(404, "Server.ServerProxy.NotFound", f"no record of {lookup.dataset} with this "
                             f"{lookup.key}" + (" that you may look up" if about["pseudonymized_fields"] else ""))
        if len(records) > 1:
            raise XRoadError(500, "Server.ServerProxy.ServiceFailed",
                             f"{lookup.dataset} holds more than one record with this {lookup.key}")
        return 200, {**about, "record": records[0]}
    return 200, {**about, "total": found["total"], "records": records}


def _metadata(settings, method: str, call: _Call, provider: ClientId, code: str, query: bytes):
    if method not in ("GET", "HEAD"):
        raise XRoadError(405, "Client.InvalidHttpMethod", f"{code} answers GET only", {"Allow": "GET"})
    services, _ = _services(settings)
    own = [s for s in services if s.id.provider == provider]
    if code == "listMethods":
        return 200, {"service": [_service_json(s) for s in own]}
    if code == "allowedMethods":
        return 200, {"service": [_service_json(s) for s in own if _allowed(settings, s.id, call.client)]}
    asked = [v for n, v in parse_qsl(query.decode("latin-1")) if n == "serviceCode"]
    if len(asked) != 1:
        raise _bad("getOpenAPI needs one query parameter serviceCode=SERVICE")
    service = next((s for s in own if s.id.service_code == asked[0]), None)
    if service is None:
        raise XRoadError(404, "Server.ServerProxy.UnknownService", f"{provider} has no service of that code "
                         "(listMethods lists them)")
    if service.kind == "dataset":
        return 200, openapi_of(service)
    if service.kind == "changes":
        from exchange.events import openapi_of_changes

        return 200, openapi_of_changes(service)
    from exchange.proxy import consumer_openapi

    return 200, consumer_openapi(service)  # the provider's operations, answering in the standard's shape


def _list_clients(settings) -> dict:
    """PR-META's listClients (JSON): every subsystem the hub knows, providers of services and clients with a live
    credential."""
    from exchange.clients import list_clients

    known: set[ClientId] = {s.id.provider for s in _services(settings)[0]}
    known |= {ClientId.parse(c["client"]) for c in list_clients(settings) if c["revoked_at"] is None}
    return {"member": [{"id": {"object_type": "SUBSYSTEM", "xroad_instance": c.instance,
                               "member_class": c.member_class, "member_code": c.member_code,
                               "subsystem_code": c.subsystem}, "name": c.member_code}
                       for c in sorted(known)]}
