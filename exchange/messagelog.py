"""The service bus's message log: one entry per call in the audit log's keyed chain, committed before the call is
answered, the calls that finish at the same moment sharing one commit.

Writing each call's entry in its own transaction would make every call wait for its own disk sync, one after
the other (the chain allows one writer at a time): under ten concurrent consumers most of a call's time went
there. Here the first call to find the writer free commits every entry waiting by then, in one transaction
(`catalog.audit.record_many`), and the calls whose entries it took return when it is done; no call is answered
before its entry is committed, and a failed commit fails every call of the group (X-Road's LoggingFailed).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["calls_to", "write"]

MAX_GROUP = 256  # entries in one commit, at most


@dataclass
class _Waiting:
    entry: dict
    done: bool = False
    error: BaseException | None = None


@dataclass
class _Log:
    waiting: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards `waiting`
    writer: threading.Lock = field(default_factory=threading.Lock)  # one commit at a time


_LOGS: dict[tuple, _Log] = {}
_LOGS_LOCK = threading.Lock()


def write(settings, actor: str, role: str, action: str, *, dataset: str | None = None,
          details: dict | None = None, client: str | None = None) -> None:
    """`catalog.audit.record`'s entry, committed (with whatever else waits) before this returns; raises what the
    commit raised."""
    from catalog import audit

    with _LOGS_LOCK:
        log = _LOGS.setdefault((settings.catalog_url, str(settings.home)), _Log())
    mine = _Waiting(dict(actor=actor, role=role, action=action, dataset=dataset, details=details, client=client))
    with log.lock:
        log.waiting.append(mine)
    while not mine.done:
        with log.writer:
            if mine.done:  # committed by the call that held the writer
                break
            with log.lock:
                group, log.waiting = log.waiting[:MAX_GROUP], log.waiting[MAX_GROUP:]
            try:
                audit.record_many(settings, [w.entry for w in group])
            except BaseException as e:  # noqa: BLE001 (each call of the group raises it)
                for w in group:
                    w.error = e
            for w in group:
                w.done = True
    if mine.error is not None:
        raise mine.error


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
