"""A clock for tests of waiting code: seconds since the epoch, moved only by ``sleep``."""

from __future__ import annotations

import threading


class FakeClock:
    """Callable as ``time.time``; ``sleep`` records each wait and moves the time on by it
    (thread-safe: the waits of several callers add up)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += max(seconds, 0.0)
