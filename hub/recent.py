"""Values a process reads again at most once every few seconds: what the service bus asks of the catalog on every
call (credentials and grants, an address's lockout, the row of the dataset a service answers from) changes
rarely, and a read per call was most of a call's time. A change made elsewhere is seen within `seconds`; the
process that makes one calls `forget`, and sees it at once."""

from __future__ import annotations

import threading
import time
from typing import Callable, Hashable, TypeVar

__all__ = ["Recent"]

T = TypeVar("T")


class Recent:
    """At most `limit` values, each read by its `read` function again once it is `seconds` old. A `read` that
    raises keeps nothing: the next call reads again."""

    def __init__(self, seconds: float, limit: int = 4096) -> None:
        self.seconds, self.limit = seconds, limit
        self._values: dict[Hashable, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, read: Callable[[], T]) -> T:
        now = time.monotonic()
        found = self._values.get(key)
        if found is not None and now - found[0] < self.seconds:
            return found[1]
        value = read()  # not under the lock: a slow read (a fetch) holds up no other key
        with self._lock:
            if len(self._values) >= self.limit:  # a bounded memory: forget all, read again as asked
                self._values.clear()
            self._values[key] = (now, value)
        return value

    def holds(self, key: Hashable) -> bool:
        """Whether `get(key, ...)` would answer without reading."""
        found = self._values.get(key)
        return found is not None and time.monotonic() - found[0] < self.seconds

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._values.pop(key, None)
