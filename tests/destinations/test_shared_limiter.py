"""The call limit is the account's: every Target client of one client code in a process (two
drains, a drain and a poll) takes its calls from one window, against the real sandbox."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from connector.destinations.http import RetryPolicy, SlidingWindowLimiter
from connector.destinations.target import TargetClient
from connector.sandbox.testing import running_sandbox
from connector.settings import TargetSettings

CALLS = 3  # per minute, the connector's setting and the sandbox's limit alike


class FakeClock:
    """Seconds, moved only by ``sleep`` (the connector's waits and the sandbox's time alike)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += max(seconds, 0.0)


def settings(url: str, client_code: str = "demo", calls: int = CALLS) -> TargetSettings:
    return TargetSettings(
        base_url=url, client_code=client_code, calls_per_minute=calls, timeout_s=10
    )


def batch_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / f"{n}.batch"
    path.write_bytes(b"batch=thirdPartyId,tier\n" + f"cust-{n},gold\n".encode())
    return path


def retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=8, base_delay_s=1, max_delay_s=30, rng=random.Random(1))


def test_clients_of_one_account_share_one_limiter() -> None:
    url = "http://127.0.0.1:9"  # never called
    a, b = TargetClient(settings(url)), TargetClient(settings(url))
    other_code = TargetClient(settings(url, client_code="other"))
    other_host = TargetClient(settings("http://127.0.0.2:9"))
    own = SlidingWindowLimiter(5, 60)
    given = TargetClient(settings(url), limiter=own)  # the reliability harness passes its own
    try:
        assert a.limiter is b.limiter
        assert other_code.limiter is not a.limiter and other_host.limiter is not a.limiter
        assert given.limiter is own
    finally:
        for client in (a, b, other_code, other_host, given):
            client.close()


def test_a_drain_and_a_poll_together_stay_within_the_accounts_calls(tmp_path: Path) -> None:
    """Before: each client allowed CALLS a minute, so together they made 2 x CALLS and the
    service throttled the extra calls (HTTP 503)."""
    clock = FakeClock()
    with running_sandbox(clock=clock, calls_per_minute=CALLS, processing_delay_s=0.0) as sb:
        kw = dict(retry=retry(), clock=clock, sleep=clock.sleep)
        with (
            TargetClient(settings(sb.url), **kw) as drain,  # type: ignore[arg-type]
            TargetClient(settings(sb.url), **kw) as poll,  # type: ignore[arg-type]
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


def test_the_latest_setting_is_the_accounts_limit() -> None:
    from connector.destinations.http import shared_limiter

    clock = FakeClock()
    first = shared_limiter("target", "demo@test-latest", 2, clock=clock, sleep=clock.sleep)
    for _ in range(2):
        first.acquire()
    assert first.wait_time() == 60.0
    again = shared_limiter("target", "demo@test-latest", 4, clock=clock, sleep=clock.sleep)
    assert again is first and again.wait_time() == 0.0
    # lowered below the calls already made: the next waits until all but one have left
    shared_limiter("target", "demo@test-latest", 1, clock=clock, sleep=clock.sleep)
    clock.sleep(10)
    assert first.wait_time() == 50.0
    with pytest.raises(ValueError):
        shared_limiter("target", "demo@test-latest", 0, clock=clock, sleep=clock.sleep)
