"""Subscriptions to a dataset: webhooks and e-mail told of its versions and failures, consumer systems of changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, Field
from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, Dataset, LineageEdge, init_db, session, utcnow
from catalog.identity import Identity, caller
from hub.errors import HubError
from hub.settings import positive_setting, public_url

__all__ = [
    "CHANGES", "CHANNELS", "EVENTS", "Delivery", "NeedsToken", "NotFound", "Subscription", "SubscriptionError",
    "SubscriptionRequest", "SubscriptionToken", "TooManySubscriptions", "Undeliverable",
    "change_event_id", "confirm", "deliver_pending", "delivery_concurrency", "delivery_timeout", "list_subscriptions",
    "max_per_caller", "max_unconfirmed_per_address", "notify", "queue", "router", "smtp_settings", "subscribe",
    "unsubscribe",
]

log = logging.getLogger(__name__)

CHANNELS = ("webhook", "email")
EVENTS = ("published", "failed")
# A version's record-level changes, for a consumer system the service bus subscribed (`exchange.events`); not one of
# EVENTS: nobody subscribes to it through the API.
CHANGES = "changes"
QUICK_RETRIES = (0.5, 1.0)  # seconds before the second and third try within one round
TIMEOUT = 5.0  # seconds, at most, per HTTP request or SMTP conversation (less when the receiver's round ends sooner)
MAX_ATTEMPTS = 24  # eight rounds of three tries, the later rounds spread over about two hours
RETRY_AFTER = dt.timedelta(minutes=1)  # before the second round; doubles each round
# A change event is never given up for a receiver that is down (its successors wait for it): its rounds come at
# most this far apart, so a consumer system that comes back gets what it missed within this long.
CHANGES_RETRY_AT_MOST = dt.timedelta(hours=1)
CONFIRM_WITHIN = dt.timedelta(days=7)  # an e-mail address not confirmed by then is forgotten
EMAIL = re.compile(r"[^@\s<>()\[\],;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


class Subscription(Base):
    """Who is told what about one dataset: a webhook URL, or an e-mail address once its owner confirmed it."""

    __tablename__ = "hub_subscriptions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # webhook | email
    target: Mapped[str] = mapped_column(String(2000))  # a URL, or an address (personal data: never logged)
    events: Mapped[list] = mapped_column(JSON)
    secret: Mapped[str | None] = mapped_column(String(64))  # webhooks: the HMAC key, so it is kept as is
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # webhooks: at creation
    # The user whose token made it: what HUB_MAX_SUBSCRIPTIONS_PER_CALLER counts. None for an anonymous e-mail
    # (its address's owner confirms it) and for subscriptions made before owners were kept.
    owner: Mapped[str | None] = mapped_column(String(64))
    # A consumer system's subscription to a changes service (`hub exchange subscribe`): events CHANGES only, what
    # the client subsystem may see of them, while it holds a grant of the service. None for everyone else's.
    client: Mapped[str | None] = mapped_column(String(1100))
    service: Mapped[str | None] = mapped_column(String(1400))


class SubscriptionToken(Base):
    """The hash of a token sent in a link (purpose: confirm | unsubscribe); the token itself is never stored.

    Every mail carries a token made when it is sent, so no stored value can rebuild a link.
    """

    __tablename__ = "hub_subscription_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("hub_subscriptions.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Delivery(Base):
    """One message to one subscription (the outbox): metadata and counts only, never rows or personal data. A change
    event keeps which version it tells of; its changes are read, masked for the subscriber, when it is sent."""

    __tablename__ = "hub_deliveries"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # also the receiver's idempotency key
    subscription_id: Mapped[str] = mapped_column(ForeignKey("hub_subscriptions.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # published | failed | confirm | changes
    payload: Mapped[dict] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | delivered | failed
    last_error: Mapped[str | None] = mapped_column(Text)  # an error class or status code, never an address
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class SubscriptionError(HubError):
    """A subscription request the hub refuses; `field` names what to fix, `status` is the HTTP answer's."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(SubscriptionError):
    """No such dataset, or a token that is unknown or already used."""

    status = 404


class NeedsToken(SubscriptionError):
    """What an anonymous caller may not subscribe: a webhook."""

    status = 401


class TooManySubscriptions(SubscriptionError):
    """A caller holds its most subscriptions, or an address has its most confirmations waiting."""

    status = 429


class Undeliverable(HubError):
    """A message that must not be sent any more (a change event whose subscriber lost its grant): failed for good at
    once, not tried again."""


def max_per_caller() -> int:
    """HUB_MAX_SUBSCRIPTIONS_PER_CALLER: how many subscriptions one user's tokens may hold, on all datasets."""
    return positive_setting("HUB_MAX_SUBSCRIPTIONS_PER_CALLER", 20, int)


def max_unconfirmed_per_address() -> int:
    """HUB_MAX_UNCONFIRMED_PER_ADDRESS: how many subscriptions of one e-mail address may wait for confirmation,
    that is how many confirmation mails anyone can make the hub send to one inbox within a week."""
    return positive_setting("HUB_MAX_UNCONFIRMED_PER_ADDRESS", 3, int)


def delivery_timeout() -> float:
    """HUB_DELIVERY_TIMEOUT: seconds one receiver's round (its messages, with their quick retries) may take."""
    return positive_setting("HUB_DELIVERY_TIMEOUT", 30.0)


def delivery_concurrency() -> int:
    """HUB_DELIVERY_CONCURRENCY: how many receivers one delivery round serves at once."""
    return positive_setting("HUB_DELIVERY_CONCURRENCY", 8, int)


@dataclass(frozen=True)
class Smtp:
    host: str | None
    port: int
    sender: str
    starttls: bool
    user: str | None
    password: str | None


def smtp_settings() -> Smtp:
    """The SMTP server from HUB_SMTP_*; without HUB_SMTP_HOST the hub sends no e-mail."""
    env = os.environ
    return Smtp(host=env.get("HUB_SMTP_HOST") or None, port=int(env.get("HUB_SMTP_PORT") or 25),
                sender=env.get("HUB_SMTP_FROM") or "interop-hub@localhost",
                starttls=_flag("HUB_SMTP_STARTTLS"), user=env.get("HUB_SMTP_USER") or None,
                password=env.get("HUB_SMTP_PASSWORD") or None)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _mint(settings, subscription_id: str, purpose: str) -> str:
    token = secrets.token_urlsafe(32)
    with session(settings.catalog_url) as s, s.begin():
        s.add(SubscriptionToken(token_hash=_hash(token), subscription_id=subscription_id, purpose=purpose,
                                created_at=utcnow()))
    return token


def _link(action: str, token: str) -> str:
    """The portal page a mail links to: it acts only on its button, so a mail scanner opening links acts on none."""
    return f"{public_url()}/subscriptions/{action}?{urlencode({'token': token})}"


def _api_link(action: str, token: str) -> str:
    """The API endpoint that acts on a POST at once: for programs, and for one-click unsubscribe (RFC 8058)."""
    return f"{public_url()}/api/subscriptions/{action}?{urlencode({'token': token})}"


def _check_webhook_target(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError("a webhook target must be an http or https URL, e.g. https://example.org/hook",
                                "target")
    if parts.username or parts.password:
        raise SubscriptionError("a webhook URL must not hold credentials: check the signature header instead",
                                "target")
    _check_public_host(parts.hostname)


def _check_public_host(host: str) -> None:
    """Refuse hosts inside the hub's network: a public form must not make the hub call its neighbours."""
    if _flag("HUB_WEBHOOK_ALLOW_PRIVATE"):
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        raise SubscriptionError(f"the webhook host {host!r} cannot be resolved", "target") from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        raise SubscriptionError(f"the webhook host {host!r} is not a public address", "target")


def subscribe(settings, dataset_id: str, channel: str, target: str, events=EVENTS, *, who: Identity) -> dict:
    """Subscribe `target` to `events` of a dataset on behalf of `who`, the caller.

    A webhook needs a token (an anonymous caller gets NeedsToken); it is active at once and its secret is
    returned here only. An e-mail address first gets a confirmation mail and nothing else until its link is
    followed, whoever asked. A caller with a token holds at most HUB_MAX_SUBSCRIPTIONS_PER_CALLER
    subscriptions, and an address at most HUB_MAX_UNCONFIRMED_PER_ADDRESS unconfirmed ones
    (TooManySubscriptions).
    """
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s:
        dataset = s.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"no dataset {dataset_id!r}", "dataset")
    events = list(dict.fromkeys(events or ()))
    target = (target or "").strip()
    if channel not in CHANNELS:
        raise SubscriptionError(f"unknown channel {channel!r}; channels: {', '.join(CHANNELS)}", "channel")
    if not events or any(e not in EVENTS for e in events):
        raise SubscriptionError(f"events must be one or more of: {', '.join(EVENTS)}", "events")
    if channel == "webhook" and who.anonymous:
        # A webhook is active at once, so it must be someone's, whose allowance it uses up. Asked before the
        # target is looked at: the hub resolves no host name for an anonymous caller.
        raise NeedsToken("a webhook needs a token: send Authorization: Bearer TOKEN, or sign in on the portal; "
                         "without one, subscribe an e-mail address, which is told nothing until it confirms",
                         "channel")
    if channel == "webhook":
        _check_webhook_target(target)
    else:
        if not (len(target) <= 254 and EMAIL.fullmatch(target)):
            raise SubscriptionError("target is not an e-mail address", "target")
        if smtp_settings().host is None:
            raise SubscriptionError("this hub sends no e-mail (HUB_SMTP_HOST is not set); use a webhook", "channel")
    now = utcnow()
    with session(settings.catalog_url) as s, s.begin():
        _forget_unconfirmed(s, now)
        if channel == "email":
            waiting = s.scalars(select(Subscription).where(
                Subscription.dataset_id == dataset_id, Subscription.channel == "email",
                Subscription.target == target, Subscription.confirmed_at.is_(None))).first()
            if waiting is not None:  # one confirmation mail per address and dataset: no mail bombing
                return {"id": waiting.id, "dataset": dataset_id, "channel": channel, "events": waiting.events,
                        "status": "awaiting_confirmation"}
            # Across datasets too: the hub must not become a way to fill someone's inbox.
            limit = max_unconfirmed_per_address()
            unconfirmed = s.scalar(select(func.count()).select_from(Subscription).where(
                Subscription.channel == "email", func.lower(Subscription.target) == target.lower(),
                Subscription.confirmed_at.is_(None)))
            if unconfirmed >= limit:
                raise TooManySubscriptions(
                    f"this address already has {unconfirmed} subscriptions waiting for confirmation, the most "
                    f"the hub keeps for one address (HUB_MAX_UNCONFIRMED_PER_ADDRESS={limit}): follow the link in "
                    f"a confirmation mail already sent, or ask again once they expire ({CONFIRM_WITHIN.days} days)",
                    "target")
        if not who.anonymous:
            limit = max_per_caller()
            held = s.scalar(select(func.count()).select_from(Subscription).where(Subscription.owner == who.name))
            if held >= limit:
                raise TooManySubscriptions(
                    f"{who.name} already holds {held} subscriptions, the most one caller may hold "
                    f"(HUB_MAX_SUBSCRIPTIONS_PER_CALLER={limit}): unsubscribe one first")
        sub = Subscription(id=uuid.uuid4().hex, dataset_id=dataset_id, channel=channel, target=target,
                           events=events, created_at=now, confirmed_at=now if channel == "webhook" else None,
                           secret=secrets.token_hex(32) if channel == "webhook" else None,
                           owner=None if who.anonymous else who.name)
        s.add(sub)
        s.flush()  # before its delivery: PostgreSQL checks the foreign key at once
        if channel == "email":
            confirmation = _new_delivery(sub, "confirm", {"event": "confirm", "dataset": dataset_id,
                                                          "title": dataset.title, "events": events})
            s.add(confirmation)
    answer = {"id": sub.id, "dataset": dataset_id, "channel": channel, "events": events}
    if channel == "webhook":
        return {**answer, "status": "active", "secret": sub.secret,
                "unsubscribe_url": _api_link("unsubscribe", _mint(settings, sub.id, "unsubscribe"))}
    _deliver(settings, [confirmation.id])
    return {**answer, "status": "awaiting_confirmation"}


def _forget_unconfirmed(s, now: dt.datetime) -> None:
    stale = select(Subscription.id).where(Subscription.confirmed_at.is_(None),
                                          Subscription.created_at < now - CONFIRM_WITHIN)
    _delete_subscriptions(s, list(s.scalars(stale)))


def _delete_subscriptions(s, ids: list[str]) -> None:
    if ids:
        for table in (SubscriptionToken, Delivery):
            s.execute(delete(table).where(table.subscription_id.in_(ids)))
        s.execute(delete(Subscription).where(Subscription.id.in_(ids)))


def _redeem(s, token: str, purpose: str) -> Subscription:
    found = s.get(SubscriptionToken, _hash(token or ""))
    if found is None or found.purpose != purpose:
        raise NotFound("this link is unknown or was already used", "token")
    return s.get(Subscription, found.subscription_id)


def confirm(settings, token: str) -> dict:
    """Follow a confirmation link: the address gets the dataset's notifications from now on."""
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        sub = _redeem(s, token, "confirm")
        sub.confirmed_at = utcnow()
        s.execute(delete(SubscriptionToken).where(SubscriptionToken.subscription_id == sub.id,
                                                  SubscriptionToken.purpose == "confirm"))
    return {"id": sub.id, "dataset": sub.dataset_id, "status": "confirmed",
            "message": "Langganan dikonfirmasi. / Subscription confirmed."}


def unsubscribe(settings, token: str) -> dict:
    """Follow an unsubscribe link: the subscription, its tokens and its deliveries are deleted."""
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        sub = _redeem(s, token, "unsubscribe")
        _delete_subscriptions(s, [sub.id])
    return {"id": sub.id, "dataset": sub.dataset_id, "status": "unsubscribed",
            "message": "Langganan dihentikan. / Unsubscribed."}


def _new_delivery(sub: Subscription, event: str, payload: dict) -> Delivery:
    now = utcnow()
    return Delivery(id=uuid.uuid4().hex, subscription_id=sub.id, event=event, payload=payload, attempts=0,
                    next_attempt_at=now, status="pending", created_at=now)


def _downstream(s, dataset_id: str) -> list[str]:
    """The datasets built from `dataset_id`, directly or not: a source's failure holds them back too."""
    found, todo = [], [dataset_id]
    while todo:
        for child in s.scalars(select(LineageEdge.dataset_id).where(LineageEdge.upstream == todo.pop())):
            if child not in found and child != dataset_id:
                found.append(child)
                todo.append(child)
    return found


def _payload(s, dataset_id: str, event: str, details: dict, source: str) -> dict:
    dataset = s.get(Dataset, dataset_id)
    payload = {
        "event": event, "dataset": dataset_id, "title": dataset.title if dataset else dataset_id,
        "snapshot_id": details.get("snapshot_id") if dataset_id == source else None,
        "run_id": details.get("run_id"),
        "rows": dataset.row_count if dataset and event == "published" else None,
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "links": {"dataset": f"{public_url()}/api/datasets/{dataset_id}"},
    }
    if event == "failed":
        payload.update(source=source, error=details.get("error"))
    return payload


def queue(s, dataset_id: str, event: str, details: dict) -> int:
    """Add to the caller's transaction `s` a message for every subscription to `event` of the dataset (and, for a
    failure, of the datasets built from it); return how many. Nothing is sent here: the delivery step after the
    run sends them (`deliver_pending`).

    The transaction that commits a new version (or records a failed run) queues its messages itself: they are
    committed with it or not at all, so a process killed right after that commit still leaves exactly one
    message per subscriber for the next delivery step, and a retried publish that finds its version already
    committed queues none. `details` may hold `run_id`, `snapshot_id` and, for `failed`, `error` (an error
    class); nothing else of it is sent.
    """
    datasets = [dataset_id, *(_downstream(s, dataset_id) if event == "failed" else [])]
    queued = [
        _new_delivery(sub, event, _payload(s, sub.dataset_id, event, details, dataset_id))
        for sub in s.scalars(select(Subscription).where(Subscription.dataset_id.in_(datasets)))
        if event in sub.events and sub.confirmed_at is not None
    ]
    if event == "published":
        queued += _change_events(s, dataset_id)
    s.add_all(queued)
    if queued:
        log.info("subscriptions: %d %s messages about %s queued", len(queued), event, dataset_id)
    return len(queued)


def change_event_id(subscription_id: str, snapshot_id: int) -> str:
    """A change event's delivery id, also its idempotency key: one per subscriber and version, whoever queues it."""
    return hashlib.sha256(f"{subscription_id}:{snapshot_id}".encode()).hexdigest()[:32]


def _change_events(s, dataset_id: str) -> list[Delivery]:
    """A change event of the version just recorded in `s` (the newest of hub_dataset_versions) for each consumer
    system subscribed to the dataset's changes and still granted the service. Only which version it tells of is
    kept: the changes are read when it is sent, as the subscriber may see them then."""
    from catalog.db import DatasetVersion
    from exchange.clients import active_grant
    from exchange.identifiers import ClientId, ServiceId

    subscribers = [sub for sub in s.scalars(select(Subscription).where(
        Subscription.dataset_id == dataset_id, Subscription.client.is_not(None))) if CHANGES in sub.events]
    if not subscribers:
        return []
    newest = s.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)
                       .order_by(DatasetVersion.id.desc()).limit(2)).all()
    version, previous = newest[0], (newest[1] if len(newest) > 1 else None)
    payload = {"event": CHANGES, "dataset": dataset_id, "snapshot_id": version.snapshot_id,
               "previous_snapshot_id": previous.snapshot_id if previous else None, "sequence": version.id,
               "committed_at": version.committed_at.isoformat(timespec="seconds") + "Z"}
    events = []
    for sub in subscribers:
        if active_grant(s, ServiceId.parse(sub.service), ClientId.parse(sub.client)) is None:
            continue
        event = _new_delivery(sub, CHANGES, {**payload, "service": sub.service, "client": sub.client})
        event.id = change_event_id(sub.id, version.snapshot_id)
        events.append(event)
    return events


def notify(settings, dataset_id: str, event: str, details: dict) -> None:
    """`queue` in a transaction of its own, for an event no catalog transaction records (the pipeline queues
    its messages in the transaction that commits the version or the failure). Never raises."""
    try:
        init_db(settings.catalog_url)
        with session(settings.catalog_url) as s, s.begin():
            queue(s, dataset_id, event, details)
    except Exception as e:
        log.warning("subscriptions: queueing %s of %s failed: %s", event, dataset_id, type(e).__name__)


def deliver_pending(settings, due_only: bool = True) -> dict:
    """The delivery step: one round for the messages still pending (only those whose next attempt is due,
    unless `due_only` is False). How many were delivered and how many failed for good now, and how many are
    still pending. Receivers are served concurrently, each cut off after HUB_DELIVERY_TIMEOUT."""
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        _forget_unconfirmed(s, utcnow())
        query = select(Delivery.id).where(Delivery.status == "pending")
        if due_only:
            query = query.where(Delivery.next_attempt_at <= utcnow())
        ids = list(s.scalars(query.order_by(Delivery.created_at)))
    outcome = _deliver(settings, ids, due_only)
    with session(settings.catalog_url) as s:
        pending = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "pending"))
    return {"delivered": outcome["delivered"], "failed": outcome["failed"], "pending": pending}


def _receiver(sub: Subscription) -> tuple:
    """Who a message waits on: a webhook's server (scheme, host and port), or an e-mail's address."""
    if sub.channel == "webhook":
        parts = urlsplit(sub.target)
        return "webhook", parts.scheme, (parts.hostname or "").lower(), parts.port
    return "email", sub.target.lower()


class _Job:
    """One message in a round: how to send it, and what came of it."""

    def __init__(self, delivery: Delivery, sub: Subscription) -> None:
        self.delivery, self.sub = delivery, sub
        self.send = None  # async (client, deadline) -> None; raises if not delivered
        self.tries = 0
        self.error: str | None = None
        self.done = False  # its tries are over (delivered or not)
        self.final = False  # failed for good at once (Undeliverable)
        self.after: _Job | None = None  # a change event: its subscriber's previous one in this round, sent first
        self.changes: int | None = None  # a change event: how many changes its body holds

    @property
    def delivered(self) -> bool:
        return self.done and self.error is None


def _deliver(settings, ids: list[str], due_only: bool = True) -> Counter:
    """One round for the messages `ids`, in their order for each receiver: up to three quick tries each.

    Receivers are served at once (at most HUB_DELIVERY_CONCURRENCY together), and each receiver's round is cut
    off after HUB_DELIVERY_TIMEOUT, so a receiver that never answers holds up no other for longer than that.
    What is not delivered waits for its next round.
    """
    limit, workers = delivery_timeout(), delivery_concurrency()
    with session(settings.catalog_url) as s:
        rows = s.execute(select(Delivery, Subscription).join(Subscription, Delivery.subscription_id == Subscription.id)
                         .where(Delivery.id.in_(ids), Delivery.status == "pending")).all() if ids else []
        order = {delivery_id: i for i, delivery_id in enumerate(ids)}
        rows.sort(key=lambda row: order[row[0].id])
        rows = _in_turn(s, rows)
    receivers: dict[tuple, list[_Job]] = {}
    for delivery, sub in rows:
        receivers.setdefault(_receiver(sub), []).append(_Job(delivery, sub))
    # Claimed until the round surely ended: another delivery step running now (Airflow runs one after each
    # publish, and every ten minutes) leaves these alone instead of sending them twice.
    lease = utcnow() + dt.timedelta(seconds=limit * math.ceil(len(receivers) / workers) + 60)
    claimed = _claimed_in_turn(settings, rows, _claim(settings, [d.id for d, _ in rows], lease, due_only))
    smtp = smtp_settings()
    rounds = []
    for jobs in receivers.values():
        jobs = [job for job in jobs if job.delivery.id in claimed]
        previous: dict[str, _Job] = {}
        for job in jobs:
            if job.delivery.event == CHANGES:
                job.after, previous[job.sub.id] = previous.get(job.sub.id), job
            try:
                if job.sub.channel == "webhook":
                    payload = _change_event(settings, job) if job.delivery.event == CHANGES else job.delivery.payload
                    job.send = _webhook_sender(job.sub, job.delivery, payload)
                else:
                    job.send = _mail_sender(settings, smtp, job.sub, job.delivery)
            except Undeliverable as e:
                job.tries, job.error, job.done, job.final = 1, str(e), True, True
            except Exception as e:  # e.g. no SMTP server set up in this process
                job.tries, job.error, job.done = 1, _describe(e), True
        if jobs:
            rounds.append(jobs)
    if rounds:
        _run(_round(rounds, limit, workers))
    outcome: Counter = Counter()
    for job in (job for jobs in rounds for job in jobs):
        outcome[_record(settings, job)] += 1
    return outcome


def _in_turn(s, rows: list) -> list:
    """The (delivery, subscription) `rows` without the change events whose turn has not come, each subscriber's
    change events in the order of their versions: a change event is sent only after every earlier one of its
    subscriber was delivered, so one whose predecessor is still pending and not among `rows` (not due yet, or
    being sent by another round) waits."""
    subscribers = {sub.id for delivery, sub in rows if delivery.event == CHANGES}
    if not subscribers:
        return rows
    waiting: dict[str, list] = {}
    for delivery_id, subscription_id, payload in s.execute(
            select(Delivery.id, Delivery.subscription_id, Delivery.payload).where(
                Delivery.subscription_id.in_(subscribers), Delivery.event == CHANGES, Delivery.status == "pending")):
        waiting.setdefault(subscription_id, []).append((payload.get("sequence", 0), delivery_id))
    asked, turn = {delivery.id for delivery, _ in rows}, set()
    for events in waiting.values():
        for _, delivery_id in sorted(events):
            if delivery_id not in asked:
                break
            turn.add(delivery_id)
    kept = [(delivery, sub) for delivery, sub in rows if delivery.event != CHANGES or delivery.id in turn]
    by_subscriber: dict[str, list] = {}
    for delivery, sub in kept:
        if delivery.event == CHANGES:
            by_subscriber.setdefault(sub.id, []).append((delivery, sub))
    ordered = {k: iter(sorted(v, key=lambda row: row[0].payload.get("sequence", 0))) for k, v in by_subscriber.items()}
    return [next(ordered[sub.id]) if delivery.event == CHANGES else (delivery, sub) for delivery, sub in kept]


def _claimed_in_turn(settings, rows: list, claimed: set[str]) -> set[str]:
    """`claimed` without each subscriber's change events after one this round could not claim (another round has
    it): those are handed back, due at once, for the round after it."""
    blocked, handed_back = set(), []
    for delivery, sub in rows:
        if delivery.event != CHANGES:
            continue
        if sub.id in blocked or delivery.id not in claimed:
            blocked.add(sub.id)
            if delivery.id in claimed:
                handed_back.append(delivery.id)
    if handed_back:
        with session(settings.catalog_url) as s, s.begin():
            s.execute(update(Delivery).where(Delivery.id.in_(handed_back), Delivery.status == "pending")
                      .values(next_attempt_at=utcnow()))
    return claimed - set(handed_back)


def _change_event(settings, job: _Job) -> dict:
    """The body of a change event, read when it is sent (`exchange.events`): the outbox keeps no personal data."""
    from exchange.events import event_body

    body = event_body(settings, job.sub, job.delivery.payload)
    job.changes = len(body["changes"])
    return body


def _claim(settings, ids: list[str], until: dt.datetime, due_only: bool) -> set[str]:
    """Take the pending messages `ids` for this round (their next attempt moved to `until`): those taken."""
    taken = set()
    with session(settings.catalog_url) as s, s.begin():
        for delivery_id in ids:
            query = update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "pending")
            if due_only:
                query = query.where(Delivery.next_attempt_at <= utcnow())
            if s.execute(query.values(next_attempt_at=until)).rowcount:
                taken.add(delivery_id)
    return taken


def _record(settings, job: _Job) -> str:
    """Write what came of one message to the outbox: its status now."""
    with session(settings.catalog_url) as s, s.begin():
        delivery = s.get(Delivery, job.delivery.id)
        if delivery is None:  # unsubscribed meanwhile
            return "gone"
        if job.tries == 0:  # its receiver's round was cut before this message's turn: due again at once
            delivery.next_attempt_at = utcnow()
            return delivery.status
        delivery.attempts += job.tries
        delivery.last_error = job.error
        changes = delivery.event == CHANGES
        if job.error is None:
            delivery.status = "delivered"
        elif job.final or (delivery.attempts >= MAX_ATTEMPTS and not changes):
            delivery.status = "failed"
        else:
            rounds = math.ceil(delivery.attempts / (len(QUICK_RETRIES) + 1))
            wait = RETRY_AFTER * 2 ** min(rounds - 1, 16)
            delivery.next_attempt_at = utcnow() + (min(wait, CHANGES_RETRY_AT_MOST) if changes else wait)
    level = logging.INFO if job.error is None else logging.WARNING
    log.log(level, "subscriptions: delivery %s (%s %s to subscription %s) %s after %d attempts%s",
            delivery.id, delivery.event, job.sub.channel, job.sub.id, delivery.status, delivery.attempts,
            f": {job.error}" if job.error else "")
    if delivery.event == CHANGES:
        _log_change_event(settings, job, delivery)
    return delivery.status


def _log_change_event(settings, job: _Job, delivery: Delivery) -> None:
    """A round of a change event in the audit log, as the subscriber's read of the dataset (`hub audit
    who-accessed` lists it): the version, how many changes the body held, the outcome. Never a key or a record."""
    from catalog import audit

    p = delivery.payload
    try:
        audit.record(settings, (job.sub.client or "unknown")[:200], "exchange", "rows.read", dataset=p["dataset"],
                     details={"via": "change event", "delivery": delivery.id, "service": job.sub.service,
                              "consumer": job.sub.client, "snapshot_id": p["snapshot_id"], "rows": job.changes,
                              "status": delivery.status, "attempts": delivery.attempts, "error": delivery.last_error})
    except Exception as e:  # the outbox already holds the outcome; the log's own failure is the operator's to see
        log.error("subscriptions: change event %s could not be written to the audit log: %s", delivery.id,
                  type(e).__name__)


def _run(coroutine):
    """Run a coroutine to its end from synchronous code, also where this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _round(rounds: list[list[_Job]], limit: float, workers: int) -> None:
    """Each receiver's messages in turn, receivers concurrently; a receiver's turn ends after `limit` s."""
    import httpx

    gate = asyncio.Semaphore(workers)

    async def serve(jobs: list[_Job]) -> None:
        async with gate:
            deadline = time.monotonic() + limit
            try:
                async with asyncio.timeout(limit):
                    for job in jobs:
                        if job.after is not None and not job.after.delivered:
                            continue  # its subscriber's earlier change event is not delivered: it waits its turn
                        if not job.done:
                            await _attempt(job, client, deadline)
            except TimeoutError:  # the message being sent stays pending; those after it were not tried
                for job in jobs:
                    if job.tries and not job.done:
                        job.error = f"timed out: the receiver's round took over {limit:g} s (HUB_DELIVERY_TIMEOUT)"
                        job.done = True

    # Redirects are not followed: the target was checked as a public address, where it points to was not.
    async with httpx.AsyncClient(follow_redirects=False) as client:
        await asyncio.gather(*(serve(jobs) for jobs in rounds))


async def _attempt(job: _Job, client, deadline: float) -> None:
    """Send, trying again after each wait of QUICK_RETRIES; `job` keeps the tries and the last error."""
    for wait in (0, *QUICK_RETRIES):
        await asyncio.sleep(wait)
        job.tries += 1
        try:
            await job.send(client, deadline)
            job.error, job.done = None, True
            return
        except Exception as e:
            job.error = _describe(e)
    job.done = True


class _Refused(Exception):
    """The receiver answered, but not with success."""


def _describe(e: Exception) -> str:
    """An error as the outbox keeps it: its class and a status code, never an address or a URL."""
    code = getattr(e, "smtp_code", None)
    return str(e) if isinstance(e, (_Refused, SubscriptionError)) else type(e).__name__ + (f" {code}" if code else "")


def _signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 header of a body: what a receiver recomputes with its secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _remaining(deadline: float) -> float:
    return max(0.05, min(TIMEOUT, deadline - time.monotonic()))


def _webhook_sender(sub: Subscription, delivery: Delivery, payload: dict):
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "interop-hub",
               "X-Hub-Event": delivery.event, "X-Hub-Delivery": delivery.id,
               "X-Hub-Signature-256": _signature(sub.secret, body)}
    if delivery.event == CHANGES:  # the same for a subscriber and a version on every try (change_event_id)
        headers["Idempotency-Key"] = delivery.id

    async def send(client, deadline: float) -> None:
        # The name may point elsewhere by now. The lookup runs in a thread, which a cut round leaves to the
        # resolver's own timeout; the request itself is cancelled at once. A consumer system's address was given
        # by the hub's operator (`hub exchange subscribe`), not by a public form: it may be inside the network.
        if sub.client is None:
            await asyncio.to_thread(_check_public_host, urlsplit(sub.target).hostname)
        answer = await client.post(sub.target, content=body, timeout=_remaining(deadline),
                                   headers={**headers, "X-Hub-Timestamp": str(int(time.time()))})
        if not answer.is_success:
            raise _Refused(f"HTTP {answer.status_code}")

    return send


def _mail_sender(settings, smtp: Smtp, sub: Subscription, delivery: Delivery):
    import smtplib
    import ssl

    if smtp.host is None:
        raise _Refused("no SMTP server (HUB_SMTP_HOST)")
    purpose = "confirm" if delivery.event == "confirm" else "unsubscribe"
    message = _mail(smtp.sender, sub.target, delivery, _mint(settings, sub.id, purpose))

    def converse(deadline: float) -> None:
        with smtplib.SMTP(timeout=_remaining(deadline)) as client:
            # smtplib blocks and a socket timeout bounds each read, not the conversation: at the deadline the
            # socket is shut, which ends whatever the server is slowly answering.
            watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _hang_up, [client])
            watchdog.start()
            try:
                client.connect(smtp.host, smtp.port)
                if smtp.starttls:
                    client.starttls(context=ssl.create_default_context())
                if smtp.user:
                    client.login(smtp.user, smtp.password or "")
                client.send_message(message)
            finally:
                watchdog.cancel()

    async def send(client, deadline: float) -> None:
        await asyncio.to_thread(converse, deadline)

    return send


def _hang_up(client) -> None:
    if client.sock is not None:
        try:
            client.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _mail(sender: str, to: str, delivery: Delivery, token: str):
    """Plain text in Indonesian with an English line; its link, with `token`, confirms or unsubscribes."""
    from email.message import EmailMessage
    from email.utils import make_msgid

    link = _link("confirm" if delivery.event == "confirm" else "unsubscribe", token)
    p = delivery.payload
    name = f"\"{p['title']}\" ({p['dataset']})"
    if delivery.event == "confirm":
        wanted = " dan ".join({"published": "versi baru", "failed": "kegagalan sumber"}[e] for e in p["events"])
        subject = f"Konfirmasi langganan: {p['title']}"
        text = (f"Alamat ini diminta untuk menerima pemberitahuan ({wanted}) tentang dataset {name}.\n\n"
                f"Konfirmasi langganan: {link}\n\n"
                "Jika Anda tidak memintanya, abaikan surat ini: Anda tidak akan menerima surat lain.\n"
                "English: confirm this subscription at the link above; if you did not ask for it, ignore this mail "
                "and you will get no other.\n")
    elif delivery.event == "published":
        subject = f"Versi baru: {p['title']}"
        text = (f"Dataset {name} memiliki versi baru.\n"
                f"Snapshot: {p['snapshot_id']}\nJumlah baris: {p['rows']}\nWaktu: {p['at']}\n\n"
                f"Lihat dataset: {p['links']['dataset']}\n\n"
                f"English: dataset {p['dataset']} has a new version (snapshot {p['snapshot_id']}, {p['rows']} rows).\n")
    else:
        subject = f"Sumber gagal: {p['title']}"
        text = (f"Sumber {p['source']} untuk dataset {name} gagal diproses pada run {p['run_id']} ({p['error']}).\n"
                "Versi yang sudah terbit tetap tersedia.\n\n"
                f"Lihat dataset: {p['links']['dataset']}\n\n"
                f"English: source {p['source']} of dataset {p['dataset']} failed in run {p['run_id']} ({p['error']}); "
                "the published version stays available.\n")
    if delivery.event != "confirm":
        text += f"\nBerhenti berlangganan / Unsubscribe: {link}\n"
    message = EmailMessage()
    message["Subject"] = f"[interop-hub] {subject}"
    message["From"], message["To"] = sender, to
    message["Message-ID"] = make_msgid(idstring=delivery.id)
    message["Auto-Submitted"] = "auto-generated"
    if delivery.event != "confirm":  # RFC 8058: mail clients POST `List-Unsubscribe=One-Click` to this URL
        message["List-Unsubscribe"] = f"<{_api_link('unsubscribe', token)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    return message


def _masked_target(sub: Subscription) -> str:
    if sub.channel == "email":
        local, _, domain = sub.target.partition("@")
        return f"{local[:1]}***@{domain}"
    parts = urlsplit(sub.target)  # a path or query may carry the receiver's own token
    return f"{parts.scheme}://{parts.netloc}/..."


def list_subscriptions(settings) -> list[dict]:
    """Every subscription with its target masked, and how many of its deliveries are in each status."""
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s:
        counts = Counter(s.execute(select(Delivery.subscription_id, Delivery.status)).tuples())
        return [
            {"id": sub.id, "dataset": sub.dataset_id, "channel": sub.channel, "target": _masked_target(sub),
             "events": sub.events, "confirmed": sub.confirmed_at is not None, "owner": sub.owner,
             "created_at": sub.created_at, "client": sub.client, "service": sub.service,
             **{status: counts[(sub.id, status)] for status in ("pending", "delivered", "failed")}}
            for sub in s.scalars(select(Subscription).order_by(Subscription.dataset_id, Subscription.created_at))
        ]


class SubscriptionRequest(BaseModel):
    channel: str = Field(description="webhook or email")
    target: str = Field(max_length=2000, description="the webhook's URL, or the e-mail address")
    events: list[str] = Field(default=list(EVENTS), description="published and/or failed")


def router(settings):
    """The subscription endpoints, for `app.include_router` in the catalog API."""
    from fastapi import APIRouter, Depends, HTTPException

    from catalog.access import listed
    from serving.models import OPTIONAL_AUTH, errors

    current = caller(settings)

    def answer(call, *args, **kwargs) -> dict:
        try:
            return call(settings, *args, **kwargs)
        except SubscriptionError as e:
            if e.status == 422:  # shaped as FastAPI's own validation errors
                raise HTTPException(422, [{"loc": ["body", e.field], "msg": str(e), "type": "value_error"}]) from None
            raise HTTPException(e.status, str(e),
                                headers={"WWW-Authenticate": "Bearer"} if e.status == 401 else None) from None

    init_db(settings.catalog_url)
    api = APIRouter(tags=["subscriptions"])

    @api.post("/api/datasets/{dataset_id}/subscriptions", status_code=201, openapi_extra=OPTIONAL_AUTH,
              responses=errors(401, 404, 413, 429))
    def create_subscription(dataset_id: str, request: SubscriptionRequest,
                            who: Identity = Depends(current)) -> dict:
        """Subscribe a webhook (with a token only; active at once; its signing secret is shown in this answer
        only) or an e-mail address (sent a confirmation link first) to a dataset's new versions and source
        failures. 401: a webhook without a token; 429: the caller holds its most subscriptions, or the address
        has its most confirmations waiting."""
        if dataset_id not in listed(settings, who):  # a `rahasia` dataset only for those cleared for it
            raise HTTPException(404, f"no dataset {dataset_id!r}")
        return answer(subscribe, dataset_id, request.channel, request.target, request.events, who=who)

    # Both act only on POST: mail scanners and link previews open links with GET.
    @api.post("/api/subscriptions/confirm", responses=errors(404))
    def confirm_subscription(token: str) -> dict:
        return answer(confirm, token)

    @api.post("/api/subscriptions/unsubscribe", responses=errors(404))
    def unsubscribe_subscription(token: str) -> dict:
        return answer(unsubscribe, token)

    return api
