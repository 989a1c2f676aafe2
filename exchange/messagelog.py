"""The service bus's message log: one entry per call in the audit log's keyed chain, committed before the call is
answered, the calls that finish at the same moment sharing one commit.

Writing each call's entry in its own transaction would make every call wait for its own commit, one after the
other (the chain allows one writer at a time). The server answers calls on an event loop: a call's entry waits in
its loop's group; one commit at a time per loop first waits for the home's append lock (catalog.audit.AppendLock,
which the other server processes and Airflow's tasks take too) in a thread, the loop answering other calls
meanwhile, then commits every entry waiting by then (`catalog.audit.record_many`) on the loop itself. No call is
answered before its entry is committed, and a failed commit fails every call of the group (X-Road's
LoggingFailed).

The commit runs on the loop, not in a thread: it is short (one transaction of a few rows), and a thread taking
turns at the interpreter with a busy loop waited several switch intervals at each of the commit's many steps.
Waiting for the lock is one step, spent in the kernel.
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
        self.committing: asyncio.Task | None = None

    def add(self, entry: dict) -> asyncio.Future:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((entry, done))
        if self.committing is None:
            self.committing = asyncio.get_running_loop().create_task(self._commit())
        return done

    async def _commit(self) -> None:
        from catalog import audit

        try:
            while self.waiting:
                group: list = []
                try:
                    lock = audit.AppendLock(self.settings)
                    await asyncio.to_thread(lock.acquire)
                    try:
                        # Everything that came while the lock was awaited goes in this commit.
                        group, self.waiting = self.waiting[:MAX_GROUP], self.waiting[MAX_GROUP:]
                        audit.record_many(self.settings, [entry for entry, _ in group], locked=True)
                    finally:
                        lock.release()
                except Exception as e:  # noqa: BLE001 (each call of the group raises it)
                    if not group:  # the lock could not be had: every call waiting fails
                        group, self.waiting = self.waiting, []
                    _settle(group, e)
                else:
                    _settle(group, None)
        finally:
            self.committing = None


def _settle(group: list, error: Exception | None) -> None:
    for _, done in group:
        if not done.done():
            done.set_exception(error) if error is not None else done.set_result(None)


_GROUPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> {(catalog, home): _Group}


async def append(settings, actor: str, role: str, action: str, *, dataset: str | None = None,
                 details: dict | None = None, client: str | None = None) -> None:
    """`catalog.audit.record`'s entry, committed with the others waiting on this event loop before this returns;
    raises what the commit raised."""
    groups = _GROUPS.setdefault(asyncio.get_running_loop(), {})
    key = (settings.catalog_url, str(settings.home))
    group = groups.get(key) or groups.setdefault(key, _Group(settings))
    await group.add(dict(actor=actor, role=role, action=action, dataset=dataset, details=details, client=client))


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
