"""A clock tests can move forward: the wrapped time source plus an offset."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    """Epoch seconds from ``source`` (default ``time.time``) plus everything ``advance``d."""

    def __init__(self, source: Callable[[], float] | None = None) -> None:
        self._source = source or time.time
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._source() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never back) and return the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self()
