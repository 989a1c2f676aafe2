"""Mutual TLS on the service bus: `hub serve --tls-client-ca` asks every connection for a certificate of the client
CA, and an X-Road call is answered only when its connection presented the certificate registered for the client it
names (`hub exchange clients add CLIENT --certificate FILE`), besides that client's token. Browsers and the catalog
API need no certificate. All of it with `hub serve` in one process and with two workers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import subprocess
import time

import httpx
import pytest

from _exchange import client_token, siak_published
from _served import HUB, free_port, hub, hub_env

PENDUDUK = "BOGOR/GOV/disdukcapil/siak/penduduk"
DINSOS, DINKES = "BOGOR/GOV/dinsos/siks", "BOGOR/GOV/dinkes/simpus"
TOKEN = re.compile(r"hubx_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _certificate(subject: str, key, issuer_name: str, issuer_key, *, ca: bool = False, server: bool = False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(
            ipaddress.ip_address("127.0.0.1"))]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(folder, name: str, certificate, key) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization

    cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A hub with SIAK published, two client systems granted it (dinsos with its certificate registered), and the
    certificates of a client CA, of another CA and of the server."""
    home = tmp_path_factory.mktemp("mtls-home")
    pki = tmp_path_factory.mktemp("pki")
    ca_key, other_ca_key = _key(), _key()
    ca = _certificate("Hub client CA", ca_key, "Hub client CA", ca_key, ca=True)
    other_ca = _certificate("Another CA", other_ca_key, "Another CA", other_ca_key, ca=True)
    ca_file, _ = _write(pki, "client-ca", ca, ca_key)
    server_key = _key()
    server_cert, server_key_file = _write(pki, "server", _certificate("127.0.0.1", server_key, "127.0.0.1",
                                                                       server_key, server=True), server_key)
    certs = {}
    for name, issuer, issuer_key in (("dinsos", "Hub client CA", ca_key), ("dinkes", "Hub client CA", ca_key),
                                     ("stranger", "Another CA", other_ca_key)):
        key = _key()
        certs[name] = _write(pki, name, _certificate(name, key, issuer, issuer_key), key)
    assert other_ca  # the stranger's issuer: never given to the hub

    env = siak_published(home, "disdukcapil-siak-penduduk.yaml", people=200, dinsos=40)
    tokens = {DINSOS: client_token(home, env, DINSOS, "--certificate", certs["dinsos"][0]),
              DINKES: client_token(home, env, DINKES)}
    assert all(TOKEN.fullmatch(t) for t in tokens.values())
    for client in (DINSOS, DINKES):
        hub(home, "exchange", "grant", PENDUDUK, client, "--purpose", "verifikasi", env=env)
    nik = json.loads(hub(home, "query", "SELECT nik FROM disdukcapil_siak ORDER BY nik LIMIT 1", "--format", "json",
                         env=env).stdout)[0]["nik"]
    return {"home": home, "env": env, "ca_file": ca_file, "server_cert": server_cert,
            "server_key": server_key_file, "certs": certs, "tokens": tokens, "nik": nik}


@pytest.fixture(scope="module", params=[1, 2], ids=["1 worker", "2 workers"])
def bus(published, request):
    """`hub serve --tls-client-ca` over the published hub, in one process and with two workers (each worker
    makes its own TLS connections, and must hand each one's certificate to its requests)."""
    port = free_port()
    server = subprocess.Popen([HUB, "serve", "--port", str(port), "--workers", str(request.param), "--tls-cert",
                               published["server_cert"], "--tls-key", published["server_key"], "--tls-client-ca",
                               published["ca_file"]], env=hub_env(published["home"], published["env"]),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/api/datasets", verify=published["server_cert"], timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.3)
    yield {**published, "base": base, "server": server, "workers": request.param}
    server.terminate()
    server.wait(timeout=30)


def _context(bus, presented: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=bus["server_cert"])
    if presented:
        context.load_cert_chain(*bus["certs"][presented])
    return context


def _call(bus, client: str, presented: str | None, http: httpx.Client | None = None):
    """`client`'s X-Road call, on a connection presenting `presented`'s certificate (on `http`'s, when given)."""
    url = f"{bus['base']}/r1/{PENDUDUK}/{bus['nik']}"
    headers = {"X-Road-Client": client, "Authorization": f"Bearer {bus['tokens'][client]}",
               "X-Road-Issue": "verifikasi"}
    if http is not None:
        return http.get(url, headers=headers)
    return httpx.get(url, verify=_context(bus, presented), timeout=30, headers=headers)


def _refused(answer: httpx.Response, text: str) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["X-Road-Error"] == "Server.ClientProxy.SslAuthenticationFailed"
    assert text in answer.json()["message"]


def _answered_by(server: subprocess.Popen, answer: httpx.Response) -> int:
    """The pid of the process of `hub serve` (itself or a worker) holding the server's end of `answer`'s
    connection: which one answered, as the operating system tells it."""
    import psutil

    client = answer.extensions["network_stream"].get_extra_info("client_addr")
    parent = psutil.Process(server.pid)
    for process in [parent, *parent.children()]:
        if any(c.raddr and tuple(c.raddr) == client for c in process.net_connections("tcp")):
            return process.pid
    raise AssertionError("no process of hub serve holds the connection")


def test_a_client_with_its_registered_certificate_and_token_is_answered(bus):
    answered_by = set()
    for _ in range(100):  # a connection each, until every worker has answered one (each reads its own)
        with httpx.Client(verify=_context(bus, "dinsos"), timeout=30) as http:
            answer = _call(bus, DINSOS, "dinsos", http)
            assert answer.status_code == 200, answer.text
            assert answer.json()["record"]["nik"] == bus["nik"]
            answered_by.add(_answered_by(bus["server"], answer))
        if len(answered_by) == bus["workers"]:
            break
    assert len(answered_by) == bus["workers"]


def test_the_token_alone_or_another_clients_certificate_is_refused(bus):
    _refused(_call(bus, DINSOS, None), "presenting its client certificate")
    _refused(_call(bus, DINSOS, "dinkes"), "not the one registered")
    # A client registered without a certificate cannot call a hub that requires mutual TLS, whatever it presents.
    _refused(_call(bus, DINKES, "dinkes"), "no certificate registered")


def test_a_certificate_of_another_ca_never_completes_the_handshake(bus):
    with pytest.raises(httpx.TransportError):
        _call(bus, DINSOS, "stranger")


def test_browsers_and_the_catalog_api_need_no_certificate(bus):
    answer = httpx.get(bus["base"] + "/api/datasets", verify=bus["server_cert"], timeout=30)
    assert answer.status_code == 200
