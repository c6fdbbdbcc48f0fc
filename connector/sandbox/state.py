"""The sandbox's state: its stores, clock, fault draws and the worker that applies batches."""

from __future__ import annotations

import collections
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from connector.sandbox.clock import Clock
from connector.sandbox.copernica_store import CopernicaStore
from connector.sandbox.options import Faults, SandboxOptions
from connector.sandbox.persistence import Persistence
from connector.sandbox.target_store import TargetStore, iso

log = logging.getLogger(__name__)

T = TypeVar("T")


class Sandbox:
    """All state of one sandbox server; white-box tests read ``.target`` and ``.copernica``."""

    def __init__(
        self, options: SandboxOptions | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        self.options = options or SandboxOptions()
        self.options.validate()
        self.clock = Clock(clock)
        self.persistence = Persistence(self.options.data_dir) if self.options.data_dir else None
        self.target = TargetStore(self.options, self.clock, self.persistence)
        self.copernica = CopernicaStore(self.options, self.clock, self.persistence)
        self._fault_lock = threading.Lock()
        seed = self.options.seed
        self._rng = random.Random(seed)  # noqa: S311 (simulation, not crypto)
        self._stuck_rng = random.Random(None if seed is None else f"stuck-{seed}")  # noqa: S311
        self.calls_seen: collections.Counter[str] = collections.Counter()
        self.faults_injected: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        # One worker: batches are applied one at a time, in the order they were accepted.
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="sandbox-apply")
        self._pending: set[Future[Any]] = set()

    @property
    def faults(self) -> Faults:
        return self.options.faults

    def set_faults(self, **changes: Any) -> None:
        """Change fault settings at runtime (``fail_rate=0.5``, ``drop_when="after"``, ...)."""
        with self._fault_lock:
            self.options.faults.update(**changes)
        log.info("faults now %s", self.options.faults)

    def draw(self, key: str) -> tuple[float, float, float, float]:
        """Four draws for one API call (drop, fail, throttle, variant); counts the call."""
        with self._fault_lock:
            self.calls_seen[key] += 1
            rng = self._rng
            return rng.random(), rng.random(), rng.random(), rng.random()

    def draw_stuck(self) -> bool:
        with self._fault_lock:
            stuck = self._stuck_rng.random() < self.options.faults.stuck_rate
        return stuck

    def record_fault(self, key: str, kind: str) -> None:
        with self._fault_lock:
            self.faults_injected[key][kind] += 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        future = self._worker.submit(fn, *args)
        self._pending.add(future)
        future.add_done_callback(self._done)

    def run_in_order(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the batch worker, after every batch accepted so far; its result."""
        return self._worker.submit(fn, *args).result()

    def _done(self, future: Future[Any]) -> None:
        self._pending.discard(future)
        if future.exception() is not None:
            log.error("applying a batch failed", exc_info=future.exception())

    def wait_idle(self, timeout: float | None = 120) -> None:
        """Block until every batch accepted so far has been applied."""
        self._worker.submit(lambda: None).result(timeout)

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        o = self.options
        target = self.target.snapshot()
        with self._fault_lock:
            injected = {k: dict(v) for k, v in self.faults_injected.items()}
            seen = dict(self.calls_seen)
        for client, info in target.items():
            info["faults_injected"] = injected.get(client, {})
        return {
            "now": now,
            "now_iso": iso(now),
            "target": {
                "clients": target,
                "v2_merge": o.v2_merge,
                "limits": {
                    "daily_quota": o.daily_quota,
                    "max_batch_rows": o.max_batch_rows,
                    "max_batch_bytes": o.max_batch_bytes,
                    "calls_per_minute": o.calls_per_minute,
                    "status_window": o.status_window,
                },
            },
            "copernica": self.copernica.snapshot(),
            "faults": {"config": self.faults.as_dict(), "injected": injected, "calls_seen": seen},
            "persistent": self.persistence is not None,
        }

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        if self.persistence is not None:
            self.persistence.close()
