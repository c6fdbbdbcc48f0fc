"""Copernica's pace against the real sandbox: the concurrency backs off under throttling and
every profile still lands exactly as sent; the per-second ceiling holds; the token (a query
parameter up to v3) never reaches a log line or a result. Waits run on a fake clock: nothing
here is timed."""

from __future__ import annotations

import logging
import random

import httpx
import pytest
from pydantic import SecretStr

from connector.destinations import aio_http
from connector.destinations.call_slots import (
    Grant,
    MemoryCallSlots,
    free_at_when_answered,
    process_call_slots,
)
from connector.destinations.copernica import CopernicaClient
from connector.destinations.http import RetryPolicy
from connector.destinations.pacing import AdaptiveConcurrency
from connector.sandbox.testing import SandboxHandle, running_sandbox
from connector.settings import CopernicaSettings
from tests.delivery.helpers import TRICKY
from tests.destinations.conftest import huge, reply, slow
from tests.fake_clock import FakeClock

TOKEN = "s3cr3t-T0KEN-value"


def profiles(n: int) -> list[tuple[str, dict[str, str]]]:
    """``n`` profiles with hostile values (commas, ``&``, ``%``, newlines, leading ``=``)."""
    return [
        (f"C{i:05d}", {"name": TRICKY[i % len(TRICKY)], "city": f"city {i} & co"}) for i in range(n)
    ]


def stored(sb: SandboxHandle) -> dict[str, dict[str, str]]:
    """Every profile the sandbox holds, by customerid: its fields as read back."""
    out: dict[str, dict[str, str]] = {}
    start = 0
    while True:
        page = httpx.get(
            f"{sb.url}/v3/database/shop/profiles",
            params={"start": start, "limit": 1000, "access_token": TOKEN},
            timeout=30,
        ).json()
        for item in page["data"]:
            fields = {k: "" if v is None else str(v) for k, v in item["fields"].items()}
            assert fields["customerid"] not in out, f"{fields['customerid']} stored twice"
            out[fields["customerid"]] = fields
        start += page["count"]
        if start >= page["total"]:
            return out


def settings(sb: SandboxHandle, **overrides: object) -> CopernicaSettings:
    base: dict[str, object] = dict(
        base_url=f"{sb.url}/v3", database="shop", access_token=TOKEN, timeout_s=10
    )
    base.update(overrides)
    return CopernicaSettings(**base)  # type: ignore[arg-type]


def patient_retries(seed: int = 3) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=40,
        base_delay_s=0.01,
        max_delay_s=0.05,
        max_total_s=3600,
        rng=random.Random(seed),
    )


def test_the_limit_grows_on_fast_answers_and_halves_once_per_round() -> None:
    pace = AdaptiveConcurrency(start=4, ceiling=10)
    for _ in range(3):
        pace.answered(pace.round, 0.01, ok=True, throttled=False)
    assert pace.allowed == 7  # +1 per fast answer before the first throttle
    pace.answered(pace.round, 0.5, ok=True, throttled=False)
    assert pace.allowed == 7  # 50 times slower than the fastest: the service queues
    sent_before_cut = pace.round
    pace.answered(sent_before_cut, 0.01, ok=False, throttled=True)
    assert pace.allowed == 3 and pace.cuts == 1
    pace.answered(sent_before_cut, 0.01, ok=False, throttled=True)
    assert pace.allowed == 3 and pace.cuts == 1  # sent before the cut: no second cut
    for _ in range(3):
        pace.answered(pace.round, 0.01, ok=True, throttled=False)
    assert pace.allowed == 4  # after a cut: about one per round of answers
    for _ in range(200):
        pace.answered(pace.round, 0.01, ok=True, throttled=False)
    assert pace.allowed == 10  # never above the ceiling
    for _ in range(10):
        pace.answered(pace.round, 0.01, ok=False, throttled=True)
    assert pace.allowed == 1  # never below one


def test_throttled_puts_back_off_wait_out_retry_after_and_all_land_as_sent() -> None:
    items = profiles(300)
    clock = FakeClock()
    with running_sandbox(
        copernica_databases={"shop": None}, token=TOKEN, throttle_rate=0.3, retry_after_s=2, seed=7
    ) as sb:
        cfg = settings(sb, concurrency=16, max_concurrency=32, max_retry_after_s=1.5)
        with CopernicaClient(
            cfg, match_field="customerid", retry=patient_retries(), sleep=clock.sleep, clock=clock
        ) as client:
            results = client.put_many(items)
            pace = client.last_pace
        injected = sb.snapshot()["faults"]["injected"]["copernica"]
        sb.set_faults(throttle_rate=0.0)
        landed = stored(sb)
    assert injected.get("throttle_429", 0) + injected.get("throttle_503", 0) > 0
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert any(r.attempts > 1 for r in results)
    assert pace is not None and pace.cuts > 0 and pace.final < pace.start
    # Retry-After (2 s) honoured, capped at max_retry_after_s
    assert 1.5 in clock.slept and max(clock.slept) <= 1.5
    assert set(landed) == {ident for ident, _ in items}  # each exactly once (stored() checks)
    for ident, fields in items:
        assert landed[ident] == {**fields, "customerid": ident}


class RecordingSlots(MemoryCallSlots):
    """The ceiling's slots, noting the (fake) time of every grant."""

    def __init__(self, calls: int, clock: FakeClock) -> None:
        super().__init__(calls, 1.0, clock=clock)
        self.granted_at: list[float] = []
        self._fake = clock

    def take(self) -> Grant:
        grant = super().take()
        if grant.slot_id is not None:
            self.granted_at.append(self._fake())
        return grant


def test_the_requests_per_second_ceiling_holds_for_every_request_sent() -> None:
    clock = FakeClock()
    slots = RecordingSlots(5, clock)
    items = profiles(60)
    with running_sandbox(
        copernica_databases={"shop": None}, token=TOKEN, fail_rate=0.2, seed=5
    ) as sb:
        cfg = settings(sb, concurrency=16, max_concurrency=16, max_requests_per_s=5)
        with CopernicaClient(
            cfg,
            match_field="customerid",
            retry=patient_retries(),
            sleep=clock.sleep,
            clock=clock,
            call_slots=slots,
        ) as client:
            results = client.put_many(items)
        received = sb.snapshot()["faults"]["calls_seen"]["copernica"]  # every request, faulted too
        landed = stored(sb)
    assert all(r.ok for r in results)
    sent = sum(r.attempts for r in results)
    assert sent > len(items)  # the 500s were retried, each retry within the ceiling too
    assert len(slots.granted_at) == sent == received
    times = sorted(slots.granted_at)
    # no more than 5 requests in any one-second window of the fake clock
    assert all(times[i + 5] - times[i] >= 1.0 for i in range(len(times) - 5))
    assert times[-1] - times[0] >= (sent - 5) / 5 - 1  # and it did not stop short of it
    assert set(landed) == {ident for ident, _ in items}


def test_the_ceiling_is_one_per_account_in_the_process() -> None:
    with running_sandbox(copernica_databases={"shop": None}, token=TOKEN) as sb:
        cfg = settings(sb, max_requests_per_s=7)
        with (
            CopernicaClient(cfg, match_field="customerid") as a,
            CopernicaClient(cfg.model_copy(update={"database": "other"}), match_field="id") as b,
        ):
            assert a._call_slots is b._call_slots is process_call_slots(a._account(), 7, 1.0)
            assert TOKEN not in a._account()
        other_token = cfg.model_copy(update={"access_token": SecretStr("another")})
        with CopernicaClient(other_token, match_field="customerid") as c:
            assert c._call_slots is not a._call_slots
        with CopernicaClient(settings(sb), match_field="customerid") as unlimited:
            assert unlimited._call_slots is None


def test_a_slot_answered_is_held_one_more_period() -> None:
    clock = FakeClock()
    slots = MemoryCallSlots(1, 1.0, clock=clock)
    first = slots.take()
    assert first.slot_id is not None
    clock.sleep(5)  # a long call
    assert slots.take().slot_id is None  # still in flight
    slots.answered(first.slot_id)
    grant = slots.take()
    assert grant.slot_id is None and grant.wait_s == free_at_when_answered(0, 1.0)


def test_the_token_never_reaches_logs_or_results(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    faults = dict(throttle_rate=0.2, fail_rate=0.2, drop_rate=0.1, retry_after_s=0, seed=9)
    with running_sandbox(copernica_databases={"shop": None}, token=TOKEN, **faults) as sb:
        cfg = settings(sb, concurrency=4)
        with caplog.at_level(logging.DEBUG):
            with CopernicaClient(
                cfg,
                match_field="customerid",
                retry=RetryPolicy(max_attempts=2, base_delay_s=0.01, rng=random.Random(1)),
                sleep=clock.sleep,
                clock=clock,
            ) as client:
                results = client.put_many(profiles(80))
            with CopernicaClient(
                settings(sb, access_token="wrong-" + TOKEN), match_field="customerid"
            ) as refused:
                results += refused.put_many(profiles(3))
    texts = [r.getMessage() for r in caplog.records] + [caplog.text]
    texts += [r.error or "" for r in results]
    assert any("access_token=***" in t for t in texts), "no text showed the query: test is blind"
    assert any(not r.ok for r in results) and any(r.auth_refused for r in results)
    leaked = [t[:200] for t in texts if TOKEN in t]
    assert not leaked, leaked[:3]


def canned_settings(url: str, **overrides: object) -> CopernicaSettings:
    base: dict[str, object] = dict(
        base_url=f"{url}/v3", database="shop", access_token=TOKEN, timeout_s=1, concurrency=1
    )
    base.update(overrides)
    return CopernicaSettings(**base)  # type: ignore[arg-type]


def test_hostile_answers_fail_the_profile_and_never_follow_a_redirect(canned) -> None:  # type: ignore[no-untyped-def]
    """A redirect to another host is an answer, not followed (the token would travel); an
    endless body is cut off at the limit; a trickle is bounded by the timeout."""
    other = "http://127.0.0.2:9/steal"
    canned.add(
        reply(307, b"", {"Location": other}),
        huge(64 * 2**20),
        slow(5, reply(204)),
        reply(204),
    )
    one_try = RetryPolicy(max_attempts=1)
    with CopernicaClient(canned_settings(canned.url), match_field="id", retry=one_try) as c:
        redirected = c.put_profile("a", {"x": "1"})
        too_big = c.put_profile("b", {"x": "1"})
        trickled = c.put_profile("c", {"x": "1"})
        fine = c.put_profile("d", {"x": "1"})
    assert not redirected.ok and redirected.status_code == 307
    assert not too_big.ok and "limit" in (too_big.error or "")
    assert not trickled.ok and "Timeout" in (trickled.error or "")
    assert fine.ok and fine.attempts == 1
    assert [s.method for s in canned.seen] == ["PUT"] * 4  # the redirect never followed
    assert all(TOKEN not in (r.error or "") for r in (redirected, too_big, trickled))


def test_tls_is_verified_unless_turned_off_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def ssl_of(verify: bool) -> object:
        session = aio_http.open_session(
            "Copernica", timeout_s=1, verify_tls=verify, max_connections=1
        )
        async with session:
            return session.connector._ssl  # type: ignore[union-attr]

    with caplog.at_level(logging.WARNING):
        assert aio_http.run_coroutine(ssl_of(True)) is True
        assert not [r for r in caplog.records if "TLS" in r.getMessage()]
        assert aio_http.run_coroutine(ssl_of(False)) is False
    assert any("Copernica" in r.getMessage() and "OFF" in r.getMessage() for r in caplog.records)


def test_a_batch_starts_at_the_limit_the_previous_one_ended_at() -> None:
    with running_sandbox(copernica_databases={"shop": None}, token=TOKEN) as sb:
        cfg = settings(sb, concurrency=2, max_concurrency=12)
        with CopernicaClient(cfg, match_field="customerid") as client:
            first = client.put_many(profiles(100))
            after_first = client.last_pace
            client.put_many(profiles(5))
            after_second = client.last_pace
    assert all(r.ok for r in first)
    assert after_first is not None and after_first.start == 2 and after_first.final > 2
    assert after_second is not None and after_second.start == after_first.final
