"""Proxied services on a served hub: calls forwarded to real provider APIs on loopback (slow, down, failing, answering
garbage or cut short), mapped to the standard, checked and masked; retries, the circuit breaker, every refusal's
X-Road error, the message log; and the demo's SIAK status check end to end."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from _exchange import client_token
from _served import demo_systems, hub, serve

DINSOS, DINKES = "BOGOR/GOV/dinsos/siks", "BOGOR/GOV/dinkes/simpus"
PURPOSE = "Verifikasi bansos loket 3"
KEY = "kunci-siak-uji-0123456789"  # the provider's own API key, from the hub's environment (auth: {env: ...})
NIK = "3271014501900001"  # a woman's NIK from Bogor Selatan
SIAK = "BOGOR/GOV/disdukcapil/siak"

STATUS, LIST, FLAKY, SLOW, DOWN, GARBAGE, BREAKER, WRONG_KEY, NO_KEY, NO_DEMO, BY_URL = (
    f"{SIAK}/{code}" for code in ("status", "cari", "goyah", "lambat", "mati", "sampah", "pemutus", "kuncisalah",
                                  "tanpakunci", "demo", "dokumen"))

# SIAK's own names, mapped to the standard status_penduduk by the same engine as a source's mapping.
_MAPPING = """\
  mapping:
    nik: {from: content.NIK, normalize: nik}
    status: {from: content.STATUS_KEPENDUDUKAN, crosswalk: {AKTIF: hidup, MATI: meninggal, PINDAH KELUAR: pindah}}
    tanggal_peristiwa: {from: content.TGL_PERISTIWA, date_formats: ["%d-%m-%Y"]}
    kode_wilayah: {from: content.KODE_KEL, normalize: kode_wilayah}
"""
_OPENAPI = {"openapi": "3.0.3", "info": {"title": "SIAK uji", "version": "1"}, "paths": {
    "/status/{nik}": {"get": {"responses": {"200": {"description": "ok"}}}},
    "/laporan/{nik}": {"post": {"responses": {"200": {"description": "ok"}}}},
    "/cari": {"get": {"responses": {"200": {"description": "ok"}}}}}}


def _service(code: str, base_url: str, extra: str = "", auth: str = "{type: api_key, in: header, name: X-API-Key, "
             "key: {env: TEST_SIAK_KEY}}", openapi: str = "siak.openapi.json", mapping: str = _MAPPING) -> str:
    return (f"service: {SIAK}/{code}\ntitle: Uji {code}\nprovider: Disdukcapil\nkind: proxy\nproxy:\n"
            f"  base_url: {base_url}\n  openapi: {openapi}\n  standard: status_penduduk@1.0.0\n  auth: {auth}\n"
            f"{extra}{mapping}")


def _content(nik: str, status: str = "MATI", date: str | None = "15-02-2025", kel: str | None = "3271011001") -> dict:
    return {"NIK": nik, "NAMA_LGKP": "SITI AMINAH", "STATUS_KEPENDUDUKAN": status, "TGL_PERISTIWA": date,
            "KODE_KEL": kel}


class Provider:
    """A provider's own API on loopback, in a thread: `respond(request, body)` writes each answer. It keeps every
    request it received (method, path, headers, body), so a test can count what reached it."""

    def __init__(self, respond) -> None:
        self.respond, self.received = respond, []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                provider.received.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                          body))
                provider.respond(self, body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any  # noqa: N815 (the base class's names)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def hits(self) -> int:
        return len(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(handler, status: int, body, content_type: str = "application/json", length: int | None = None) -> None:
    """Answer `body` (JSON unless bytes); with `length`, claim that many bytes, send fewer and close (cut short)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(length if length is not None else len(data)))
    handler.end_headers()
    handler.wfile.write(data)
    handler.wfile.flush()
    if length is not None:
        handler.close_connection = True


def siak(handler, body: bytes) -> None:
    """A well-behaved SIAK: its own key, its own names; a NIK ending in 0000 is unknown, one of 15 digits refused;
    one starting with 9 gets an answer that fails the standard."""
    if handler.headers.get("X-API-Key") != KEY:
        return send(handler, 401, {"respon_msg": "API KEY TIDAK VALID"})
    path = handler.path.split("?")[0]
    if path == "/cari":
        return send(handler, 200, {"data": [_content("3271010101900001", "AKTIF", None),
                                            _content("3271010101900002", "PINDAH KELUAR", "01-03-2025", None)]})
    nik = path.rsplit("/", 1)[1]
    if len(nik) != 16:
        return send(handler, 400, {"respon_msg": f"NIK {nik} HARUS 16 DIGIT"})  # quotes the NIK: never passed on
    if nik.endswith("0000"):
        return send(handler, 404, {"respon_msg": f"NIK {nik} TIDAK DITEMUKAN"})
    if nik.startswith("9"):
        return send(handler, 200, {"content": _content(nik, "HILANG", "31-02-2025", "3271999999")})
    send(handler, 200, {"content": _content(nik)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    home = tmp_path_factory.mktemp("proxy-home")
    services = home / "services"
    services.mkdir()
    (services / "siak.openapi.json").write_text(json.dumps(_OPENAPI))
    scripted: list[int] = []  # the flaky provider's next statuses (then 200)
    down = {"down": True}

    def flaky(handler, body):
        status = scripted.pop(0) if scripted else 200
        send(handler, status, {"content": _content(NIK)} if status == 200 else {"respon_msg": "GANGGUAN"})

    def slow(handler, body):
        time.sleep(3)
        send(handler, 200, {"content": _content(NIK)})

    def garbage(handler, body):
        nik = handler.path.rsplit("/", 1)[1]
        if nik.endswith("1"):
            return send(handler, 200, b"<html>SIAK sedang pemeliharaan</html>", "text/html")
        if nik.endswith("2"):
            return send(handler, 200, json.dumps({"content": _content(nik)}).encode()[:30], length=400)
        if nik.endswith("3"):
            return send(handler, 200, ["not", "an", "object"])
        send(handler, 200, {"content": _content(nik, date="kemarin")})

    def flip(handler, body):
        if down["down"]:
            return send(handler, 503, {"respon_msg": "GANGGUAN"})
        send(handler, 200, {"content": _content(NIK)})

    providers = {name: Provider(respond) for name, respond in
                 (("siak", siak), ("flaky", flaky), ("slow", slow), ("garbage", garbage), ("breaker", flip))}
    (services / "openapi-at-url.json").write_text("{}")  # not read: the document is at the provider's URL
    registrations = {
        "status": _service("status", providers["siak"].url, "  timeout_seconds: 5\n"),
        "cari": _service("cari", providers["siak"].url, "  records: data\n", mapping=_MAPPING.replace("content.", "")),
        "goyah": _service("goyah", providers["flaky"].url),
        "lambat": _service("lambat", providers["slow"].url, "  timeout_seconds: 0.5\n"),
        "mati": _service("mati", f"http://127.0.0.1:{free_port()}/siak") + "rate_limit: {requests: 3, seconds: 600}\n",
        "sampah": _service("sampah", providers["garbage"].url),
        "pemutus": _service("pemutus", providers["breaker"].url,
                            "  circuit_breaker: {failures: 2, cooldown_seconds: 1.5}\n"),
        "kuncisalah": _service("kuncisalah", providers["siak"].url + "/",
                               auth="{type: api_key, in: header, name: X-API-Key, key: {env: TEST_WRONG_KEY}}"),
        "tanpakunci": _service("tanpakunci", providers["siak"].url,
                               auth="{type: api_key, in: header, name: X-API-Key, key: {env: TEST_UNSET_KEY}}"),
        "demo": _service("demo", "${HUB_DEMO_URL}/siak"),
        "dokumen": _service("dokumen", providers["siak"].url, openapi=providers["siak"].url + "/openapi.json"),
    }
    for code, text in registrations.items():
        (services / f"{code}.yaml").write_text(text)
    env = {"HUB_SERVICES": str(services), "TEST_SIAK_KEY": KEY, "TEST_WRONG_KEY": "bukan-kuncinya"}
    tokens = {}
    for client in (DINSOS, DINKES):
        tokens[client] = client_token(home, env, client)
    for code in registrations:
        hub(home, "exchange", "grant", f"{SIAK}/{code}", DINSOS, "--purpose", "verifikasi bansos", env=env)
    for code in (STATUS, LIST):
        hub(home, "exchange", "grant", code, DINKES, "--purpose", "pelayanan kesehatan", env=env)
    server, base = serve(home, env)
    yield {"home": home, "env": env, "base": base, "tokens": tokens, "providers": providers, "scripted": scripted,
           "down": down}
    server.terminate()
    server.wait(timeout=30)
    for provider in providers.values():
        provider.close()


def call(bus, path: str, method: str = "GET", client: str = DINSOS, issue: str | None = PURPOSE, **kwargs):
    headers = {"X-Road-Client": client, "Authorization": f"Bearer {bus['tokens'][client]}",
               **({"X-Road-Issue": issue} if issue else {}), **kwargs.pop("headers", {})}
    return httpx.request(method, bus["base"] + path, headers=headers, timeout=30, **kwargs)


def refused(answer: httpx.Response, status: int, type_: str, *secrets: str) -> str:
    """The X-Road error's message, once the status, the type and the call's id are checked and no secret shows."""
    assert answer.status_code == status, answer.text
    assert answer.headers["X-Road-Error"] == type_
    body = answer.json()
    assert body["type"] == type_ and body["detail"] == answer.headers["X-Road-Id"]
    for secret in secrets:
        assert secret not in answer.text and secret not in str(answer.headers)
    return body["message"]


def test_a_call_is_forwarded_mapped_to_the_standard_and_checked(bus):
    siak = bus["providers"]["siak"]
    before = siak.hits
    answer = call(bus, f"/r1/{STATUS}/status/{NIK}?asal=loket", headers={"X-Road-UserId": "ID-petugas-7",
                                                                         "Accept-Language": "id"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # SIAK's names and codes, mapped by the declarative mapping: MATI -> meninggal, DD-MM-YYYY -> ISO, dotted code.
    assert body == {"standard": "status_penduduk@1.0.0", "record": {
        "nik": NIK, "status": "meninggal", "tanggal_peristiwa": "2025-02-15", "kode_wilayah": "32.71.01.1001"},
        "masked_fields": [], "pseudonymized_fields": [], "withheld_fields": []}  # the name SIAK sent is not answered
    assert "X-Road-Error" not in answer.headers and answer.headers["X-Road-Service"] == STATUS
    assert siak.hits == before + 1
    method, path, headers, _ = siak.received[-1]
    assert (method, path) == ("GET", f"/status/{NIK}?asal=loket")
    # The provider's own key, the X-Road headers naming the call; never the consumer's token.
    assert headers["x-api-key"] == KEY and "authorization" not in headers
    assert bus["tokens"][DINSOS] not in json.dumps(headers)
    assert headers["x-road-client"] == DINSOS and headers["x-road-id"] == answer.headers["X-Road-Id"]
    assert headers["x-road-userid"] == "ID-petugas-7" and headers["x-road-issue"] == PURPOSE
    assert headers["accept"] == "application/json" and headers["accept-language"] == "id"


def test_a_consumer_not_cleared_for_personal_data_is_refused_before_the_provider_is_asked(bus):
    """Dinkes is granted the services but not cleared by status_penduduk's x-access: it knows people only by the
    pseudonyms of their NIKs, which the provider cannot read, so the services are closed to it whatever the call
    holds, and SIAK is never asked."""
    siak = bus["providers"]["siak"]
    before = siak.hits
    for path, method, body in ((f"/r1/{STATUS}/status/{NIK}", "GET", None),
                               (f"/r1/{LIST}/cari?kode=3271011001", "GET", None),
                               (f"/r1/{STATUS}/laporan/1", "POST", {"catatan": "cek", "nik": NIK})):
        answer = call(bus, path, method=method, client=DINKES, json=body)
        message = refused(answer, 403, "Server.ServerProxy.AccessDenied", NIK)
        assert "agency dinkes is not cleared" in message and "status_penduduk" in message, message
    assert siak.hits == before  # none reached the provider
    # The cleared consumer still asks by NIK.
    assert call(bus, f"/r1/{STATUS}/status/{NIK}").json()["record"]["nik"] == NIK


def test_a_list_at_the_records_path(bus):
    answer = call(bus, f"/r1/{LIST}/cari?kode=3271011001")
    assert answer.status_code == 200, answer.text
    records = answer.json()["records"]
    assert [r["status"] for r in records] == ["hidup", "pindah"]
    assert records[1] == {"nik": "3271010101900002", "status": "pindah", "tanggal_peristiwa": "2025-03-01",
                          "kode_wilayah": None}


def test_what_the_openapi_document_does_not_declare_is_refused(bus):
    siak = bus["providers"]["siak"]
    before = siak.hits
    refused(call(bus, f"/r1/{STATUS}/tidakada/{NIK}"), 400, "Client.BadRequest", NIK)
    refused(call(bus, f"/r1/{STATUS}/status/{NIK}/lagi"), 400, "Client.BadRequest", NIK)
    refused(call(bus, f"/r1/{STATUS}/status/%2e%2e"), 400, "Client.BadRequest")
    refused(call(bus, f"/r1/{STATUS}/status/a%2Fb"), 400, "Client.BadRequest")
    answer = call(bus, f"/r1/{STATUS}/status/{NIK}", method="DELETE")
    assert "GET" in refused(answer, 405, "Client.InvalidHttpMethod", NIK) and answer.headers["Allow"] == "GET"
    refused(call(bus, f"/r1/{STATUS}/laporan/{NIK}"), 405, "Client.InvalidHttpMethod", NIK)
    assert siak.hits == before  # none reached the provider


def test_the_providers_refusals(bus):
    unknown, short = NIK[:12] + "0000", NIK[:15]
    message = refused(call(bus, f"/r1/{STATUS}/status/{unknown}"), 404, "Server.ServerProxy.NotFound", unknown)
    assert STATUS in message and "404" in message
    # Its error body quotes the NIK: it is never passed on.
    refused(call(bus, f"/r1/{STATUS}/status/{short}"), 400, "Server.ServerProxy.ServiceFailed.HttpError", short)
    # The provider refusing the hub's own key is the hub's misconfiguration, not the consumer's fault.
    message = refused(call(bus, f"/r1/{WRONG_KEY}/status/{NIK}"), 502, "Server.ServerProxy.ServiceFailed.HttpError",
                      NIK, "bukan-kuncinya")
    assert "refused the hub's own credential" in message
    siak = bus["providers"]["siak"]
    before = siak.hits
    message = refused(call(bus, f"/r1/{NO_KEY}/status/{NIK}"), 503, "Server.ServerProxy.MalformedServerConf", NIK)
    assert "credential" in message and "TEST_UNSET_KEY" not in message
    refused(call(bus, f"/r1/{NO_DEMO}/status/{NIK}"), 503, "Server.ServerProxy.MalformedServerConf", NIK)
    assert siak.hits == before


def test_an_answer_failing_the_standard_is_refused_naming_field_and_reason_never_the_value(bus):
    bad = "9" + NIK[1:]
    message = refused(call(bus, f"/r1/{STATUS}/status/{bad}"), 502, "Server.ServerProxy.ServiceFailed.InvalidResponse",
                      bad, "3271999999", "HILANG", "31-02-2025", "SITI")
    assert "status_penduduk@1.0.0" in message
    assert {"status:unmapped_code", "tanggal_peristiwa:unparseable_date"} <= set(re.findall(r"\w+:\w+", message))
    assert any(r.startswith("kode_wilayah:") for r in re.findall(r"\w+:\w+", message)), message


def test_garbage_and_answers_cut_short(bus):
    garbage = bus["providers"]["garbage"]
    nik = NIK[:15]
    message = refused(call(bus, f"/r1/{GARBAGE}/status/{nik}1"), 502, "Server.ServerProxy.ServiceFailed.InvalidBody")
    assert "not JSON" in message
    before = garbage.hits
    message = refused(call(bus, f"/r1/{GARBAGE}/status/{nik}2"), 502, "Server.ServerProxy.ServiceFailed.InvalidBody",
                      nik)
    assert "closed before the end of the answer" in message and "after 3 attempts" in message
    assert garbage.hits == before + 3  # a GET is tried again after a connection that broke mid-answer
    message = refused(call(bus, f"/r1/{GARBAGE}/status/{nik}3"), 502,
                      "Server.ServerProxy.ServiceFailed.InvalidResponse")
    assert "_record:not_object" in message
    message = refused(call(bus, f"/r1/{GARBAGE}/status/{nik}4"), 502,
                      "Server.ServerProxy.ServiceFailed.InvalidResponse", "kemarin")
    assert "tanggal_peristiwa:unparseable_date" in message


def test_a_get_is_tried_again_after_a_5xx_and_a_post_never(bus):
    flaky, scripted = bus["providers"]["flaky"], bus["scripted"]
    before = flaky.hits
    scripted[:] = [500]
    answer = call(bus, f"/r1/{FLAKY}/status/{NIK}")
    assert answer.status_code == 200, answer.text
    assert flaky.hits == before + 2
    scripted[:] = [500]
    answer = call(bus, f"/r1/{FLAKY}/laporan/{NIK}", method="POST", json={"catatan": "dilaporkan petugas"},
                  headers={"Content-Type": "application/json"})
    message = refused(answer, 502, "Server.ServerProxy.ServiceFailed.HttpError", NIK, "dilaporkan petugas")
    assert "HTTP 500" in message and "after 1 attempt)" in message
    assert flaky.hits == before + 3  # a POST may have acted: it goes once
    method, _, headers, body = flaky.received[-1]
    assert method == "POST" and json.loads(body) == {"catatan": "dilaporkan petugas"}
    assert headers["content-type"] == "application/json" and "authorization" not in headers
    scripted[:] = [500, 500, 500]
    refused(call(bus, f"/r1/{FLAKY}/status/{NIK}"), 502, "Server.ServerProxy.ServiceFailed.HttpError", NIK)
    assert flaky.hits == before + 6  # three attempts, then the verdict


def test_a_slow_provider_times_out_once(bus):
    slow = bus["providers"]["slow"]
    before, started = slow.hits, time.monotonic()
    message = refused(call(bus, f"/r1/{SLOW}/status/{NIK}"), 504, "Server.ServerProxy.ServiceFailed.Timeout", NIK)
    assert "within 0.5 s" in message and time.monotonic() - started < 2.5
    assert slow.hits == before + 1  # the consumer waited the timeout once: no second attempt


def test_a_provider_that_is_down_and_the_rate_limit(bus):
    for _ in range(3):
        message = refused(call(bus, f"/r1/{DOWN}/status/{NIK}"), 502, "Server.ServerProxy.ServiceFailed.NetworkError",
                          NIK)
        assert "cannot be reached" in message and "after 3 attempts" in message
    # The service's rate limit per consumer applies to proxied calls too.
    answer = call(bus, f"/r1/{DOWN}/status/{NIK}")
    refused(answer, 429, "Server.ServerProxy.RateLimitExceeded", NIK)
    assert int(answer.headers["Retry-After"]) > 0


def test_the_circuit_breaker_opens_refuses_without_calling_and_recovers_half_open(bus):
    provider, down = bus["providers"]["breaker"], bus["down"]
    path = f"/r1/{BREAKER}/status/{NIK}"
    down["down"] = True
    for _ in range(2):  # two failed calls in a row (each of three attempts) open the circuit
        refused(call(bus, path), 502, "Server.ServerProxy.ServiceFailed.HttpError", NIK)
    hits = provider.hits
    assert hits == 6
    answer = call(bus, path)
    message = refused(answer, 503, "Server.ServerProxy.ServiceFailed.CircuitOpen", NIK)
    assert "failed 2 calls in a row" in message and 1 <= int(answer.headers["Retry-After"]) <= 2
    assert provider.hits == hits  # refused at once: the provider was not called
    time.sleep(1.6)
    # Half-open: one call tries the provider; it is still down, so the circuit opens again at once.
    refused(call(bus, path), 502, "Server.ServerProxy.ServiceFailed.HttpError", NIK)
    assert provider.hits == hits + 3
    refused(call(bus, path), 503, "Server.ServerProxy.ServiceFailed.CircuitOpen", NIK)
    assert provider.hits == hits + 3
    down["down"] = False
    time.sleep(1.6)
    assert call(bus, path).status_code == 200  # the trial call succeeds: closed again
    assert call(bus, path).status_code == 200
    assert provider.hits == hits + 5


def test_get_openapi_fetches_a_document_at_the_providers_url(bus):
    siak = bus["providers"]["siak"]
    siak.respond = _serving_openapi(siak.respond)
    served = call(bus, f"/r1/{SIAK}/getOpenAPI?serviceCode=dokumen", issue=None)
    assert served.status_code == 200, served.text
    _consumers_document(served.json(), f"{SIAK}/dokumen")
    assert siak.received[-1][2]["x-api-key"] == KEY  # on the provider's origin, with the provider's key
    listed = call(bus, f"/r1/{SIAK}/listMethods", issue=None).json()["service"]
    by_url = next(m for m in listed if f"{SIAK}/{m['service_code']}" == BY_URL)
    assert {"method": "GET", "path": "/status/*"} in by_url["endpoint_list"]  # listed from the fetched document
    answer = call(bus, f"/r1/{BY_URL}/status/{NIK}")  # its operations are the fetched document's
    assert answer.status_code == 200, answer.text
    refused(call(bus, f"/r1/{BY_URL}/lain/{NIK}"), 400, "Client.BadRequest", NIK)
    # A document beside the registration is read the same way.
    served = call(bus, f"/r1/{SIAK}/getOpenAPI?serviceCode=status", issue=None)
    assert served.status_code == 200, served.text
    _consumers_document(served.json(), f"{SIAK}/status")


def _consumers_document(document: dict, service: str) -> None:
    """What a consumer is given: the provider's operations under the service's address, each answering the
    standard's record (the mapped fields), never the provider's own answer shape."""
    from openapi_spec_validator import validate

    validate(document)
    assert document["servers"] == [{"url": f"/r1/{service}"}]
    assert {p: set(ops) for p, ops in document["paths"].items()} == {
        p: set(ops) for p, ops in _OPENAPI["paths"].items()}
    answer = document["paths"]["/status/{nik}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["record"] == {"$ref": "#/components/schemas/Record"}
    assert set(document["components"]["schemas"]["Record"]["properties"]) == {
        "nik", "status", "tanggal_peristiwa", "kode_wilayah"}
    issue = document["paths"]["/status/{nik}"]["get"]["parameters"]
    assert {"name": "X-Road-Issue", "in": "header"}.items() <= issue[-1].items()


def _serving_openapi(respond):
    def answer(handler, body):
        if handler.path == "/openapi.json":
            return send(handler, 200, _OPENAPI)
        respond(handler, body)
    return answer


def test_the_message_log_keeps_the_providers_status_and_no_nik(bus):
    """After the others: their calls are in the log."""
    from transforms.pseudonym import key, pseudonym

    home, env = bus["home"], bus["env"]
    entries = json.loads(hub(home, "audit", "list", "--limit", "1000", "--json", env=env).stdout)
    text = json.dumps(entries)
    assert NIK not in text and NIK[:15] not in text and "3271999999" not in text and KEY not in text
    calls = [e["details"] for e in entries if e["action"] == "exchange.call"]
    answered = [d for d in calls if d["service"] == STATUS and d["status"] == 200]
    assert answered and all(d["provider_status"] == 200 and d["attempts"] == 1 and d["provider_ms"] >= 0
                            and d["rows"] == 1 and d["key_pseudonym"] == pseudonym(NIK, key(home))
                            for d in answered)
    retried = [d for d in calls if d["service"] == FLAKY and d["status"] == 200]
    assert retried and retried[0]["attempts"] == 2 and retried[0]["provider_status"] == 200
    down = [d for d in calls if d["service"] == DOWN and (d["error"] or "").endswith("NetworkError")]
    assert down and all(d["provider_status"] is None and d["attempts"] == 3 for d in down)
    timed_out = next(d for d in calls if d["service"] == SLOW)
    assert timed_out["attempts"] == 1 and timed_out["provider_ms"] >= 400 and timed_out["provider_status"] is None
    circuit_open = [d for d in calls if d["error"] == "Server.ServerProxy.ServiceFailed.CircuitOpen"]
    assert circuit_open and all("attempts" not in d for d in circuit_open)  # never sent
    assert "intact" in hub(home, "audit", "verify", env=env).stdout


def test_the_registration_takes_the_connectors_auth_shapes_and_the_breakers_limits(tmp_path):
    from exchange.registry import load_service
    from hub.errors import ConfigError
    from hub.settings import ROOT, Settings

    settings = Settings(home=tmp_path, catalog_url="sqlite://", registry=ROOT / "connectors" / "registry",
                        services=tmp_path)
    (tmp_path / "siak.openapi.json").write_text(json.dumps(_OPENAPI))
    path = tmp_path / "svc.yaml"
    path.write_text(_service("status", "http://127.0.0.1:9/siak/", "  circuit_breaker: {failures: 2}\n  records: d\n"))
    proxy = load_service(path, settings).proxy
    assert proxy.auth == {"type": "api_key", "in": "header", "name": "X-API-Key", "key": {"env": "TEST_SIAK_KEY"}}
    assert (proxy.base_url, proxy.breaker_failures, proxy.breaker_cooldown_seconds, proxy.records) == (
        "http://127.0.0.1:9/siak", 2, 30.0, "d")
    for auth, field in (("{type: api_key, in: header, name: X-API-Key, key: s3cr3t-written-here}", "proxy/auth/key"),
                        ("{type: bearer}", "proxy/auth"), ("{type: kerberos}", "proxy/auth/type")):
        path.write_text(_service("status", "http://127.0.0.1:9/siak", auth=auth))
        with pytest.raises(ConfigError) as error:
            load_service(path, settings)
        assert f"svc.yaml:9: field {field}: " in str(error.value) and "s3cr3t" not in str(error.value), error.value
    path.write_text(_service("status", "http://127.0.0.1:9/siak", "  circuit_breaker: {failures: 0}\n"))
    with pytest.raises(ConfigError, match="field proxy/circuit_breaker/failures: 0 is less than the minimum of 1"):
        load_service(path, settings)


def test_sending_a_proxied_call_logs_no_path(caplog):
    """No library logs a proxied call's URL, whose path and query may hold a NIK, at any level."""
    import asyncio
    import logging

    from exchange import proxy

    async def sent() -> int:
        async with proxy._new_session() as session:
            reply = await proxy._receive(session, "GET", f"{provider.url}/status/{NIK}?nik={NIK}", {}, b"", 5, 1000)
        return reply.status

    provider = Provider(lambda handler, body: send(handler, 200, {"content": _content(NIK)}))
    try:
        with caplog.at_level(logging.DEBUG):
            assert asyncio.run(sent()) == 200
        assert NIK not in caplog.text
    finally:
        provider.close()


# --- the demo: SIAK's status check, through the demo systems ----------------------------------------------------


def test_the_demo_siak_status_check_end_to_end(tmp_path):
    from demo.agencies import build

    build(tmp_path, people_count=480, dinsos_count=120)
    with sqlite3.connect(tmp_path / "demo" / "disdukcapil" / "siak.db") as db:
        died = db.execute("SELECT nik, tgl_peristiwa FROM peristiwa WHERE jenis = 'MATI' ORDER BY nik").fetchone()
        moved = db.execute("SELECT nik, kode_kelurahan_tujuan FROM peristiwa WHERE jenis = 'PINDAH' AND "
                           "kode_kelurahan_tujuan IS NOT NULL ORDER BY nik").fetchone()
        alive = db.execute("SELECT nik, kode_kelurahan FROM penduduk WHERE nik NOT IN (SELECT nik FROM peristiwa) "
                           "AND length(nik) = 16 AND kode_kelurahan != '32.71.07.1001' ORDER BY nik").fetchone()
        wrong_code = db.execute("SELECT nik FROM penduduk WHERE kode_kelurahan = '32.71.07.1001'").fetchone()[0]
        counts = dict(db.execute("SELECT jenis, count(*) FROM peristiwa GROUP BY jenis").fetchall())
    assert counts["MATI"] >= 5 and counts["PINDAH"] >= 5  # some deaths and moves, the same in every build
    service = f"{SIAK}/status-penduduk"
    with demo_systems(tmp_path) as env:
        token = client_token(tmp_path, env, DINSOS)
        hub(tmp_path, "exchange", "grant", service, DINSOS, "--purpose", "verifikasi bansos", env=env)
        server, base = serve(tmp_path, env)
        try:
            def status(nik: str) -> httpx.Response:
                return httpx.get(f"{base}/r1/{service}/status/{nik}", timeout=30, headers={
                    "X-Road-Client": DINSOS, "Authorization": f"Bearer {token}", "X-Road-Issue": PURPOSE})

            answer = status(died[0])
            assert answer.status_code == 200, answer.text
            record = answer.json()["record"]
            assert record["nik"] == died[0] and record["status"] == "meninggal"
            assert record["tanggal_peristiwa"] == died[1]
            assert re.fullmatch(r"32\.71\.\d\d\.\d{4}", record["kode_wilayah"])  # where they lived
            record = status(moved[0]).json()["record"]
            assert record["status"] == "pindah" and record["kode_wilayah"] == moved[1]  # where they moved to
            assert status(alive[0]).json()["record"] == {"nik": alive[0], "status": "hidup",
                                                         "tanggal_peristiwa": None, "kode_wilayah": alive[1]}
            # SIAK's record with a kelurahan code that does not exist fails the standard's code list.
            message = refused(status(wrong_code), 502, "Server.ServerProxy.ServiceFailed.InvalidResponse", wrong_code)
            assert "kode_wilayah:" in message
            refused(status("3271" + "0" * 12), 404, "Server.ServerProxy.NotFound")
            curl = httpx.get(f"{base}/r1/{SIAK}/getOpenAPI?serviceCode=status-penduduk", timeout=30, headers={
                "X-Road-Client": DINSOS, "Authorization": f"Bearer {token}"})
            assert curl.status_code == 200 and "/status/{nik}" in curl.json()["paths"]
        finally:
            server.terminate()
            server.wait(timeout=30)
