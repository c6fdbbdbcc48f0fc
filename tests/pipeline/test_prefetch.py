"""The extract stage reads ahead in a thread: same items, same order, errors raised here."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connector.threads import prefetched as _prefetched


def test_items_in_order() -> None:
    assert list(_prefetched(iter(range(1000)), depth=2)) == list(range(1000))


def test_producer_error_is_raised_to_the_consumer_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad block")

    seen = []
    with pytest.raises(ValueError, match="bad block"):
        for item in _prefetched(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_consumer_stopping_early_stops_and_closes_the_producer() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    gen = _prefetched(items(), depth=2)
    assert next(gen) == 0
    gen.close()
    assert closed.wait(5)
    assert not any(t.name == "extract-prefetch" for t in threading.enumerate())
