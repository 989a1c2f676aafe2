"""The audit log: who read, downloaded, queried or administered what, as a hash chain that shows tampering."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import cache

from sqlalchemy import JSON, DateTime, Integer, String, Text, cast, func, select
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, Dataset, engine, init_db, session, utcnow
from catalog.identity import Identity, caller, may_see_agency

__all__ = [
    "CONFIGURATION_ACTIONS", "GENESIS", "READ_ACTIONS", "AuditEntry", "AuditHead", "configuration", "read", "recent",
    "record", "router", "verify", "who_accessed",
]

GENESIS = "0" * 64  # the prev_hash of the first entry
READ_ACTIONS = ("rows.read", "download", "sql.query")  # what counts as accessing a dataset's data
_LOCK_KEY = 0x6875_6261_7564  # "hubaud": the PostgreSQL advisory lock that serializes appends
# A source registration or a standard, each a file: (added, changed, removed).
CONFIGURATION_ACTIONS = {"source": ("source.register", "source.change", "source.remove"),
                         "standard": ("standard.add", "standard.change", "standard.remove")}


class AuditEntry(Base):
    """One audited act. `hash` covers every other column, `prev_hash` included, so entries form one chain.

    `details` never holds a SQL text: an analyst may type personal data (a NIK in a WHERE clause) into a
    query, so `record` keeps only the text's SHA-256 and length, next to the datasets the query read.
    """

    __tablename__ = "hub_audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 1, 2, 3, ... no gaps
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)  # UTC
    actor: Mapped[str] = mapped_column(String(200))  # a user name, `anonymous` or `system`
    role: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))  # rows.read | download | sql.query | user.create | ...
    dataset: Mapped[str | None] = mapped_column(String(64), index=True)
    details: Mapped[dict] = mapped_column(JSON)  # columns, row count, datasets read, query hash and length
    client: Mapped[str | None] = mapped_column(String(200))  # the address the request came from
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The last entry's seq and hash (one row), written with every append.

    The chain alone cannot show that its last entries were deleted; the head can. Someone who can write both
    tables can still truncate the log and rewrite the head: against that, heads must be copied somewhere that
    person cannot write.
    """

    __tablename__ = "hub_audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _hash(e: AuditEntry) -> str:
    fields = {"seq": e.seq, "at": e.at.isoformat(timespec="microseconds"), "actor": e.actor, "role": e.role,
              "action": e.action, "dataset": e.dataset, "details": e.details, "client": e.client,
              "prev_hash": e.prev_hash}
    return hashlib.sha256(_canonical(fields).encode()).hexdigest()


def _safe_details(details: dict | None) -> dict:
    """The details as they are stored and hashed: plain JSON, a SQL text replaced by its SHA-256 and length."""
    details = json.loads(_canonical(details or {}))
    sql = details.pop("sql", None)
    if sql is not None:
        details["sql_sha256"] = hashlib.sha256(str(sql).encode()).hexdigest()
        details["sql_length"] = len(str(sql))
    return details


@cache
def _ready(url: str) -> None:
    init_db(url)  # creates the audit tables too: importing this module put them on Base.metadata


def record(settings, actor: str, role: str, action: str, *, dataset: str | None = None,
           details: dict | None = None, client: str | None = None) -> int:
    """Append one entry and return its seq. A `sql` key in `details` is stored as `sql_sha256` and `sql_length`.

    Appends from many processes (API workers, Airflow tasks) stay one chain: each holds a database-wide write
    lock from reading the head to committing, so no two entries get the same seq or the same predecessor.
    """
    _ready(settings.catalog_url)
    with session(settings.catalog_url) as s:
        if engine(settings.catalog_url).dialect.name == "sqlite":
            s.connection().exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, not at the first INSERT
        else:
            s.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
        head = s.get(AuditHead, 1)
        entry = AuditEntry(seq=head.seq + 1 if head else 1, at=utcnow(), actor=actor, role=role, action=action,
                           dataset=dataset, details=_safe_details(details), client=client,
                           prev_hash=head.hash if head else GENESIS)
        entry.hash = _hash(entry)
        s.add(entry)
        if head is None:
            s.add(AuditHead(id=1, seq=entry.seq, hash=entry.hash))
        else:
            head.seq, head.hash = entry.seq, entry.hash
        s.commit()
        return entry.seq


def read(settings, who: Identity, client: str | None, action: str, dataset: str | None, details: dict) -> int:
    """Record that `who` read data (`action` one of READ_ACTIONS) from address `client`; see `record`."""
    return record(settings, who.name or "anonymous", who.role or "public", action, dataset=dataset,
                  details=details, client=client)


def configuration(settings, actor: str, role: str, client: str | None = None) -> list[int]:
    """Append an entry for each source registration (`HUB_REGISTRY`) and standard (`schemas/standards/`)
    added, changed or removed since the log last saw it; return their seqs.

    Registrations and standards are files, written and reviewed in git. The hub calls this whenever it is about
    to act on them (a run, `hub serve`, `hub sources ...`), so the log holds each version of each file (its
    SHA-256) from the first time it took effect, with who ran the hub then.
    """
    import hashlib as _hashlib

    from schemas.standards import STANDARDS_DIR

    _ready(settings.catalog_url)
    files = {("source", p.name): p for p in sorted(settings.registry.glob("*.yaml"))}
    files |= {("standard", p.name): p for p in sorted(STANDARDS_DIR.glob("*.json"))}
    current = {key: _hashlib.sha256(path.read_bytes()).hexdigest() for key, path in files.items()}
    kinds = {action: kind for kind, actions in CONFIGURATION_ACTIONS.items() for action in actions}
    seen: dict[tuple[str, str], str | None] = {}
    with session(settings.catalog_url) as s:
        for action, details in s.execute(select(AuditEntry.action, AuditEntry.details)
                                         .where(AuditEntry.action.in_(kinds)).order_by(AuditEntry.seq)):
            seen[(kinds[action], details["file"])] = details.get("sha256")
    appended = []
    for key in sorted(set(current) | set(seen)):
        kind, name = key
        added, changed, removed = CONFIGURATION_ACTIONS[kind]
        now, before = current.get(key), seen.get(key)
        if now == before:
            continue
        action = removed if now is None else added if before is None else changed
        details = {"file": name, "sha256": now, **({"previous_sha256": before} if before else {})}
        appended.append(record(settings, actor, role, action, details=details, client=client))
    return appended


def verify(settings) -> dict:
    """Walk the chain in seq order: `{"ok": True, "entries": n}`, or the first bad entry and its problem.

    Problems: `changed` (its fields do not match its hash), `missing before` (a gap in seq: entries deleted),
    `unlinked` (its prev_hash is not the previous entry's hash: that entry was rewritten, or entries were
    deleted and renumbered), `missing at end` (the head names later entries), `head mismatch` (entries not
    written through `record`, or a rewritten last entry).
    """
    _ready(settings.catalog_url)
    with session(settings.catalog_url) as s:
        count = s.scalar(select(func.count()).select_from(AuditEntry))

        def bad(seq: int, problem: str) -> dict:
            return {"ok": False, "entries": count, "first_bad": seq, "problem": problem}

        expected_seq, prev_hash = 1, GENESIS
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=1000))
        for e in entries:
            if e.hash != _hash(e):
                return bad(e.seq, "changed")
            if e.seq != expected_seq:
                return bad(e.seq, "missing before")
            if e.prev_hash != prev_hash:
                return bad(e.seq, "unlinked")
            expected_seq, prev_hash = e.seq + 1, e.hash
        last_seq = expected_seq - 1
        head = s.get(AuditHead, 1)
        head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
        if head_seq > last_seq:
            return bad(last_seq + 1, "missing at end")
        if (head_seq, head_hash) != (last_seq, prev_hash):
            return bad(min(head_seq + 1, last_seq), "head mismatch")
    return {"ok": True, "entries": count}


def _public(e: AuditEntry) -> dict:
    details = {k: v for k, v in e.details.items() if k not in ("sql_sha256", "sql_length")}
    return {"seq": e.seq, "at": e.at.isoformat(timespec="seconds") + "Z", "actor": e.actor, "role": e.role,
            "action": e.action, "dataset": e.dataset, "client": e.client, "details": details}


def who_accessed(settings, dataset_id: str, since: dt.datetime | None = None) -> list[dict]:
    """Every read of the dataset's data (rows, downloads, SQL queries that read it), oldest first."""
    _ready(settings.catalog_url)
    if since is not None and since.tzinfo is not None:  # the log keeps UTC without a zone
        since = since.astimezone(dt.timezone.utc).replace(tzinfo=None)
    # A query may read several datasets: they are listed in its details, which are matched as text first
    # (the same on SQLite and PostgreSQL) and then exactly.
    named = (AuditEntry.action == "sql.query") & cast(AuditEntry.details, Text).like(f'%"{dataset_id}"%')
    query = select(AuditEntry).where(AuditEntry.action.in_(READ_ACTIONS), (AuditEntry.dataset == dataset_id) | named)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    with session(settings.catalog_url) as s:
        found = s.scalars(query.order_by(AuditEntry.seq)).all()
    return [_public(e) for e in found
            if e.dataset == dataset_id or dataset_id in (e.details.get("datasets") or [])]


def recent(settings, limit: int = 50) -> list[dict]:
    """The last `limit` entries, oldest first."""
    _ready(settings.catalog_url)
    with session(settings.catalog_url) as s:
        found = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)).all()
    return [_public(e) for e in reversed(found)]


def router(settings):
    """The access-log endpoint, for `app.include_router` in the catalog API: stewards see every dataset's, an
    agency its own datasets' (an integrated dataset has no agency: stewards only)."""
    from fastapi import APIRouter, Depends, HTTPException, Query

    from catalog.access import listed

    _ready(settings.catalog_url)
    api = APIRouter(tags=["audit"])
    current = caller(settings)

    @api.get("/api/datasets/{dataset_id}/access-log")
    def access_log(dataset_id: str, since: dt.datetime | None = Query(None, description="ISO 8601 time"),
                   identity: Identity = Depends(current)) -> dict:
        """Who read this dataset's rows, downloaded it or queried it with SQL, when and from where."""
        if identity.anonymous:
            raise HTTPException(401, "the access log needs a token: Authorization: Bearer TOKEN",
                                headers={"WWW-Authenticate": "Bearer"})
        with session(settings.catalog_url) as s:
            d = s.get(Dataset, dataset_id)
            if d is None or dataset_id not in listed(settings, identity):  # rahasia: unknown to the uncleared
                raise HTTPException(404, f"no dataset {dataset_id!r}")
            agency = d.agency_code
        if not may_see_agency(identity, agency):
            raise HTTPException(403, f"only stewards and the agency that owns {dataset_id!r} see who accessed it")
        return {"dataset": dataset_id, "entries": who_accessed(settings, dataset_id, since)}

    return api
