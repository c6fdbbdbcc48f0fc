"""Small threading helpers for the hot path (pyarrow, DuckDB and file I/O release the GIL)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

PREFETCH_DEPTH = 2


def prefetched(
    items: Iterator[T], depth: int = PREFETCH_DEPTH, name: str = "prefetch"
) -> Generator[T, None, None]:
    """``items`` produced by a thread, at most ``depth`` ahead; its errors raised here.

    Closing this generator early (the consumer failed) stops and joins the thread.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put("item", item):
                    return
            put("done", None)
        except BaseException as exc:
            put("error", exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "item":
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join()
