"""Sending many Copernica profile PUTs at once: asyncio, adaptive concurrency, retries.

:class:`PutSender` sends one client's PUTs; the client (``copernica.CopernicaClient``) says what
each PUT is (``prepare``: its URL and body, or a ``DeliveryError`` when its identity may not
select one profile) and what a refusal means (``refused``: Copernica's error messages). The
sender owns the rest: the aiohttp session (``aio_http``: the lowest client CPU per request
measured), the pace, the retries, the outcomes.

Pace: at most ``concurrency`` PUTs are in flight at first; the limit grows while the service
answers fast and OK, halves on a throttle (429, 503, 504) and every PUT waits out a throttle's
``Retry-After`` (at most ``max_retry_after_s``), never above ``max_concurrency`` (``pacing``).
The limit a batch ends at is where the sender's next batch starts. With a ``call_slots``
ceiling, every request holds one of its slots (``call_slots``: the per-second ceiling the
PUTs of every client of the account in this process share).

Retries: PUT is idempotent for one exact selector, so every transient failure (including
ambiguous ones: a timeout after sending) is retried with the client's ``RetryPolicy``; a
retried create finds the profile the first attempt made and updates it. Once a PUT found the
service unreachable, the PUTs not started yet are not tried (``PutResult.unreachable``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from yarl import URL

from connector.destinations import aio_http
from connector.destinations.call_slots import MemoryCallSlots
from connector.destinations.http import (
    DeliveryError,
    RetriesExhausted,
    RetryPolicy,
    TransientError,
    parse_retry_after,
    retry_delay,
    scrub,
)
from connector.destinations.pacing import AdaptiveConcurrency, Pace
from connector.settings import CopernicaSettings

if TYPE_CHECKING:  # imported where used: a Target-only run never loads aiohttp
    import aiohttp

# answers that say the service is overloaded: the concurrency backs off
THROTTLE_STATUSES = (429, 503, 504)
NOT_SENT = "not sent: the service was unreachable"


@dataclass(frozen=True)
class PutResult:
    """The outcome of one profile PUT: ``ok`` confirmed, otherwise ``error`` says why."""

    identity: str
    ok: bool
    status_code: int | None = None
    created: bool = False
    error: str | None = None
    auth_refused: bool = False
    config_error: bool = False  # the database or the path does not exist: no row is to blame
    # the PUT never reached the service (no connection after every retry, or not tried once
    # another PUT of the batch found it so): the service is down, no row is to blame
    unreachable: bool = False
    attempts: int = 1  # requests sent for this profile (more than 1: retried)

    @classmethod
    def failed(
        cls, identity: str, error: DeliveryError, attempts: int, *, unreachable: bool = False
    ) -> PutResult:
        """The PUT of ``identity`` ended in ``error`` after ``attempts`` requests."""
        return cls(
            identity,
            ok=False,
            status_code=error.status_code,
            error=str(error),
            unreachable=unreachable,
            attempts=attempts,
        )


@dataclass(frozen=True)
class PaceReport:
    """How the last ``put_many`` paced its PUTs: the concurrency it started at (the
    client's earlier batches' last), the most it reached, where it ended, and its cuts."""

    start: int
    peak: int
    final: int
    cuts: int


@dataclass(frozen=True)
class ProfilePut:
    """The PUT of one profile, ready to send: its URL (the selector in it) and its JSON body."""

    identity: str
    url: URL
    body: bytes


class PutSender:
    """Sends the profile PUTs of one Copernica client, many at once (module docstring)."""

    def __init__(
        self,
        settings: CopernicaSettings,
        *,
        prepare: Callable[[str, Mapping[str, str]], ProfilePut],
        refused: Callable[[str, int, bytes, int], PutResult],
        headers: Mapping[str, str],
        secrets: tuple[str, ...],
        retry: RetryPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        call_slots: MemoryCallSlots | None,
    ) -> None:
        """``prepare(identity, fields)``: the profile's PUT, or a ``DeliveryError`` naming why it
        may not be sent. ``refused(identity, status, payload, attempts)``: the result of an
        answer that is neither OK nor transient. ``headers``: sent with every PUT (the
        credentials from v4). ``sleep``/``clock``: the client's (a test's fake clock moves and
        nothing really waits)."""
        self.settings = settings
        self._prepare = prepare
        self._refused = refused
        self._headers = {"Content-Type": "application/json", **headers}
        self._secrets = secrets
        self.retry = retry
        self._sleep = sleep
        self._clock = clock
        self._call_slots = call_slots
        self.last_pace: PaceReport | None = None
        self._concurrency: AdaptiveConcurrency | None = None  # the PUTs' limit, once learnt

    def put_many(
        self,
        items: Iterable[tuple[str, Mapping[str, str]]],
        on_result: Callable[[PutResult], None] | None = None,
    ) -> list[PutResult]:
        """PUT every (identity, fields); the results in the order of ``items``, ``on_result``
        called with each as it comes."""
        return aio_http.run_coroutine(self._put_all(items, on_result))

    async def _put_all(
        self,
        items: Iterable[tuple[str, Mapping[str, str]]],
        on_result: Callable[[PutResult], None] | None,
    ) -> list[PutResult]:
        settings = self.settings
        ceiling = max(settings.max_concurrency, settings.concurrency)
        # the limit learnt by this client's earlier batches carries on: each batch of a drain
        # does not start over from the configured level
        if self._concurrency is None:
            self._concurrency = AdaptiveConcurrency(settings.concurrency, ceiling)
        concurrency = self._concurrency
        start, cuts_before = concurrency.allowed, concurrency.cuts
        concurrency.peak = concurrency.limit
        pace = Pace(concurrency, clock=self._clock, sleep=self._wait)
        results: dict[int, PutResult] = {}
        source = enumerate(items)
        down = asyncio.Event()  # a PUT found the service unreachable

        async def worker(session: aiohttp.ClientSession) -> None:
            for index, (identity, fields) in source:
                if down.is_set():
                    result = PutResult(identity, ok=False, error=NOT_SENT, unreachable=True)
                else:
                    result = await self._put_one(session, pace, identity, fields, down.is_set)
                    if result.unreachable:
                        down.set()
                results[index] = result
                if on_result:
                    on_result(result)

        session = aio_http.open_session(
            "Copernica",
            timeout_s=settings.timeout_s,
            verify_tls=settings.verify_tls,
            max_connections=ceiling,
        )
        async with session:
            await asyncio.gather(*(worker(session) for _ in range(ceiling)))
        self.last_pace = PaceReport(
            start, int(concurrency.peak), concurrency.allowed, concurrency.cuts - cuts_before
        )
        return [results[i] for i in range(len(results))]

    async def _wait(self, seconds: float) -> None:
        if self._sleep is time.sleep:
            await asyncio.sleep(seconds)
        else:  # a test's fake clock: it moves, nothing really waits
            self._sleep(seconds)
            await asyncio.sleep(0)

    async def _put_one(
        self,
        session: aiohttp.ClientSession,
        pace: Pace,
        identity: str,
        fields: Mapping[str, str],
        service_down: Callable[[], bool],
    ) -> PutResult:
        try:
            put = self._prepare(identity, fields)
        except DeliveryError as exc:
            return PutResult.failed(identity, exc, attempts=0)
        await pace.enter()
        try:
            return await self._put_with_retries(session, pace, put, service_down)
        finally:
            await pace.leave()

    async def _put_with_retries(
        self,
        session: aiohttp.ClientSession,
        pace: Pace,
        put: ProfilePut,
        service_down: Callable[[], bool],
    ) -> PutResult:
        started = self._clock()
        attempt = 0
        while True:
            if attempt == 0 and service_down():  # another PUT found it down: not tried
                return PutResult(
                    put.identity, ok=False, error=NOT_SENT, unreachable=True, attempts=attempt
                )
            attempt += 1
            try:
                return await self._put_once(session, pace, put, attempt)
            except TransientError as exc:
                try:
                    delay = retry_delay(
                        self.retry, exc, attempt, self._clock() - started, what="copernica PUT"
                    )
                except RetriesExhausted as gave_up:
                    never_reached = gave_up.status_code is None and not gave_up.processed_possible
                    return PutResult.failed(
                        put.identity, gave_up, attempt, unreachable=never_reached
                    )
                await self._wait(delay)
            except DeliveryError as exc:
                return PutResult.failed(put.identity, exc, attempt)

    async def _put_once(
        self, session: aiohttp.ClientSession, pace: Pace, put: ProfilePut, attempt: int
    ) -> PutResult:
        """One PUT, after any pause and within the per-second ceiling; a throttle or a failed
        exchange raises ``TransientError``."""
        sent = await pace.send()
        ok, throttle_wait = False, None
        try:
            slot = await self._call_slot()
            try:
                status, payload, headers = await self._send(session, put)
            finally:
                if slot is not None and self._call_slots is not None:
                    self._call_slots.answered(slot)
            if status in THROTTLE_STATUSES:
                throttle_wait = self._retry_after(headers.get("retry-after"))
            if status == 429 or status >= 500:
                raise TransientError(
                    f"PUT {scrub(put.url.human_repr(), self._secrets)}: HTTP {status}",
                    status_code=status,
                    retry_after=throttle_wait,
                )
            ok = 200 <= status < 300 or status == 303
        finally:
            await pace.answered(
                sent, ok=ok, throttled=throttle_wait is not None, retry_after_s=throttle_wait
            )
        if ok:
            created = status in (201, 303) or bool(headers.get("x-created"))
            return PutResult(
                put.identity, ok=True, status_code=status, created=created, attempts=attempt
            )
        return self._refused(put.identity, status, payload, attempt)

    def _retry_after(self, value: str | None) -> float:
        """A throttle's ``Retry-After`` in seconds, at most ``max_retry_after_s`` (0 if none)."""
        asked = parse_retry_after(value)
        return min(asked or 0.0, self.settings.max_retry_after_s)

    async def _call_slot(self) -> int | None:
        """A slot of the per-second ceiling (waiting for one), or None without a ceiling."""
        if self._call_slots is None:
            return None
        grant = self._call_slots.take()
        while grant.slot_id is None:
            await self._wait(grant.wait_s)
            grant = self._call_slots.take()
        return grant.slot_id

    async def _send(
        self, session: aiohttp.ClientSession, put: ProfilePut
    ) -> tuple[int, bytes, Mapping[str, str]]:
        import aiohttp

        try:
            async with session.put(
                put.url, data=put.body, headers=self._headers, allow_redirects=False
            ) as resp:
                payload = await aio_http.read_bounded(resp)
                return resp.status, payload, resp.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise aio_http.classify_error(exc, self._secrets) from None
