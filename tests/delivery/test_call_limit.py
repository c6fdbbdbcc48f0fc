"""The account's calls per minute, kept in the ledger (``delivery.call_limit``), on SQLite and
PostgreSQL: the rule on a fake clock, nothing really waits. Two processes at once against the
sandbox: ``test_call_limit_processes.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from connector.delivery.call_limit import PERIOD_S, LedgerCallLimiter, take_slot
from connector.ledger import CallSlot, Ledger
from tests.fake_clock import FakeClock

# a fresh SQLite file or PostgreSQL database per test, as the ledger's own tests use
from tests.ledger.conftest import fresh_postgres_url, ledger_url, sqlite_ledger_url  # noqa: F401

KEY = "target:demo"


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:  # noqa: F811
    led = Ledger(ledger_url)
    led.upgrade()
    yield led  # type: ignore[misc]
    led.dispose()


def limiter(ledger: Ledger, clock: FakeClock, calls: int, key: str = KEY) -> LedgerCallLimiter:
    return LedgerCallLimiter(ledger, key, calls, clock=clock, sleep=clock.sleep)


def test_no_minute_holds_more_calls_than_the_limit(ledger: Ledger) -> None:
    """120 calls of 0.5 s each at a limit of 50: call n + 50 starts at least a minute after
    call n was answered, so the service (which sees each call between its start and its
    answer) never counts more than 50 in any minute; and the limit is used, not wasted."""
    clock = FakeClock()
    limit = limiter(ledger, clock, 50)
    spans = []
    for _ in range(120):
        with limit.call():
            start = clock.now
            clock.now += 0.5
        spans.append((start, clock.now))
    assert all(spans[i + 50][0] >= spans[i][1] + PERIOD_S for i in range(len(spans) - 50))
    assert spans[50][0] == spans[0][1] + PERIOD_S  # it waited exactly as long as needed
    assert len(clock.slept) == 2  # when 50 calls had been made within a minute: no spinning


def test_a_slot_is_held_until_a_minute_after_the_answer(ledger: Ledger) -> None:
    clock = FakeClock()
    limit = limiter(ledger, clock, 1)
    with limit.call() as waited:
        assert waited == 0.0
        clock.now += 5.0  # a slow call: its minute starts when it is answered
    with limit.call() as waited:
        assert waited == PERIOD_S
    assert clock.slept == [PERIOD_S]


def test_the_slot_of_a_call_never_answered_is_freed_after_the_hold(ledger: Ledger) -> None:
    """A process that died mid-call recorded no answer: its slot counts a minute after the
    longest a call may take to arrive (UNANSWERED_HOLD_S), not for ever."""
    clock = FakeClock()
    assert take_slot(ledger, KEY, 1, clock=clock).slot_id is not None  # and then it died
    grant = take_slot(ledger, KEY, 1, clock=clock)
    # it might be answered at once: a minute is the soonest its slot can be free
    assert grant.slot_id is None and grant.wait_s == PERIOD_S
    with limiter(ledger, clock, 1).call() as waited:
        assert waited == 2 * PERIOD_S  # held until the hold and a minute have passed


def test_processes_of_one_account_share_its_limit_and_accounts_are_apart(ledger: Ledger) -> None:
    """Two limiters of one account (two processes) take from one limit; another account's
    calls are not counted against it."""
    clock = FakeClock()
    first, second = limiter(ledger, clock, 2), limiter(ledger, clock, 2)
    other = limiter(ledger, clock, 2, key="target:other")
    for limit in (first, second, other, other):
        with limit.call() as waited:
            assert waited == 0.0
    with first.call() as waited:
        assert waited == PERIOD_S


def test_a_lower_setting_counts_the_calls_already_made(ledger: Ledger) -> None:
    clock = FakeClock()
    for _ in range(3):
        with limiter(ledger, clock, 4).call():
            clock.now += 10.0
    # calls answered at +10, +20 and +30 s: at a limit of 2, all but one of them must have
    # stopped counting, so the next call waits for the minute of the one answered at +20 s
    with limiter(ledger, clock, 2).call() as waited:
        assert waited == 20.0 + PERIOD_S - 30.0


def test_slots_that_stopped_counting_are_deleted(ledger: Ledger) -> None:
    clock = FakeClock()
    limit = limiter(ledger, clock, 3)
    for _ in range(20):
        with limit.call():
            clock.now += 30.0
    with ledger.session() as session:
        kept = session.scalar(select(func.count(CallSlot.id)))
    assert kept is not None and kept <= 3


def test_the_ledgers_own_clock_when_none_is_given(ledger: Ledger) -> None:
    """PostgreSQL's clock on PostgreSQL, this machine's on SQLite: a call just answered
    holds its slot for about a minute from now either way."""
    limit = LedgerCallLimiter(ledger, KEY, 1)
    with limit.call():
        pass
    grant = take_slot(ledger, KEY, 1)
    assert grant.slot_id is None and PERIOD_S - 30 < grant.wait_s <= PERIOD_S


def test_a_limit_must_allow_a_call(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="calls per minute must be positive"):
        LedgerCallLimiter(Ledger(f"sqlite:///{tmp_path / 'l.db'}"), KEY, 0)
