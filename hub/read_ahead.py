"""Produce the next item of an iterator in a thread while the caller works on this one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

__all__ = ["ReadAhead"]


class ReadAhead:
    """Produce the next item in a thread, from entering the block on, while the caller works on this one.

    Reading, harmonizing and writing are mostly Arrow kernels that release the GIL, so they overlap with what the
    caller does. At most `depth` items wait, and the next is begun only once one is taken: a producer never holds
    a finished item it cannot hand over, which keeps memory to the caller's item and the waiting ones.
    """

    _END = object()

    def __init__(self, items: Iterator, depth: int = 1) -> None:
        self._items = items
        self._slots: queue.SimpleQueue = queue.SimpleQueue()
        self._free = threading.Semaphore(depth)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._produce, name="hub-read-ahead", daemon=True)

    def _wait_for_a_slot(self) -> bool:
        while not self._stop.is_set():
            if self._free.acquire(timeout=0.2):
                return True
        return False

    def _produce(self) -> None:
        try:
            items = iter(self._items)
            while self._wait_for_a_slot():
                item = next(items, self._END)
                self._slots.put((item, None))
                if item is self._END:
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            self._slots.put((self._END, e))

    def __enter__(self) -> Iterator:
        self._worker.start()
        return self._consume()

    def _consume(self) -> Iterator:
        while True:
            item, error = self._slots.get()
            if item is self._END:
                if error is not None:
                    raise error
                return
            self._free.release()
            yield item

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._worker.join(timeout=30)
