"""The HTTP client of kinds that read agency systems over http(s): timeouts, retries, a rate limit and credentials."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
import re
import time
from collections.abc import Callable, Collection
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from connectors.secrets import SECRET, resolve
from hub.errors import ConfigError, FatalSourceError, RetriableSourceError

__all__ = ["AUTH", "CLIENT_OPTIONS", "HttpClient", "check_url", "secret_value", "tagged_union", "where"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_BACKOFF_SECONDS = 1.0
# The longest the client sleeps before one retry, whatever the server asks: a longer wait is Airflow's retry.
MAX_WAIT_SECONDS = 60.0
MAX_REDIRECTS = 20
_CHUNK_BYTES = 1 << 20


def tagged_union(variants: dict[str, dict]) -> dict:
    """A JSON Schema for objects whose `type` names one of `variants` (name -> properties, `required`): a
    mistake is reported against the variant the object names, not as "valid under none of" them."""
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(variants)}},
        "allOf": [
            {"if": {"properties": {"type": {"const": name}}},
             "then": {"additionalProperties": False, "required": variant.get("required", []),
                      "properties": {"type": True, **variant.get("properties", {})}}}
            for name, variant in variants.items()
        ],
    }


_NAME = {"type": "string", "minLength": 1}
_HTTP_URL = {"type": "string", "pattern": "^https?://"}
_TEXT_OR_SECRET = {"oneOf": [_NAME, SECRET]}

AUTH = tagged_union({
    "api_key": {"required": ["in", "name", "key"],
                "properties": {"in": {"enum": ["header", "query"]}, "name": _NAME, "key": SECRET}},
    "bearer": {"required": ["token"], "properties": {"token": SECRET}},
    "basic": {"required": ["username", "password"], "properties": {"username": _TEXT_OR_SECRET, "password": SECRET}},
    "oauth2_client_credentials": {
        "required": ["token_url", "client_id", "client_secret"],
        "properties": {"token_url": _HTTP_URL, "client_id": _TEXT_OR_SECRET, "client_secret": SECRET,
                       "scope": {"type": "string"}},
    },
})

#: Options every kind reading through HttpClient accepts (add them to the kind's options schema).
CLIENT_OPTIONS = {
    "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
    "max_retries": {"type": "integer", "minimum": 0, "maximum": 10},
    "retry_backoff_seconds": {"type": "number", "minimum": 0},
    "rate_limit_per_second": {"type": "number", "exclusiveMinimum": 0},
}


# Query parameters that carry credentials: their value must come from a secret (options/auth), never the YAML.
_CREDENTIAL_PARAMETER = re.compile(r"^(api[-_]?key|(access[-_]?|auth[-_]?|api[-_]?)?token|auth|authorization|"
                                   r"(client[-_]?)?secret|password|passwd|pwd|signature)$", re.IGNORECASE)
_USE_AUTH = ("use options/auth with a secret from an environment variable or an Airflow connection (e.g. "
             "auth: {type: api_key, in: query, name: NAME, key: {env: VARIABLE}})")


def check_url(source, option: str, url: str) -> None:
    """Refuse a URL the client cannot or must not use: not http(s), or with a credential written in it."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{source.path}: field options/{option}: expected an http:// or https:// URL")
    if parsed.userinfo:
        raise ConfigError(f"{source.path}: field options/{option}: credentials must not be written in the URL; "
                          + _USE_AUTH)
    check_parameters(source, option, dict(parsed.params))


def check_parameters(source, option: str, params: dict) -> None:
    """Refuse query parameters named like credentials (api_key, token, ...) whose value is written in place."""
    for name in params:
        if _CREDENTIAL_PARAMETER.match(str(name)):
            raise ConfigError(f"{source.path}: field options/{option}: query parameter {name!r} looks like a "
                              f"credential, which must not be written in the registration; " + _USE_AUTH)


def secret_value(source, option: str, where_it_is) -> str:
    """The secret the option names ({env: ...} or {connection: ...}); the secret itself written there is refused
    (as the options schema does; this guards sources built in code)."""
    if isinstance(where_it_is, str):
        raise ConfigError(f"{source.path}: field options/{option}: name where the secret is "
                          "({env: NAME} or {connection: AIRFLOW_CONN_ID}), never the secret itself")
    return resolve(source, option, where_it_is)


def where(url: str | httpx.URL) -> str:
    """Host and path of a URL, for messages and lineage: never its query string (it may hold an API key)."""
    url = httpx.URL(url)
    port = f":{url.port}" if url.port else ""
    return f"{url.host}{port}{'' if url.path == '/' else url.path}"


class _NoQueryStrings(logging.Filter):
    """httpx logs every request's full URL; an API key in its query string (or a password in a URL a server
    redirected to) must not reach a task log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(a.copy_with(query=None, userinfo=b"") if isinstance(a, httpx.URL) else a
                                for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_NoQueryStrings())

_HEADERS_RECEIVED = re.compile(r"^(receive_response_headers\.complete return_value=\(.*?), \[.*\]\)$", re.DOTALL)


class _NoResponseHeaders(logging.Filter):
    """httpcore logs every answer's headers at DEBUG, and a server may echo a credential in them: a Location
    carrying the request's query string (its API key), a WWW-Authenticate quoting the refused token. Its
    records are already formatted text; the status stays, the headers go."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("receive_response_headers.complete"):
            found = _HEADERS_RECEIVED.match(record.msg)
            record.msg = f"{found.group(1)}, [headers not logged])" if found else "receive_response_headers.complete"
            record.args = ()
        return True


# A filter on a logger applies only to records of that very logger, not to those of its children.
for _name in ("httpcore.http11", "httpcore.http2"):
    logging.getLogger(_name).addFilter(_NoResponseHeaders())


class HttpClient:
    """GET requests to one agency system, as its registration says.

    `options` are the kind's options: `url` (credentials go only to its scheme, host and port), `auth`
    (see AUTH), and CLIENT_OPTIONS. Transport failures, timeouts, 429 and 5xx answers are retried with
    exponential backoff and jitter, or after the server's Retry-After, up to `max_retries` times, then raise
    RetriableSourceError; other error answers and bodies that are not JSON raise FatalSourceError. Messages
    name the source and the URL's host and path, never a secret or a record. `secret_headers` are further
    headers holding credentials (sent, like `auth`, only to the source's own origin). Redirects are followed
    by the client itself, so that the credentials go only to that origin on every hop (httpx keeps headers
    such as X-API-Key on a redirect to another host); `redact` hides them in text a server sent back.
    """

    def __init__(self, source, options: dict, secret_headers: dict[str, str] | None = None) -> None:
        self.source = source
        self._origin = _origin(httpx.URL(options["url"]))
        self._attempts = 1 + options.get("max_retries", DEFAULT_MAX_RETRIES)
        self._backoff = options.get("retry_backoff_seconds", DEFAULT_RETRY_BACKOFF_SECONDS)
        rate = options.get("rate_limit_per_second")
        self._interval = 1 / rate if rate else 0.0
        self._next_turn = 0.0
        self._headers = dict(secret_headers or {})
        self._params: dict[str, str] = {}
        self._basic: tuple[str, str] | None = None
        self._oauth2: dict | None = None
        self._token: str | None = None
        self._token_expires = 0.0
        self._secrets: set[str] = set(self._headers.values())
        self._use(options.get("auth"))
        self._http = httpx.Client(timeout=options.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS),
                                  follow_redirects=False, headers={"User-Agent": "interop-hub"})

    def _use(self, auth: dict | None) -> None:
        """Resolve the credentials `auth` names, now: a missing one is a ConfigError before any request."""
        if auth is None:
            return

        def secret(field: str, text_allowed: bool = False) -> str:
            value = auth[field]
            if text_allowed and isinstance(value, str):
                return value
            found = secret_value(self.source, f"auth/{field}", value)
            self._secrets.add(found)
            return found

        if auth["type"] == "api_key":
            (self._headers if auth["in"] == "header" else self._params)[auth["name"]] = secret("key")
        elif auth["type"] == "bearer":
            self._headers["Authorization"] = f"Bearer {secret('token')}"
        elif auth["type"] == "basic":
            self._basic = (secret("username", text_allowed=True), secret("password"))
            self._secrets.add(":".join(self._basic))  # base64 of it is the Authorization header
        else:
            self._oauth2 = {"token_url": auth["token_url"], "scope": auth.get("scope"),
                            "client": (secret("client_id", text_allowed=True), secret("client_secret"))}
            self._secrets.add(":".join(self._oauth2["client"]))

    def redact(self, text: str) -> str:
        """`text` (an agency's own explanation of an error, say) with each credential this client sends replaced
        by ***, as written, URL-quoted or base64-encoded: servers quote what they were sent."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            encoded = base64.b64encode(secret.encode()).decode()
            for form in {secret, quote(secret, safe=""), quote_plus(secret), encoded, encoded.rstrip("=")}:
                if len(form) >= 4:  # a credential that short guards nothing; replacing it would garble the text
                    text = text.replace(form, "***")
        return text

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, url: str, params: dict | None = None, accept: Collection[int] = ()) -> httpx.Response:
        """The answer to GET `url` with `params` added to its query string, its body read. An error answer
        whose status is in `accept` is returned (for APIs that explain their errors in the body)."""
        target = httpx.URL(url)
        return self._send("GET", target.copy_merge_params(params) if params else target, _read, accept=accept)

    def get_json(self, url: str, params: dict | None = None) -> Any:
        return self.json_of(self.get(url, params))

    def json_of(self, response: httpx.Response) -> Any:
        """The JSON body of an answer the client returned."""
        try:
            return json.loads(response.content)
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise FatalSourceError(f"source {self.source.id}: {response.request.method} {where(response.url)}: "
                                   f"the answer is not JSON ({kind})") from None

    def download(self, url: str, target: Path, max_bytes: int | None = None) -> None:
        """Stream the body of GET `url` into the file `target` (a retry starts the file again); a body over
        `max_bytes` stops the download as soon as it is passed, so a huge file never fills the disk first."""

        def save(response: httpx.Response) -> None:
            size = 0
            with target.open("wb") as f:
                for chunk in response.iter_bytes(_CHUNK_BYTES):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise FatalSourceError(f"source {self.source.id}: GET {where(httpx.URL(url))}: the file is "
                                               f"more than the limit of {max_bytes} bytes (options/max_file_bytes)")
                    f.write(chunk)

        self._send("GET", httpx.URL(url), save)

    def _send(self, method: str, url: httpx.URL, consume: Callable[[httpx.Response], Any], *, data: dict | None = None,
              auth: httpx.Auth | None = None, credentials: bool = True, accept: Collection[int] = ()) -> httpx.Response:
        """Send until an answer that is not an error, retrying transient failures; `consume` reads its body.
        With `credentials`, the source's credentials go with a request to its origin; else `auth`, if any."""
        label = f"{method} {where(url)}"
        attempt = 0
        token_renewed = False
        while True:
            attempt += 1
            if credentials:
                request, auth = self._request(method, url, data)
            else:
                request = self._http.build_request(method, url, data=data)
            self._wait_turn()
            retry_after = None
            try:
                response = self._follow(request, auth, credentials)
                try:
                    status = response.status_code
                    if status == 401 and credentials and self._token and not token_renewed:
                        # The token may have been revoked before it expired: one new token, then a verdict.
                        self._token, token_renewed, attempt = None, True, attempt - 1
                        continue
                    if status < 400 or status in accept:
                        consume(response)
                        return response
                    if status != 429 and status < 500:
                        raise FatalSourceError(f"source {self.source.id}: {label}: {_refusal(response)}")
                    problem, retry_after = f"HTTP {status} {response.reason_phrase}", _retry_after(response)
                finally:
                    response.close()
            except httpx.TimeoutException:
                problem = "no answer within the timeout"
            except httpx.TransportError as e:
                problem = self.redact(f"{type(e).__name__}: {e}")
            if attempt >= self._attempts:
                raise RetriableSourceError(f"source {self.source.id}: {label}: {problem} "
                                           f"(gave up after {attempt} attempts)")
            if retry_after is None:
                retry_after = self._backoff * 2 ** (attempt - 1) * (1 + random.random())
            wait = min(retry_after, MAX_WAIT_SECONDS)
            log.warning("source %s: %s: %s; attempt %d of %d, next in %.1f s", self.source.id, label, problem,
                        attempt, self._attempts, wait)
            time.sleep(wait)

    def _follow(self, request: httpx.Request, auth: httpx.Auth | None, credentials: bool) -> httpx.Response:
        """Send `request` and follow its redirects, the answer at the end returned unread. With `credentials`, each
        hop gets the source's credentials only if it goes to the source's origin; otherwise a hop keeps what
        httpx keeps for it, less the source's credential headers."""
        for hop in range(MAX_REDIRECTS + 1):
            if hop:
                self._wait_turn()  # each hop is a request of its own under the rate limit
            response = self._http.send(request, auth=auth, stream=True)
            following = response.next_request
            if following is None:
                return response
            response.close()
            if credentials:
                request, auth = self._request(following.method, following.url, None)
            else:
                for name in self._headers:
                    following.headers.pop(name, None)
                request, auth = following, None
        raise FatalSourceError(f"source {self.source.id}: {request.method} {where(request.url)}: more than "
                               f"{MAX_REDIRECTS} redirects")

    def _wait_turn(self) -> None:
        """Keep requests at least 1/rate_limit_per_second apart."""
        now = time.monotonic()
        if now < self._next_turn:
            time.sleep(self._next_turn - now)
            now = self._next_turn
        self._next_turn = now + self._interval

    def _request(self, method: str, url: httpx.URL, data: dict | None) -> tuple[httpx.Request, httpx.Auth | None]:
        """A request with the source's credentials if it goes to the source's own origin, and its auth."""
        if not self._own(url):
            # A server may copy the query string, API key and all, into a link or a redirect to another host.
            for name, value in self._params.items():
                if url.params.get(name) == value:
                    url = url.copy_remove_param(name)
            return self._http.build_request(method, url, data=data), None
        headers = dict(self._headers)
        if self._oauth2:
            headers["Authorization"] = f"Bearer {self._access_token()}"
        request = self._http.build_request(method, url.copy_merge_params(self._params), headers=headers, data=data)
        return request, httpx.BasicAuth(*self._basic) if self._basic else None

    def _access_token(self) -> str:
        """The cached OAuth2 token, or a new one from the token endpoint once it is about to expire."""
        # Valid still after the wait for the request's turn under the rate limit.
        if self._token and time.monotonic() + self._interval < self._token_expires:
            return self._token
        oauth2 = self._oauth2
        form = {"grant_type": "client_credentials", **({"scope": oauth2["scope"]} if oauth2["scope"] else {})}
        asked_at = time.monotonic()
        token_url = httpx.URL(oauth2["token_url"])
        answer = self.json_of(self._send("POST", token_url, _read, data=form, auth=httpx.BasicAuth(*oauth2["client"]),
                                         credentials=False))
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise FatalSourceError(f"source {self.source.id}: POST {where(token_url)}: the answer has no access_token")
        try:
            lifetime = float(answer.get("expires_in"))
        except (TypeError, ValueError):
            lifetime = float("inf")  # valid until the API answers 401
        # Renewed a little before it expires, so that no request carries a token expiring on the way.
        self._token_expires = asked_at + 0.9 * lifetime
        self._token = token
        self._secrets.add(token)
        return token

    def _own(self, url: httpx.URL) -> bool:
        """Whether `url` is on the source's origin, or on its https version (a redirect from http to https)."""
        scheme, host, port = self._origin
        return _origin(url) == self._origin or (scheme, url.scheme, url.host) == ("http", "https", host) and \
            port is None and url.port is None


def _origin(url: httpx.URL) -> tuple:
    return url.scheme, url.host, url.port


def _read(response: httpx.Response) -> None:
    response.read()
    if _cut_short(response):
        raise httpx.RemoteProtocolError("the connection closed before the end of the answer (its JSON is cut off)")


def _cut_short(response: httpx.Response) -> bool:
    """True for a JSON answer without a length or chunks (it ends where the connection does) that does not parse:
    the server's connection dropped mid-answer, which a retry may read whole."""
    if "content-length" in response.headers or "chunked" in response.headers.get("transfer-encoding", "").lower():
        return False
    if "json" not in response.headers.get("content-type", "") or not response.content.strip():
        return False
    try:
        json.loads(response.content)
    except ValueError:
        return True
    return False


def _refusal(response: httpx.Response) -> str:
    """What an error answer means, without its body (it may quote records or credentials)."""
    text = f"HTTP {response.status_code} {response.reason_phrase}"
    if response.status_code in (401, 403):
        text += ": the credentials are missing or refused"
    return text


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait (Retry-After as seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return max(seconds, 0.0)
