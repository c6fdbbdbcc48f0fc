"""A reporter that keeps every event, for tests of what the stages report."""

from __future__ import annotations

import threading

from connector.progress import Event


class Recording:
    """Every event reported, in order (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def report(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, step: str) -> list[Event]:
        """The events of the stages of ``step``, in order."""
        return [e for e in self.events if e.step == step]

    def steps(self) -> list[str]:
        """The steps in the order they started."""
        return [e.step for e in self.events if e.kind == "start"]
