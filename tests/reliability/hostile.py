"""A tiny, deliberately hostile HTTP server: answers chosen per path, requests recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GB = 1024**3
CHUNK = b"<" + b"a" * (64 * 1024 - 1)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<response><success>true</success><message>&lol9;</message>
<batchStatus>http://127.0.0.1/m2/x/v2/profile/batchStatus?batchId=x-1</batchStatus></response>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response><success>true</success><message>&xxe;</message>
<batchStatus>http://127.0.0.1/m2/x/v2/profile/batchStatus?batchId=x-1</batchStatus></response>"""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Hostile:
    url: str
    seen: list[Seen] = field(default_factory=list)
    # path prefix -> (status, headers, body bytes | "stream-1gb" | "trickle")
    answers: dict[str, tuple[int, dict[str, str], Any]] = field(default_factory=dict)
    sent_bytes: int = 0


@contextmanager
def hostile_server(host: str = "127.0.0.1") -> Iterator[Hostile]:
    state = Hostile(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            while length > 0:  # drain the request body
                got = self.rfile.read(min(length, 65536))
                if not got:
                    break
                length -= len(got)
            state.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
            key = next(
                (
                    k
                    for k in sorted(state.answers, key=len, reverse=True)
                    if self.path.startswith(k)
                ),
                None,
            )
            if key is None:
                status, headers, body = 404, {}, b"no"
            else:
                status, headers, body = state.answers[key]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            try:
                if body == "stream-1gb":
                    if "Content-Length" not in headers:
                        self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for _ in range(GB // len(CHUNK)):
                        data = CHUNK
                        if "Content-Length" not in headers:
                            data = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
                        self.wfile.write(data)
                        state.sent_bytes += len(CHUNK)
                elif body == "trickle":
                    self.send_header("Content-Length", str(10_000))
                    self.end_headers()
                    for _ in range(10_000):
                        self.wfile.write(b"<")
                        self.wfile.flush()
                        state.sent_bytes += 1
                        time.sleep(0.2)
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError, OSError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = _answer

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    state.url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
