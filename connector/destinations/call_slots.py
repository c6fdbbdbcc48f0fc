"""The rule of an account's call limit, and the limit kept in this process's memory.

The rule, defined here and nowhere else: **a call holds a slot of its account from the moment
it is granted until ``period`` after it was answered; at most ``calls`` slots of an account are
held at once.** A request reaches the service between its grant and its answer, so the service
never sees more than ``calls`` of them in any rolling ``period``, whatever the delays of the
network or of the sleeping callers. A slot whose answer is never recorded (its caller died
mid-call) is held until ``UNANSWERED_HOLD_S`` plus ``period`` after its grant.

Two keepers apply it: ``connector.delivery.call_limit`` keeps the slots in the ledger, shared
by every process of a deployment (Target's calls per minute, a few calls a minute, so two
short transactions per call are cheap); :class:`MemoryCallSlots` keeps them in this process
(Copernica's requests per second: hundreds of calls a second, where a transaction per call
would cost more than the call), shared by every client of the account in the process
(:func:`process_call_slots`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

UNANSWERED_HOLD_S = 60.0
"""How long after its grant a call with no recorded answer may still reach the service (far
longer than any connect timeout): its slot is held until then plus the period."""


@dataclass(frozen=True)
class Grant:
    """What one request for a slot got: the slot, or the seconds until one may be free."""

    slot_id: int | None
    wait_s: float = 0.0


@dataclass(frozen=True)
class HeldSlot:
    """A slot still held: when it is free, and whether its call was answered."""

    free_at: float
    answered: bool


def free_at_when_granted(now: float, period: float) -> float:
    """When a slot granted ``now`` is free if its answer is never recorded."""
    return now + UNANSWERED_HOLD_S + period


def free_at_when_answered(now: float, period: float) -> float:
    """When a slot whose call was answered ``now`` is free."""
    return now + period


def still_held(free_at: float, now: float) -> bool:
    """Whether a slot free at ``free_at`` still counts against the limit ``now``."""
    return free_at > now


def wait_for_slot(held: Sequence[HeldSlot], calls: int, now: float, period: float) -> float:
    """Seconds until one more call may be granted, given the slots still ``held`` (0: now).

    An unanswered call frees its slot ``period`` after its answer at the soonest, so it is
    counted as answered now: all but ``calls - 1`` of the held slots must be free first."""
    if len(held) < calls:
        return 0.0
    frees = sorted(
        slot.free_at if slot.answered else min(slot.free_at, now + period) for slot in held
    )
    return max(frees[len(held) - calls] - now, 0.0)


class MemoryCallSlots:
    """The slots of one account, held in this process (thread-safe): at most ``calls`` calls
    per ``period`` seconds among every caller that shares this object.

    ``clock``: seconds, monotonic (tests: a fake clock)."""

    def __init__(
        self, calls: int, period: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if calls <= 0 or period <= 0:
            raise ValueError(f"a call limit needs calls > 0 and period > 0, got {calls}/{period}")
        self.calls, self.period = calls, period
        self._clock = clock
        self._held: dict[int, HeldSlot] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def take(self) -> Grant:
        """A slot if fewer than ``calls`` are held, else how long until one may be free."""
        with self._lock:
            now = self._clock()
            self._held = {i: s for i, s in self._held.items() if still_held(s.free_at, now)}
            wait = wait_for_slot(list(self._held.values()), self.calls, now, self.period)
            if wait > 0:
                return Grant(None, wait)
            slot_id = next(self._ids)
            self._held[slot_id] = HeldSlot(free_at_when_granted(now, self.period), False)
            return Grant(slot_id)

    def answered(self, slot_id: int) -> None:
        """The call of ``slot_id`` was answered now: its slot is held for one more period."""
        with self._lock:
            if slot_id in self._held:
                self._held[slot_id] = HeldSlot(
                    free_at_when_answered(self._clock(), self.period), True
                )


_PROCESS_SLOTS: dict[tuple[str, int, float], MemoryCallSlots] = {}
_PROCESS_LOCK = threading.Lock()


def process_call_slots(key: str, calls: int, period: float) -> MemoryCallSlots:
    """The one ``MemoryCallSlots`` of account ``key`` (for this limit) in this process."""
    with _PROCESS_LOCK:
        found = _PROCESS_SLOTS.get((key, calls, period))
        if found is None:
            found = _PROCESS_SLOTS[(key, calls, period)] = MemoryCallSlots(calls, period)
        return found
