"""The service bus's rate limits and circuit breakers, shared by every process of one hub home on one machine.

`hub serve` runs several worker processes for one hub home: a limit kept in each process's memory would let a
consumer make `requests` calls per worker, and a provider found down by one worker would still be called by the
others. Every call checks both, so they must be cheap (microseconds, less than a SQLite transaction): the state
lives in one small file (`limits_file`), mapped into each process's memory, a fixed table of slots that every
operation reads and writes under an exclusive `flock` of the file (plus a thread lock: `flock` belongs to the open
file, which the threads of one process share).

The file: a header (magic, format version, table size, slot size and the machine's boot id), the number of slots
in use, then SLOTS slots of 40 bytes, found by open addressing (linear probing) from a 16-byte BLAKE2b digest of
the slot's key, namespaced by kind ("rate", consumer, service / "circuit", origin). A slot holds a time and, for a
circuit, the failures in a row and the pid of the process whose call is probing the provider. Times are
`time.monotonic()`, CLOCK_MONOTONIC, the same clock in every process of the machine until it restarts; a file
written before a restart (another boot id) holds times of another clock and is rebuilt empty, as is a file of
another format, size or of anything else (a foreign or corrupt file is never read as state). Rebuilding is done
under the lock by whichever process finds the header wrong first; the file is grown, never cut: a process that
maps it would die of SIGBUS reading past a cut end. Losing the state forgets limits and open circuits, the
state's only harm: a consumer gets a fresh burst, a provider that is down is tried again.

The table is bounded: at most MAX_USED slots (three quarters, so probing stays short) are in use. A new key that
finds it full first reclaims the slots whose state is what a new key would have anyway (a rate limit whose
theoretical arrival time has passed, a circuit closed with no failures), by rebuilding the table from the slots
still live. If nothing can be reclaimed (more live keys than MAX_USED: a deployment with more consumer-service
pairs calling within their windows than the table holds), the key is kept in this process's memory, as every
limit was before, and a warning is logged once per process: its limit then holds per process (at most one burst
per worker) and its circuit opens per process. Refusing such calls would turn a table too small into an outage
of every consumer it cannot hold; admitting them uncounted would drop the limit altogether; per-process state is
the behaviour the hub had, and the warning says to enlarge SLOTS. The search for a full table's reclaimable slots
costs a pass over the table: when it finds nothing it is not tried again for RECLAIM_PAUSE seconds.

A process opens and maps the file once per path, on its first operation. A forked child must not use the file
it inherited: a `flock` belongs to the open file description, which the child shares with its parent, so the two
would not exclude each other; after a fork the child opens the file again (and takes a new thread lock, which a
thread of the parent may have held at the fork).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import mmap
import os
import struct
import threading
import time
import uuid
from pathlib import Path

__all__ = ["MAX_USED", "SLOTS", "CircuitBreaker", "RateLimiter", "limits_file"]

log = logging.getLogger(__name__)

SLOTS = 8192  # a power of two: a slot's index is its digest's low bits
MAX_USED = SLOTS * 3 // 4  # fuller, linear probing's searches grow long
RECLAIM_PAUSE = 1.0  # seconds between two passes over a full table that found nothing to reclaim

_MAGIC = b"IHLIMITS"
_VERSION = 1
_HEADER = struct.Struct("<8sIII4x16s")  # magic, version, slots, slot size, boot id
_COUNTS = struct.Struct("<I4xd")  # after the header: slots in use, no reclaim pass before this time
_COUNTS_AT = _HEADER.size
_TABLE_AT = 64
_KEY = 16  # the key's digest; all zeros: an empty slot
_STATE = struct.Struct("<B3xii4xd")  # kind, failures in a row, prober's pid, time (TAT or opened at)
_SLOT = _KEY + _STATE.size
_SIZE = _TABLE_AT + SLOTS * _SLOT
_MASK = SLOTS - 1
_EMPTY = bytes(_KEY)

_RATE, _CIRCUIT = 1, 2
_CLOSED = -1.0  # a circuit's opened-at time when it is closed (monotonic times are never negative)
_FRESH_RATE = (_RATE, 0, 0, 0.0)  # a TAT in the past: a full burst
_FRESH_CIRCUIT = (_CIRCUIT, 0, 0, _CLOSED)
_MAX_FAILURES = 2**31 - 1
# A wait this short (or a thousandth of an interval, if less) is none: float sums of intervals (0.1 + 0.1 + ...)
# must not refuse the burst's last call by a rounding error.
_SLACK = 1e-6


def limits_file(settings) -> Path:
    """The file the hub's processes share their rate limits and circuit breakers in: state of the running
    processes, under the home's `run` folder (never backed up)."""
    return Path(settings.home) / "run" / "exchange-limits"


# --- the rate limit (GCRA) ------------------------------------------------------------------------------------


class RateLimiter:
    """Calls per (consumer, service), shared by the processes that use the same file: the generic cell rate
    algorithm (GCRA), one time per key.

    The key's theoretical arrival time (TAT) is when its calls would be due had they come exactly one interval,
    `seconds / requests`, apart. A call is admitted when, counting it, the TAT is at most `seconds` ahead of now;
    it moves the TAT one interval on (from now, if the TAT had passed). This is a token bucket of `requests`
    calls refilled at `requests / seconds` calls a second, and what it guarantees is exactly: calls admitted at
    times t1 <= ... <= tk are at most `requests + (tk - t1) * requests / seconds` (give or take a thousandth
    of a call: rounding errors are forgiven). So at most `requests` at once (the burst), and in the long run the
    rate of the sliding log this replaces, `requests` per `seconds`.

    It is not the sliding log's "at most `requests` in any window of `seconds`": after a burst, capacity comes
    back one call per interval rather than all at once when the burst leaves the window, so a window of `seconds`
    that begins with a full burst can hold up to `2 * requests - 1` calls (the burst, then `requests - 1` more,
    one interval apart). Likewise a refused call is told the seconds until the next call would be admitted: one
    interval after a full burst (`seconds / requests`), where the log said `seconds`. The log's stricter bound
    needs every call's time (up to `requests` per key); GCRA needs one number, which is what lets every process
    share it in a slot of a fixed table.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._table = _table(path)

    def admit(self, consumer: str, service: str, requests: int, seconds: float) -> float | None:
        """None when the call is admitted (and counted), else the seconds until one more would be."""
        if requests < 1 or not seconds > 0:
            raise ValueError(f"a rate limit needs requests >= 1 and seconds > 0, not {requests} in {seconds}")
        return self._table.update(_key("rate", consumer, service), _FRESH_RATE, _admit_rate, requests, seconds)


def _admit_rate(state: tuple, now: float, requests: int, seconds: float) -> tuple[tuple, float | None]:
    interval = seconds / requests
    # From now if the TAT has passed; at most `seconds` ahead, which it only is when the limit was just made
    # tighter (a registration edited): the new limit applies at once, not after the old one's backlog.
    tat = min(max(state[3], now), now + seconds)
    wait = tat + interval - seconds - now
    if wait > min(_SLACK, interval / 1000):
        return state, wait
    return (_RATE, 0, 0, tat + interval), None


# --- the circuit breaker --------------------------------------------------------------------------------------


class CircuitBreaker:
    """Per provider origin (scheme, host and port), shared by the processes that use the same file: after
    `failures` failed calls in a row the circuit opens and calls are refused without reaching the provider for
    `cooldown` seconds; then one call goes through (half-open), in whichever process asks first. Its success
    closes the circuit, its failure opens it for another cool-down. A provider that answers at all, even 4xx or
    an answer that fails the standard, is up: only calls that got no answer, an answer cut short or a 5xx count
    as failures.

    The half-open call is known by its process's pid. A process that dies while its call probes the provider
    (a worker restarted, killed) says neither succeeded, failed nor released: when the pid is no longer a live
    process, the next call becomes the probe, where a breaker in one process's memory died with it. (A pid handed
    to another process meanwhile keeps the probe held until that process ends; the kernel hands pids out again
    only after the rest of pid_max, tens of thousands or more.) The processes must see each other's pids: one
    machine, one pid namespace, as the workers of one `hub serve` do."""

    def __init__(self, path: str | os.PathLike) -> None:
        self._table = _table(path)

    def admit(self, origin: str, cooldown: float) -> float | None:
        """None when a call may go to `origin` now, else the seconds until one may try."""
        return self._table.update(_key("circuit", origin), _FRESH_CIRCUIT, _admit_circuit, cooldown)

    def succeeded(self, origin: str) -> None:
        self._table.update(_key("circuit", origin), _FRESH_CIRCUIT, _succeeded)

    def failed(self, origin: str, failures: int) -> None:
        self._table.update(_key("circuit", origin), _FRESH_CIRCUIT, _failed, failures)

    def released(self, origin: str) -> None:
        """A half-open call ended without a verdict on the provider (refused before it was sent)."""
        self._table.update(_key("circuit", origin), _FRESH_CIRCUIT, _released)


def _admit_circuit(state: tuple, now: float, cooldown: float) -> tuple[tuple, float | None]:
    _, failures, prober, opened_at = state
    if opened_at < 0:
        return state, None
    left = min(opened_at, now) + cooldown - now
    if left > 0:
        return state, left
    if prober and _alive(prober):
        return state, 1.0  # another call is trying the provider: its verdict comes first
    return (_CIRCUIT, failures, os.getpid(), opened_at), None


def _succeeded(state: tuple, now: float) -> tuple[tuple, None]:
    return _FRESH_CIRCUIT, None


def _failed(state: tuple, now: float, threshold: int) -> tuple[tuple, None]:
    _, failures, prober, opened_at = state
    failures = min(failures + 1, _MAX_FAILURES)
    if prober or failures >= threshold:
        opened_at, prober = now, 0
    return (_CIRCUIT, failures, prober, opened_at), None


def _released(state: tuple, now: float) -> tuple[tuple, None]:
    return (_CIRCUIT, state[1], 0, state[3]), None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: a process of another user has it, alive
        return True
    return True


def _expired(state: tuple, now: float) -> bool:
    """Whether a slot holds nothing a new key would not have: it may be reclaimed."""
    kind, failures, prober, at = state
    if kind == _RATE:
        return at <= now
    if kind == _CIRCUIT:
        return failures == 0 and at < 0 and prober == 0
    return True


# --- the shared table -----------------------------------------------------------------------------------------


_digests: dict[tuple, bytes] = {}


def _key(*names: str) -> bytes:
    """The slot key of a kind and its names; digests are kept, a key is asked for on every call."""
    digest = _digests.get(names)
    if digest is None:
        if len(_digests) >= 65536:
            _digests.clear()
        digest = hashlib.blake2b(json.dumps(names).encode(), digest_size=_KEY, person=b"exchange-limits").digest()
        _digests[names] = digest
    return digest


def _boot_id() -> bytes:
    try:
        return uuid.UUID(Path("/proc/sys/kernel/random/boot_id").read_text().strip()).bytes
    except (OSError, ValueError):
        return bytes(16)


class _Table:
    """One process's view of one file: its descriptor and mapping, opened on the first operation."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._header = _HEADER.pack(_MAGIC, _VERSION, SLOTS, _SLOT, _boot_id())
        self._overflow: dict[bytes, tuple] = {}  # keys the full table could not hold: this process's alone
        self._warned = False

    def update(self, digest: bytes, fresh: tuple, change, *args) -> float | None:
        """Apply change(state, now, *args) -> (new state, answer) to the key's state, atomically for every process
        and thread sharing the file; a key never seen has the state `fresh`, and is stored once it differs."""
        with self._lock:
            if self._map is None:
                self._open()
            mm, fd = self._map, self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if mm[:_HEADER.size] != self._header:  # rebuilt by a process of another version, or corrupt
                    self._reset(mm)
                now = time.monotonic()  # read under the lock: the order of the updates is the order of their times
                at, found = self._find(mm, digest)
                if found:
                    state = _STATE.unpack_from(mm, at + _KEY)
                    new, answer = change(state, now, *args)
                    if new != state:
                        _STATE.pack_into(mm, at + _KEY, *new)
                    return answer
                state = self._overflow.get(digest)
                if state is not None:
                    new, answer = change(state, now, *args)
                    self._overflow[digest] = new
                    return answer
                new, answer = change(fresh, now, *args)
                if new != fresh:
                    self._insert(mm, digest, new, now)
                return answer
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _find(self, mm: mmap.mmap, digest: bytes) -> tuple[int, bool]:
        """The offset of the key's slot and True, or of the empty slot where it would go and False (-1 when no
        slot is empty, which only a corrupt count of slots in use allows)."""
        i = int.from_bytes(digest[:4], "little") & _MASK
        for _ in range(SLOTS):
            at = _TABLE_AT + i * _SLOT
            key = mm[at:at + _KEY]
            if key == digest:
                return at, True
            if key == _EMPTY:
                return at, False
            i = (i + 1) & _MASK
        return -1, False

    def _insert(self, mm: mmap.mmap, digest: bytes, state: tuple, now: float) -> None:
        used, reclaim_after = _COUNTS.unpack_from(mm, _COUNTS_AT)
        if used >= MAX_USED and now >= reclaim_after:
            used = self._reclaim(mm, now)
            if used >= MAX_USED:
                _COUNTS.pack_into(mm, _COUNTS_AT, used, now + RECLAIM_PAUSE)
        at = -1
        if used < MAX_USED:
            at, _ = self._find(mm, digest)  # again: a reclaim moves the slots
        if at < 0:
            self._keep_here(digest, state, now, used)
            return
        # The state before the key: a process killed between the two leaves an empty slot, not a key without
        # its state.
        _STATE.pack_into(mm, at + _KEY, *state)
        mm[at:at + _KEY] = digest
        _COUNTS.pack_into(mm, _COUNTS_AT, used + 1, _COUNTS.unpack_from(mm, _COUNTS_AT)[1])

    def _reclaim(self, mm: mmap.mmap, now: float) -> int:
        """Rebuild the table from its slots whose state has not expired; the number of slots then in use. (A
        rebuild, not deletion in place: linear probing cannot empty a slot without moving the ones after it.)"""
        live = []
        for i in range(SLOTS):
            at = _TABLE_AT + i * _SLOT
            key = mm[at:at + _KEY]
            if key != _EMPTY:
                state = _STATE.unpack_from(mm, at + _KEY)
                if not _expired(state, now):
                    live.append((key, state))
        mm[_TABLE_AT:_SIZE] = bytes(_SIZE - _TABLE_AT)
        for key, state in live:
            at, _ = self._find(mm, key)
            _STATE.pack_into(mm, at + _KEY, *state)
            mm[at:at + _KEY] = key
        _COUNTS.pack_into(mm, _COUNTS_AT, len(live), 0.0)
        return len(live)

    def _keep_here(self, digest: bytes, state: tuple, now: float, used: int) -> None:
        if not self._warned:
            self._warned = True
            log.warning("exchange limits: the table of %s holds %d live keys, its most: keys it cannot hold are "
                        "limited in each process alone (raise exchange.limits.SLOTS)", self.path, used)
        if len(self._overflow) >= SLOTS:
            self._overflow = {k: s for k, s in self._overflow.items() if not _expired(s, now)}
        self._overflow[digest] = state

    def _open(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # the first process sizes and initialises it; the others wait
            try:
                if os.fstat(fd).st_size < _SIZE:
                    os.ftruncate(fd, _SIZE)  # grown with zeros; never cut (see the module's docstring)
                mm = mmap.mmap(fd, _SIZE)
                if mm[:_HEADER.size] != self._header:
                    self._reset(mm)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._map = fd, mm

    def _reset(self, mm: mmap.mmap) -> None:
        """An empty table under our header, in place of a new file's zeros or of anything else."""
        if mm[:_HEADER.size] != bytes(_HEADER.size):
            log.info("exchange limits: %s was of another format or boot; its state is dropped", self.path)
        mm[:_SIZE] = bytes(_SIZE)
        mm[:_HEADER.size] = self._header

    def forked(self) -> None:
        """In a forked child: its own thread lock, and its own open file at the next operation."""
        self._lock = threading.Lock()
        if self._map is not None:
            self._map.close()
            os.close(self._fd)
        self._fd, self._map = -1, None


_tables: dict[str, _Table] = {}
_tables_lock = threading.Lock()


def _table(path: str | os.PathLike) -> _Table:
    path = os.path.abspath(os.fspath(path))
    with _tables_lock:
        table = _tables.get(path)
        if table is None:
            table = _tables[path] = _Table(path)
        return table


def _after_fork() -> None:
    global _tables_lock
    _tables_lock = threading.Lock()
    for table in _tables.values():
        table.forked()


os.register_at_fork(after_in_child=_after_fork)
