"""The audit log: who read, downloaded, queried or administered what, as a keyed chain that shows tampering."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
from functools import cache
from pathlib import Path

from sqlalchemy import JSON, DateTime, Integer, String, Text, bindparam, cast, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, Dataset, engine, init_db, session, utcnow
from catalog.identity import Identity, caller, may_see_agency
from hub.keys import home_key

__all__ = [
    "CONFIGURATION_ACTIONS", "GENESIS", "KEY_ENV", "KEY_FILE", "PROBLEMS", "READ_ACTIONS", "AuditEntry", "AuditHead",
    "configuration", "public_entry", "read", "recent", "record", "record_many", "router", "verify", "who_accessed", "witness_path",
]

GENESIS = "0" * 64  # the prev_hash of the first entry
KEY_ENV = "HUB_AUDIT_KEY"
KEY_FILE = "secrets/audit.key"  # in the hub home, made once (0600) when HUB_AUDIT_KEY is not set
# What counts as accessing a dataset's data; the quarantine holds records as received, personal data included.
# `exchange.call`: a service bus call that read a dataset (exchange.server's message log; its dataset is set only
# when the call reached the data, and a looked-up key is named by its pseudonym).
READ_ACTIONS = ("rows.read", "download", "sql.query", "quarantine.read", "exchange.call")
_LOCK_KEY = 0x6875_6261_7564  # "hubaud": the PostgreSQL advisory lock that serializes appends
# A source registration or a standard, each a file: (added, changed, removed).
CONFIGURATION_ACTIONS = {"source": ("source.register", "source.change", "source.remove"),
                         "standard": ("standard.add", "standard.change", "standard.remove")}
# What `verify` can find, and what each means (for people: `hub audit verify` prints it).
PROBLEMS = {
    "changed": "its fields do not match its MAC under this hub's audit key: the entry was edited, or the log was "
               "written with another key (check HUB_AUDIT_KEY, or secrets/audit.key in the hub home)",
    "moved": "its MAC was made for another position: entries were reordered, or deleted and renumbered",
    "unkeyed": "a plain SHA-256 hash where a MAC under the audit key belongs: rewritten by someone without the key",
    "missing before": "seq has a gap: entries before it were deleted",
    "unlinked": "its prev_hash is not the previous entry's MAC: an entry before it was replaced or deleted",
    "missing at end": "the log ends before the last entry the hub wrote: its tail was cut",
    "head mismatch": "the head row does not name the last entry: entries were not written by the hub",
    "head changed": "the head row's MAC does not match under the audit key: the head was rewritten",
    "rewritten": "this is not the entry the witness file saw there: the log was cut and written again, or replaced",
    "no key": "there is no audit key: set HUB_AUDIT_KEY, or restore secrets/audit.key in the hub home",
    "no witness": "the witness file is missing from the hub home, so a cut tail cannot be seen: restore it (or let "
                  "the next entry make a new one, if this home is new)",
    "witness unreadable": "the witness file in the hub home cannot be read: restore it from a backup",
}


class AuditEntry(Base):
    """One audited act. `hash` is the HMAC-SHA256 of every other column under the audit key, `prev_hash` (the
    previous entry's) included, so entries form one chain that only the key's holder can write.

    Entries written before the hub keyed its log carry a plain SHA-256 instead: `verify` accepts them only before
    the first keyed entry, whose MAC then covers them all through its `prev_hash`.

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
    hash: Mapped[str] = mapped_column(String(64))  # the MAC (a plain SHA-256 in entries from before the key)


class AuditHead(Base):
    """The last entry's seq and MAC (one row), written with every append, and its own MAC under the audit key.

    The chain alone cannot show that its last entries were deleted; the head can, unless it is set back to an
    earlier state the hub wrote: the witness file (`witness_path`) catches that.
    """

    __tablename__ = "hub_audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None in logs from before the key


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _fields(e: AuditEntry, seq=None) -> dict:
    return {"seq": e.seq if seq is None else seq, "at": e.at.isoformat(timespec="microseconds"), "actor": e.actor,
            "role": e.role, "action": e.action, "dataset": e.dataset, "details": e.details, "client": e.client,
            "prev_hash": e.prev_hash}


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _entry_mac(key: bytes, e: AuditEntry) -> str:
    return _mac(key, _canonical(_fields(e)))


def _plain_hash(e: AuditEntry) -> str:
    """What the hub wrote before its log was keyed, and what anyone can compute."""
    return hashlib.sha256(_canonical(_fields(e)).encode()).hexdigest()


def _head_mac(key: bytes, seq: int, last: str) -> str:
    return _mac(key, _canonical({"head": {"seq": seq, "hash": last}}))


def _written_as(key: bytes, e: AuditEntry, last_seq: int) -> int | None:
    """The seq an entry's MAC was made for, when not its own: where a reordered entry came from."""
    marker = "\x00seq\x00"
    parts = _canonical(_fields(e, seq=marker)).split(json.dumps(marker))
    if len(parts) != 2:  # the marker inside a field too: give up rather than guess
        return None
    for seq in range(1, last_seq + 1):
        if hmac.compare_digest(_mac(key, f"{parts[0]}{seq}{parts[1]}"), e.hash):
            return seq
    return None


def _key(settings, create: bool = True) -> bytes | None:
    return home_key(Path(settings.home), KEY_ENV, KEY_FILE, create=create)


@cache
def _catalog_name(url: str) -> str:
    """The catalog database's URL without its password or query (where libpq also takes a password)."""
    parsed = make_url(url)
    return parsed.difference_update_query(list(parsed.query)).render_as_string(hide_password=True)


def witness_path(settings) -> Path:
    """The witness file of this catalog in the hub home: one per catalog database (named by a hash of its URL
    without credentials), since a home may be pointed at several (HUB_CATALOG_URL)."""
    return _witness_path(str(settings.home), settings.catalog_url)


@cache
def _witness_path(home: str, url: str) -> Path:
    name = hashlib.sha256(_catalog_name(url).encode()).hexdigest()[:16]
    return Path(home) / "secrets" / f"audit-{name}.witness"


def _read_witness(path: Path) -> tuple[int, str] | None | str:
    """(seq, MAC) of the last entry the witness saw; None without a file; "unreadable" if it cannot be read."""
    try:
        found = json.loads(path.read_text())
        return int(found["seq"]), str(found["mac"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return "unreadable"


def _write_witness(settings, path: Path, seq: int, mac: str) -> None:
    """Replace the witness atomically: a new 0600 file, flushed to disk, renamed over the old one."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"catalog": _catalog_name(settings.catalog_url), "seq": seq, "mac": mac}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class AppendLock:
    """The exclusive lock (flock) that the processes of one hub home hold to append: taken before the database's
    lock and held until the witness is written, so witnesses are written in the order of their entries.
    `acquire` may be called from one thread and `release` from another (the service bus waits for it off its
    event loop)."""

    def __init__(self, settings) -> None:
        self.path = witness_path(settings).with_suffix(".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing releases the lock

    def __enter__(self) -> AppendLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


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
    init_db(url)  # creates the audit tables too (and a head's `mac` an older catalog lacks)


def record(settings, actor: str, role: str, action: str, *, dataset: str | None = None,
           details: dict | None = None, client: str | None = None) -> int:
    """Append one entry and return its seq. A `sql` key in `details` is stored as `sql_sha256` and `sql_length`.

    Appends from many processes (API workers, Airflow tasks) stay one chain: each holds a database-wide write
    lock from reading the head to committing (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), so no
    two entries get the same seq or the same predecessor. The processes of one hub home also hold a lock file
    around that, until the witness names the new entry.

    The witness moves forward only from an entry the chain still holds: after a cut tail or a replaced log it
    stays where it was, and `verify` keeps saying so however many entries come after.
    """
    return record_many(settings, [dict(actor=actor, role=role, action=action, dataset=dataset, details=details,
                                       client=client)])[0]


# The statements of every append, built once (the service bus appends on every call).
_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
_HASH_AT = select(AuditEntry.hash).where(AuditEntry.seq == bindparam("seq"))
_MOVE_HEAD = AuditHead.__table__.update().where(AuditHead.id == 1).values(
    seq=bindparam("seq"), hash=bindparam("hash"), mac=bindparam("mac"))


def record_many(settings, entries: list[dict], *, locked: bool = False) -> list[int]:
    """Append `entries` (each the keyword arguments of `record`, with actor, role and action) in this order, in
    one transaction, and return their seqs: what `record` does for one, at the cost of one commit for all (the
    service bus's message log commits the calls that wait at the same moment together). `locked`: the caller
    holds the home's AppendLock."""
    _ready(settings.catalog_url)
    key = _key(settings)
    witness = witness_path(settings)
    with (contextlib.nullcontext() if locked else AppendLock(settings)):
        witnessed = _read_witness(witness)
        eng = engine(settings.catalog_url)
        # Core statements on one connection, not the ORM: the service bus appends on every call.
        with eng.connect() as con:
            if eng.dialect.name == "sqlite":
                con.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, not at the first INSERT
            else:
                con.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
            head = con.execute(_HEAD).first()
            forward = witnessed is None or (
                isinstance(witnessed, tuple) and con.scalar(_HASH_AT, {"seq": witnessed[0]}) == witnessed[1])
            seq, last = (head.seq, head.hash) if head else (0, GENESIS)
            added = []
            for e in entries:
                entry = AuditEntry(seq=seq + 1, at=utcnow(), actor=e["actor"], role=e["role"], action=e["action"],
                                   dataset=e.get("dataset"), details=_safe_details(e.get("details")),
                                   client=e.get("client"), prev_hash=last)
                entry.hash = _entry_mac(key, entry)
                seq, last = entry.seq, entry.hash
                added.append(entry)
            columns = [c.name for c in AuditEntry.__table__.columns]
            con.execute(AuditEntry.__table__.insert(), [{c: getattr(entry, c) for c in columns} for entry in added])
            moved = {"seq": seq, "hash": last, "mac": _head_mac(key, seq, last)}
            if head is None:
                con.execute(AuditHead.__table__.insert().values(id=1, **moved))
            else:
                con.execute(_MOVE_HEAD, moved)
            con.commit()
        # After the commit: a witness ahead of the log would be a false alarm forever. A crash just here leaves
        # it one entry behind, which the next append mends.
        if forward and added:
            _write_witness(settings, witness, added[-1].seq, added[-1].hash)
        return [entry.seq for entry in added]


def read(settings, who: Identity, client: str | None, action: str, dataset: str | None, details: dict) -> int:
    """Record that `who` read data (`action` one of READ_ACTIONS) from address `client`; see `record`."""
    return record(settings, who.name or "anonymous", who.role or "public", action, dataset=dataset,
                  details=details, client=client)


def configuration(settings, actor: str, role: str, client: str | None = None) -> list[int]:
    """Append an entry for each source registration (`HUB_REGISTRY`) and standard (`HUB_STANDARDS`)
    added, changed or removed since the log last saw it; return their seqs.

    Registrations and standards are files, written and reviewed in git. The hub calls this whenever it is about
    to act on them (a run, `hub serve`, `hub sources ...`), so the log holds each version of each file (its
    SHA-256) from the first time it took effect, with who ran the hub then.
    """
    import hashlib as _hashlib

    from schemas.standards import standards_dir

    _ready(settings.catalog_url)
    files = {("source", p.name): p for p in sorted(settings.registry.glob("*.yaml"))}
    files |= {("standard", p.name): p for p in sorted(standards_dir().glob("*.json"))}
    current = {key: _hashlib.sha256(path.read_bytes()).hexdigest() for key, path in files.items()}
    kinds = {action: kind for kind, actions in CONFIGURATION_ACTIONS.items() for action in actions}
    seen: dict[tuple[str, str], str | None] = {}
    with session(settings.catalog_url) as s:
        for action, details in s.execute(select(AuditEntry.action, AuditEntry.details)
                                         .where(AuditEntry.action.in_(kinds)).order_by(AuditEntry.seq)):
            seen[(kinds[action], details["file"])] = details.get("sha256")
    entries = []
    for key in sorted(set(current) | set(seen)):
        kind, name = key
        added, changed, removed = CONFIGURATION_ACTIONS[kind]
        now, before = current.get(key), seen.get(key)
        if now == before:
            continue
        action = removed if now is None else added if before is None else changed
        details = {"file": name, "sha256": now, **({"previous_sha256": before} if before else {})}
        entries.append(dict(actor=actor, role=role, action=action, details=details, client=client))
    return record_many(settings, entries) if entries else []  # one transaction for all


def verify(settings) -> dict:
    """Walk the chain in seq order, then check the head and the witness. What each wall catches, and what not:

    1. Each entry's `hash` is an HMAC-SHA256 of all its fields, `seq` and `prev_hash` included, under a key that
       is not in the catalog database (HUB_AUDIT_KEY, else `secrets/audit.key` in the hub home). Catches an
       edited entry, an inserted or forged one, two entries swapped (`moved`), and any rewrite of the chain by
       someone without the key, whether with plain SHA-256 (`unkeyed`) or with a key of their own (`changed`).
    2. The chain (`prev_hash` inside the MAC, `seq` without gaps) catches an entry deleted from the middle.
    3. The head row (last seq and MAC, itself MACed) catches the last entries deleted when the head is left as
       it was or forged. It cannot catch a rollback to an earlier state the hub did write (entries cut and the
       head row copied back from before): nothing inside the database tells an old consistent state from now.
    4. The witness (`witness_path`), a 0600 file in the hub home next to the key, holds the last seq and MAC an
       append wrote, and only moves forward; the chain must hold that entry. Catches the rollback above, the
       whole log deleted, and a log replaced by another. It misses appends whose process died between its
       commit and the witness write, and appends by processes of another hub home (each home has its own).

    None of them stops someone who has the key and can write the catalog database (and, for the witness, the
    home): they can rewrite everything consistently. Keep the key and the witness where the database's
    administrators cannot write, and back them up apart from the database. A catalog restored from an older
    backup, or made anew, is a cut or replaced log to the witness: move the witness file away once you know why.

    Intact: `{"ok": True, "entries": n, "unkeyed": k}`, k the entries from before the hub keyed its log (sealed
    by the first keyed one). Else `{"ok": False, "entries": n, "first_bad": seq or None, "problem": p,
    "detail": text}`, p one of PROBLEMS; seq None when the fault is not in one entry (no key, no witness).
    """
    _ready(settings.catalog_url)
    key = _key(settings, create=False)  # a new key here would only make every entry look changed
    witness = witness_path(settings)
    witnessed = _read_witness(witness)  # before the log: the chain only grows, so it must hold what this names
    with session(settings.catalog_url) as s:
        # One snapshot for the entries and the head, while others append.
        if engine(settings.catalog_url).dialect.name == "sqlite":
            s.connection().exec_driver_sql("BEGIN")
        else:
            s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        count = s.scalar(select(func.count()).select_from(AuditEntry))
        last_seq = s.scalar(select(func.max(AuditEntry.seq))) or 0

        def bad(seq: int | None, problem: str, detail: str | None = None) -> dict:
            return {"ok": False, "entries": count, "first_bad": seq, "problem": problem,
                    "detail": detail or PROBLEMS[problem]}

        expected_seq, prev_hash, keyed, unkeyed, at_witness = 1, GENESIS, 0, 0, None
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=1000))
        for e in entries:
            if key is not None and hmac.compare_digest(e.hash, _entry_mac(key, e)):
                keyed += 1
            elif e.hash == _plain_hash(e) and not keyed:
                unkeyed += 1  # from before the key; the first keyed entry's MAC covers it through prev_hash
            elif e.hash == _plain_hash(e):
                return bad(e.seq, "unkeyed", PROBLEMS["unkeyed"] + ", after entries under the key")
            elif key is None:
                return bad(None, "no key")
            elif (moved := _written_as(key, e, last_seq)) is not None:
                return bad(e.seq, "moved", f"its MAC was made for entry {moved}: entries were reordered, or "
                                           "deleted and renumbered")
            else:
                return bad(e.seq, "changed")
            if e.seq != expected_seq:
                return bad(e.seq, "missing before")
            if e.prev_hash != prev_hash:
                return bad(e.seq, "unlinked")
            if isinstance(witnessed, tuple) and e.seq == witnessed[0]:
                at_witness = e.hash
            expected_seq, prev_hash = e.seq + 1, e.hash
        last_seq = expected_seq - 1
        if count and not keyed:
            return bad(1, "unkeyed", "the whole log is a plain SHA-256 chain: "
                       + ("yet this hub's witness saw entries under the audit key, so it was rewritten by someone "
                          "without the key" if isinstance(witnessed, tuple) else
                          "written before the hub keyed its audit log (the next entry the hub records seals it), "
                          "or rewritten by someone without the audit key"))
        head = s.get(AuditHead, 1)
        head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
        if head_seq > last_seq:
            return bad(last_seq + 1, "missing at end",
                       f"the head row names entry {head_seq}, the log ends at entry {last_seq}: its tail was cut")
        if (head_seq, head_hash) != (last_seq, prev_hash):
            return bad(min(head_seq + 1, last_seq), "head mismatch")
        # Past here, with keyed entries, the last one is keyed (no plain entry may follow a keyed one).
        if keyed and not (head.mac and hmac.compare_digest(head.mac, _head_mac(key, head.seq, head.hash))):
            return bad(last_seq, "head changed")
    if witnessed == "unreadable":
        return bad(None, "witness unreadable")
    if witnessed is None:
        return bad(None, "no witness") if keyed else {"ok": True, "entries": count, "unkeyed": unkeyed}
    witnessed_seq, witnessed_mac = witnessed
    if witnessed_seq > last_seq:
        return bad(last_seq + 1, "missing at end", f"the witness file saw entry {witnessed_seq}, the log ends at "
                                                   f"entry {last_seq}: its tail was cut")
    if at_witness != witnessed_mac:
        return bad(witnessed_seq, "rewritten")
    return {"ok": True, "entries": count, "unkeyed": unkeyed}


def public_entry(e: AuditEntry) -> dict:
    """An entry as the hub shows it (API, portal): its fields, the details without a SQL text's hash and length."""
    details = {k: v for k, v in e.details.items() if k not in ("sql_sha256", "sql_length")}
    return {"seq": e.seq, "at": e.at.isoformat(timespec="seconds") + "Z", "actor": e.actor, "role": e.role,
            "action": e.action, "dataset": e.dataset, "client": e.client, "details": details}


def who_accessed(settings, dataset_id: str, since: dt.datetime | None = None) -> list[dict]:
    """Every read of the dataset's data (rows, downloads, SQL queries that read it, service bus lookups), oldest
    first."""
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
    return [public_entry(e) for e in found
            if e.dataset == dataset_id or dataset_id in (e.details.get("datasets") or [])]


def recent(settings, limit: int = 50) -> list[dict]:
    """The last `limit` entries, oldest first."""
    _ready(settings.catalog_url)
    with session(settings.catalog_url) as s:
        found = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)).all()
    return [public_entry(e) for e in reversed(found)]


def router(settings):
    """The access-log endpoint, for `app.include_router` in the catalog API: stewards see every dataset's, an
    agency its own datasets' (an integrated dataset has no agency: stewards only)."""
    from fastapi import APIRouter, Depends, HTTPException, Query

    from catalog.access import listed
    from serving.models import AUTH, errors

    _ready(settings.catalog_url)
    api = APIRouter(tags=["audit"])
    current = caller(settings)

    @api.get("/api/datasets/{dataset_id}/access-log", openapi_extra=AUTH, responses=errors(401, 403, 404, 429))
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
