"""Benchmark: the shared rate limit and circuit breaker (exchange.limits), microseconds per operation.

    .venv/bin/python bench/limits.py --calls 200000

On one new limits file: RateLimiter.admit over --keys (consumer, service) pairs in turn, every call admitted
(counted: the table is written), and CircuitBreaker.admit and .succeeded on a closed circuit, what every call to a
healthy provider costs. First in one process, then in --processes processes at once on the same file, each making
--calls calls: their mean per process (each waits for the others' turns at the file's lock). The last line printed
is one JSON object with those figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exchange.limits import CircuitBreaker, RateLimiter  # noqa: E402

ORIGIN = "https://siak.example:8443"


def measure(path: str, calls: int, keys: int) -> dict:
    """Microseconds per operation of each kind, in this process."""
    limiter, breaker = RateLimiter(path), CircuitBreaker(path)
    consumers = [f"BOGOR/GOV/agency{n}/system" for n in range(keys)]
    figures = {}
    start = time.perf_counter()
    for n in range(calls):
        limiter.admit(consumers[n % keys], "BOGOR/GOV/disdukcapil/siak/status", 10**9, 1.0)
    figures["rate_admit_us"] = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    for _ in range(calls):
        breaker.admit(ORIGIN, 30.0)
    figures["breaker_admit_us"] = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    for _ in range(calls):
        breaker.succeeded(ORIGIN)
    figures["breaker_succeeded_us"] = (time.perf_counter() - start) / calls * 1e6
    return figures


def _worker(path: str, calls: int, keys: int, go, out) -> None:
    measure(path, min(calls, 2000), keys)  # warm: the file mapped, the keys' digests made
    go.wait()
    out.put(measure(path, calls, keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    path = str(Path(tempfile.mkdtemp(prefix="bench-limits-")) / "run" / "exchange-limits")

    measure(path, min(args.calls, 2000), args.keys)
    single = {k: round(v, 2) for k, v in measure(path, args.calls, args.keys).items()}
    print(f"1 process: {single}")

    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Barrier(args.processes), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(path, args.calls, args.keys, go, out)) for _ in range(args.processes)]
    for w in workers:
        w.start()
    each = [out.get() for _ in workers]
    for w in workers:
        w.join()
    several = {k: round(sum(f[k] for f in each) / len(each), 2) for k in single}
    print(f"{args.processes} processes at once, mean per process: {several}")
    print(json.dumps({"calls": args.calls, "keys": args.keys, "single": single,
                      "processes": args.processes, "several": several}))


if __name__ == "__main__":
    main()
