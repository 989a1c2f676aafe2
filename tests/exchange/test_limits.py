"""The service bus's shared rate limits and circuit breakers (exchange.limits): GCRA's burst, wait and recovery, the
breaker's states and its single half-open probe, kept right by real processes sharing one file, a full table and a
foreign file."""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
import struct
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest

from exchange import limits
from exchange.limits import CircuitBreaker, RateLimiter, limits_file

SPAWN = multiprocessing.get_context("spawn")
FORK = multiprocessing.get_context("fork")
CONSUMER, SERVICE, ORIGIN = "BOGOR/GOV/dinsos/siks", "BOGOR/GOV/disdukcapil/siak/status", "https://siak.example:8443"


@pytest.fixture
def path(tmp_path):
    return limits_file(SimpleNamespace(home=tmp_path))


def _used(path) -> int:
    """The file's count of slots in use (the format's, read as any process would)."""
    return struct.unpack_from("<I", path.read_bytes(), 40)[0]


# --- processes ------------------------------------------------------------------------------------------------
# Module-level functions, as spawned processes import them.


def _hammer(path, service, requests, seconds, duration, go, out) -> None:
    """Ask for calls for `duration` seconds (None: until one is refused); put the clock's reading before and after
    each admitted call."""
    limiter = RateLimiter(path)
    go.wait()
    admitted, end = [], time.monotonic() + (duration or 1e9)
    while (before := time.monotonic()) < end:
        if limiter.admit(CONSUMER, service, requests, seconds) is None:
            admitted.append((before, time.monotonic()))
        elif duration is None:
            break
    out.put(admitted)


def _each_key_once(path, keys, go, out) -> None:
    limiter = RateLimiter(path)
    go.wait()
    out.put([key for key in keys if limiter.admit(CONSUMER, key, 1, 1000.0) is None])


def _fail(path, origin, failures) -> None:
    breaker = CircuitBreaker(path)
    for _ in range(failures):
        breaker.failed(origin, failures)


def _probe(path, origin, cooldown, go, out) -> None:
    breaker = CircuitBreaker(path)
    go.wait()
    out.put(breaker.admit(origin, cooldown))


def _probe_and_hold(path, origin, cooldown, probing, leave) -> None:
    """Become the half-open call, then end without a verdict (a worker killed mid-call)."""
    assert CircuitBreaker(path).admit(origin, cooldown) is None
    probing.set()
    leave.wait()


def _admit_once(path, service, requests, seconds, out) -> None:
    out.put(RateLimiter(path).admit(CONSUMER, service, requests, seconds))


def _run(ctx, target, args_of, n) -> list:
    """Run target(*args_of(i), go, out) in `n` processes of ctx, going on together from go.wait() once all have
    started; what each put, in any order."""
    go, out = ctx.Barrier(n), ctx.Queue()
    processes = [ctx.Process(target=target, args=(*args_of(i), go, out)) for i in range(n)]
    for p in processes:
        p.start()
    results = [out.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(timeout=30)
        assert p.exitcode == 0
    return results


def _in_child(target, *args):
    out = SPAWN.Queue()
    p = SPAWN.Process(target=target, args=(*args, out))
    p.start()
    answer = out.get(timeout=60)
    p.join(timeout=30)
    return answer


# --- the rate limit -------------------------------------------------------------------------------------------


def test_the_file_is_the_homes_own_made_private(tmp_path, path):
    assert path == tmp_path / "run" / "exchange-limits"
    assert RateLimiter(path).admit(CONSUMER, SERVICE, 1, 1.0) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes()[:8] == b"IHLIMITS"


def test_a_burst_of_requests_then_a_refusal_that_says_when(path):
    limiter = RateLimiter(path)
    assert [limiter.admit(CONSUMER, SERVICE, 3, 30.0) for _ in range(3)] == [None] * 3
    wait = limiter.admit(CONSUMER, SERVICE, 3, 30.0)
    assert 9.0 < wait <= 10.0  # one interval, seconds / requests, less the moments the calls took
    assert limiter.admit(CONSUMER, SERVICE, 3, 30.0) <= wait  # a refusal is not counted
    # Each (consumer, service) has its own limit, and a limiter on the same file in this process shares them.
    assert limiter.admit(CONSUMER, "BOGOR/GOV/disdukcapil/siak/cari", 3, 30.0) is None
    assert limiter.admit("BOGOR/GOV/dinkes/simpus", SERVICE, 3, 30.0) is None
    assert RateLimiter(path).admit(CONSUMER, SERVICE, 3, 30.0) is not None


def test_capacity_comes_back_one_interval_at_a_time(path):
    """GCRA's bound, not the sliding log's: after a burst, one more call per interval, so a window of `seconds`
    can hold up to 2 * requests - 1 calls; after `seconds` idle, a whole burst again."""
    limiter = RateLimiter(path)
    assert limiter.admit(CONSUMER, SERVICE, 2, 0.6) is None
    assert limiter.admit(CONSUMER, SERVICE, 2, 0.6) is None
    wait = limiter.admit(CONSUMER, SERVICE, 2, 0.6)
    assert 0 < wait <= 0.3  # one interval: the sliding log would have said 0.6, when the burst leaves the window
    time.sleep(wait + 0.01)
    assert limiter.admit(CONSUMER, SERVICE, 2, 0.6) is None
    assert limiter.admit(CONSUMER, SERVICE, 2, 0.6) is not None
    time.sleep(0.65)
    first, second, third = (limiter.admit(CONSUMER, SERVICE, 2, 0.6) for _ in range(3))
    assert first is None and second is None and third is not None


def test_a_limit_made_tighter_applies_at_once(path):
    limiter = RateLimiter(path)
    for _ in range(100):
        assert limiter.admit(CONSUMER, SERVICE, 100, 1000.0) is None
    # The old limit's backlog (1000 seconds) is not the new one's: a call within the new window's reach.
    wait = limiter.admit(CONSUMER, SERVICE, 1, 1.0)
    assert wait is not None and wait <= 1.0


def test_a_limit_needs_a_call_and_a_time(path):
    limiter = RateLimiter(path)
    for requests, seconds in ((0, 1.0), (1, 0.0), (1, -1.0), (1, float("nan"))):
        with pytest.raises(ValueError):
            limiter.admit(CONSUMER, SERVICE, requests, seconds)


def test_threads_of_one_process_never_pass_the_burst(path):
    limiter, admitted = RateLimiter(path), []

    def ask():
        admitted.append(sum(limiter.admit(CONSUMER, SERVICE, 100, 1e6) is None for _ in range(500)))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 100


def test_processes_together_never_pass_the_burst(path):
    """Four processes asking as fast as they can for one key until they are refused: one interval is 50 seconds,
    longer than the test, so exactly the burst is admitted across them."""
    results = _run(SPAWN, _hammer, lambda i: (path, SERVICE, 20000, 1e6, None), 4)
    assert sum(map(len, results)) == 20000


def test_processes_together_hold_the_rate(path):
    """Calls admitted at t1 <= ... <= tk are at most requests + (tk - t1) * requests / seconds, whichever process
    asked. Each admission's time lies between the clock readings around its call, which bound t1 and tk."""
    requests, seconds = 5, 0.25
    results = _run(SPAWN, _hammer, lambda i: (path, SERVICE, requests, seconds, 1.0), 4)
    admitted = [call for calls in results for call in calls]
    first, last = min(before for before, _ in admitted), max(after for _, after in admitted)
    assert len(admitted) <= requests + (last - first) * requests / seconds + 1e-6
    assert len(admitted) > requests  # capacity came back as time passed
    assert sum(map(bool, results)) >= 2  # and went to more than one process


def test_many_keys_made_at_once_by_processes_on_a_new_file(path):
    """Processes creating the file together and inserting the same keys in different orders: every key is
    admitted once in all (a second slot for a key, or an initialisation over another's state, would admit it
    twice)."""
    keys = [f"BOGOR/GOV/dinsos/siks/layanan{n}" for n in range(300)]
    assert not path.exists()
    results = _run(SPAWN, _each_key_once, lambda i: (path, keys[i * 75:] + keys[:i * 75]), 4)
    admitted = Counter(key for keys_admitted in results for key in keys_admitted)
    assert set(admitted) == set(keys) and set(admitted.values()) == {1}
    assert _used(path) == len(keys)


def test_forked_children_share_the_parents_limits(path):
    """A child forked after its parent used the file opens it again: sharing the parent's open file, its `flock`
    would not exclude the parent's."""
    limiter = RateLimiter(path)
    assert limiter.admit(CONSUMER, "used/before/the/fork", 1, 1000.0) is None
    assert _in_child(_admit_once, path, "used/before/the/fork", 1, 1000.0) is not None  # spawned: a new process
    go, out = FORK.Barrier(4), FORK.Queue()
    children = [FORK.Process(target=_hammer, args=(path, SERVICE, 20000, 1e6, None, go, out)) for _ in range(3)]
    for child in children:
        child.start()
    here = []
    go.wait()
    while limiter.admit(CONSUMER, SERVICE, 20000, 1e6) is None:
        here.append(True)
    there = [len(out.get(timeout=60)) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert sum(here) + sum(there) == 20000


# --- the circuit breaker --------------------------------------------------------------------------------------


def test_failures_in_a_row_open_the_circuit(path):
    breaker = CircuitBreaker(path)
    assert breaker.admit(ORIGIN, 30.0) is None  # never seen: closed
    breaker.failed(ORIGIN, 3)
    breaker.failed(ORIGIN, 3)
    breaker.succeeded(ORIGIN)  # in a row: a success starts the count again
    breaker.failed(ORIGIN, 3)
    breaker.failed(ORIGIN, 3)
    assert breaker.admit(ORIGIN, 30.0) is None
    breaker.failed(ORIGIN, 3)
    left = breaker.admit(ORIGIN, 30.0)
    assert 29.0 < left <= 30.0
    assert breaker.admit("https://other.example", 30.0) is None
    # The namespaces apart: a rate limit's key spelled like the circuit's is another key.
    assert RateLimiter(path).admit("circuit", ORIGIN, 1, 1.0) is None


def test_half_open_lets_one_call_try_and_waits_for_its_verdict(path):
    breaker = CircuitBreaker(path)
    for _ in range(2):
        breaker.failed(ORIGIN, 2)
    assert breaker.admit(ORIGIN, 0.1) is not None
    time.sleep(0.12)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(breaker.admit(ORIGIN, 0.1))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(None) == 1 and answers.count(1.0) == 7
    # Released (refused before it was sent): the next call tries.
    breaker.released(ORIGIN)
    assert breaker.admit(ORIGIN, 0.1) is None
    assert breaker.admit(ORIGIN, 0.1) == 1.0
    # The probe failed: open for another cool-down, though one failure is below the threshold.
    breaker.failed(ORIGIN, 2)
    assert 0 < breaker.admit(ORIGIN, 0.1) <= 0.1
    time.sleep(0.12)
    assert breaker.admit(ORIGIN, 0.1) is None
    # It succeeded: closed, every call goes, and failures count from none again.
    breaker.succeeded(ORIGIN)
    assert [breaker.admit(ORIGIN, 0.1) for _ in range(3)] == [None] * 3
    breaker.failed(ORIGIN, 2)
    assert breaker.admit(ORIGIN, 0.1) is None


def test_a_circuit_opened_in_one_process_refuses_in_the_others(path):
    breaker = CircuitBreaker(path)
    process = SPAWN.Process(target=_fail, args=(path, ORIGIN, 3))
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0
    assert 0 < breaker.admit(ORIGIN, 0.5) <= 0.5
    time.sleep(0.55)
    # Half-open: one call in all the processes asking at once.
    answers = _run(SPAWN, _probe, lambda i: (path, ORIGIN, 0.5), 4)
    assert answers.count(None) == 1 and answers.count(1.0) == 3
    # That process has ended with no verdict: a call here tries in its place, then its success closes the
    # circuit for every process.
    assert breaker.admit(ORIGIN, 0.5) is None
    breaker.succeeded(ORIGIN)
    assert _run(SPAWN, _probe, lambda i: (path, ORIGIN, 0.5), 2) == [None, None]


def test_the_probe_of_a_process_that_died_is_taken_over(path):
    breaker = CircuitBreaker(path)
    for _ in range(2):
        breaker.failed(ORIGIN, 2)
    time.sleep(0.06)
    probing, leave = SPAWN.Event(), SPAWN.Event()
    process = SPAWN.Process(target=_probe_and_hold, args=(path, ORIGIN, 0.05, probing, leave))
    process.start()
    assert probing.wait(timeout=60)
    assert breaker.admit(ORIGIN, 0.05) == 1.0  # its call is out: its verdict comes first
    leave.set()
    process.join(timeout=30)
    assert process.exitcode == 0
    assert breaker.admit(ORIGIN, 0.05) is None  # it ended with no verdict: this call tries
    assert breaker.admit(ORIGIN, 0.05) == 1.0


# --- the table ------------------------------------------------------------------------------------------------


def test_a_full_table_reclaims_what_has_expired(path):
    limiter, breaker = RateLimiter(path), CircuitBreaker(path)
    breaker.failed("https://closed-again.example", 5)
    breaker.succeeded("https://closed-again.example")  # closed with no failures: reclaimable
    breaker.failed(ORIGIN, 5)  # one failure: kept
    for n in range(limits.MAX_USED - 2):
        assert limiter.admit(CONSUMER, f"short/{n}", 1, 0.2) is None
    assert _used(path) == limits.MAX_USED
    time.sleep(0.25)
    assert limiter.admit(CONSUMER, SERVICE, 1, 1000.0) is None
    assert _used(path) == 2  # the failing circuit and the new key
    # The new key is in the shared table: another process sees it counted.
    assert _in_child(_admit_once, path, SERVICE, 1, 1000.0) is not None
    for _ in range(4):
        breaker.failed(ORIGIN, 5)
    assert breaker.admit(ORIGIN, 30.0) is not None  # its failures were kept through the reclaim


def test_a_table_full_of_live_keys_limits_new_ones_per_process(path, caplog):
    """Nothing to reclaim: a new key is limited in each process alone (the hub's limits before they were
    shared), with one warning, rather than refused for everyone or not limited at all."""
    limiter, breaker = RateLimiter(path), CircuitBreaker(path)
    for n in range(limits.MAX_USED):
        assert limiter.admit(CONSUMER, f"long/{n}", 1, 1000.0) is None
    with caplog.at_level(logging.WARNING, logger="exchange.limits"):
        assert limiter.admit(CONSUMER, SERVICE, 1, 1000.0) is None
        assert limiter.admit(CONSUMER, SERVICE, 1, 1000.0) is not None
        for _ in range(3):
            breaker.failed(ORIGIN, 3)
        assert breaker.admit(ORIGIN, 30.0) is not None
        assert limiter.admit(CONSUMER, "another/new/key", 1, 1000.0) is None
    assert len([r for r in caplog.records if "live keys" in r.getMessage()]) == 1
    assert _used(path) == limits.MAX_USED
    assert _in_child(_admit_once, path, SERVICE, 1, 1000.0) is None  # not shared: counted in this process only
    assert _in_child(_admit_once, path, "long/7", 1, 1000.0) is not None  # the table's keys still are


@pytest.mark.parametrize("content", [b"", b"not a table" * 100, os.urandom(limits._SIZE), os.urandom(1 << 20)],
                         ids=["empty", "short", "garbage", "larger"])
def test_a_foreign_file_is_rebuilt_never_read_or_cut(path, content):
    path.parent.mkdir(mode=0o700)
    path.write_bytes(content)
    limiter = RateLimiter(path)
    first, second, third = (limiter.admit(CONSUMER, SERVICE, 2, 1000.0) for _ in range(3))
    assert first is None and second is None and third is not None  # a fresh table: the whole burst
    assert path.read_bytes()[:8] == b"IHLIMITS"
    assert path.stat().st_size == max(len(content), limits._SIZE)  # grown to hold the table, never cut
    assert _used(path) == 1


@pytest.mark.parametrize("field_at", [8, 12, 24], ids=["version", "slots", "boot id"])
def test_a_file_of_another_version_size_or_boot_is_rebuilt(path, field_at):
    """The header is checked on every operation: a process of another version rebuilding the file, or a file
    kept from before the machine restarted (its times of another clock), is never read as this one's state."""
    limiter = RateLimiter(path)
    assert limiter.admit(CONSUMER, SERVICE, 1, 1000.0) is None
    assert limiter.admit(CONSUMER, SERVICE, 1, 1000.0) is not None
    with open(path, "r+b") as f:
        f.seek(field_at)
        byte = f.read(1)
        f.seek(field_at)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert limiter.admit(CONSUMER, SERVICE, 1, 1000.0) is None  # a new table: the key starts again
    assert limiter.admit(CONSUMER, SERVICE, 1, 1000.0) is not None
    assert _used(path) == 1
