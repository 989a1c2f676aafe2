"""Who calls the hub: users with a role, their API tokens (kept hashed), and authentication of a request."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from typing import ClassVar

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import DateTime, ForeignKey, Integer, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, engine, init_db, session, utcnow
from hub.errors import HubError

__all__ = [
    "MAX_FAILURES", "ROLES", "FAILURE_WINDOW",
    "AuthFailure", "AuthenticationError", "Identity", "IdentityError", "Token", "TooManyAttempts", "User",
    "COOKIE", "authenticate", "authorization_of", "caller", "client_of", "count_failure", "create_user", "list_users",
    "may_see_agency", "new_token", "refuse_if_locked", "revoke", "revoke_token", "router",
    # how any token of the hub is made and checked (also exchange.clients' credentials of client subsystems):
    "hash_secret", "new_secret", "secret_matches",
]

ROLES = ("steward", "agency", "analyst")
MAX_FAILURES = 10  # failed authentications one client address may make within FAILURE_WINDOW
FAILURE_WINDOW = dt.timedelta(minutes=5)
TOUCH_EVERY = dt.timedelta(minutes=1)  # how stale last_used_at may get: not one write per request
NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
AGENCY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # as an agency's code in a source registration
COOKIE = "hub_token"  # the portal keeps a signed-in person's token in this cookie (HttpOnly, SameSite=Strict)
TOKEN = re.compile(r"^hub_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")


class User(Base):
    """A person or system that calls the hub with a token: a steward (walidata), an agency or an analyst."""

    __tablename__ = "hub_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # steward | agency | analyst
    agency_code: Mapped[str | None] = mapped_column(String(64))  # role agency only
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Token(Base):
    """One API token of a user: its public prefix, to find it, and the SHA-256 of its secret part only."""

    __tablename__ = "hub_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("hub_users.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class AuthFailure(Base):
    """One failed authentication from a client address: in the catalog, so every API worker counts them all."""

    __tablename__ = "hub_auth_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class IdentityError(HubError):
    """A user or token request the hub refuses (unknown user, bad role, agency code missing)."""


class AuthenticationError(HubError):
    """The Authorization header does not name a valid token; the message never repeats the token."""


class TooManyAttempts(HubError):
    """Too many failed authentications from this client address: wait `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications from this address; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Identity:
    """Who a request comes from; `Identity.ANONYMOUS` when it carries no token."""

    name: str | None
    role: str | None
    agency: str | None
    anonymous: bool = False

    ANONYMOUS: ClassVar[Identity]


Identity.ANONYMOUS = Identity(name=None, role=None, agency=None, anonymous=True)


def hash_secret(secret: str) -> str:
    """What the catalog keeps of a token's secret part: its SHA-256 (the secret is random, 256 bits)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> tuple[str, str]:
    """A new token's public prefix (to find it by) and its secret part (to show once, then keep only hashed)."""
    return secrets.token_hex(6), secrets.token_urlsafe(32)


def secret_matches(stored_hash: str | None, secret: str) -> bool:
    """Whether `secret` is the one `stored_hash` was made of; as slow when there is none (an unknown prefix), so
    that the answer's time tells nothing."""
    return hmac.compare_digest(stored_hash or "0" * 64, hash_secret(secret)) and stored_hash is not None


def _checked_user(name: str, role: str, agency: str | None) -> None:
    if not NAME.match(name):
        raise IdentityError(f"user name {name!r}: 2 to 64 lower case letters, digits, '.', '_' or '-', "
                            "starting with a letter")
    if role not in ROLES:
        raise IdentityError(f"role {role!r}: one of {', '.join(ROLES)}")
    if role == "agency" and not agency:
        raise IdentityError("role agency needs the agency's code (--agency CODE)")
    if role != "agency" and agency:
        raise IdentityError(f"only role agency takes an agency code, not role {role}")
    if agency and not AGENCY.match(agency):
        raise IdentityError(f"agency code {agency!r}: lower case letters, digits and underscores")


def _mint(s, user: User, expires_days: int | None) -> str:
    """Add a token for `user`; the plain token exists only in this return value."""
    if expires_days is not None and expires_days <= 0:
        raise IdentityError("expires_days must be a positive number of days")
    prefix, secret = new_secret()
    now = utcnow()
    s.add(Token(user_id=user.id, prefix=prefix, secret_hash=hash_secret(secret), created_at=now,
                expires_at=now + dt.timedelta(days=expires_days) if expires_days else None))
    return f"hub_{prefix}_{secret}"


def _user(s, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise IdentityError(f"no user {name!r}")
    return user


def _describe(user: User) -> dict:
    return {"name": user.name, "role": user.role, "agency": user.agency_code, "created_at": user.created_at,
            "revoked_at": user.revoked_at}


def create_user(settings, name: str, role: str, agency: str | None = None,
                expires_days: int | None = None) -> tuple[dict, str]:
    """A new user and its first token: (the user as `list_users` shows it, the token, to show once)."""
    _checked_user(name, role, agency)
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        if s.scalar(select(User.id).where(User.name == name)) is not None:
            raise IdentityError(f"user {name!r} already exists (`hub users token {name}` adds a token)")
        user = User(name=name, role=role, agency_code=agency, created_at=utcnow())
        s.add(user)
        s.flush()
        token = _mint(s, user, expires_days)
        return _describe(user), token


def new_token(settings, name: str, expires_days: int | None = None) -> str:
    """Another token for an existing user (a user may hold several, e.g. one per program)."""
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        user = _user(s, name)
        if user.revoked_at is not None:
            raise IdentityError(f"user {name!r} was revoked")
        return _mint(s, user, expires_days)


def revoke(settings, name: str) -> None:
    """Revoke a user and every token it holds."""
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        user = _user(s, name)
        now = utcnow()
        user.revoked_at = user.revoked_at or now
        for token in s.scalars(select(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))):
            token.revoked_at = now


def revoke_token(settings, prefix: str) -> None:
    """Revoke one token, named by its public prefix (the part after `hub_`, as `list_users` shows it)."""
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        token = s.scalar(select(Token).where(Token.prefix == prefix))
        if token is None:
            raise IdentityError(f"no token with prefix {prefix!r}")
        token.revoked_at = token.revoked_at or utcnow()


def list_users(settings) -> list[dict]:
    """Every user with its tokens' prefixes and dates; never a hash."""
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s:
        tokens: dict[int, list[dict]] = {}
        for t in s.scalars(select(Token).order_by(Token.created_at, Token.id)):
            tokens.setdefault(t.user_id, []).append(
                {"prefix": t.prefix, "created_at": t.created_at, "expires_at": t.expires_at,
                 "revoked_at": t.revoked_at, "last_used_at": t.last_used_at})
        return [{**_describe(u), "tokens": tokens.get(u.id, [])}
                for u in s.scalars(select(User).order_by(User.name))]


def authenticate(settings, authorization_header: str | None, client: str) -> Identity:
    """The identity an `Authorization: Bearer TOKEN` header proves; no header is `Identity.ANONYMOUS`.

    A bad, expired or revoked token raises AuthenticationError and counts as a failure of `client`; once it
    made MAX_FAILURES within FAILURE_WINDOW, TooManyAttempts is raised until the window has moved on, even for
    a good token, so guessing gains nothing. Expects the catalog's tables (init_db).
    """
    if not (authorization_header or "").strip():
        return Identity.ANONYMOUS
    client = (client or "unknown")[:64]
    now = utcnow()
    with session(settings.catalog_url) as s, s.begin():
        _refuse_if_locked(s, client, now)
        try:
            return _verify(s, authorization_header, now)
        except AuthenticationError as e:
            failure = e
    # Counted in a transaction of its own: raising inside the one above would roll the count back.
    count_failure(settings, client, now)
    raise failure


def refuse_if_locked(settings, client: str) -> None:
    """TooManyAttempts when address `client` made MAX_FAILURES failed authentications within FAILURE_WINDOW: the
    same limit for every credential the hub checks (users' tokens here, client subsystems' in exchange.server)."""
    with engine(settings.catalog_url).connect() as con:  # a plain connection: every call of the service bus asks
        _refuse_if_locked(con, (client or "unknown")[:64], utcnow())


def count_failure(settings, client: str, now: dt.datetime | None = None) -> None:
    """Count one failed authentication of address `client` (see refuse_if_locked)."""
    now = now or utcnow()
    with session(settings.catalog_url) as s, s.begin():
        s.execute(delete(AuthFailure).where(AuthFailure.at <= now - FAILURE_WINDOW))
        s.add(AuthFailure(client=(client or "unknown")[:64], at=now))


def _refuse_if_locked(s, client: str, now: dt.datetime) -> None:
    recent = select(AuthFailure.at).where(AuthFailure.client == client, AuthFailure.at > now - FAILURE_WINDOW)
    times = sorted(s.scalars(recent))
    if len(times) >= MAX_FAILURES:
        # The window slides: the client may try again when enough of its failures have aged out of it.
        unlocks_at = times[len(times) - MAX_FAILURES] + FAILURE_WINDOW
        raise TooManyAttempts(max(1, math.ceil((unlocks_at - now).total_seconds())))


def _verify(s, header: str, now: dt.datetime) -> Identity:
    scheme, _, credentials = header.strip().partition(" ")
    if TOKEN.match(scheme) and not credentials:
        credentials = scheme  # the bare token, as CKAN clients (ckanapi) send it
    elif scheme.lower() != "bearer":
        raise AuthenticationError("the Authorization header must be `Bearer TOKEN`")
    match = TOKEN.match(credentials.strip())
    if match is None:
        raise AuthenticationError("the token is not valid")
    prefix, secret = match.groups()
    token = s.scalar(select(Token).where(Token.prefix == prefix))
    if not secret_matches(token.secret_hash if token else None, secret):
        raise AuthenticationError("the token is not valid")
    user = s.get(User, token.user_id)
    if token.revoked_at is not None or user.revoked_at is not None:
        raise AuthenticationError("the token was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationError("the token has expired")
    if token.last_used_at is None or token.last_used_at <= now - TOUCH_EVERY:
        token.last_used_at = now
    return Identity(name=user.name, role=user.role, agency=user.agency_code)


def may_see_agency(identity: Identity, agency_code: str | None) -> bool:
    """Whether `identity` may see an agency's own quarantine and runs: stewards all, an agency its own only."""
    if identity.role == "steward":
        return True
    return identity.role == "agency" and agency_code is not None and identity.agency == agency_code


def authorization_of(request: Request) -> str | None:
    """The credentials a request carries: its Authorization header (or X-CKAN-API-Key, which CKAN clients may
    send instead), else the portal's login cookie."""
    header = request.headers.get("Authorization") or request.headers.get("X-CKAN-API-Key")
    if header or not request.cookies.get(COOKIE):
        return header
    return f"Bearer {request.cookies[COOKIE]}"


def client_of(request: Request) -> str | None:
    """The address a request comes from: the peer's, or what X-Forwarded-For says when the peer is a proxy named
    in HUB_TRUSTED_PROXIES (serving.guard.TrustedProxies sets it; by default nobody's header is believed)."""
    return request.client.host if request.client else None


def caller(settings):
    """A FastAPI dependency giving the request's Identity: 401 for a bad token, 429 after too many failures."""
    init_db(settings.catalog_url)

    def identity_of(request: Request) -> Identity:
        client = client_of(request) or "unknown"
        try:
            return authenticate(settings, authorization_of(request), client)
        except TooManyAttempts as e:
            raise HTTPException(429, str(e), headers={"Retry-After": str(e.retry_after)}) from None
        except AuthenticationError as e:
            raise HTTPException(401, str(e), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None

    return identity_of


def router(settings):
    """`GET /api/me`, for `app.include_router` in the catalog API."""
    from serving.models import OPTIONAL_AUTH, Me, errors

    api = APIRouter(tags=["identity"])
    current = caller(settings)

    @api.get("/api/me", response_model=None, openapi_extra=OPTIONAL_AUTH,
             responses={200: {"model": Me}, **errors(401, 429)})
    def me(identity: Identity = Depends(current)) -> dict:
        """Who the request's token belongs to: name, role and agency; `{"anonymous": true}` without a token."""
        if identity.anonymous:
            return {"anonymous": True}
        return {"anonymous": False, "name": identity.name, "role": identity.role, "agency": identity.agency}

    return api
