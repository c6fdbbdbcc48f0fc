"""A tiny real HTTP server that answers with canned, documented (and hostile) responses."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Canned:
    """Answers served in order (the last one repeats); each a callable(handler, seen) or a tuple."""

    answers: list = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def add(self, *answers) -> None:  # type: ignore[no-untyped-def]
        self.answers.extend(answers)


def reply(status: int, body: bytes = b"", headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    def send(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        handler.send_response(status)
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return send


def drop(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
    handler.close_connection = True
    handler.connection.shutdown(2)


def slow(seconds: float, then: Callable) -> Callable:  # type: ignore[type-arg]
    def send(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        time.sleep(seconds)
        with contextlib.suppress(OSError):
            then(handler, seen)

    return send


def huge(size: int) -> Callable:  # type: ignore[type-arg]
    def send(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        handler.send_response(200)
        handler.end_headers()  # no Content-Length: the client must stop reading by itself
        chunk = b"<" + b"x" * 65535
        sent = 0
        try:
            while sent < size:
                handler.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        handler.close_connection = True

    return send


@pytest.fixture
def canned() -> Iterator[Canned]:
    state = Canned()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            with lock:
                state.seen.append(seen)
                answer = state.answers.pop(0) if len(state.answers) > 1 else state.answers[0]
            answer(self, seen)

        do_GET = do_POST = do_PUT = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
