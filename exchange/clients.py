"""Client subsystems' credentials (tokens kept hashed) and the grants that open a service to a client."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass

from sqlalchemy import DateTime, Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, engine, init_db, session, utcnow
from catalog.identity import hash_secret, new_secret, secret_matches
from exchange.identifiers import ClientId, IdentifierError, ServiceId
from hub.errors import HubError
from hub.recent import Recent

__all__ = [
    "ClientAuthenticationError", "ClientCredential", "ExchangeError", "Grant", "GrantRecord",
    "active_grant", "add_client", "allowed", "authenticate", "certificate_fingerprint", "grant", "list_clients",
    "list_grants", "officer_of", "revoke_client", "revoke_grant",
]

# A client subsystem's token: `hubx_`, its public prefix, its secret. Not a user's `hub_` token: neither opens
# what the other does, and a token sent to the wrong door is named as such.
TOKEN = re.compile(r"^hubx_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
TOUCH_EVERY = dt.timedelta(minutes=1)  # how stale last_used_at may get: not one write per call
_ID_CHARS = 1100  # four parts of at most 255 characters, percent-encoded where they hold `?`, and three /


class ClientCredential(Base):
    """One credential of a client subsystem: the token's public prefix, to find it, and its secret's SHA-256."""

    __tablename__ = "hub_exchange_clients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(_ID_CHARS), index=True)  # INSTANCE/CLASS/MEMBER/SUBSYSTEM
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The SHA-256 of the client system's TLS certificate (DER), when it has one: then a call is accepted only over
    # a TLS connection that presented that certificate (`hub serve --tls-client-ca`), besides the token.
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))


class GrantRecord(Base):
    """A service opened to a client subsystem, for a purpose; revoked grants stay, as history."""

    __tablename__ = "hub_exchange_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(_ID_CHARS + 256), index=True)  # INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE
    client: Mapped[str] = mapped_column(String(_ID_CHARS), index=True)
    purpose: Mapped[str | None] = mapped_column(Text)
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime)
    granted_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))


class ExchangeError(HubError):
    """A client or grant request the hub refuses (unknown service, client registered already, no such grant)."""


class ClientAuthenticationError(HubError):
    """The calling system did not prove it is the client it names; the message never repeats the token."""


@dataclass(frozen=True)
class Grant:
    service: ServiceId
    client: ClientId
    purpose: str | None
    granted_at: dt.datetime
    granted_by: str


def officer_of(client: ClientId):
    """A consumer subsystem as the catalog sees it: an officer of its member's agency. So `catalog.access` and
    `catalog.masking` decide what it sees of any dataset or standard exactly as for that agency's officers; a grant
    opens a service, it never clears more."""
    from catalog.identity import Identity

    return Identity(name=str(client)[:64], role="agency", agency=client.member_code)


def _client(text) -> ClientId:
    return text if isinstance(text, ClientId) else ClientId.parse(text)


def _service(text) -> ServiceId:
    return text if isinstance(text, ServiceId) else ServiceId.parse(text)


def _active_credential(s, client: ClientId):
    return s.scalar(select(ClientCredential).where(ClientCredential.client == str(client),
                                                   ClientCredential.revoked_at.is_(None)))


def add_client(settings, client, by: str, certificate: bytes | None = None) -> tuple[ClientId, str]:
    """Register a client subsystem and issue its token: (the client, the token, to show once). A client holds one
    live credential: revoke it before issuing another. With `certificate` (the system's TLS certificate, PEM or
    DER), its calls must also come over mutual TLS presenting that certificate."""
    client = _client(client)
    fingerprint = certificate_fingerprint(certificate) if certificate is not None else None
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        if _active_credential(s, client) is not None:
            raise ExchangeError(f"client {client} has a credential already; `hub exchange clients revoke {client}` "
                                "first to issue a new one")
        prefix, secret = new_secret()
        s.add(ClientCredential(client=str(client), prefix=prefix, secret_hash=hash_secret(secret),
                               created_at=utcnow(), created_by=by[:64], certificate_sha256=fingerprint))
    _changed(settings)
    return client, f"hubx_{prefix}_{secret}"


def certificate_fingerprint(certificate: bytes) -> str:
    """The SHA-256 of a certificate's DER form (hex), from PEM or DER: what a TLS connection's peer is matched by."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        loaded = (x509.load_pem_x509_certificate(certificate) if b"-----BEGIN" in certificate
                  else x509.load_der_x509_certificate(certificate))
    except ValueError as e:
        raise ExchangeError(f"not an X.509 certificate in PEM or DER: {e}") from None
    return hashlib.sha256(loaded.public_bytes(Encoding.DER)).hexdigest()


def revoke_client(settings, client) -> ClientId:
    """Revoke a client subsystem's credential; its grants stay (a new credential finds them again)."""
    client = _client(client)
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        credential = _active_credential(s, client)
        if credential is None:
            raise ExchangeError(f"client {client} has no live credential")
        credential.revoked_at = utcnow()
    _changed(settings)
    return client


def list_clients(settings) -> list[dict]:
    """Every credential ever issued, by client: its prefix and dates, never a hash."""
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s:
        return [{"client": c.client, "prefix": c.prefix, "created_at": c.created_at, "created_by": c.created_by,
                 "revoked_at": c.revoked_at, "last_used_at": c.last_used_at,
                 "certificate_sha256": c.certificate_sha256}
                for c in s.scalars(select(ClientCredential).order_by(ClientCredential.client, ClientCredential.id))]


def authenticate(settings, client_header: str | None, token: str | None, *, certificate_sha256: str | None = None,
                 certificate_required: bool = False) -> ClientId:
    """The client a call comes from: the X-Road-Client header's, once the token proves it is that client's.

    The header alone is never trusted: a token of another client, a revoked, unknown or malformed token raises
    ClientAuthenticationError, as does a malformed header. `certificate_sha256` is the fingerprint of the
    certificate the call's TLS connection presented (verified by the TLS layer against the hub's client CA), None
    without one. A client registered with a certificate must present it; with `certificate_required` (the hub is
    served with a client CA) every client must, so a client registered without one is refused. Expects the
    catalog's tables (init_db).
    """
    try:
        client = ClientId.parse(client_header or "")
    except IdentifierError as e:
        raise ClientAuthenticationError(f"X-Road-Client: {e}") from None
    match = TOKEN.match((token or "").strip())
    if match is None:
        raise ClientAuthenticationError("the client's token is missing or not a client token (hubx_...)")
    prefix, secret = match.groups()
    credential = _current(settings).credentials.get(prefix)
    if not secret_matches(credential.secret_hash if credential else None, secret):
        raise ClientAuthenticationError("the client's token is not valid")
    if credential.revoked:
        raise ClientAuthenticationError("the client's token was revoked")
    if credential.client != str(client):
        raise ClientAuthenticationError(f"the token is not one of client {client} (X-Road-Client)")
    if credential.certificate_sha256 or certificate_required:
        if certificate_sha256 is None:
            raise ClientAuthenticationError(f"client {client} must call over TLS presenting its client certificate")
        if credential.certificate_sha256 is None:
            raise ClientAuthenticationError(f"client {client} has no certificate registered with the hub (`hub "
                                            f"exchange clients add {client} --certificate FILE`, after a revoke)")
        if not hmac.compare_digest(credential.certificate_sha256, certificate_sha256):
            raise ClientAuthenticationError(f"the TLS client certificate is not the one registered for {client}")
    _touch(settings, prefix)
    return client


@dataclass(frozen=True)
class _Credential:
    client: str
    secret_hash: str
    revoked: bool
    certificate_sha256: str | None


@dataclass(frozen=True)
class _View:
    """Every credential and live grant, as the catalog held them when `fingerprint` was read."""

    fingerprint: tuple
    credentials: dict  # prefix -> _Credential
    grants: dict  # (service, client) -> Grant


# Credentials and grants are only ever added and revoked, never changed otherwise or deleted: the greatest id
# and the number revoked of each table change with every change, and one query of them tells whether the view of
# this process is still the catalog's. The latest times tell a catalog put in its place (a restore) from the one
# read, should the counts agree. The query is made at most once a second: a change made by another process (`hub
# exchange revoke`) holds in every server process within a second, one made in this process at once.
_FINGERPRINT = select(*(select(aggregate).scalar_subquery() for aggregate in (
    func.max(ClientCredential.id), func.count(ClientCredential.revoked_at), func.max(ClientCredential.created_at),
    func.max(ClientCredential.revoked_at), func.max(GrantRecord.id), func.count(GrantRecord.revoked_at),
    func.max(GrantRecord.granted_at), func.max(GrantRecord.revoked_at))))
_VIEWS = Recent(1.0)  # catalog -> its _View, its fingerprint read again at most once a second
_BUILT: dict[str, _View] = {}  # catalog -> the view last built
_TOUCHED: dict[tuple[str, str], dt.datetime] = {}  # (catalog, prefix) -> when this process last wrote last_used_at


def _current(settings) -> _View:
    return _VIEWS.get(settings.catalog_url, lambda: _read_view(settings.catalog_url))


def _read_view(url: str) -> _View:
    with engine(url).connect() as con:
        fingerprint = tuple(con.execute(_FINGERPRINT).one())
        view = _BUILT.get(url)
        if view is not None and view.fingerprint == fingerprint:
            return view
        credentials = {c.prefix: _Credential(c.client, c.secret_hash, c.revoked_at is not None, c.certificate_sha256)
                       for c in con.execute(select(ClientCredential.prefix, ClientCredential.client,
                                                   ClientCredential.secret_hash, ClientCredential.revoked_at,
                                                   ClientCredential.certificate_sha256))}
        grants = {}
        for g in con.execute(select(GrantRecord).where(GrantRecord.revoked_at.is_(None))):
            service, client = ServiceId.parse(g.service), ClientId.parse(g.client)
            grants[(service, client)] = Grant(service, client, g.purpose, g.granted_at, g.granted_by)
    # Read in one connection: the fingerprint and what it stands for come from one state of the catalog.
    _BUILT[url] = view = _View(fingerprint, credentials, grants)
    return view


def _changed(settings) -> None:
    """This process changed credentials or grants: its next call reads them again."""
    _VIEWS.forget(settings.catalog_url)


def _touch(settings, prefix: str) -> None:
    """Keep last_used_at within TOUCH_EVERY of the truth, with one write per credential and minute at most."""
    now = utcnow()
    last = _TOUCHED.get((settings.catalog_url, prefix))
    if last is not None and last > now - TOUCH_EVERY:
        return
    with session(settings.catalog_url) as s, s.begin():
        s.execute(update(ClientCredential).where(
            ClientCredential.prefix == prefix,
            (ClientCredential.last_used_at.is_(None)) | (ClientCredential.last_used_at <= now - TOUCH_EVERY))
            .values(last_used_at=now))
    _TOUCHED[(settings.catalog_url, prefix)] = now


def _known_service(settings, service: ServiceId) -> None:
    from exchange.registry import load_services

    services, _ = load_services(settings=settings)
    if service not in {s.id for s in services}:
        known = ", ".join(str(s.id) for s in services) or "none"
        raise ExchangeError(f"no service {service} in {settings.services} (`hub exchange services check` names "
                            f"broken files); known services: {known}")


def active_grant(s, service: ServiceId, client: ClientId):
    """The live grant record of `service` to `client` in session `s`, or None."""
    return s.scalar(select(GrantRecord).where(GrantRecord.service == str(service), GrantRecord.client == str(client),
                                              GrantRecord.revoked_at.is_(None)))


def grant(settings, service, client, purpose: str | None, by: str) -> Grant:
    """Open a registered service to a registered client subsystem, for a purpose (stated once, recorded)."""
    service, client = _service(service), _client(client)
    purpose = " ".join((purpose or "").split()) or None
    if purpose is not None and len(purpose) > 500:
        raise ExchangeError(f"the purpose has {len(purpose)} characters; say it in at most 500")
    _known_service(settings, service)
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        if _active_credential(s, client) is None:
            raise ExchangeError(f"no client {client} with a live credential (`hub exchange clients add {client}`)")
        if active_grant(s, service, client) is not None:
            raise ExchangeError(f"{client} is granted {service} already (`hub exchange grants` lists it)")
        record = GrantRecord(service=str(service), client=str(client), purpose=purpose, granted_at=utcnow(),
                             granted_by=by[:64])
        s.add(record)
    _changed(settings)
    return Grant(service, client, purpose, record.granted_at, record.granted_by)


def revoke_grant(settings, service, client, by: str) -> tuple[ServiceId, ClientId]:
    """Close a service to a client subsystem: its grant is kept, revoked, by whom and when."""
    service, client = _service(service), _client(client)
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        record = active_grant(s, service, client)
        if record is None:
            raise ExchangeError(f"{client} holds no grant of {service}")
        record.revoked_at, record.revoked_by = utcnow(), by[:64]
    _changed(settings)
    return service, client


def allowed(settings, service_id, client_id) -> Grant | None:
    """The live grant that opens `service_id` to `client_id`, or None."""
    return _current(settings).grants.get((_service(service_id), _client(client_id)))


def list_grants(settings, include_revoked: bool = False) -> list[dict]:
    init_db(settings.catalog_url)
    query = select(GrantRecord).order_by(GrantRecord.service, GrantRecord.client, GrantRecord.id)
    if not include_revoked:
        query = query.where(GrantRecord.revoked_at.is_(None))
    with session(settings.catalog_url) as s:
        return [{"service": g.service, "client": g.client, "purpose": g.purpose, "granted_at": g.granted_at,
                 "granted_by": g.granted_by, "revoked_at": g.revoked_at, "revoked_by": g.revoked_by}
                for g in s.scalars(query)]
