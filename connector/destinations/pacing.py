"""How many requests to one service may be in flight: additive increase, multiplicative decrease.

:class:`AdaptiveConcurrency` is the arithmetic. The limit starts at ``start``; each answer that
came back OK and fast (its latency at most ``SLOW_FACTOR`` times the fastest seen: the service
is not queueing yet) raises it, by one per answer until the first throttle (doubling each round
trip, as TCP's slow start), by ``1 / limit`` per answer after it (one per round trip); it never
exceeds ``ceiling``. A throttle (429, 503, 504) halves it, never below 1, once per round: the
answers of requests sent before the last cut say nothing of the new limit, so they do not cut
again. An answer neither OK nor a throttle (a refusal, a 500) leaves it as it is.

:class:`Pace` is the gate an asyncio sender passes for each request: it waits while the limit
is taken and while a throttle's ``Retry-After`` asks every request to wait (the pause is the
account's, not one request's: the service asked for quiet).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

SLOW_FACTOR = 3.0
"""An answer slower than this many times the fastest seen does not raise the limit."""

DECREASE = 0.5
"""What a throttle multiplies the limit by."""


class AdaptiveConcurrency:
    """The current limit on requests in flight, moved by their answers (not thread-safe: one
    event loop owns it)."""

    def __init__(self, start: int, ceiling: int) -> None:
        if not 1 <= start <= ceiling:
            raise ValueError(f"need 1 <= start <= ceiling, got start {start}, ceiling {ceiling}")
        self.ceiling = ceiling
        self.limit = float(start)
        self.round = 0  # how many cuts so far: a request carries the round it was sent in
        self.fastest: float | None = None
        self.cuts = 0
        self.peak = float(start)

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now."""
        return max(1, int(self.limit))

    def answered(self, sent_in_round: int, latency_s: float, *, ok: bool, throttled: bool) -> None:
        """One answer came back after ``latency_s``; move the limit by it."""
        if throttled:
            if sent_in_round == self.round:
                self.limit = max(1.0, self.limit * DECREASE)
                self.round += 1
                self.cuts += 1
            return
        if not ok:
            return
        if self.fastest is None or latency_s < self.fastest:
            self.fastest = latency_s
        if latency_s > SLOW_FACTOR * self.fastest:
            return
        step = 1.0 if self.cuts == 0 else 1.0 / self.limit
        self.limit = min(float(self.ceiling), self.limit + step)
        self.peak = max(self.peak, self.limit)


class Pace:
    """The asyncio gate of one sender: at most ``concurrency.allowed`` requests (each with its
    retries) in progress, none sent while a ``Retry-After`` pause lasts.

    ``clock``: seconds, monotonic; ``sleep``: awaited for a pause (tests: a fake clock)."""

    def __init__(
        self,
        concurrency: AdaptiveConcurrency,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.concurrency = concurrency
        self.in_progress = 0
        self._clock, self._sleep = clock, sleep
        self._paused_until = 0.0
        self._changed = asyncio.Condition()

    async def enter(self) -> None:
        """Wait until the limit has room for one more request, and count it in."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_progress < self.concurrency.allowed)
            self.in_progress += 1

    async def leave(self) -> None:
        """A request entered is done (answered, or given up): its place is free."""
        async with self._changed:
            self.in_progress -= 1
            self._changed.notify_all()

    async def send(self) -> tuple[int, float]:
        """Wait out a pause, then: the round this attempt is sent in, and when."""
        while (wait := self._paused_until - self._clock()) > 0:
            await self._sleep(wait)
        return self.concurrency.round, self._clock()

    async def answered(
        self,
        sent: tuple[int, float],
        *,
        ok: bool,
        throttled: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        """The attempt ``sent`` was answered (or failed): move the limit, and pause every
        request for ``retry_after_s`` when a throttle asked for it."""
        before = self.concurrency.allowed
        self.concurrency.answered(sent[0], self._clock() - sent[1], ok=ok, throttled=throttled)
        if throttled and retry_after_s:
            self._paused_until = max(self._paused_until, self._clock() + retry_after_s)
        if self.concurrency.allowed > before:
            async with self._changed:
                self._changed.notify_all()
