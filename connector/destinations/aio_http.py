"""The asyncio HTTP plumbing of per-profile requests: an aiohttp session, bounded reads, errors.

Copernica takes one request per profile, so a batch is thousands of small requests and the
client's CPU per request decides the rate. aiohttp under asyncio spends well under half of
httpx's CPU per request in threads (``bench/http_clients.py``; figures in ``bench/README.md``),
so the Copernica PUTs go through it; the few other calls keep ``http.open_client``'s httpx.

The session keeps the promises of ``http.open_client``: an explicit timeout (connecting at
most 10 s of it), TLS verified unless turned off (logged as a warning naming the service),
redirects never followed (the caller passes ``allow_redirects=False``), secrets scrubbed from
the libraries' logs and from every error message (``http.scrub``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported where used: a Target-only run never loads aiohttp
    import aiohttp

from connector.destinations.http import (
    MAX_RESPONSE_BYTES,
    STREAM_CHUNK,
    ProtocolError,
    TransientError,
    install_log_scrubbing,
    scrub,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


def open_session(
    service: str, *, timeout_s: float, verify_tls: bool, max_connections: int
) -> aiohttp.ClientSession:
    """The session of one sender (open it inside the event loop that uses it)."""
    if not verify_tls:
        log.warning("TLS certificate verification is OFF for %s (verify_tls=false)", service)
    import aiohttp

    install_log_scrubbing()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, ssl=verify_tls),
        timeout=aiohttp.ClientTimeout(total=timeout_s, connect=min(10.0, timeout_s)),
        headers={"User-Agent": "profile-sync-connector"},
        skip_auto_headers=("Content-Type",),
    )


async def read_bounded(response: aiohttp.ClientResponse, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """The body of ``response``, at most ``limit`` bytes; more is a ``ProtocolError`` (the
    session's total timeout bounds how long the whole read may take)."""
    length = response.content_length
    if length is not None and length > limit:
        raise ProtocolError(f"response body of {length} bytes exceeds the {limit} byte limit")
    buf = bytearray()
    async for chunk in response.content.iter_chunked(STREAM_CHUNK):
        buf.extend(chunk)
        if len(buf) > limit:
            raise ProtocolError(f"response body exceeds the {limit} byte limit")
    return bytes(buf)


def classify_error(exc: BaseException, secrets: tuple[str, ...] = ()) -> TransientError:
    """A failed exchange as ``TransientError``, named as ``http.classify_transport_error``
    names httpx's; ``processed_possible`` unless the request never left (no connection)."""
    import aiohttp

    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind, not_sent = "ConnectTimeout", True
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind, not_sent = "ConnectError", True
    elif isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        kind, not_sent = "ReadTimeout", False
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        kind, not_sent = "RemoteProtocolError", False
    else:
        kind, not_sent = type(exc).__name__, False
    detail = scrub(exc, secrets) or type(exc).__name__
    return TransientError(f"{kind}: {detail}", processed_possible=not not_sent)


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end from synchronous code: in a new event loop on this thread, or
    on a thread of its own when this thread already runs a loop (asyncio.run refuses that)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="aio-http")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
