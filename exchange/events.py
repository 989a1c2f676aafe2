"""Change events of the service bus: consumer systems subscribed to a changes service, the body of each event, and the
feed as an X-Road service (`GET /r1/{changes service}?since=&limit=`).

A consumer system (a client subsystem holding a grant of a `changes` service) is subscribed by the hub's operator
with a webhook URL (`hub exchange subscribe`). Each new version of the service's dataset then queues one event per
subscriber, in the transaction that records the version (`catalog.subscriptions.queue`, the outbox); the delivery
step sends it, signed, with an idempotency key, each subscriber's events in the order of the versions. An event holds
the version's changes as the consumer subsystem may see them (`catalog.changes`, as an officer of its agency: the
standard's `x-access` decides, not the grant) and only the fields the service declares; a version with more changes
than one event carries holds the first of them and the cursor to read the rest from the feed.
"""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import quote, urlsplit

from sqlalchemy import func, select

from catalog.db import Dataset, dataset_row, init_db, session, utcnow
from exchange.clients import ExchangeError, allowed, officer_of
from exchange.identifiers import ClientId, ServiceId
from hub.settings import positive_setting, public_url

__all__ = ["event_body", "event_changes", "feed_answer", "list_subscriptions", "openapi_of_changes",
           "subscribe", "unsubscribe"]


def event_changes() -> int:
    """HUB_CHANGE_EVENT_CHANGES: the most changes one event holds (default 100); a version with more sends the
    first of them and the cursor of the rest, which the consumer reads from the feed."""
    return positive_setting("HUB_CHANGE_EVENT_CHANGES", 100, int)


def _changes_service(settings, service) -> object:
    """The registered changes service `service`; read through the registry's cache (`current_services`), as every
    event of a delivery round asks."""
    from exchange.registry import current_services

    service = service if isinstance(service, ServiceId) else ServiceId.parse(service)
    services, _ = current_services(settings)
    found = next((s for s in services if s.id == service), None)
    if found is None or found.kind != "changes":
        known = ", ".join(str(s.id) for s in services if s.kind == "changes") or "none"
        raise ExchangeError(f"no changes service {service} in {settings.services} (`hub exchange services check` "
                            f"names broken files); changes services: {known}")
    return found


def _check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExchangeError("the webhook URL must be an http or https URL, e.g. https://siks.dinsos.example/hooks")
    if parts.username or parts.password:
        raise ExchangeError("the webhook URL must not hold credentials: the receiver checks the signature instead")
    if len(url) > 2000:
        raise ExchangeError("the webhook URL is longer than 2000 characters")
    return url


def subscribe(settings, service, client, url: str) -> dict:
    """Subscribe a consumer system (`client`, holding a live grant of the changes `service`) to the service's change
    events at `url`. Returns the subscription with its signing `secret`, shown this once. Events start with the
    dataset's next version: what came before is read from the feed (`since` = `after_snapshot`)."""
    from catalog.subscriptions import CHANGES, Subscription

    client = client if isinstance(client, ClientId) else ClientId.parse(client)
    found = _changes_service(settings, service)
    url = _check_url(url)
    init_db(settings.catalog_url)
    if allowed(settings, found.id, client) is None:
        raise ExchangeError(f"{client} holds no grant of {found.id}: grant it first "
                            f"(hub exchange grant {found.id} {client} --purpose TEXT)")
    with session(settings.catalog_url) as s, s.begin():
        held = s.scalar(select(func.count()).select_from(Subscription).where(
            Subscription.service == str(found.id), Subscription.client == str(client)))
        if held:
            raise ExchangeError(f"{client} is subscribed to {found.id} already; `hub exchange unsubscribe "
                                f"{found.id} {client}` first to change its URL or secret")
        dataset = s.get(Dataset, found.changes.dataset)
        now = utcnow()
        sub = Subscription(id=uuid.uuid4().hex, dataset_id=found.changes.dataset, channel="webhook", target=url,
                           events=[CHANGES], secret=secrets.token_hex(32), created_at=now, confirmed_at=now,
                           owner=None, client=str(client), service=str(found.id))
        s.add(sub)
    return {"id": sub.id, "service": str(found.id), "client": str(client), "dataset": sub.dataset_id,
            "secret": sub.secret, "after_snapshot": dataset.snapshot_id if dataset else None}


def unsubscribe(settings, service, client) -> dict:
    """End a consumer system's subscription: it and its undelivered events are deleted."""
    from catalog.subscriptions import Subscription, _delete_subscriptions

    service = service if isinstance(service, ServiceId) else ServiceId.parse(service)
    client = client if isinstance(client, ClientId) else ClientId.parse(client)
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        ids = list(s.scalars(select(Subscription.id).where(Subscription.service == str(service),
                                                           Subscription.client == str(client))))
        if not ids:
            raise ExchangeError(f"{client} is not subscribed to {service}")
        _delete_subscriptions(s, ids)
    return {"service": str(service), "client": str(client)}


def list_subscriptions(settings) -> list[dict]:
    """The consumer systems' subscriptions, their URLs masked (a path may hold the receiver's own token), with their
    events delivered, pending and failed, and the last version delivered."""
    from catalog.subscriptions import Delivery, list_subscriptions as every

    init_db(settings.catalog_url)
    found = [sub for sub in every(settings) if sub["client"]]
    last: dict[str, int] = {}
    with session(settings.catalog_url) as s:
        for subscription_id, payload in s.execute(
                select(Delivery.subscription_id, Delivery.payload).where(Delivery.status == "delivered",
                                                                         Delivery.event == "changes")):
            if payload.get("sequence", 0) >= last.get(subscription_id, (0, None))[0]:
                last[subscription_id] = (payload.get("sequence", 0), payload.get("snapshot_id"))
    return [{"id": sub["id"], "service": sub["service"], "client": sub["client"], "dataset": sub["dataset"],
             "target": sub["target"], "created_at": sub["created_at"], "delivered": sub["delivered"],
             "pending": sub["pending"], "failed": sub["failed"],
             "last_delivered_snapshot": last.get(sub["id"], (0, None))[1]} for sub in found]


def event_body(settings, sub, event: dict) -> dict:
    """The body of the change event `event` (an outbox payload: dataset, version, previous version) for the
    subscription `sub`, read now: the version's first changes as the subscriber may see them, the service's fields
    only. The same version gives the same body on every try. Undeliverable once the subscriber lost its grant."""
    from catalog import changes
    from catalog.subscriptions import Undeliverable

    client = ClientId.parse(sub.client)
    if allowed(settings, sub.service, client) is None:
        raise Undeliverable(f"{client} no longer holds a grant of {sub.service}")
    service = _changes_service(settings, sub.service)
    dataset = dataset_row(settings.catalog_url, event["dataset"])
    if dataset is None:
        raise Undeliverable(f"dataset {event['dataset']} is no longer in the catalog")
    version = changes.Version(event["sequence"], event["snapshot_id"], event["previous_snapshot_id"],
                              _parse_time(event["committed_at"]))
    try:
        found = changes.changes_of(settings, dataset, officer_of(client), version, 0, event_changes(),
                                   list(service.changes.fields))
    except changes.VersionGone as e:
        raise Undeliverable(str(e)) from None
    sent = len(found["changes"])
    rest = f"{version.snapshot_id}:{sent}" if sent < found["total"] else None
    feed = f"{public_url()}/r1/{quote(str(service.id), safe='/')}"
    return {
        "event": "changes", "service": str(service.id), "client": str(client), "dataset": dataset.id,
        "key": list(service.changes.key), "snapshot_id": version.snapshot_id,
        "previous_snapshot_id": version.previous, "committed_at": event["committed_at"],
        "counts": found["counts"], "changes": found["changes"], "complete": rest is None, "next": rest,
        "masked_fields": found["masked_fields"], "pseudonymized_fields": found["pseudonymized_fields"],
        "withheld_fields": [f for f in found["withheld_fields"] if f in service.changes.fields],
        "links": {"feed": feed + (f"?since={version.previous}" if version.previous is not None else ""),
                  **({"rest": f"{feed}?since={rest}"} if rest else {})},
    }


def _parse_time(text: str):
    import datetime as dt

    return dt.datetime.fromisoformat(text.removesuffix("Z"))


# --- the feed as an X-Road service ------------------------------------------------------------------------------

_PARAMETERS = ("since", "limit")


def feed_answer(settings, call, service, rest: str, query: bytes):
    """`GET /r1/{changes service}?since=SNAPSHOT&limit=N`: a page of the feed as the consumer subsystem may see it,
    the service's fields only (`catalog.changes.feed`). Refusals are XRoadErrors; no message quotes a value."""
    from catalog.access import AccessDenied
    from catalog.changes import DEFAULT_LIMIT, MAX_LIMIT, ChangesError, VersionGone, feed
    from exchange.server import XRoadError, query_pairs

    if rest.strip("/"):
        raise XRoadError(400, "Client.BadRequest", f"{service.id} takes no path: GET it with ?since=SNAPSHOT")
    given = dict(query_pairs(service.id, query, _PARAMETERS, "parameter", "parameter name"))
    limit = given.get("limit", str(DEFAULT_LIMIT))
    if not (limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT):
        raise XRoadError(400, "Client.BadRequest", f"limit: a whole number from 1 to {MAX_LIMIT}")
    dataset = dataset_row(settings.catalog_url, service.changes.dataset)
    if dataset is None or dataset.snapshot_id is None:
        raise XRoadError(503, "Server.ServerProxy.ServiceFailed",
                         f"{service.id} feeds dataset {service.changes.dataset}, which is not published yet")
    try:
        page = feed(settings, dataset, officer_of(call.client), call.address, since=given.get("since"),
                    limit=int(limit), fields=list(service.changes.fields), audited=False)
    except AccessDenied:
        raise XRoadError(403, "Server.ServerProxy.AccessDenied",
                         f"dataset {dataset.id} is {dataset.classification}: agency {call.client.member_code} is not "
                         "cleared for it, and a grant does not clear it") from None
    except VersionGone as e:
        raise XRoadError(410, "Server.ServerProxy.VersionGone", str(e)) from None
    except ChangesError as e:
        raise XRoadError(400, "Client.BadRequest", str(e)) from None
    call.dataset = dataset.id
    call.rows = len(page["changes"])
    page["withheld_fields"] = [f for f in page["withheld_fields"] if f in service.changes.fields]
    return 200, {"service": str(service.id), **page}


def openapi_of_changes(service) -> dict:
    """An OpenAPI 3 document of a changes service's feed: what getOpenAPI serves for it. Its record, the X-Road-Issue
    header and the error are those of every service's document (exchange.server.answer_components)."""
    from catalog.changes import DEFAULT_LIMIT, MAX_LIMIT
    from exchange.server import answer_components
    from schemas import load_standard

    standard = load_standard(service.standard_ref)
    common = answer_components(service, standard, service.changes.fields)
    change = {"type": "object", "properties": {
        "op": {"type": "string", "enum": ["insert", "update", "delete"]},
        "key": {"type": "object", "properties": {k: {"type": "string"} for k in service.changes.key}},
        "record": {"allOf": [{"$ref": "#/components/schemas/Record"}], "nullable": True},
        "snapshot_id": {"type": "integer"}, "committed_at": {"type": "string", "format": "date-time"}}}
    return {"openapi": "3.0.3",
            "info": {"title": service.title, "description": service.description, "version": standard.version,
                     "x-standard": service.standard_ref},
            "servers": [{"url": f"/r1/{service.id}"}],
            "paths": {"/": {"get": {
                "operationId": "changes", "summary": "the changes of the versions after `since`, a page at a time",
                "parameters": [
                    {"name": "since", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "a version's snapshot id, or the `next` cursor of a page; default: the first "
                                    "version"},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}}, *common["issue"]],
                "responses": {"200": {"description": "a page of changes", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "changes": {"type": "array", "items": change}, "next": {"type": "string"},
                        "more": {"type": "boolean"}, **common["shown"]}}}}},
                    **common["errors"]}}}},
            "components": {"schemas": {"Record": common["record"], "Error": common["error"]}}}
