"""The service bus on a served hub: X-Road PR-REST calls to a dataset service, every refusal, the message log, and the
metadata services, through `hub serve` with real client tokens made by `hub exchange clients add`."""

from __future__ import annotations

import base64
import json
import re

import httpx
import pytest

from _exchange import client_token, siak_published
from _served import hub, serve

PENDUDUK = "BOGOR/GOV/disdukcapil/siak/penduduk"
WILAYAH = "BOGOR/GOV/disdukcapil/siak/wilayah"
BROKEN = "BOGOR/GOV/disdukcapil/siak/rusak"
PROXIED = "BOGOR/GOV/disdukcapil/siak/kematian"
DINSOS, DINKES, BAPPEDA = "BOGOR/GOV/dinsos/siks", "BOGOR/GOV/dinkes/simpus", "BOGOR/GOV/bappeda/sipd"
TOKEN = re.compile(r"hubx_[0-9a-f]{12}_[A-Za-z0-9_-]+")
PURPOSE = "Verifikasi bansos loket 3"

# A second service of Disdukcapil, by filter, without personal data, and with a small rate limit; a registration
# that does not load; a proxied service whose provider does not listen.
_WILAYAH = f"""service: {WILAYAH}
title: Penduduk menurut kelurahan
provider: Disdukcapil
kind: dataset
dataset:
  id: disdukcapil_siak
  filters: [kode_wilayah, jenis_kelamin]
  fields: [kode_wilayah, jenis_kelamin]
  max_rows: 5
rate_limit: {{requests: 3, seconds: 600}}
"""
_BROKEN = f"""service: {BROKEN}
title: Rusak
provider: Disdukcapil
kind: dataset
dataset:
  id: disdukcapil_siak
  by_key: true
  fields: [no_such_field]
"""
_PROXIED = f"""service: {PROXIED}
title: Cek kematian
provider: Disdukcapil
kind: proxy
proxy:
  base_url: http://127.0.0.1:9/siak
  openapi: kematian.openapi.yaml
  standard: penduduk@1.1.0
  mapping:
    nik: {{from: NIK, normalize: nik}}
"""
_OPENAPI = """openapi: 3.0.3
info: {title: Cek kematian, version: '1'}
paths:
  /kematian/{nik}:
    get:
      responses: {'200': {description: ok}}
"""


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    home = tmp_path_factory.mktemp("r1-home")
    env = siak_published(home, "disdukcapil-siak-penduduk.yaml")
    services = home / "services"
    for name, text in (("wilayah.yaml", _WILAYAH), ("rusak.yaml", _BROKEN), ("kematian.yaml", _PROXIED),
                       ("kematian.openapi.yaml", _OPENAPI)):
        (services / name).write_text(text)
    tokens = {}
    for client in (DINSOS, DINKES, BAPPEDA):
        tokens[client] = client_token(home, env, client)
        assert TOKEN.fullmatch(tokens[client])
    hub(home, "exchange", "grant", PENDUDUK, DINSOS, "--purpose", "verifikasi bansos", env=env)
    hub(home, "exchange", "grant", WILAYAH, DINSOS, env=env)
    hub(home, "exchange", "grant", PENDUDUK, DINKES, "--purpose", "pelayanan kesehatan", env=env)
    hub(home, "exchange", "grant", PENDUDUK, BAPPEDA, env=env)
    hub(home, "exchange", "revoke", PENDUDUK, BAPPEDA, env=env)
    hub(home, "exchange", "grant", PROXIED, DINSOS, "--purpose", "verifikasi bansos", env=env)
    niks = json.loads(hub(home, "query", "SELECT nik, nama FROM disdukcapil_siak ORDER BY nik LIMIT 3",
                          "--format", "json", env=env).stdout)
    server, base = serve(home, env)
    yield {"home": home, "env": env, "base": base, "tokens": tokens, "people": niks}
    server.terminate()
    server.wait(timeout=30)


def call(bus, path: str, client: str | None = DINSOS, token: str | None = "own", issue: str | None = PURPOSE,
         **headers) -> httpx.Response:
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    if client:
        sent["X-Road-Client"] = client
    if token == "own":
        token = bus["tokens"][client or DINSOS]
    if token:
        sent["Authorization"] = f"Bearer {token}"
    if issue:
        sent["X-Road-Issue"] = issue
    return httpx.get(bus["base"] + path, headers=sent, timeout=30)


def _refused(answer: httpx.Response, status: int, type_: str, nik: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["X-Road-Error"] == type_
    body = answer.json()
    assert body["type"] == type_ and body["message"] and body["detail"] == answer.headers["X-Road-Id"]
    if nik:
        assert nik not in answer.text and nik not in str(answer.headers)
    return body


def test_a_granted_consumer_looks_a_resident_up_by_nik(bus):
    nik, nama = bus["people"][0]["nik"], bus["people"][0]["nama"]
    answer = call(bus, f"/r1/{PENDUDUK}/{nik}", X_Road_UserId="ID-petugas-7", X_Road_Id="msg-0001")
    assert answer.status_code == 200, answer.text
    record = answer.json()["record"]
    # Dinsos is cleared by the standard's x-access: the declared fields, plain; nothing else.
    assert record["nik"] == nik and record["nama"] == nama
    assert set(record) == {"nik", "nama", "jenis_kelamin", "tanggal_lahir", "kode_wilayah", "alamat"}
    assert answer.json()["masked_fields"] == [] and answer.json()["pseudonymized_fields"] == []
    h = answer.headers
    assert "X-Road-Error" not in h
    assert h["X-Road-Client"] == DINSOS and h["X-Road-Service"] == PENDUDUK
    assert h["X-Road-Id"] == "msg-0001" and h["X-Road-UserId"] == "ID-petugas-7" and h["X-Road-Issue"] == PURPOSE
    assert re.fullmatch(r"[0-9a-f-]{36}", h["X-Road-Request-Id"])
    assert len(base64.b64decode(h["X-Road-Request-Hash"])) == 64  # SHA-512
    again = call(bus, f"/r1/{PENDUDUK}/{nik}")
    assert again.headers["X-Road-Id"] != h["X-Road-Id"] and again.headers["X-Road-Request-Id"] != h["X-Road-Request-Id"]


def test_a_consumer_not_cleared_sees_pseudonyms_and_masks(bus):
    from transforms.pseudonym import key, pseudonym

    nik = bus["people"][1]["nik"]
    # Dinkes is granted the service but not cleared for penduduk: it cannot find a person by NIK...
    _refused(call(bus, f"/r1/{PENDUDUK}/{nik}", client=DINKES), 404, "Server.ServerProxy.NotFound", nik)
    # ...only by the NIK's pseudonym, and then sees the other personal data masked, as its officers do.
    answer = call(bus, f"/r1/{PENDUDUK}/{pseudonym(nik, key(bus['home']))}", client=DINKES)
    assert answer.status_code == 200, answer.text
    record = answer.json()["record"]
    assert record["nik"].startswith("psn_") and record["nama"] == "***" and nik not in answer.text
    assert answer.json()["pseudonymized_fields"] == ["nik"]
    assert set(answer.json()["masked_fields"]) == {"nama", "tanggal_lahir", "alamat"}


def test_every_refusal_is_an_x_road_error_without_the_nik(bus):
    nik = bus["people"][0]["nik"]
    path = f"/r1/{PENDUDUK}/{nik}"
    cases = [
        (dict(token=None), 401, "Server.ClientProxy.SslAuthenticationFailed"),  # no token
        (dict(token=bus["tokens"][DINKES]), 401, "Server.ClientProxy.SslAuthenticationFailed"),  # another's token
        (dict(client="BOGOR/GOV/dinsos/lain", token=bus["tokens"][DINSOS]), 401,
         "Server.ClientProxy.SslAuthenticationFailed"),  # the header names another subsystem than the token's
        (dict(client=None), 400, "Client.BadRequest"),  # no X-Road-Client
        (dict(client=BAPPEDA), 403, "Server.ServerProxy.AccessDenied"),  # revoked grant
        (dict(issue=None), 400, "Client.MissingHeader"),  # personal data without a purpose
    ]
    for kwargs, status, type_ in cases:
        _refused(call(bus, path, **kwargs), status, type_, nik)
    body = _refused(call(bus, path, issue=None), 400, "Client.MissingHeader", nik)
    assert "X-Road-Issue" in body["message"] and "nik" in body["message"]
    body = _refused(call(bus, f"/r1/{WILAYAH}?kode_wilayah=x", client=DINKES), 403, "Server.ServerProxy.AccessDenied")
    assert f"{DINKES} holds no grant of {WILAYAH}" in body["message"]  # no grant at all
    _refused(call(bus, f"/r1/BOGOR/GOV/disdukcapil/siak/tidakada/{nik}"), 404, "Server.ServerProxy.UnknownService",
             nik)
    _refused(call(bus, f"/r1/BOGOR/GOV/disdukcapil/siak%20x/penduduk/{nik}"), 400, "Client.BadRequest", nik)
    _refused(call(bus, f"/r1/BOGOR/GOV/disdukcapil/{nik}"), 400, "Client.BadRequest", nik)
    _refused(call(bus, f"/r1/{BROKEN}/{nik}"), 503, "Server.ServerProxy.MalformedServerConf", nik)
    missing = "3271" + "0" * 12
    _refused(call(bus, f"/r1/{PENDUDUK}/{missing}"), 404, "Server.ServerProxy.NotFound", missing)
    _refused(call(bus, f"/r1/{PENDUDUK}/{nik}?nama=x"), 400, "Client.BadRequest", nik)
    _refused(httpx.post(bus["base"] + f"/r1/{PENDUDUK}/{nik}", headers={
        "X-Road-Client": DINSOS, "Authorization": f"Bearer {bus['tokens'][DINSOS]}", "X-Road-Issue": PURPOSE}),
        405, "Client.InvalidHttpMethod", nik)
    # A proxied service whose provider does not listen (tests/exchange/test_proxy.py has the rest).
    _refused(call(bus, f"/r1/{PROXIED}/kematian/{nik}"), 502, "Server.ServerProxy.ServiceFailed.NetworkError", nik)


def test_filters_and_the_rate_limit(bus):
    first = call(bus, f"/r1/{WILAYAH}?jenis_kelamin=1", issue=None)
    assert first.status_code == 200, first.text
    assert 0 < len(first.json()["records"]) <= 5 and first.json()["total"] >= len(first.json()["records"])
    assert all(set(r) == {"kode_wilayah", "jenis_kelamin"} for r in first.json()["records"])
    _refused(call(bus, f"/r1/{WILAYAH}", issue=None), 400, "Client.BadRequest")  # no filter: no listing
    assert call(bus, f"/r1/{WILAYAH}?jenis_kelamin=2", issue=None).status_code == 200  # the third in 600 s
    limited = call(bus, f"/r1/{WILAYAH}?jenis_kelamin=2", issue=None)
    _refused(limited, 429, "Server.ServerProxy.RateLimitExceeded")
    assert int(limited.headers["Retry-After"]) > 0


def test_metadata_services(bus):
    listed = call(bus, "/r1/BOGOR/GOV/disdukcapil/siak/listMethods", issue=None)
    assert listed.status_code == 200, listed.text
    codes = {s["service_code"] for s in listed.json()["service"]}
    assert {"penduduk", "wilayah"} <= codes and not codes & {"listMethods", "allowedMethods", "getOpenAPI"}
    penduduk = next(s for s in listed.json()["service"] if s["service_code"] == "penduduk")
    assert penduduk["endpoint_list"] == [{"method": "GET", "path": "/*"}] and penduduk["object_type"] == "SERVICE"
    allowed = call(bus, "/r1/BOGOR/GOV/disdukcapil/siak/allowedMethods", client=DINKES, issue=None)
    assert {s["service_code"] for s in allowed.json()["service"]} == {"penduduk"}
    document = call(bus, "/r1/BOGOR/GOV/disdukcapil/siak/getOpenAPI?serviceCode=penduduk", issue=None).json()
    assert document["openapi"].startswith("3.") and "/{nik}" in document["paths"]
    assert set(document["components"]["schemas"]["Record"]["properties"]) == {
        "nik", "nama", "jenis_kelamin", "tanggal_lahir", "kode_wilayah", "alamat"}
    served = call(bus, "/r1/BOGOR/GOV/disdukcapil/siak/getOpenAPI?serviceCode=kematian", issue=None)
    assert served.status_code == 200 and "/kematian/{nik}" in served.text
    _refused(call(bus, "/r1/BOGOR/GOV/disdukcapil/siak/getOpenAPI?serviceCode=tidakada", issue=None), 404,
             "Server.ServerProxy.UnknownService")
    clients = call(bus, "/listClients", issue=None)
    assert clients.status_code == 200, clients.text
    members = {(m["id"]["member_code"], m["id"]["subsystem_code"]) for m in clients.json()["member"]}
    assert {("disdukcapil", "siak"), ("dinsos", "siks")} <= members
    _refused(call(bus, "/listClients", token=None, issue=None), 401, "Server.ClientProxy.SslAuthenticationFailed")


def test_the_message_log_keeps_hashes_and_pseudonyms_only(bus):
    from transforms.pseudonym import key, pseudonym

    home, env = bus["home"], bus["env"]
    niks = [p["nik"] for p in bus["people"]]
    entries = json.loads(hub(home, "audit", "list", "--limit", "1000", "--json", env=env).stdout)
    calls = [e for e in entries if e["action"] == "exchange.call"]
    assert len(calls) >= 20
    text = json.dumps(entries)
    assert not any(n in text for n in [*niks, "3271" + "0" * 12])
    lookup = next(e for e in calls if e["details"]["message_id"] == "msg-0001")
    d = lookup["details"]
    assert lookup["actor"] == DINSOS and lookup["dataset"] == "disdukcapil_siak"
    assert d["consumer"] == DINSOS and d["provider"] == "BOGOR/GOV/disdukcapil/siak" and d["service"] == PENDUDUK
    assert d["user_id"] == "ID-petugas-7" and d["purpose"] == PURPOSE and d["status"] == 200 and d["rows"] == 1
    assert d["key_pseudonym"] == pseudonym(niks[0], key(home))
    assert re.fullmatch(r"[0-9a-f]{64}", d["request_sha256"]) and re.fullmatch(r"[0-9a-f]{64}", d["response_sha256"])
    assert d["duration_ms"] >= 0 and re.fullmatch(r"[0-9a-f-]{36}", d["request_id"])
    refused = [e for e in calls if e["details"]["error"]]
    assert {"Server.ClientProxy.SslAuthenticationFailed", "Server.ServerProxy.AccessDenied", "Client.MissingHeader",
            "Server.ServerProxy.NotFound"} <= {e["details"]["error"] for e in refused}
    assert all(e["dataset"] is None for e in refused if e["details"]["error"] != "Server.ServerProxy.NotFound")
    unauthenticated = next(e for e in refused if e["actor"] == "unauthenticated")
    assert unauthenticated["details"]["consumer"] is None
    who = json.loads(hub(home, "audit", "who-accessed", "disdukcapil_siak", "--json", env=env).stdout)
    assert any(e["action"] == "exchange.call" and e["details"]["message_id"] == "msg-0001" for e in who)
    verified = hub(home, "audit", "verify", env=env)
    assert "intact" in verified.stdout


def test_the_provider_sees_its_services_grants_and_calls_in_the_portal(bus):
    """Disdukcapil's own officers and stewards see who is granted its services, why, and who called them; other
    agencies and anonymous visitors do not."""
    home, env = bus["home"], bus["env"]
    tokens = {}
    for name, role, agency in (("petugas-capil", "agency", "disdukcapil"), ("petugas-dinsos", "agency", "dinsos"),
                               ("walidata-kota", "steward", None)):
        made = hub(home, "users", "create", name, "--role", role, *(["--agency", agency] if agency else []), env=env)
        tokens[name] = re.search(r"hub_[0-9a-f]{12}_[\w-]+", made.stdout)[0]

    def page(token: str | None) -> httpx.Response:  # signed in to the portal: its cookie holds the token
        from serving.portal import COOKIE

        return httpx.get(bus["base"] + "/agency/disdukcapil/exchange", cookies={COOKIE: token} if token else {},
                         timeout=30)

    assert page(None).status_code == 401
    assert page(tokens["petugas-dinsos"]).status_code == 403
    for name in ("petugas-capil", "walidata-kota"):
        answer = page(tokens[name])
        assert answer.status_code == 200, answer.text
        html = answer.text
        assert f'data-service="{PENDUDUK}"' in html
        assert f'data-grant="{PENDUDUK} {DINSOS}"' in html and "verifikasi bansos" in html
        assert f'data-grant="{PENDUDUK} {BAPPEDA}"' in html  # revoked, kept as history
        assert 'data-message="msg-0001"' in html and PURPOSE in html and "ID-petugas-7" in html
        assert not any(p["nik"] in html for p in bus["people"])
        assert answer.headers["Cache-Control"] == "no-store"


def test_failed_authentications_lock_the_address_out(bus):
    """Last: it locks this test's address out of the served hub for FAILURE_WINDOW."""
    from catalog.identity import MAX_FAILURES

    statuses = [call(bus, "/listClients", token="hubx_000000000000_" + "A" * 43, issue=None).status_code
                for _ in range(MAX_FAILURES + 1)]
    assert statuses[-1] == 429 and 401 in statuses
    locked = call(bus, "/listClients", issue=None)  # the right token too, meanwhile
    _refused(locked, 429, "Server.ClientProxy.SslAuthenticationFailed")
    assert int(locked.headers["Retry-After"]) > 0


