"""Client subsystems' tokens (kept hashed, shown once), authentication of a client, grants, and their audit."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from sqlalchemy import inspect, text

from _served import hub
from catalog.db import engine
from catalog.identity import create_user
from exchange.clients import (
    ClientAuthenticationError, ExchangeError, add_client, allowed, authenticate, grant, list_clients, list_grants,
    revoke_client, revoke_grant,
)
from exchange.identifiers import ClientId, IdentifierError, ServiceId
from hub.settings import ROOT, Settings

TOKEN = re.compile(r"hubx_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")
PENDUDUK = "BOGOR/GOV/disdukcapil/siak/penduduk"
DINSOS = "BOGOR/GOV/dinsos/siks"
DINKES = "BOGOR/GOV/dinkes/simpus"


@pytest.fixture
def settings(tmp_path, catalog_url) -> Settings:
    return Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry",
                    services=ROOT / "exchange" / "services")


def _catalog_text(catalog_url: str) -> str:
    """Every row of every table of the catalog, as text."""
    eng = engine(catalog_url)
    with eng.connect() as c:
        return "\n".join(str(row) for table in inspect(eng).get_table_names()
                         for row in c.execute(text(f'SELECT * FROM "{table}"')))


def test_a_token_proves_its_own_client_only(settings):
    client, token = add_client(settings, DINSOS, by="tester")
    assert client == ClientId("BOGOR", "GOV", "dinsos", "siks") and TOKEN.fullmatch(token)
    _, other = add_client(settings, DINKES, by="tester")
    assert authenticate(settings, DINSOS, token) == client
    assert authenticate(settings, "BOGOR/GOV/dinso%73/siks", token) == client  # the same identifier, encoded
    assert authenticate(settings, f" {DINKES} ", f" {other} ") == ClientId.parse(DINKES)

    refusals = [
        ((DINKES, token), f"the token is not one of client {DINKES}"),  # the header alone is never trusted
        ((DINSOS, other), f"the token is not one of client {DINSOS}"),
        ((DINSOS, token[:-2] + ("AA" if not token.endswith("AA") else "BB")), "the client's token is not valid"),
        ((DINSOS, "hubx_000000000000_" + "A" * 43), "the client's token is not valid"),
        ((DINSOS, None), "missing or not a client token"),
        ((DINSOS, "Bearer " + token), "missing or not a client token"),
        ((None, token), "X-Road-Client: client identifier: empty"),
        (("BOGOR/GOV/dinsos", token), "X-Road-Client: client identifier: 3 parts"),
        (("BOGOR/GOV/dinsos/si ks", token), "holds ' '"),
    ]
    for (header, presented), says in refusals:
        with pytest.raises(ClientAuthenticationError) as refused:
            authenticate(settings, header, presented)
        assert says in str(refused.value)
        assert token.split("_", 2)[2] not in str(refused.value) and other.split("_", 2)[2] not in str(refused.value)

    # A user's API token is not a client's.
    _, user_token = create_user(settings, "dinsos-etl", "agency", "dinsos")
    with pytest.raises(ClientAuthenticationError, match="not a client token"):
        authenticate(settings, DINSOS, user_token)

    revoke_client(settings, DINSOS)
    with pytest.raises(ClientAuthenticationError, match="the client's token was revoked"):
        authenticate(settings, DINSOS, token)
    with pytest.raises(ExchangeError, match="has no live credential"):
        revoke_client(settings, DINSOS)
    _, renewed = add_client(settings, DINSOS, by="tester")  # a new credential once the old one is revoked
    assert authenticate(settings, DINSOS, renewed) == client
    with pytest.raises(ExchangeError, match="has a credential already"):
        add_client(settings, DINSOS, by="tester")
    assert [(c["client"], c["revoked_at"] is None) for c in list_clients(settings)] == [
        (DINKES, True), (DINSOS, False), (DINSOS, True)]

    # Only the SHA-256 of the secret part is kept.
    stored = _catalog_text(settings.catalog_url)
    for issued in (token, other, renewed):
        secret = issued.split("_", 2)[2]
        assert secret not in stored and hashlib.sha256(secret.encode()).hexdigest() in stored


def test_grants_open_a_service_to_one_client_until_revoked(settings):
    add_client(settings, DINSOS, by="tester")
    add_client(settings, DINKES, by="tester")
    assert allowed(settings, PENDUDUK, DINSOS) is None
    given = grant(settings, PENDUDUK, DINSOS, "  verifikasi calon\npenerima bansos ", by="steward-a")
    assert given.purpose == "verifikasi calon penerima bansos" and given.granted_by == "steward-a"
    found = allowed(settings, ServiceId.parse(PENDUDUK), ClientId.parse(DINSOS))
    assert (found.service, found.client, found.purpose) == (ServiceId.parse(PENDUDUK), ClientId.parse(DINSOS),
                                                            "verifikasi calon penerima bansos")
    assert allowed(settings, PENDUDUK, DINKES) is None  # granted to one subsystem, not to every caller
    assert allowed(settings, "BOGOR/GOV/disdukcapil/siak/kematian", DINSOS) is None

    with pytest.raises(ExchangeError, match="is granted .* already"):
        grant(settings, PENDUDUK, DINSOS, None, by="steward-a")
    with pytest.raises(ExchangeError, match="no service BOGOR/GOV/disdukcapil/siak/kematian in .*known services: "
                                            "BOGOR/GOV/disdukcapil/siak/penduduk"):
        grant(settings, "BOGOR/GOV/disdukcapil/siak/kematian", DINSOS, None, by="steward-a")
    with pytest.raises(ExchangeError, match="no client BOGOR/GOV/disdik/dapodik with a live credential"):
        grant(settings, PENDUDUK, "BOGOR/GOV/disdik/dapodik", None, by="steward-a")
    with pytest.raises(IdentifierError, match="service identifier: 4 parts"):
        grant(settings, "BOGOR/GOV/disdukcapil/penduduk", DINSOS, None, by="steward-a")
    with pytest.raises(ExchangeError, match="at most 500"):
        grant(settings, PENDUDUK, DINKES, "x" * 501, by="steward-a")

    grant(settings, PENDUDUK, DINKES, None, by="steward-a")
    revoke_grant(settings, PENDUDUK, DINSOS, by="steward-b")
    assert allowed(settings, PENDUDUK, DINSOS) is None and allowed(settings, PENDUDUK, DINKES) is not None
    with pytest.raises(ExchangeError, match="holds no grant of"):
        revoke_grant(settings, PENDUDUK, DINSOS, by="steward-b")
    assert [(g["client"], g["purpose"]) for g in list_grants(settings)] == [(DINKES, None)]
    history = list_grants(settings, include_revoked=True)
    assert [(g["client"], g["revoked_by"]) for g in history] == [(DINKES, None), (DINSOS, "steward-b")]
    # Granted again after a revocation, with another purpose.
    assert grant(settings, PENDUDUK, DINSOS, "pemutakhiran DTKS", by="steward-a").purpose == "pemutakhiran DTKS"


def test_the_command_line_shows_a_token_once_on_its_last_line_and_audits_every_act(tmp_path, catalog_url):
    env = {"HUB_CATALOG_URL": catalog_url}
    added = hub(tmp_path, "exchange", "clients", "add", DINSOS, env=env)
    lines = added.stdout.strip().splitlines()
    assert TOKEN.fullmatch(lines[-1]) and len(TOKEN.findall(added.stdout + added.stderr)) == 1
    token = lines[-1]
    secret = token.split("_", 2)[2]

    hub(tmp_path, "exchange", "grant", PENDUDUK, DINSOS, "--purpose", "verifikasi penerima bansos", env=env)
    listed = hub(tmp_path, "exchange", "clients", "list", "--json", env=env).stdout
    [client] = json.loads(listed)
    assert client["client"] == DINSOS and client["prefix"] == token.split("_")[1] and client["revoked_at"] is None
    grants = json.loads(hub(tmp_path, "exchange", "grants", "--json", env=env).stdout)
    assert [(g["service"], g["client"], g["purpose"]) for g in grants] == [
        (PENDUDUK, DINSOS, "verifikasi penerima bansos")]
    assert "verifikasi penerima bansos" in hub(tmp_path, "exchange", "grants", env=env).stdout
    services = json.loads(hub(tmp_path, "exchange", "services", "list", "--json", env=env).stdout)
    assert [(s["service"], s["requires_issue"]) for s in services] == [
        (PENDUDUK, True), (PENDUDUK + "-changes", True), ("BOGOR/GOV/disdukcapil/siak/status-penduduk", True)]

    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    assert authenticate(settings, DINSOS, token) == ClientId.parse(DINSOS)
    assert allowed(settings, PENDUDUK, DINSOS).purpose == "verifikasi penerima bansos"

    refused = hub(tmp_path, "exchange", "grant", PENDUDUK, "BOGOR/GOV/dinsos", check=False, env=env)
    assert refused.returncode == 2 and "client identifier: 3 parts" in refused.stderr
    refused = hub(tmp_path, "exchange", "clients", "add", DINSOS, check=False, env=env)
    assert refused.returncode == 2 and "has a credential already" in refused.stderr and not TOKEN.search(
        refused.stdout + refused.stderr)

    hub(tmp_path, "exchange", "revoke", PENDUDUK, DINSOS, env=env)
    hub(tmp_path, "exchange", "clients", "revoke", DINSOS, env=env)
    assert hub(tmp_path, "exchange", "grants", env=env).stdout.strip() == ""
    assert "(revoked " in hub(tmp_path, "exchange", "grants", "--all", env=env).stdout

    entries = json.loads(hub(tmp_path, "audit", "list", "--json", env=env).stdout)
    acts = [(e["action"], e["details"]) for e in entries if e["action"].startswith("exchange.")]
    assert acts == [
        ("exchange.client.add", {"client": DINSOS, "prefix": token.split("_")[1]}),
        ("exchange.grant", {"service": PENDUDUK, "client": DINSOS, "purpose": "verifikasi penerima bansos"}),
        ("exchange.revoke", {"service": PENDUDUK, "client": DINSOS}),
        ("exchange.client.revoke", {"client": DINSOS}),
    ]
    assert all(e["role"] == "operator" and e["client"] == "cli" for e in entries)
    assert "audit log intact" in hub(tmp_path, "audit", "verify", env=env).stdout

    # The token was shown once: no table, no file of the home, no listing holds it.
    assert secret not in _catalog_text(catalog_url) and secret not in listed
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_services_check_names_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "exchange" / "services" / "disdukcapil-siak-penduduk.yaml").read_text(encoding="utf-8")
                   .replace("  by_key: true", "  by_key: true\n  filters: [rt]"), encoding="utf-8")
    done = hub(tmp_path, "exchange", "services", "check", str(bad), check=False)
    assert done.returncode == 1
    assert f"FAIL {bad}:" in done.stdout and ": field dataset/filters/0: 'rt' is not a field of standard" in done.stdout
    done = hub(tmp_path, "exchange", "services", "check")
    assert done.returncode == 0 and f"ok   {PENDUDUK} " in done.stdout and "X-Road-Issue required" in done.stdout
