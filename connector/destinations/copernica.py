"""Copernica REST client: one ``PUT database/{db}/profiles`` per profile, adaptive concurrency.

The selector is always ``fields[]=<match field>==<value>`` with ``create=1``. ``==`` compares whole
values: ``%`` and ``_`` are wildcards only for ``=~``/``!~``, so they are safe in a value, and
the connector never uses a pattern operator. The match field must be the mapping's identity field
(each identity is unique in a batch after dedupe). Values that a selector parser could read as
part of the operator (leading ``=``, ``~``, ``!``, ``<``, ``>``), empty values and values with
surrounding whitespace are refused: a PUT updates *every* profile that matches.
Copernica compares text case-insensitively, so identities that differ only in case select the
same profile there; a selector on a field the database lacks is ignored and would select every
profile, which the destination refuses before sending (``copernica_fields``).

Auth: v1-v3 ``access_token`` query parameter, v4 ``Authorization: Bearer``. The token never
reaches a log line or an exception message: everything is passed through ``scrub``.

The match field is also sent in the body: ``create=1`` builds a new profile from the body alone.

PUT is idempotent for one exact selector, so every transient failure (including ambiguous ones:
a timeout after sending) is retried with the shared ``RetryPolicy``; a retried create finds the
profile the first attempt made and updates it.

Errors: every refusal is HTTP 400 ``{"error": {"message": ...}}``. "No database with supplied
ID" and "Invalid method" (a base URL that is not the API) are configuration errors: the
account's settings are wrong and no row is to blame (``PutResult.config_error``,
``ConfigurationError``); "Invalid access token" refuses the credentials; any other message
("Invalid data provided") refuses that one profile.

Pace: the PUTs go out under asyncio through aiohttp (``aio_http``: the lowest client CPU per
request measured). At most ``concurrency`` are in flight at first; the limit grows while the
service answers fast and OK, halves on a throttle (429, 503, 504) and every PUT waits out a
throttle's ``Retry-After`` (at most ``max_retry_after_s``), never above ``max_concurrency``
(``pacing``). With ``max_requests_per_s`` set, the PUTs of every client of the account in this
process share that ceiling, held by the rule of ``call_slots`` over a one-second period.

Fields: ``database_fields`` reads ``GET database/{db}/fields`` (the names as Copernica spells
them) for the destination's check of the params (``copernica_fields``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import aiohttp
import httpx
from yarl import URL

from connector.destinations import aio_http
from connector.destinations.call_slots import MemoryCallSlots, process_call_slots
from connector.destinations.http import (
    ConfigurationError,
    DeliveryError,
    ProtocolError,
    RejectedError,
    RetriesExhausted,
    RetryPolicy,
    TransientError,
    classify_transport_error,
    open_client,
    parse_retry_after,
    read_bounded,
    retry_delay,
    run_with_retries,
    scrub,
)
from connector.destinations.pacing import AdaptiveConcurrency, Pace
from connector.settings import CopernicaSettings

log = logging.getLogger(__name__)

_OPERATOR_START = ("=", "~", "!", "<", ">")
# 400 messages that mean the settings are wrong, whatever was sent
CONFIGURATION_MESSAGES = ("No database with supplied ID", "Invalid method")
# answers that say the service is overloaded: the concurrency backs off
THROTTLE_STATUSES = (429, 503, 504)
NOT_SENT = "not sent: the service was unreachable"


class SelectorError(DeliveryError):
    """A selector that could match more than the one intended profile."""


def build_selector(match_field: str, identity_field: str, value: str) -> str:
    """``<field>==<value>`` for one profile, or ``SelectorError`` when it may not be unique."""
    if match_field != identity_field:
        raise SelectorError(
            f"match field {match_field!r} is not the mapping's identity field {identity_field!r}"
        )
    if not value:
        raise SelectorError("empty match value would match every profile without that field")
    if value != value.strip():
        raise SelectorError(f"match value {value!r} has surrounding whitespace")
    if value.startswith(_OPERATOR_START):
        raise SelectorError(f"match value {value!r} starts with an operator character")
    if any(ch in value for ch in "\r\n\x00"):
        raise SelectorError("match value contains a control character")
    return f"{match_field}=={value}"


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


@dataclass(frozen=True)
class PaceReport:
    """How the last ``put_many`` paced its PUTs: the concurrency it started at (the
    client's earlier batches' last), the most it reached, where it ended, and its cuts."""

    start: int
    peak: int
    final: int
    cuts: int


class CopernicaClient:
    """PUT profiles into one Copernica database."""

    def __init__(
        self,
        settings: CopernicaSettings,
        *,
        match_field: str,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        call_slots: MemoryCallSlots | None = None,
    ) -> None:
        """``sleep`` and ``clock``: real time unless a test fakes it (a PUT's waits then call
        ``sleep`` and yield to the event loop). ``call_slots``: the ceiling on requests per
        second (default: the account's in this process, when ``max_requests_per_s`` is set)."""
        self.settings = settings
        self.match_field = match_field
        self.base_url = settings.base_url.rstrip("/")
        self.database = settings.database
        self.api_version = settings.api_version
        self._token = settings.access_token.get_secret_value() if settings.access_token else None
        self._secrets = (self._token,) if self._token else ()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._http = open_client(
            "Copernica", timeout_s=settings.timeout_s, verify_tls=settings.verify_tls
        )
        if call_slots is None and settings.max_requests_per_s is not None:
            call_slots = process_call_slots(self._account(), settings.max_requests_per_s, 1.0)
        self._call_slots = call_slots
        self.last_pace: PaceReport | None = None
        self._put_prefix: tuple[str, str] | None = None
        self._concurrency: AdaptiveConcurrency | None = None  # the PUTs' limit, once learnt

    def _account(self) -> str:
        """The account a per-second ceiling belongs to: the service and the credentials
        (hashed: the key never holds the token)."""
        token = hashlib.sha256((self._token or "").encode()).hexdigest()[:16]
        return f"copernica:{self.base_url}:{token}"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CopernicaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- request plumbing -----------------------------------------------------------------

    def _url(self, tail: str) -> str:
        return f"{self.base_url}/database/{quote(self.database, safe='')}/{tail}"

    def _auth(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        if not self._token:
            return [], {}
        if self.api_version == "v4":
            return [], {"Authorization": f"Bearer {self._token}"}
        return [("access_token", self._token)], {}

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: list[tuple[str, str]],
        json_body: Any = None,
    ) -> tuple[int, bytes, httpx.Headers]:
        auth_params, headers = self._auth()
        kwargs: dict[str, Any] = {"params": params + auth_params, "headers": headers}
        if json_body is not None:
            kwargs["content"] = json.dumps(json_body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        try:
            with self._http.stream(method, url, **kwargs) as resp:
                body = read_bounded(resp, max_seconds=self.settings.timeout_s)
                status, resp_headers = resp.status_code, resp.headers
        except httpx.TransportError as exc:
            raise classify_transport_error(exc, self._secrets) from None
        if status == 429 or status >= 500:
            raise TransientError(
                f"{method} {scrub(url, self._secrets)}: HTTP {status}",
                status_code=status,
                retry_after=parse_retry_after(resp_headers.get("retry-after")),
            )
        return status, body, resp_headers

    def _error_message(self, body: bytes) -> str:
        try:
            doc = json.loads(body)
            msg = doc.get("error", {}).get("message") if isinstance(doc, dict) else None
        except (ValueError, AttributeError):
            msg = None
        return scrub(msg or body[:200].decode("utf-8", "replace"), self._secrets)

    # -- profiles -------------------------------------------------------------------------

    def put_profile(self, identity: str, fields: Mapping[str, str]) -> PutResult:
        """PUT one profile (create when missing); a refusal comes back as ``ok=False``."""
        return self.put_many([(identity, fields)])[0]

    def put_many(
        self,
        items: Iterable[tuple[str, Mapping[str, str]]],
        on_result: Callable[[PutResult], None] | None = None,
    ) -> list[PutResult]:
        """PUT every (identity, fields), paced (module docstring); the results in the order of
        ``items``, ``on_result`` called with each as it comes.

        Once a PUT found the service unreachable, the ones not started yet are not tried
        (``unreachable``): each would spend the whole retry budget on a service that is down.
        """
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

    def _put_url(self, selector: str) -> URL:
        """``profiles?fields[]=<selector>&create=1`` (and the token up to v3), encoded as
        ``urlencode`` encodes it; the part after the selector is the same for every PUT."""
        if self._put_prefix is None:
            tail = urlencode([("create", "1"), *self._auth()[0]])
            self._put_prefix = (f"{self._url('profiles')}?fields%5B%5D=", f"&{tail}")
        head, tail = self._put_prefix
        return URL(f"{head}{quote_plus(selector)}{tail}", encoded=True)

    async def _put_one(
        self,
        session: aiohttp.ClientSession,
        pace: Pace,
        identity: str,
        fields: Mapping[str, str],
        service_down: Callable[[], bool],
    ) -> PutResult:
        try:
            selector = build_selector(self.match_field, self.match_field, identity)
        except SelectorError as exc:
            return PutResult(identity, ok=False, error=str(exc), attempts=0)
        # create=1 builds the new profile from the body only, not from the selector: without
        # the match field in the body it would be created without its identity (and the next
        # PUT would create a duplicate)
        flat = {**dict(fields), self.match_field: identity}
        doc: dict[str, Any] = flat if self.api_version == "v1" else {"fields": flat}
        body = json.dumps(doc, ensure_ascii=False).encode()
        url = self._put_url(selector)
        await pace.enter()
        try:
            return await self._put_with_retries(session, pace, url, body, identity, service_down)
        finally:
            await pace.leave()

    async def _put_with_retries(
        self,
        session: aiohttp.ClientSession,
        pace: Pace,
        url: URL,
        body: bytes,
        identity: str,
        service_down: Callable[[], bool],
    ) -> PutResult:
        started = self._clock()
        attempt = 0
        while True:
            if attempt == 0 and service_down():  # another PUT found it down: not tried
                return PutResult(
                    identity, ok=False, error=NOT_SENT, unreachable=True, attempts=attempt
                )
            attempt += 1
            try:
                return await self._put_once(session, pace, url, body, identity, attempt)
            except TransientError as exc:
                try:
                    delay = retry_delay(
                        self.retry, exc, attempt, self._clock() - started, what="copernica PUT"
                    )
                except RetriesExhausted as gave_up:
                    return PutResult(
                        identity,
                        ok=False,
                        status_code=gave_up.status_code,
                        error=str(gave_up),
                        unreachable=gave_up.status_code is None and not gave_up.processed_possible,
                        attempts=attempt,
                    )
                await self._wait(delay)
            except DeliveryError as exc:
                return PutResult(
                    identity,
                    ok=False,
                    status_code=exc.status_code,
                    error=str(exc),
                    attempts=attempt,
                )

    async def _put_once(
        self,
        session: aiohttp.ClientSession,
        pace: Pace,
        url: URL,
        body: bytes,
        identity: str,
        attempt: int,
    ) -> PutResult:
        """One PUT, after any pause and within the per-second ceiling; a throttle or a failed
        exchange raises ``TransientError``."""
        sent = await pace.send()
        ok, throttle_wait = False, None
        try:
            slot = await self._call_slot()
            try:
                status, payload, headers = await self._send(session, url, body)
            finally:
                if slot is not None and self._call_slots is not None:
                    self._call_slots.answered(slot)
            if status in THROTTLE_STATUSES:
                throttle_wait = self._retry_after(headers.get("retry-after"))
            if status == 429 or status >= 500:
                raise TransientError(
                    f"PUT {scrub(url.human_repr(), self._secrets)}: HTTP {status}",
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
                identity, ok=True, status_code=status, created=created, attempts=attempt
            )
        message = self._error_message(payload)
        return PutResult(
            identity,
            ok=False,
            status_code=status,
            error=f"HTTP {status}: {message}",
            auth_refused=status in (401, 403) or "access token" in message.lower(),
            config_error=status == 400 and message in CONFIGURATION_MESSAGES,
            attempts=attempt,
        )

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
        self, session: aiohttp.ClientSession, url: URL, body: bytes
    ) -> tuple[int, bytes, Mapping[str, str]]:
        headers = {"Content-Type": "application/json", **self._auth()[1]}
        try:
            async with session.put(url, data=body, headers=headers, allow_redirects=False) as resp:
                payload = await aio_http.read_bounded(resp)
                return resp.status, payload, resp.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise aio_http.classify_error(exc, self._secrets) from None

    def find_profiles(self, identity: str) -> list[dict[str, str]]:
        """The fields of every profile matching ``<match field>==identity`` (read-back)."""
        selector = build_selector(self.match_field, self.match_field, identity)
        params = [("fields[]", selector), ("limit", "10")]

        def once() -> list[dict[str, str]]:
            status, payload, _ = self._request("GET", self._url("profiles"), params=params)
            if status != 200:
                raise RejectedError(
                    f"profile read: HTTP {status}: {self._error_message(payload)}",
                    status_code=status,
                )
            try:
                doc = json.loads(payload)
            except ValueError:
                raise ProtocolError("profile read: answer is not JSON") from None
            data = doc.get("data", []) if isinstance(doc, dict) else []
            return [
                {k: "" if v is None else str(v) for k, v in (item.get("fields") or {}).items()}
                for item in data
                if isinstance(item, dict)
            ]

        return run_with_retries(
            once, self.retry, what="copernica GET", sleep=self._sleep, clock=self._clock
        )

    def database_fields(self) -> list[str] | None:
        """The database's field names as Copernica spells them; None when they cannot be read
        (another refusal, or the service unavailable): the caller then skips its checks.

        ``ConfigurationError`` when the service says the database does not exist."""

        def once() -> list[str] | None:
            status, payload, _ = self._request(
                "GET", self._url("fields"), params=[("limit", "1000")]
            )
            if status != 200:
                message = self._error_message(payload)
                if status == 400 and message in CONFIGURATION_MESSAGES:
                    raise ConfigurationError(
                        f"copernica database {self.database!r} at {self.base_url}: {message} "
                        "(check CONNECTOR_COPERNICA__DATABASE and CONNECTOR_COPERNICA__BASE_URL)",
                        status_code=status,
                    )
                return None
            try:
                doc = json.loads(payload)
            except ValueError:
                return None
            data = doc.get("data") if isinstance(doc, dict) else doc
            if not isinstance(data, list):
                return None
            return [str(item["name"]) for item in data if isinstance(item, dict) and "name" in item]

        try:
            return run_with_retries(
                once, self.retry, what="copernica fields", sleep=self._sleep, clock=self._clock
            )
        except ConfigurationError:
            raise
        except DeliveryError:
            return None
