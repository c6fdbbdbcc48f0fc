"""Fault injection, the outermost ASGI layer: errors, throttling, latency, dropped connections.

Admin paths (``/`` and ``/_sandbox/...``) and mbox calls (``/m2/{client}/mbox/json``) are
never faulted. Each API call draws the same four numbers from the seeded RNG whatever the
settings, so a run is reproducible per seed (for calls made one after another).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from connector.sandbox.state import Sandbox

log = logging.getLogger(__name__)

Scope = dict[str, Any]


def client_key(scope: Scope) -> str:
    """Who a call is metered and reported under: the Target client code, or "copernica"."""
    parts = scope["path"].split("/")
    if len(parts) > 2 and parts[1] == "m2":
        return parts[2]
    if scope["path"].startswith("/rest/"):
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return query.get("client", ["?"])[0]
    return "copernica"


def is_admin(path: str) -> bool:
    return path == "/" or path.startswith("/_sandbox")


def is_mbox(path: str) -> bool:
    """An mbox call: the emulated visitor's traffic, not the connector's, so never faulted."""
    parts = path.split("/")
    return len(parts) == 5 and parts[1] == "m2" and parts[3] == "mbox"


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def drop_connection(receive: Any, send: Any) -> None:
    """Close the TCP connection without a response (the client sees a protocol error)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:  # not uvicorn's h11/httptools cycle: the closest we can do
        raise ConnectionAbortedError("sandbox: injected dropped connection")
    transport.close()

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    # Wait until uvicorn has noticed, so it does not answer 500 on our behalf.
    try:
        await asyncio.wait_for(disconnected(), timeout=5)
    except TimeoutError:
        log.warning("dropped connection was not reported closed")


class FaultInjector:
    """ASGI middleware that injects the faults configured on the sandbox."""

    def __init__(self, app: Any, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or is_admin(scope["path"]) or is_mbox(scope["path"]):
            await self.app(scope, receive, send)
            return
        sandbox = self.sandbox
        faults = sandbox.faults
        key = client_key(scope)
        drop, fail, throttle, variant = sandbox.draw(key)
        if faults.latency_ms > 0:
            sandbox.record_fault(key, "latency")
            await asyncio.sleep(faults.latency_ms / 1000)
        if drop < faults.drop_rate and faults.drop_when == "before":
            sandbox.record_fault(key, "drop")
            await drop_connection(receive, send)
            return
        if fail < faults.fail_rate:
            status = 500 if variant < 0.5 else 502
            sandbox.record_fault(key, f"fail_{status}")
            body = b"Internal Server Error" if status == 500 else b"Bad Gateway"
            await _respond(send, status, body, [(b"content-type", b"text/plain")])
            return
        if throttle < faults.throttle_rate:
            status = 429 if variant < 0.5 else 503
            sandbox.record_fault(key, f"throttle_{status}")
            await _respond(
                send,
                status,
                b"<html><body><h1>Too many requests</h1></body></html>",
                [
                    (b"content-type", b"text/html"),
                    (b"retry-after", str(faults.retry_after_s).encode()),
                ],
            )
            return
        if drop < faults.drop_rate:  # drop_when == "after": handle the call, lose the answer
            sandbox.record_fault(key, "drop_after")

            async def swallow(message: Any) -> None:
                return None

            await self.app(scope, receive, swallow)
            await drop_connection(receive, send)
            return
        await self.app(scope, receive, send)
