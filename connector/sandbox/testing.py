"""In-process sandbox for tests: ``with running_sandbox(fail_rate=0.1, seed=1) as sb: sb.url``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from connector.sandbox.copernica_schema import parse_schema
from connector.sandbox.options import SandboxOptions, build_options
from connector.sandbox.server import SandboxServer
from connector.sandbox.state import Sandbox


@dataclass
class SandboxHandle:
    """A running sandbox: its URL, its state for white-box asserts, and its controls."""

    url: str
    state: Sandbox  # .target (TargetStore), .copernica (CopernicaStore), .snapshot()
    server: SandboxServer

    @property
    def options(self) -> SandboxOptions:
        return self.state.options

    def target_url(self, client: str = "demo", version: str = "v2") -> str:
        """The batchUpdate URL for a client code and API version."""
        middle = "/v2" if version == "v2" else ""
        return f"{self.url}/m2/{client}{middle}/profile/batchUpdate"

    def mbox_url(self, client: str = "demo") -> str:
        """The mbox call URL (mbox_api.py): a GET there commits a profile's pending v2 values."""
        return f"{self.url}/m2/{client}/mbox/json"

    def set_faults(self, **changes: Any) -> None:
        """Change faults at runtime: fail_rate, throttle_rate, latency_ms, drop_rate, ..."""
        self.state.set_faults(**changes)

    def advance_clock(self, seconds: float) -> float:
        return self.state.clock.advance(seconds)

    def wait_idle(self, timeout: float = 120) -> None:
        """Wait until every accepted batch has been applied (its status may still be pending)."""
        self.state.wait_idle(timeout)

    def snapshot(self) -> dict[str, Any]:
        return self.state.snapshot()

    def declare_copernica(self, schema: dict[str, object]) -> None:
        """Declare Copernica databases with typed fields (``copernica_schema.py``'s JSON)."""
        self.state.copernica.declare(parse_schema(schema))

    def reset_copernica(self) -> None:
        """Forget every Copernica database and profile; declare the configured ones again."""
        self.state.copernica.reset()


@contextmanager
def running_sandbox(
    *, clock: Callable[[], float] | None = None, **options: Any
) -> Iterator[SandboxHandle]:
    """Start a sandbox on a free 127.0.0.1 port in a background thread; stop it on exit.

    ``options`` are ``SandboxOptions`` fields (``daily_quota=...``, ``data_dir=...``,
    ``token=...``, ``seed=...``, ``v2_merge=True``) and ``Faults`` fields given flat
    (``fail_rate=0.2``).
    """
    sandbox = Sandbox(build_options(**options), clock=clock)
    server = SandboxServer(sandbox, "127.0.0.1", 0)
    server.start()
    try:
        yield SandboxHandle(server.url, sandbox, server)
    finally:
        server.stop()
