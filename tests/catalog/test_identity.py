"""Users and API tokens: `hub users`, hashed storage, expiry, revocation, the failure limit and `GET /api/me`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import httpx
import pytest
from sqlalchemy import inspect, text, update

from _served import hub, serve
from catalog.db import engine, utcnow
from catalog.identity import (
    FAILURE_WINDOW, MAX_FAILURES, AuthenticationError, AuthFailure, Identity, IdentityError, Token, TooManyAttempts,
    authenticate, create_user, list_users, may_see_agency, new_token, revoke, revoke_token,
)
from hub.settings import ROOT, Settings

TOKEN = re.compile(r"hub_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")


def _settings(tmp_path, catalog_url) -> Settings:
    return Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")


def _token_of(output: str) -> str:
    found = TOKEN.findall(output)
    assert len(found) == 1, "the token is printed exactly once"
    return found[0]


def _catalog_text(catalog_url: str) -> str:
    """Every row of every table of the catalog, as text."""
    eng = engine(catalog_url)
    with eng.connect() as c:
        return "\n".join(str(row) for table in inspect(eng).get_table_names()
                         for row in c.execute(text(f'SELECT * FROM "{table}"')))


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def test_users_through_the_command_line(tmp_path, catalog_url):
    env = {"HUB_CATALOG_URL": catalog_url}
    created = hub(tmp_path, "users", "create", "dinsos-etl", "--role", "agency", "--agency", "dinsos", env=env)
    first = _token_of(created.stdout)
    assert "will not be shown again" in created.stdout
    second = _token_of(hub(tmp_path, "users", "token", "dinsos-etl", "--expires-days", "30", env=env).stdout)
    assert first != second

    listed = hub(tmp_path, "users", "list", "--json", env=env).stdout
    [user] = json.loads(listed)
    assert (user["name"], user["role"], user["agency"], user["revoked_at"]) == ("dinsos-etl", "agency", "dinsos", None)
    assert [t["prefix"] for t in user["tokens"]] == [first.split("_")[1], second.split("_")[1]]
    assert user["tokens"][0]["expires_at"] is None and user["tokens"][1]["expires_at"] is not None
    assert "dinsos-etl" in hub(tmp_path, "users", "list", env=env).stdout

    # Only the hash of the secret part is kept: no table holds a token or its secret, not even in the listing.
    stored = _catalog_text(catalog_url)
    for token in (first, second):
        secret = token.split("_", 2)[2]
        assert secret not in stored and secret not in listed
        assert hashlib.sha256(secret.encode()).hexdigest() in stored
        assert hashlib.sha256(secret.encode()).hexdigest() not in listed

    settings = _settings(tmp_path, catalog_url)
    for token in (first, second):
        assert authenticate(settings, _bearer(token), "10.0.0.1") == Identity("dinsos-etl", "agency", "dinsos")

    hub(tmp_path, "users", "revoke", "dinsos-etl", env=env)
    for token in (first, second):
        with pytest.raises(AuthenticationError, match="revoked") as refused:
            authenticate(settings, _bearer(token), "10.0.0.1")
        assert token.split("_", 2)[2] not in str(refused.value)
    assert json.loads(hub(tmp_path, "users", "list", "--json", env=env).stdout)[0]["revoked_at"] is not None
    refused = hub(tmp_path, "users", "token", "dinsos-etl", check=False, env=env)
    assert refused.returncode == 2 and "revoked" in refused.stderr and not TOKEN.search(refused.stdout)


def test_roles_and_agency_codes(tmp_path, catalog_url):
    env = {"HUB_CATALOG_URL": catalog_url}
    refused = hub(tmp_path, "users", "create", "dinsos-etl", "--role", "agency", check=False, env=env)
    assert refused.returncode == 2 and "--agency" in refused.stderr and not TOKEN.search(refused.stdout)
    refused = hub(tmp_path, "users", "create", "bappeda", "--role", "analyst", "--agency", "dinsos", check=False,
                  env=env)
    assert refused.returncode == 2 and "only role agency" in refused.stderr

    settings = _settings(tmp_path, catalog_url)
    with pytest.raises(IdentityError, match="agency"):
        create_user(settings, "walidata", "steward", agency="diskominfo")
    with pytest.raises(IdentityError, match="role"):
        create_user(settings, "walidata", "admin")
    with pytest.raises(IdentityError, match="user name"):
        create_user(settings, "Walidata Kota", "steward")
    user, token = create_user(settings, "walidata", "steward")
    assert (user["name"], user["role"], user["agency"]) == ("walidata", "steward", None)
    with pytest.raises(IdentityError, match="already exists"):
        create_user(settings, "walidata", "analyst")
    with pytest.raises(IdentityError, match="no user"):
        new_token(settings, "nobody")
    assert [u["name"] for u in list_users(settings)] == ["walidata"]
    assert authenticate(settings, _bearer(token), "10.0.0.1").role == "steward"


def test_expired_and_revoked_tokens_are_refused(tmp_path, catalog_url):
    settings = _settings(tmp_path, catalog_url)
    _, lasting = create_user(settings, "bappeda", "analyst")
    expiring = new_token(settings, "bappeda", expires_days=1)
    assert authenticate(settings, _bearer(expiring), "10.0.0.2").name == "bappeda"

    # Move the clock: the token's day is over.
    prefix = expiring.split("_")[1]
    with engine(catalog_url).begin() as c:
        c.execute(update(Token).where(Token.prefix == prefix).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    with pytest.raises(AuthenticationError, match="expired") as refused:
        authenticate(settings, _bearer(expiring), "10.0.0.2")
    assert expiring.split("_", 2)[2] not in str(refused.value)
    assert authenticate(settings, _bearer(lasting), "10.0.0.2").name == "bappeda"

    revoke_token(settings, lasting.split("_")[1])
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticate(settings, _bearer(lasting), "10.0.0.2")
    with pytest.raises(IdentityError, match="no token"):
        revoke_token(settings, "000000000000")
    with pytest.raises(IdentityError, match="positive"):
        new_token(settings, "bappeda", expires_days=0)

    # A token that differs only in its secret part, or is not a hub token at all, proves nothing.
    forged = new_token(settings, "bappeda")[:-4] + "AAAA"
    for header in (_bearer(forged), "Bearer hub_nothing", f"Basic {forged}", _bearer("")):
        with pytest.raises(AuthenticationError) as refused:
            authenticate(settings, header, "10.0.0.3")
        assert forged.split("_", 2)[2] not in str(refused.value)
    assert authenticate(settings, None, "10.0.0.3") is Identity.ANONYMOUS
    assert authenticate(settings, "  ", "10.0.0.3").anonymous
    revoke(settings, "bappeda")


def test_repeated_failures_lock_the_address_out(tmp_path, catalog_url):
    settings = _settings(tmp_path, catalog_url)
    _, token = create_user(settings, "dinkes-etl", "agency", agency="dinkes")
    wrong = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthenticationError):
            authenticate(settings, _bearer(wrong), "192.0.2.7")
    with pytest.raises(TooManyAttempts) as locked:
        authenticate(settings, _bearer(token), "192.0.2.7")
    assert 0 < locked.value.retry_after <= FAILURE_WINDOW.total_seconds()
    # Another address is not punished for it.
    assert authenticate(settings, _bearer(token), "192.0.2.8").agency == "dinkes"

    # Once the failures are older than the window, the address may try again.
    with engine(catalog_url).begin() as c:
        c.execute(update(AuthFailure).values(at=utcnow() - FAILURE_WINDOW))
    assert authenticate(settings, _bearer(token), "192.0.2.7").name == "dinkes-etl"


def test_who_may_see_an_agencys_own_data():
    steward = Identity("walidata", "steward", None)
    dinsos = Identity("dinsos-etl", "agency", "dinsos")
    analyst = Identity("bappeda", "analyst", None)
    assert may_see_agency(steward, "dinsos") and may_see_agency(steward, "dinkes")
    assert may_see_agency(dinsos, "dinsos") and not may_see_agency(dinsos, "dinkes")
    assert not may_see_agency(dinsos, None)
    assert not may_see_agency(analyst, "dinsos")
    assert not may_see_agency(Identity.ANONYMOUS, "dinsos")


def test_api_me_through_hub_serve(tmp_path, catalog_url):
    """Two `hub serve` processes on one catalog: who a token is, and failures counted across both."""
    env = {"HUB_CATALOG_URL": catalog_url}
    hub(tmp_path, "init", "--quiet", env=env)
    token = _token_of(hub(tmp_path, "users", "create", "dinsos-etl", "--role", "agency", "--agency", "dinsos",
                          env=env).stdout)
    wrong = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    servers = [serve(tmp_path, env=env), serve(tmp_path, env=env)]
    answers = []
    try:
        (_, first), (_, second) = servers
        me = httpx.get(first + "/api/me", headers={"Authorization": _bearer(token)})
        assert me.status_code == 200
        assert me.json() == {"anonymous": False, "name": "dinsos-etl", "role": "agency", "agency": "dinsos"}
        assert httpx.get(first + "/api/me").json() == {"anonymous": True}

        for n in range(MAX_FAILURES):
            answers.append(httpx.get((first, second)[n % 2] + "/api/me", headers={"Authorization": _bearer(wrong)}))
            assert answers[-1].status_code == 401
            assert answers[-1].headers["WWW-Authenticate"].startswith("Bearer")
        answers.append(httpx.get(second + "/api/me", headers={"Authorization": _bearer(wrong)}))
        answers.append(httpx.get(first + "/api/me", headers={"Authorization": _bearer(token)}))
        for locked in answers[-2:]:
            assert locked.status_code == 429
            assert 0 < int(locked.headers["Retry-After"]) <= FAILURE_WINDOW.total_seconds()
        # Public data stays public: without a token the address is still served.
        assert httpx.get(second + "/api/me").json() == {"anonymous": True}
    finally:
        output = ""
        for server, _ in servers:
            server.terminate()
            output += server.communicate(timeout=30)[0].decode()
    for secret in (token.split("_", 2)[2], wrong.split("_", 2)[2]):
        assert secret not in output
        assert not any(secret in answer.text or secret in str(answer.headers) for answer in answers)


def _forged_then_real(base: str, token: str, forged: str) -> list[int]:
    """MAX_FAILURES bad tokens sent with `X-Forwarded-For: forged`, then the good token with no header, with the
    same forged address, and with another one: the statuses of the last three."""
    wrong = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    for _ in range(MAX_FAILURES):
        failed = httpx.get(base + "/api/me", headers={"Authorization": _bearer(wrong), "X-Forwarded-For": forged})
        assert failed.status_code == 401
    return [httpx.get(base + "/api/me", headers={"Authorization": _bearer(token), **extra}).status_code
            for extra in ({}, {"X-Forwarded-For": forged}, {"X-Forwarded-For": "198.51.100.20"})]


def _audited_client(home, base: str, headers: dict) -> str:
    """The address the audit log gives to one SQL query sent with `headers`."""
    httpx.post(base + "/api/sql", json={"sql": "SELECT 1 AS one"}, headers=headers, timeout=60)
    [entry] = json.loads(hub(home, "audit", "list", "--limit", "1", "--json").stdout)
    assert entry["action"].startswith("sql")
    return entry["client"]


def test_a_forged_x_forwarded_for_from_loopback_is_not_believed(tmp_path):
    """No proxy is trusted by default: the audit log and the failure limit see the loopback address, so a forged
    address neither hides the caller nor locks a real person at that address out."""
    token = _token_of(hub(tmp_path, "users", "create", "bappeda", "--role", "analyst").stdout)
    server, base = serve(tmp_path)
    try:
        assert _audited_client(tmp_path, base, {"X-Forwarded-For": "203.0.113.9"}) == "127.0.0.1"
        assert _forged_then_real(base, token, "203.0.113.9") == [429, 429, 429]  # loopback is locked, whatever it says
        tls = httpx.get(base + "/api", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in tls.headers  # nor does it pass for TLS
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_x_forwarded_for_is_honoured_from_a_configured_proxy(tmp_path):
    token = _token_of(hub(tmp_path, "users", "create", "bappeda", "--role", "analyst").stdout)
    server, base = serve(tmp_path, env={"HUB_TRUSTED_PROXIES": "10.9.8.0/24, 127.0.0.1"})
    try:
        assert _audited_client(tmp_path, base, {"X-Forwarded-For": "203.0.113.9"}) == "203.0.113.9"
        # A chain: the nearest address no trusted proxy owns is the client; what it claimed before is not.
        assert _audited_client(tmp_path, base, {"X-Forwarded-For": "192.0.2.66, 203.0.113.10, 10.9.8.7"}) \
            == "203.0.113.10"
        # Not an address: the proxy's own is kept.
        assert _audited_client(tmp_path, base, {"X-Forwarded-For": "somewhere"}) == "127.0.0.1"
        # The forwarded address is locked out; the proxy's other clients are not.
        assert _forged_then_real(base, token, "203.0.113.9") == [200, 429, 200]
        tls = httpx.get(base + "/api", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.11"})
        assert tls.headers["strict-transport-security"] == "max-age=31536000"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_trusted_proxy_setting_that_is_not_an_address_is_a_configuration_error(tmp_path):
    import subprocess

    from _served import HUB, free_port, hub_env

    refused = subprocess.run([HUB, "serve", "--port", str(free_port())], capture_output=True, text=True, timeout=120,
                             env=hub_env(tmp_path, {"HUB_TRUSTED_PROXIES": "127.0.0.1, proxy.internal"}))
    assert refused.returncode == 2
    assert "HUB_TRUSTED_PROXIES" in refused.stderr and "proxy.internal" in refused.stderr
