"""HTTP plumbing shared by the destination clients.

Typed errors, retry timing with exponential backoff, jitter and ``Retry-After``, bounded
response reads, and scrubbing of secrets out of any text that may reach a log line or an
exception message (httpx puts the full URL, query string included, into its exception
messages). The calls-per-minute limit is the ledger's (``connector.delivery.call_limit``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from connector import progress

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_RESPONSE_BYTES = 1024 * 1024
STREAM_CHUNK = 64 * 1024

_SECRET_PATTERNS = (
    re.compile(r"(access_token=)[^&\s'\"]+", re.IGNORECASE),
    re.compile(r"(authorization:\s*bearer\s+)\S+", re.IGNORECASE),
    re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(r"(access_token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+", re.IGNORECASE),
)


def scrub(text: object, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with access tokens (query parameters, bearer headers, known values) masked."""
    out = str(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        out = pattern.sub(r"\1***", out)
    return out


class ScrubFilter(logging.Filter):
    """Masks access tokens in records of other libraries' loggers (httpx logs full URLs at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_SCRUB_FILTER = ScrubFilter()


_LIBRARY_LOGGERS = ("httpx", "httpcore", "aiohttp")


def install_log_scrubbing() -> None:
    """Put the scrub filter on the HTTP libraries' loggers and on every logger below them
    that exists by now (idempotent): a logger's filters see only the records logged to it,
    not those its children pass up (``httpcore.http11``, ``aiohttp.client``), and the
    libraries make their loggers when imported, before a client is opened."""
    existing = list(logging.root.manager.loggerDict)
    for prefix in _LIBRARY_LOGGERS:
        for name in [prefix, *(n for n in existing if n.startswith(prefix + "."))]:
            logger = logging.getLogger(name)
            if _SCRUB_FILTER not in logger.filters:
                logger.addFilter(_SCRUB_FILTER)


def open_client(
    service: str, *, timeout_s: float, verify_tls: bool, max_connections: int | None = None
) -> httpx.Client:
    """The one ``httpx.Client`` of a destination: an explicit timeout (connecting at most
    10 s of it), TLS verified unless turned off (logged as a warning naming ``service``),
    redirects never followed (a token must not travel on), secrets scrubbed from logs."""
    if not verify_tls:
        log.warning("TLS certificate verification is OFF for %s (verify_tls=false)", service)
    install_log_scrubbing()
    limits = httpx.Limits(max_connections=max_connections) if max_connections else None
    return httpx.Client(
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        verify=verify_tls,
        follow_redirects=False,
        limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "profile-sync-connector"},
    )


class DeliveryError(Exception):
    """Base of every error raised by a destination client; messages never carry secrets."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(scrub(message))
        self.status_code = status_code


class TransientError(DeliveryError):
    """A failure worth retrying: connection trouble, timeouts, 5xx, throttling."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        processed_possible: bool = False,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after
        # True when the request may have reached and been acted on by the server
        self.processed_possible = processed_possible


class RetriesExhausted(DeliveryError):
    """Transient failures until the attempt or time budget ran out; ``last`` is the final one."""

    def __init__(self, message: str, last: TransientError) -> None:
        super().__init__(message, status_code=last.status_code)
        self.last = last
        self.processed_possible = last.processed_possible


class AmbiguousSubmitError(DeliveryError):
    """A submit that may have reached the service; it must not be blindly re-sent."""


class RejectedError(DeliveryError):
    """The service answered and refused the request (``success=false``, 4xx): not retried."""


class AuthError(RejectedError):
    """Refused for the account's setup, not for what was sent: the credentials (401/403,
    "Invalid access token") or, as ``ConfigurationError``, a setting naming something the
    service does not have. The batch keeps its attempt and delivery to the account stops."""


class ConfigurationError(AuthError):
    """The settings name something the service does not have (Copernica: "No database with
    supplied ID"; "Invalid method" for a base URL that is not the API): fix the settings."""


class ProtocolError(DeliveryError):
    """An answer that is not what the protocol documents (not XML, too large, malformed)."""


class NotFoundError(DeliveryError):
    """404 for a status URL or a profile."""


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN guard
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max((when - now).total_seconds(), 0.0)


@dataclass
class RetryPolicy:
    """Bounded retries: capped exponential backoff with jitter; a longer ``Retry-After`` wins."""

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0
    max_total_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        backoff = self.rng.uniform(cap / 2, cap)
        if retry_after is not None:
            return max(backoff, min(retry_after, self.max_total_s))
        return backoff


def read_bounded(
    response: httpx.Response,
    limit: int = MAX_RESPONSE_BYTES,
    *,
    max_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """The body of a streamed response, at most ``limit`` bytes; more is a ``ProtocolError``.

    ``max_seconds`` bounds the whole body read: httpx's read timeout applies to each read, so
    a server trickling a byte at a time would otherwise hold the call for as long as it likes.
    """
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ProtocolError(f"response body of {int(length)} bytes exceeds the {limit} byte limit")
    deadline = None if max_seconds is None else clock() + max_seconds
    buf = bytearray()
    for chunk in response.iter_bytes():
        buf.extend(chunk)
        if len(buf) > limit:
            raise ProtocolError(f"response body exceeds the {limit} byte limit")
        if deadline is not None and clock() > deadline:
            raise ProtocolError(
                f"response body still incomplete after {max_seconds:g}s ({len(buf)} bytes)"
            )
    return bytes(buf)


def iter_file(path: Path, chunk_size: int = STREAM_CHUNK) -> Iterator[bytes]:
    """The bytes of ``path`` in chunks, so a 50 MB batch file is never held in memory."""
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_size):
            yield chunk


def classify_transport_error(
    exc: httpx.TransportError, secrets: tuple[str, ...] = ()
) -> TransientError:
    """A transport error as ``TransientError``; ``processed_possible`` unless it never left."""
    not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    kind = type(exc).__name__
    return TransientError(
        f"{kind}: {scrub(exc, secrets)}",
        processed_possible=not not_sent,
    )


def _short(exc: Exception, limit: int = 80) -> str:
    """The first line of an error's message, cut to ``limit`` characters (a progress note)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    retry_if: Callable[[TransientError], bool] = lambda _e: True,
) -> T:
    """``call()`` until it returns, retrying ``TransientError``s that ``retry_if`` allows.

    A ``TransientError`` that ``retry_if`` refuses is re-raised as is; an exhausted budget raises
    ``RetriesExhausted`` carrying the last error.
    """
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except TransientError as exc:
            if not retry_if(exc):
                raise
            delay = retry_delay(policy, exc, attempt, clock() - started, what=what)
            with progress.waiting(f"{what} failed ({_short(exc)}); retry {attempt}", delay):
                sleep(delay)


def retry_delay(
    policy: RetryPolicy, exc: TransientError, attempt: int, spent: float, *, what: str
) -> float:
    """Seconds to wait before retrying ``what`` after its ``attempt``-th failure ``exc``,
    ``spent`` seconds after the first try (logged as a warning); ``RetriesExhausted`` when
    the policy's attempts or time are used up."""
    delay = policy.delay(attempt, exc.retry_after)
    if attempt >= policy.max_attempts or spent + delay > policy.max_total_s:
        raise RetriesExhausted(
            f"{what}: gave up after {attempt} attempts in {spent:.1f}s: {exc}", exc
        ) from None
    log.warning("%s: %s; retry %d in %.1fs", what, exc, attempt, delay)
    return delay
