"""The call limit is the account's: every Target client of one client code (two drains, a drain
and a poll, in one process or several: each has a limiter of its own on the one ledger) takes
its calls from one limit, against the real sandbox. Two processes at once:
``tests/delivery/test_call_limit_processes.py``."""

from __future__ import annotations

import random
from pathlib import Path

from connector.delivery.call_limit import LedgerCallLimiter
from connector.destinations.http import RetryPolicy
from connector.destinations.target import TargetClient
from connector.ledger import Ledger
from connector.sandbox.testing import running_sandbox
from connector.settings import TargetSettings
from tests.fake_clock import FakeClock

CALLS = 3  # per minute, the connector's setting and the sandbox's limit alike


def settings(url: str) -> TargetSettings:
    return TargetSettings(base_url=url, client_code="demo", calls_per_minute=CALLS, timeout_s=10)


def batch_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / f"{n}.batch"
    path.write_bytes(b"batch=thirdPartyId,tier\n" + f"cust-{n},gold\n".encode())
    return path


def retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=8, base_delay_s=1, max_delay_s=30, rng=random.Random(1))


def test_a_drain_and_a_poll_together_stay_within_the_accounts_calls(tmp_path: Path) -> None:
    """Before: each client allowed CALLS a minute, so together they made 2 x CALLS and the
    service throttled the extra calls (HTTP 503)."""
    clock = FakeClock()
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.upgrade()

    def limiter() -> LedgerCallLimiter:  # each client its own, as in two processes
        return LedgerCallLimiter(ledger, "target:demo", CALLS, clock=clock, sleep=clock.sleep)

    with running_sandbox(clock=clock, calls_per_minute=CALLS, processing_delay_s=0.0) as sb:
        kw = dict(retry=retry(), clock=clock, sleep=clock.sleep)
        with (
            TargetClient(settings(sb.url), limiter=limiter(), **kw) as drain,  # type: ignore[arg-type]
            TargetClient(settings(sb.url), limiter=limiter(), **kw) as poll,  # type: ignore[arg-type]
        ):
            first = drain.submit(batch_file(tmp_path, 1))
            second = drain.submit(batch_file(tmp_path, 2))
            poll.batch_status(first.status_url)  # the account's third call this minute
            assert clock.slept == []
            poll.batch_status(second.status_url)  # waits for the window, not for a 503
            drain.submit(batch_file(tmp_path, 3))
        calls = sb.state.target.calls["demo"]
        assert calls["rate_limited"] == 0, dict(calls)
        assert (
            clock.slept == [60.0] and sum(v for k, v in calls.items() if k != "rate_limited") == 5
        )
