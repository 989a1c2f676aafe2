"""The service bus's message log: one entry per call in the audit log's keyed chain, committed before the call is
answered, the calls that finish at the same moment sharing one commit.

Writing each call's entry in its own transaction would make every call wait for its own commit, one after the
other (the chain allows one writer at a time). The server answers calls on an event loop: a call's entry waits in
its loop's group, and the group is committed (`catalog.audit.record_many`) once the loop has run everything that
was ready, so the calls that finished in one turn of the loop share one commit. No call is answered before its
entry is committed, and a failed commit fails every call of the group (X-Road's LoggingFailed).

The commit runs on the loop itself, not in a thread: it is short (one transaction of a few rows), and a thread
waiting for its turn at the interpreter behind a busy loop made every commit wait several switch intervals.
"""

from __future__ import annotations

import asyncio
import weakref

__all__ = ["append", "calls_to"]

MAX_GROUP = 256  # entries in one commit, at most


class _Group:
    """The entries waiting on one event loop for one catalog, each with the future its call awaits."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.waiting: list[tuple[dict, asyncio.Future]] = []
        self.scheduled = False

    def commit(self) -> None:
        from catalog import audit

        group, self.waiting = self.waiting[:MAX_GROUP], self.waiting[MAX_GROUP:]
        self.scheduled = bool(self.waiting)
        if self.scheduled:  # more than one commit holds: the rest goes in the next turn
            asyncio.get_running_loop().call_soon(self.commit)
        try:
            audit.record_many(self.settings, [entry for entry, _ in group])
        except Exception as e:  # noqa: BLE001 (each call of the group raises it)
            for _, done in group:
                if not done.done():
                    done.set_exception(e)
            return
        for _, done in group:
            if not done.done():
                done.set_result(None)


_GROUPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> {(catalog, home): _Group}


async def append(settings, actor: str, role: str, action: str, *, dataset: str | None = None,
                 details: dict | None = None, client: str | None = None) -> None:
    """`catalog.audit.record`'s entry, committed with the others of this turn of the event loop before this
    returns; raises what the commit raised."""
    loop = asyncio.get_running_loop()
    groups = _GROUPS.setdefault(loop, {})
    group = groups.get((settings.catalog_url, str(settings.home)))
    if group is None:
        group = groups[(settings.catalog_url, str(settings.home))] = _Group(settings)
    done = loop.create_future()
    group.waiting.append((dict(actor=actor, role=role, action=action, dataset=dataset, details=details,
                               client=client), done))
    if not group.scheduled:
        group.scheduled = True
        loop.call_soon(group.commit)
    await done


def calls_to(settings, member_code: str, limit: int = 100) -> list[dict]:
    """The last `limit` calls of the services of agency `member_code` (its member code), newest first, as the
    message log holds them (`catalog.audit`'s public form): who called which service, when, with which purpose,
    user id and status. The provider's view of its exchanges."""
    from sqlalchemy import Text, cast, select

    from catalog.audit import AuditEntry, public_entry
    from catalog.db import init_db, session
    from exchange.identifiers import ClientId, IdentifierError

    def provided(entry) -> bool:
        try:
            return ClientId.parse(str(entry.details.get("provider") or "")).member_code == member_code
        except IdentifierError:
            return False

    init_db(settings.catalog_url)
    # The provider's identifier is in the details: matched as text first (the same on SQLite and PostgreSQL),
    # then exactly, a batch of the newest entries at a time.
    query = (select(AuditEntry).where(AuditEntry.action == "exchange.call",
                                      cast(AuditEntry.details, Text).like(f"%/{member_code}/%"))
             .order_by(AuditEntry.seq.desc()))
    found: list[dict] = []
    with session(settings.catalog_url) as s:
        for entry in s.scalars(query.execution_options(yield_per=500)):
            if provided(entry):
                found.append(public_entry(entry))
                if len(found) >= limit:
                    break
    return found
