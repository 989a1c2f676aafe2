"""hub.read_ahead: the pipeline's and the integration's stages in threads."""

from __future__ import annotations

import threading
import time

import pytest

from hub.read_ahead import ReadAhead


def test_read_ahead_holds_the_callers_item_and_one_waiting_and_hands_over_errors():
    """While the caller works on an item, the producer finishes one more and begins no other: it never holds a
    finished item it cannot hand over. Its error reaches the caller, and leaving the block early stops it."""
    pulled = []

    def items(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise ValueError("source broke at item 3")
            pulled.append(i)
            yield i

    with ReadAhead(items(10)) as ahead:
        assert next(ahead) == 0
        time.sleep(0.5)  # the producer would run ahead now if it could
        assert pulled == [0, 1]
        assert list(ahead) == list(range(1, 10))

    pulled.clear()
    with pytest.raises(ValueError, match="item 3"), ReadAhead(items(10, fail_at=3)) as ahead:
        assert [next(ahead) for _ in range(3)] == [0, 1, 2]
        next(ahead)

    pulled.clear()
    before = threading.active_count()
    with ReadAhead(items(1000)) as ahead:
        next(ahead)
    assert threading.active_count() == before and len(pulled) <= 2
