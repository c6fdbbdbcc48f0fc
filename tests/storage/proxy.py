"""A slow TCP proxy in front of the S3 server: uploads through it take seconds, not
milliseconds, so a test can kill a writer while a multipart upload is in progress."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class SlowProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; client-to-server bytes at ``rate`` bytes a
    second. ``part_seen`` is set once a request uploads a multipart part (``partNumber=``)."""

    def __init__(self, upstream: tuple[str, int], rate: int) -> None:
        self.upstream = upstream
        self.rate = rate
        self.part_seen = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upload: bool) -> None:
        block = max(1024, self.rate // 20)
        try:
            while data := src.recv(block):
                if upload:
                    if b"partNumber=" in data:
                        self.part_seen.set()
                    time.sleep(len(data) / self.rate)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
